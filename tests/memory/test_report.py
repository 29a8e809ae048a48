"""memory.report: bytes counted from shapes and dtypes by hand."""

import keras
import numpy as np
import pytest

from tf_lowprec import memory
from tf_lowprec.optimizers import Adam8bit, SGD8bit, StochasticRounding


def _dense(dtype="float32", units=300, inputs=200):
    return keras.Sequential(
        [keras.Input((inputs,)), keras.layers.Dense(units, dtype=dtype)]
    )


def test_float32_adam_and_sgd_momentum():
    n = 200 * 300 + 300
    r = memory.report(_dense(), keras.optimizers.Adam())
    assert r.parameters == n
    assert r.bytes("weights") == r.bytes("gradients") == 4 * n
    assert r.bytes("optimizer") == 8 * n  # m and v; iterations, lr left out
    assert r.float32_bytes() == r.bytes() == 16 * n
    r = memory.report(_dense(), keras.optimizers.SGD(momentum=0.9))
    assert r.per_parameter("optimizer") == 4.0


def test_eight_bit_states_and_bfloat16_weights():
    kernel, bias = 200 * 300, 300  # the bias stays float32 (< min_8bit_size)
    blocks = -(-kernel // 256)
    r = memory.report(_dense("bfloat16"), StochasticRounding(Adam8bit()))
    assert r.bytes("weights") == r.bytes("gradients") == 2 * (kernel + bias)
    assert r.bytes("optimizer") == 2 * kernel + 2 * 4 * blocks + 8 * bias
    assert r.float32_bytes("optimizer") == 8 * (kernel + bias)  # scales count 0
    assert r.float32_bytes("weights") == 4 * (kernel + bias)
    r = memory.report(_dense(), SGD8bit(momentum=0.9, min_8bit_size=0))
    assert r.bytes("optimizer") == kernel + bias + 4 * (blocks + 2)
    assert r.per_parameter("optimizer") <= 1.05
    data = r.as_dict()
    assert data["total"]["bytes"] == r.bytes()
    assert data["optimizer"]["float32_bytes_per_parameter"] == 4.0
    text = str(r)
    for kind in ("weights", "optimizer", "gradients", "total"):
        assert kind in text
    assert f"{r.bytes('optimizer'):,}" in text


def test_defaults_to_the_compiled_optimizer_and_rejects_bad_input():
    model = _dense()
    model.compile(keras.optimizers.Adam(), "mse")
    assert memory.report(model).bytes("optimizer") == 8 * model.count_params()
    with pytest.raises(ValueError, match="optimizer"):
        memory.report(model, "adam")
    with pytest.raises(ValueError, match="model"):
        memory.report(keras.Sequential([keras.layers.Dense(2)]))
    assert np.isfinite(memory.report(model, None).per_parameter())
