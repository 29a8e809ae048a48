"""Magnitude pruning in training: exact sparsity, step semantics, strip, save/resume, XLA."""

import keras
import numpy as np
import pytest

from tests.pruning import pruning_numpy as ref
from tests.subclassed_model import built_subclassed_model
from tf_lowprec import models
from tf_lowprec.pruning import (
    ConstantSparsity,
    PolynomialDecay,
    PruneLowMagnitude,
    UpdatePruningStep,
    keep_count,
    prune_low_magnitude,
    sparsity,
    strip_pruning,
    update_masks,
)

LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def _cnn():
    return models.cnn((10, 10, 1), 3, filters=(4, 6), dense_units=8)


def _data(n=48, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((n, 10, 10, 1), dtype=np.float32)
    y = rng.integers(0, 3, n).astype("int32")
    return x, y


def _kernels(model):
    return {v.path: keras.ops.convert_to_numpy(v) for v in model.trainable_variables
            if len(v.shape) >= 2}


def _fit(model, epochs, jit_compile=False, **kwargs):
    x, y = _data()
    if getattr(model, "optimizer", None) is None:
        model.compile(keras.optimizers.SGD(0.05, momentum=0.9), LOSS, jit_compile=jit_compile)
    model.fit(x, y, batch_size=16, epochs=epochs, shuffle=False, verbose=0,
              callbacks=[UpdatePruningStep()], **kwargs)
    return model


def test_pruned_model_wraps_only_layers_with_kernels_and_copies_weights():
    model = _cnn()
    pruned = prune_low_magnitude(model, ConstantSparsity(0.5, frequency=1))
    wrapped = [layer.name for layer in pruned.layers if isinstance(layer, PruneLowMagnitude)]
    assert wrapped == [
        "prune_low_magnitude_conv_1", "prune_low_magnitude_conv_2",
        "prune_low_magnitude_dense", "prune_low_magnitude_logits",
    ]
    x, _ = _data(8)
    np.testing.assert_array_equal(pruned.predict(x, verbose=0), model.predict(x, verbose=0))


def test_layers_argument_selects_by_name_or_callable():
    model = _cnn()
    by_name = prune_low_magnitude(model, layers={"dense"})
    assert [type(layer).__name__ for layer in by_name.layers].count("PruneLowMagnitude") == 1
    by_fn = prune_low_magnitude(model, layers=lambda layer: layer.name.startswith("conv"))
    assert sum(isinstance(layer, PruneLowMagnitude) for layer in by_fn.layers) == 2


def test_update_masks_equals_numpy_top_k_per_layer():
    pruned = prune_low_magnitude(_cnn(), ConstantSparsity(0.7, begin_step=0, frequency=5))
    before = _kernels(pruned)
    assert update_masks(pruned, 4) == []  # not a pruning step
    updated = update_masks(pruned, 5)
    assert len(updated) == 4
    for layer in pruned.layers:
        if isinstance(layer, PruneLowMagnitude):
            kernel = layer.layer.kernel
            expected = ref.magnitude_mask(before[kernel.path], 0.7)
            np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer.masks[0]), expected)
            np.testing.assert_array_equal(keras.ops.convert_to_numpy(kernel),
                                          before[kernel.path] * expected)


@pytest.mark.parametrize("jit_compile", [False, True])
def test_fit_reaches_target_sparsity_exactly_in_every_layer(jit_compile):
    pruned = prune_low_magnitude(_cnn(), PolynomialDecay(0.0, 0.8, 0, 6, frequency=2))
    _fit(pruned, epochs=3, jit_compile=jit_compile)  # 9 steps, pruning at 2, 4, 6
    for layer in pruned.layers:
        if isinstance(layer, PruneLowMagnitude):
            kernel = keras.ops.convert_to_numpy(layer.layer.kernel)
            assert np.count_nonzero(kernel) == keep_count(kernel.size, 0.8), layer.name
            mask = keras.ops.convert_to_numpy(layer.masks[0])
            assert np.all(kernel[mask == 0] == 0)
    report = sparsity(pruned, kernels_only=True)
    assert report.sparsity == pytest.approx(0.8, abs=0.02)


def test_masks_update_before_the_step_numbered_iterations_plus_one():
    # TFMOT convention: with begin_step=0 and frequency=3 the first mask update
    # happens before the 3rd training step (optimizer.iterations == 2).
    pruned = prune_low_magnitude(_cnn(), ConstantSparsity(0.5, begin_step=0, frequency=3))
    layer = pruned.get_layer("prune_low_magnitude_dense")
    seen = []

    class Spy(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            mask = keras.ops.convert_to_numpy(layer.masks[0])
            seen.append((int(self.model.optimizer.iterations.numpy()), float(mask.mean())))

    x, y = _data()
    pruned.compile(keras.optimizers.SGD(0.05), LOSS)
    pruned.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0,
               callbacks=[UpdatePruningStep(), Spy()])
    assert [it for it, density in seen if density < 1.0] == [3, 4, 5, 6]


def test_training_without_the_callback_fails_with_an_actionable_message():
    pruned = prune_low_magnitude(_cnn(), ConstantSparsity(0.5))
    pruned.compile("sgd", LOSS)
    x, y = _data(16)
    with pytest.raises(RuntimeError, match="UpdatePruningStep"):
        pruned.fit(x, y, epochs=1, verbose=0)
    # Inference does not need it.
    pruned.predict(x, verbose=0)


