"""Structured (L1 filter) pruning: masks vs numpy, training, BN followers, removal."""

import keras
import numpy as np
import pytest

from tests.pruning import pruning_numpy as ref
from tf_lowprec.pruning import (
    ConstantSparsity,
    PolynomialDecay,
    PruneFilters,
    UpdatePruningStep,
    keep_count,
    prune_filters,
    remove_pruned_filters,
    strip_pruning,
    update_masks,
)

LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def _bn_net(padding="same"):
    inputs = keras.Input((9, 9, 3))
    x = keras.layers.Conv2D(8, 3, padding=padding, name="c1")(inputs)
    x = keras.layers.BatchNormalization(name="bn1")(x)
    x = keras.layers.ReLU(name="r1")(x)
    x = keras.layers.Conv2D(6, 3, padding=padding, name="c2")(x)
    x = keras.layers.BatchNormalization(name="bn2")(x)
    x = keras.layers.Activation("relu", name="a2")(x)
    x = keras.layers.MaxPooling2D(name="p2")(x)
    x = keras.layers.Flatten(name="f")(x)
    x = keras.layers.Dense(10, name="d")(x)
    x = keras.layers.Dropout(0.3, name="drop")(x)
    outputs = keras.layers.Dense(3, name="logits")(x)
    return keras.Model(inputs, outputs)


def _randomize_batchnorm(model, seed=0):
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        bn = getattr(layer, "layer", layer)
        if isinstance(bn, keras.layers.BatchNormalization):
            n = bn.moving_mean.shape[0]
            bn.set_weights([rng.uniform(0.5, 2, n), rng.normal(size=n),
                            rng.normal(size=n), rng.uniform(0.5, 2, n)])


def _data(n=32, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 9, 9, 3)).astype("float32"), rng.integers(0, 3, n).astype("int32")


def test_prune_filters_wraps_hidden_conv_dense_and_their_batchnorms():
    pruned = prune_filters(_bn_net(), ConstantSparsity(0.5, frequency=1))
    wrapped = {layer.name: layer.follow for layer in pruned.layers
               if isinstance(layer, PruneFilters)}
    assert wrapped == {
        "prune_filters_c1": None, "prune_filters_bn1": "prune_filters_c1",
        "prune_filters_c2": None, "prune_filters_bn2": "prune_filters_c2",
        "prune_filters_d": None,
    }  # the logits layer is an output: not pruned


def test_unit_masks_equal_numpy_l1_ranking_and_followers_copy_them():
    pruned = prune_filters(_bn_net(), ConstantSparsity(0.6, frequency=1))
    kernels = {layer.name: layer.layer.kernel.numpy() for layer in pruned.layers
               if isinstance(layer, PruneFilters) and layer.follow is None}
    update_masks(pruned, 1)
    for layer in pruned.layers:
        if not isinstance(layer, PruneFilters):
            continue
        mask = layer.unit_mask.numpy()
        leader = layer.follow or layer.name
        np.testing.assert_array_equal(mask, ref.unit_mask(kernels[leader], 0.6))
        assert mask.sum() == keep_count(mask.size, 0.6)
        for variable in layer.pruned_variables:
            assert not np.any(variable.numpy()[..., mask == 0])


@pytest.mark.parametrize("jit_compile", [False, True])
def test_fit_keeps_removed_units_exactly_zero(jit_compile):
    schedule = PolynomialDecay(0.25, 0.5, begin_step=1, end_step=5, power=1, frequency=2)
    pruned = prune_filters(_bn_net(), schedule)
    pruned.compile(keras.optimizers.SGD(0.05, momentum=0.9), LOSS, jit_compile=jit_compile)
    x, y = _data()
    pruned.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0,
               callbacks=[UpdatePruningStep()])
    c2 = pruned.get_layer("prune_filters_c2")
    mask = c2.unit_mask.numpy()
    assert mask.sum() == keep_count(6, 0.5)
    kernel, bias = c2.layer.kernel.numpy(), c2.layer.bias.numpy()
    assert not np.any(kernel[..., mask == 0]) and not np.any(bias[mask == 0])
    assert np.count_nonzero(np.abs(kernel).sum(axis=(0, 1, 2))) == 3
    bn2 = pruned.get_layer("prune_filters_bn2")
    np.testing.assert_array_equal(bn2.unit_mask.numpy(), mask)
    assert not np.any(bn2.layer.gamma.numpy()[mask == 0])
    assert not np.any(bn2.layer.beta.numpy()[mask == 0])


