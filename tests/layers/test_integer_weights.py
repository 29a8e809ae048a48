"""Post-training quantization: integer storage, packing, report, saving."""

import keras
import numpy as np
import pytest

from tests.layers._models import conv_bn_dense
from tf_lowprec.formats import FixedPoint, IntegerAffine
from tf_lowprec.layers import IntegerConv2D, IntegerDense, quantize_weights
from tf_lowprec.ops import quantize


def _model():
    return conv_bn_dense((6, 6, 2), filters=5, hidden=7, classes=3)


def _x():
    return np.random.default_rng(0).normal(size=(4, 6, 6, 2)).astype(np.float32)


@pytest.mark.parametrize(
    "fmt",
    [
        IntegerAffine(8, per_channel_axis=-1),
        IntegerAffine(8, symmetric=False),
        IntegerAffine(4, per_channel_axis=-1),
        IntegerAffine(4, symmetric=False, per_channel_axis=-1),
        IntegerAffine(3),
    ],
    ids=repr,
)
def test_storage_dequantization_and_report(fmt):
    model = _model()
    qmodel, report = quantize_weights(model, fmt)
    conv, hidden = qmodel.get_layer("conv"), qmodel.get_layer("hidden")
    assert isinstance(conv, IntegerConv2D) and isinstance(hidden, IntegerDense)
    assert conv.kernel_codes.dtype == "int8"
    packed = fmt.bits <= 4
    n = 3 * 3 * 2 * 5
    assert conv.kernel_codes.shape == (((n + 1) // 2,) if packed else (3, 3, 2, 5))
    # The dequantized kernel is exactly the fake-quantized float kernel.
    for name in ("conv", "hidden", "logits"):
        old = model.get_layer(name).kernel
        np.testing.assert_array_equal(qmodel.get_layer(name).kernel, quantize(old, fmt))
        np.testing.assert_array_equal(qmodel.get_layer(name).bias, model.get_layer(name).bias)
    np.testing.assert_array_equal(qmodel.get_layer("bn").get_weights(), model.get_layer("bn").get_weights())
    # Bytes: float32 before; codes (1 byte or half a byte), float32 scales,
    # int8 zero points and untouched float weights after.
    assert report.bytes_before == 4 * model.count_params()
    channels = {"conv": 5, "hidden": 7, "logits": 3}
    expected_after = 4 * model.get_layer("bn").count_params()
    for name, c in channels.items():
        layer = model.get_layer(name)
        size = int(np.prod(layer.kernel.shape))
        params = c if fmt.per_channel_axis is not None else 1
        code_bytes = (size + 1) // 2 if packed else size
        expected_after += code_bytes + 4 * params + params + 4 * c
    assert report.bytes_after == expected_after
    assert report.compression == report.bytes_before / report.bytes_after
    assert "total" in str(report)
    np.testing.assert_allclose(qmodel(_x()), model(_x()), atol=0.5 if packed else 0.05)


def test_only_named_layers_and_warning():
    model = _model()
    with pytest.warns(UserWarning, match="'bn'"):
        qmodel, report = quantize_weights(model, IntegerAffine(8), layer_names=["hidden", "bn"])
    assert isinstance(qmodel.get_layer("hidden"), IntegerDense)
    assert type(qmodel.get_layer("conv")) is keras.layers.Conv2D
    assert [row["quantized"] for row in report.layers] == [False, False, True, False]


def test_save_and_load_keep_integer_storage(tmp_path):
    model = _model()
    qmodel, _ = quantize_weights(model, IntegerAffine(4, per_channel_axis=-1))
    path = tmp_path / "int4.keras"
    qmodel.save(path)
    loaded = keras.models.load_model(path)
    layer = loaded.get_layer("hidden")
    assert isinstance(layer, IntegerDense) and layer.weight_format.bits == 4
    np.testing.assert_array_equal(layer.kernel_codes, qmodel.get_layer("hidden").kernel_codes)
    np.testing.assert_array_equal(loaded(_x()), qmodel(_x()))


@pytest.mark.parametrize("fmt", [IntegerAffine(9), FixedPoint(8, 4), None])
def test_invalid_format(fmt):
    with pytest.raises(ValueError, match="weight_format="):
        quantize_weights(_model(), fmt)