def test_strip_pruning_gives_plain_model_with_identical_predictions(tmp_path):
    pruned = _fit(prune_low_magnitude(_cnn(), ConstantSparsity(0.6, frequency=2)), epochs=2)
    stripped = strip_pruning(pruned)
    assert not any(isinstance(layer, PruneLowMagnitude) for layer in stripped.layers)
    assert [layer.name for layer in stripped.layers] == [layer.name for layer in _cnn().layers]
    x, _ = _data(20, seed=5)
    np.testing.assert_array_equal(stripped.predict(x, verbose=0), pruned.predict(x, verbose=0))
    kernel = stripped.get_layer("conv_2").kernel.numpy()
    assert np.count_nonzero(kernel) == keep_count(kernel.size, 0.6)
    assert not np.any(np.signbit(kernel[kernel == 0]))  # +0.0, not -0.0
    # The stripped model needs no tf_lowprec class to load.
    path = str(tmp_path / "stripped.keras")
    stripped.save(path)
    with keras.saving.custom_object_scope({}):
        reloaded = keras.models.load_model(path)
    np.testing.assert_array_equal(reloaded.predict(x, verbose=0), stripped.predict(x, verbose=0))


def test_save_load_mid_schedule_then_continue_equals_uninterrupted(tmp_path):
    schedule = PolynomialDecay(0.0, 0.9, begin_step=0, end_step=10, power=3, frequency=1)
    keras.utils.set_random_seed(7)
    base = _cnn()

    def fresh():
        model = prune_low_magnitude(base, schedule)
        model.compile(keras.optimizers.SGD(0.05, momentum=0.9), LOSS)
        return model

    uninterrupted = _fit(fresh(), epochs=4)  # 12 steps

    first = _fit(fresh(), epochs=2)  # 6 steps: in the middle of the schedule
    path = str(tmp_path / "mid.keras")
    first.save(path)
    resumed = keras.models.load_model(path)
    assert int(resumed.optimizer.iterations.numpy()) == 6
    _fit(resumed, epochs=2)

    for a, b in zip(uninterrupted.weights, resumed.weights, strict=True):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b),
                                      err_msg=a.path)


def test_existing_kernel_constraint_is_kept():
    inputs = keras.Input((5,))
    outputs = keras.layers.Dense(4, kernel_constraint=keras.constraints.NonNeg(), name="d")(inputs)
    pruned = prune_low_magnitude(keras.Model(inputs, outputs), ConstantSparsity(0.5, frequency=1))
    pruned.compile(keras.optimizers.SGD(0.5), "mse")
    rng = np.random.default_rng(0)
    pruned.fit(rng.normal(size=(32, 5)), rng.normal(size=(32, 4)), batch_size=8, verbose=0,
               callbacks=[UpdatePruningStep()])
    kernel = pruned.layers[1].layer.kernel.numpy()
    assert kernel.min() >= 0.0
    assert np.count_nonzero(kernel) <= 10


def test_sequential_model_and_layer_entry_points():
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(5), keras.layers.Dense(2)])
    pruned = prune_low_magnitude(model, ConstantSparsity(0.4, frequency=1))
    assert isinstance(pruned, keras.Sequential)
    assert all(isinstance(layer, PruneLowMagnitude) for layer in pruned.layers)
    layer = prune_low_magnitude(keras.layers.Dense(3))
    assert isinstance(layer, PruneLowMagnitude)
    assert layer.name.startswith("prune_low_magnitude_dense")


def test_bad_inputs_raise_value_errors_naming_the_argument():
    with pytest.raises(ValueError, match="to_prune"):
        prune_low_magnitude("not a model")
    with pytest.raises(ValueError, match="pruning_schedule"):
        PruneLowMagnitude(keras.layers.Dense(2), pruning_schedule=0.5)
    with pytest.raises(ValueError, match="layer"):
        wrapper = PruneLowMagnitude(keras.layers.ReLU())
        wrapper.build((None, 3))
    with pytest.raises(ValueError, match="model"):
        prune_low_magnitude(built_subclassed_model())


def test_steps_per_execution_applies_the_latest_pruning_step_of_each_block():
    pruned = prune_low_magnitude(_cnn(), PolynomialDecay(0.0, 0.6, 0, 4, frequency=2))
    pruned.compile(keras.optimizers.SGD(0.05), LOSS, steps_per_execution=3)
    x, y = _data()
    pruned.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0,
               callbacks=[UpdatePruningStep()])  # 6 steps in blocks [1-3], [4-6]
    kernel = pruned.get_layer("prune_low_magnitude_dense").layer.kernel.numpy()
    assert np.count_nonzero(kernel) == keep_count(kernel.size, 0.6)  # step 4 reached


def test_nested_models_and_embeddings_are_pruned():
    inner = keras.Sequential([keras.Input((4,)), keras.layers.Dense(6, name="inner_dense")],
                             name="inner")
    inputs = keras.Input((3,), dtype="int32")
    x = keras.layers.Embedding(20, 4, name="embed")(inputs)
    x = keras.layers.GlobalAveragePooling1D()(x)
    outputs = inner(x)
    model = keras.Model(inputs, outputs)
    pruned = prune_low_magnitude(model, ConstantSparsity(0.5, frequency=1))
    tokens = np.random.default_rng(0).integers(0, 20, (8, 3)).astype("int32")
    np.testing.assert_allclose(pruned.predict(tokens, verbose=0), model.predict(tokens, verbose=0))
    updated = update_masks(pruned, 1)
    assert sorted(updated) == ["prune_low_magnitude_embed", "prune_low_magnitude_inner_dense"]
    stripped = strip_pruning(pruned)
    np.testing.assert_allclose(stripped.predict(tokens, verbose=0),
                               pruned.predict(tokens, verbose=0), rtol=1e-6)
    table = stripped.get_layer("embed").embeddings.numpy()
    assert np.count_nonzero(table) == keep_count(table.size, 0.5)