def test_removal_gives_same_outputs_as_masked_model_and_counts_match_hand_math():
    pruned = prune_filters(_bn_net(), ConstantSparsity(0.5, frequency=1))
    _randomize_batchnorm(pruned)
    update_masks(pruned, 1)
    removal = remove_pruned_filters(pruned)
    x, _ = _data(16, seed=3)
    np.testing.assert_allclose(removal.model.predict(x, verbose=0), pruned.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(removal.model.predict(x, verbose=0),
                               strip_pruning(pruned).predict(x, verbose=0), rtol=1e-5, atol=1e-5)
    assert removal.units == {"c1": (4, 8), "c2": (3, 6), "d": (5, 10)}
    assert not any(isinstance(layer, PruneFilters) for layer in removal.model.layers)
    # Parameters by hand: conv k*k*cin*cout + cout, BN 4*c, dense nin*nout + nout.
    before = (27 * 8 + 8) + 4 * 8 + (72 * 6 + 6) + 4 * 6 + (4 * 4 * 6 * 10 + 10) + (10 * 3 + 3)
    after = (27 * 4 + 4) + 4 * 4 + (36 * 3 + 3) + 4 * 3 + (4 * 4 * 3 * 5 + 5) + (5 * 3 + 3)
    assert (removal.params_before, removal.params_after) == (before, after)
    assert removal.model.count_params() == after
    # MACs by hand: 9x9 "same" outputs, pooled to 4x4 before the dense layer.
    macs_before = 81 * 27 * 8 + 81 * 72 * 6 + 96 * 10 + 10 * 3
    macs_after = 81 * 27 * 4 + 81 * 36 * 3 + 48 * 5 + 5 * 3
    assert (removal.macs_before, removal.macs_after) == (macs_before, macs_after)
    assert removal.flops_after == 2 * macs_after
    assert "FLOPs" in str(removal)


def test_removal_after_training_with_global_pooling():
    inputs = keras.Input((8, 8, 2))
    x = keras.layers.Conv2D(6, 3, activation="relu", name="c1")(inputs)
    x = keras.layers.Conv2D(5, 3, name="c2")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = keras.layers.Dense(2, name="out")(x)
    pruned = prune_filters(keras.Model(inputs, outputs), ConstantSparsity(0.4, frequency=2))
    pruned.compile(keras.optimizers.SGD(0.1), LOSS)
    rng = np.random.default_rng(1)
    x_train = rng.normal(size=(24, 8, 8, 2)).astype("float32")
    pruned.fit(x_train, rng.integers(0, 2, 24), batch_size=8, epochs=2, verbose=0,
               callbacks=[UpdatePruningStep()])
    removal = remove_pruned_filters(pruned)
    assert removal.units == {"c1": (4, 6), "c2": (3, 5)}
    np.testing.assert_allclose(removal.model.predict(x_train, verbose=0),
                               pruned.predict(x_train, verbose=0), rtol=1e-5, atol=1e-5)


def test_filter_pruned_model_saves_and_loads(tmp_path):
    pruned = prune_filters(_bn_net(), ConstantSparsity(0.5, frequency=1))
    _randomize_batchnorm(pruned)
    update_masks(pruned, 1)
    path = str(tmp_path / "filters.keras")
    pruned.save(path)
    loaded = keras.models.load_model(path)
    x, _ = _data(8)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), pruned.predict(x, verbose=0))
    assert loaded.get_layer("prune_filters_bn2").follow == "prune_filters_c2"


def test_removal_rejects_layers_that_removed_channels_cannot_cross():
    inputs = keras.Input((6, 6, 2))
    a = keras.layers.Conv2D(4, 3, padding="same", name="a")(inputs)
    b = keras.layers.Conv2D(4, 3, padding="same", name="b")(inputs)
    x = keras.layers.Add(name="add")([a, b])
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(2)(x)
    pruned = prune_filters(keras.Model(inputs, outputs), ConstantSparsity(0.5, frequency=1))
    update_masks(pruned, 1)
    with pytest.raises(ValueError, match="add"):
        remove_pruned_filters(pruned)

    inputs = keras.Input((6, 6, 2))
    x = keras.layers.Conv2D(4, 3, name="c")(inputs)
    x = keras.layers.Activation("sigmoid", name="sig")(x)
    x = keras.layers.Flatten()(x)
    pruned = prune_filters(keras.Model(inputs, keras.layers.Dense(2)(x)),
                           ConstantSparsity(0.5, frequency=1))
    update_masks(pruned, 1)
    with pytest.raises(ValueError, match="sig"):
        remove_pruned_filters(pruned)


def test_bad_wrapper_arguments_raise_value_errors():
    with pytest.raises(ValueError, match="layer"):
        PruneFilters(keras.layers.ReLU())
    with pytest.raises(ValueError, match="follow"):
        PruneFilters(keras.layers.Dense(3), follow="prune_filters_x")
    with pytest.raises(ValueError, match="data_format"):
        PruneFilters(keras.layers.Conv2D(3, 3, data_format="channels_first"))
    with pytest.raises(ValueError, match="model"):
        prune_filters("nope")
