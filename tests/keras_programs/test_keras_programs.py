"""Real Keras programs, in the shapes keras.io teaches, trained with tf_lowprec.

Each test rebuilds (in our own words, at toy size, on synthetic data of the
right shapes) the structure of one kind of keras.io example and trains it a
few steps with tf_lowprec's optimizers (GRDA, LowPrecision(Adam),
ProximalAdagrad) and model transforms (`quantize_model`,
`prune_low_magnitude`), then saves to `.keras`, loads and continues:

* a small MNIST-style convnet (Conv2D, MaxPooling, Dropout),
* a Transformer text classifier (token + position Embedding,
  MultiHeadAttention block as custom layers),
* a bidirectional LSTM over an Embedding (sparse gradients),
* a depthwise-separable / BatchNorm CNN with a residual connection,
* knowledge distillation with a custom `train_step`,
* mixed precision (`mixed_float16`),
* ReduceLROnPlateau + ModelCheckpoint + EarlyStopping.

Smoke tests: they check that training runs, the loss is finite, the weights
move, and a saved model resumes exactly where it stopped.
"""

import os
import warnings

import keras
import numpy as np
import pytest
from keras import layers

import tf_lowprec
from tf_lowprec.optimizers import GRDA, LowPrecision, ProximalAdagrad

RNG = np.random.default_rng(0)
BFP8 = tf_lowprec.formats.BlockFloatingPoint(8)


def grda():
    return GRDA(learning_rate=0.05, c=0.005, mu=0.55)


def lp_adam():
    return LowPrecision(
        keras.optimizers.Adam(1e-3),
        weight_quantizer=(BFP8, "nearest"),
        gradient_quantizer=BFP8,
        momentum_quantizer=BFP8,
        accumulator_quantizer=BFP8,
        seed=3,
    )


def prox_adagrad():
    return ProximalAdagrad(0.05, l1_regularization_strength=1e-4)


def _copy_dropout_seeds(source, target):
    """Keras does not save a layer's `SeedGenerator` state in `.keras` files,
    so a loaded Dropout restarts its mask stream; copy it to compare bit for bit."""
    pairs = zip(source._flatten_layers(), target._flatten_layers())
    for a, b in pairs:
        for sa, sb in zip(getattr(a, "_seed_generators", []), getattr(b, "_seed_generators", [])):
            sb.state.assign(sa.state)


def _train_save_resume(model, x, y, tmp_path, batch_size=4, callbacks=(), resume=True):
    """Fits 2 steps; with `resume`, saves and checks that the loaded copy
    continues identically."""
    start = [w.copy() for w in model.get_weights()]
    history = model.fit(x, y, batch_size=batch_size, epochs=1, verbose=0,
                        shuffle=False, callbacks=list(callbacks))
    assert np.isfinite(history.history["loss"][-1])
    assert any(not np.array_equal(a, b) for a, b in zip(start, model.get_weights()))
    if not resume:
        return model
    path = os.path.join(tmp_path, f"{model.name}.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    _copy_dropout_seeds(model, loaded)
    for m in (model, loaded):
        m.fit(x, y, batch_size=batch_size, epochs=1, verbose=0, shuffle=False,
              callbacks=list(callbacks))
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)
    return loaded


def _images(n, shape, classes):
    return (RNG.random((n, *shape)).astype("float32"),
            RNG.integers(0, classes, n).astype("int32"))


# ----------------------------------------------------------------- convnet


def _convnet():
    return keras.Sequential([
        keras.Input((12, 12, 1)),
        layers.Conv2D(4, 3, activation="relu"),
        layers.MaxPooling2D(2),
        layers.Conv2D(8, 3, activation="relu"),
        layers.Flatten(),
        layers.Dropout(0.5),
        layers.Dense(10, activation="softmax"),
    ], name="convnet")


def test_convnet_with_grda_then_quantized(tmp_path):
    x, y = _images(8, (12, 12, 1), 10)
    model = _convnet()
    model.compile(grda(), "sparse_categorical_crossentropy", metrics=["accuracy"])
    _train_save_resume(model, x, y, tmp_path)

    spec = {"weight_quantizer": BFP8, "output_quantizer": BFP8}
    quantized = tf_lowprec.layers.quantize_model(model, {"Dense": spec, "Conv2D": spec})
    kinds = {type(layer).__name__ for layer in quantized.layers}
    assert {"QuantizedConv2D", "QuantizedDense"} <= kinds
    quantized.compile(lp_adam(), "sparse_categorical_crossentropy")
    _train_save_resume(quantized, x, y, tmp_path, resume=False)


# ------------------------------------------------------------- transformer


@keras.saving.register_keras_serializable(package="tf_lowprec_tests")
class TokenAndPosition(layers.Layer):
    def __init__(self, maxlen, vocab, dim, **kwargs):
        super().__init__(**kwargs)
        self.maxlen, self.vocab, self.dim = maxlen, vocab, dim
        self.tokens = layers.Embedding(vocab, dim)
        self.positions = layers.Embedding(maxlen, dim)

    def call(self, x):
        positions = keras.ops.arange(0, keras.ops.shape(x)[-1])
        return self.tokens(x) + self.positions(positions)

    def get_config(self):
        return {**super().get_config(), "maxlen": self.maxlen, "vocab": self.vocab,
                "dim": self.dim}


@keras.saving.register_keras_serializable(package="tf_lowprec_tests")
class TransformerBlock(layers.Layer):
    def __init__(self, dim, heads, hidden, **kwargs):
        super().__init__(**kwargs)
        self.dim, self.heads, self.hidden = dim, heads, hidden
        self.attention = layers.MultiHeadAttention(heads, dim)
        self.ffn = keras.Sequential([layers.Dense(hidden, activation="relu"),
                                     layers.Dense(dim)])
        self.norm1 = layers.LayerNormalization(epsilon=1e-6)
        self.norm2 = layers.LayerNormalization(epsilon=1e-6)
        self.drop = layers.Dropout(0.1)

    def call(self, x, training=False):
        x = self.norm1(x + self.drop(self.attention(x, x), training=training))
        return self.norm2(x + self.drop(self.ffn(x), training=training))

    def get_config(self):
        return {**super().get_config(), "dim": self.dim, "heads": self.heads,
                "hidden": self.hidden}


def _transformer(maxlen=8, vocab=40):
    inputs = keras.Input((maxlen,), dtype="int32")
    x = TokenAndPosition(maxlen, vocab, 8)(inputs)
    x = TransformerBlock(8, 2, 16)(x)
    x = layers.GlobalAveragePooling1D()(x)
    x = layers.Dropout(0.1)(x)
    outputs = layers.Dense(2, activation="softmax")(x)
    return keras.Model(inputs, outputs, name="transformer")


def _nested(model, kinds):
    """Names of layers of the given kinds anywhere inside `model`."""
    return {layer.name for layer in model._flatten_layers(include_self=False)
            if type(layer).__name__ in kinds}


def test_transformer_text_classifier(tmp_path):
    # (LowPrecision(Adam) runs in the smaller programs: tracing its
    # quantizers for every Transformer variable costs tens of seconds.)
    make_optimizer = prox_adagrad
    x = RNG.integers(0, 40, (8, 8)).astype("int32")
    y = RNG.integers(0, 2, 8).astype("int32")
    model = _transformer()
    model.compile(make_optimizer(), "sparse_categorical_crossentropy", metrics=["accuracy"])
    _train_save_resume(model, x, y, tmp_path)


def test_transforms_reach_or_name_nested_layers():
    """Layers a transform targets but cannot reach (inside a custom layer or
    MultiHeadAttention) are named in its warning: `quantize_model` names the
    nested layers its config selects (Dense here), `prune_low_magnitude`
    every nested prunable layer (Dense, MHA's EinsumDense, Embedding)."""
    model = _transformer()
    top = {layer.name for layer in model.layers}
    for transform, kinds in (
        (lambda m: tf_lowprec.layers.quantize_model(m, {"Dense": {"weight_quantizer": BFP8}}),
         {"Dense"}),
        (tf_lowprec.pruning.prune_low_magnitude, {"Dense", "EinsumDense", "Embedding"}),
    ):
        hidden = _nested(model, kinds) - top
        assert hidden
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            transformed = transform(model)
        messages = " ".join(str(w.message) for w in caught)
        # The nested layers stay plain (same count of each kind inside the
        # custom layers), and each is named in the warning.
        assert len(_nested(transformed, kinds) - top) >= len(hidden)
        for name in hidden:
            assert f"{name!r}" in messages, (name, messages)


# ------------------------------------------------------ bidirectional LSTM


def test_bidirectional_lstm_with_grda_and_pruning(tmp_path):
    x = RNG.integers(0, 30, (8, 6)).astype("int32")
    y = RNG.integers(0, 2, (8, 1)).astype("float32")
    model = keras.Sequential([
        keras.Input((6,), dtype="int32"),
        layers.Embedding(30, 8),
        layers.Bidirectional(layers.LSTM(4)),
        layers.Dense(1, activation="sigmoid"),
    ], name="bilstm")
    model.compile(grda(), "binary_crossentropy", metrics=["accuracy"])
    _train_save_resume(model, x, y, tmp_path)

    pruned = tf_lowprec.pruning.prune_low_magnitude(
        model, tf_lowprec.pruning.ConstantSparsity(0.5, begin_step=0, frequency=1))
    pruned.compile(prox_adagrad(), "binary_crossentropy")
    _train_save_resume(pruned, x, y, tmp_path, resume=False,
                       callbacks=[tf_lowprec.pruning.UpdatePruningStep()])
    embedding = next(w for w in pruned.get_weights() if w.shape == (30, 8))
    assert np.mean(embedding == 0) >= 0.5


# ------------------------------------------------ depthwise / BatchNorm CNN


def test_separable_batchnorm_residual_cnn(tmp_path):
    x, y = _images(8, (16, 16, 3), 3)
    inputs = keras.Input((16, 16, 3))
    h = layers.Conv2D(8, 3, strides=2, padding="same")(inputs)
    h = layers.BatchNormalization()(h)
    h = layers.Activation("relu")(h)
    residual = h
    h = layers.SeparableConv2D(8, 3, padding="same")(h)
    h = layers.BatchNormalization()(h)
    h = layers.Activation("relu")(h)
    h = layers.DepthwiseConv2D(3, padding="same")(h)
    h = layers.BatchNormalization()(h)
    h = layers.add([h, residual])
    h = layers.GlobalAveragePooling2D()(h)
    h = layers.Dropout(0.25)(h)
    outputs = layers.Dense(3)(h)
    model = keras.Model(inputs, outputs, name="sepcnn")
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(prox_adagrad(), loss)
    _train_save_resume(model, x, y, tmp_path)

    pruned = tf_lowprec.pruning.prune_low_magnitude(model)
    pruned.compile(grda(), loss)
    _train_save_resume(pruned, x, y, tmp_path, resume=False,
                       callbacks=[tf_lowprec.pruning.UpdatePruningStep()])


# ------------------------------------------------------------ distillation


class Distiller(keras.Model):
    """Student trained on a mix of hard labels and the teacher's soft labels."""

    def __init__(self, student, teacher, alpha=0.5, temperature=2.0):
        super().__init__()
        self.student, self.teacher = student, teacher
        self.alpha, self.temperature = alpha, temperature
        self.hard = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        self.soft = keras.losses.KLDivergence()

    def call(self, x):
        return self.student(x)

    def train_step(self, data):
        x, y = data
        import tensorflow as tf

        teacher_logits = self.teacher(x, training=False)
        with tf.GradientTape() as tape:
            logits = self.student(x, training=True)
            t = self.temperature
            loss = self.alpha * self.hard(y, logits) + (1 - self.alpha) * t * t * self.soft(
                keras.ops.softmax(teacher_logits / t), keras.ops.softmax(logits / t))
            scaled = self.optimizer.scale_loss(loss)
        variables = self.student.trainable_variables
        self.optimizer.apply(tape.gradient(scaled, variables), variables)
        return {"loss": loss}


def test_distillation_with_custom_train_step(tmp_path):
    x, y = _images(8, (12, 12, 1), 10)
    teacher = _convnet()
    student = keras.Sequential([keras.Input((12, 12, 1)), layers.Flatten(),
                                layers.Dense(16, activation="relu"), layers.Dense(10)],
                               name="student")
    teacher.layers[-1].activation = keras.activations.linear
    distiller = Distiller(student, teacher)
    distiller.compile(optimizer=grda())
    start = [w.copy() for w in student.get_weights()]
    history = distiller.fit(x, y, batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][-1])
    assert any(not np.array_equal(a, b) for a, b in zip(start, student.get_weights()))


# --------------------------------------------------------- mixed precision


@pytest.mark.parametrize("make_optimizer", [grda, lp_adam], ids=["grda", "lp_adam"])
def test_mixed_precision_mlp(make_optimizer, tmp_path):
    x, y = _images(8, (10,), 4)
    keras.mixed_precision.set_dtype_policy("mixed_float16")
    try:
        model = keras.Sequential([
            keras.Input((10,)), layers.Dense(16, activation="relu"), layers.Dense(4),
            layers.Activation("softmax", dtype="float32"),
        ], name="mixed")
        model.compile(make_optimizer(), "sparse_categorical_crossentropy")
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
        assert model.layers[0].compute_dtype == "float16"
        _train_save_resume(model, x, y, tmp_path, resume=make_optimizer is grda)
    finally:
        keras.mixed_precision.set_dtype_policy("float32")


# --------------------------------------------------------------- callbacks


@pytest.mark.parametrize("make_optimizer", [prox_adagrad, lp_adam],
                         ids=["prox_adagrad", "lp_adam"])
def test_reduce_lr_checkpoint_and_early_stopping(make_optimizer, tmp_path):
    x, y = _images(16, (6,), 3)
    model = keras.Sequential([keras.Input((6,)), layers.Dense(8, activation="relu"),
                              layers.Dense(3)], name="mlp")
    model.compile(make_optimizer(), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    path = os.path.join(tmp_path, "best.keras")
    lr_before = float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
    callbacks = [
        # min_delta=10: no epoch ever "improves", so both callbacks fire.
        keras.callbacks.ReduceLROnPlateau("loss", factor=0.5, patience=1, min_delta=10.0),
        keras.callbacks.EarlyStopping("loss", patience=3, min_delta=10.0,
                                      restore_best_weights=True),
        keras.callbacks.ModelCheckpoint(path, monitor="loss", save_best_only=False),
    ]
    history = model.fit(x, y, batch_size=8, epochs=10, verbose=0, callbacks=callbacks)
    assert len(history.history["loss"]) < 10  # stopped early
    lr_after = float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
    assert lr_after < lr_before
    loaded = keras.saving.load_model(path)
    assert int(loaded.optimizer.iterations) == 2 * len(history.history["loss"])
    loaded.fit(x, y, batch_size=8, epochs=1, verbose=0)
