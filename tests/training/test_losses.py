"""Named losses: numpy closed forms, TFA's own examples, integer labels, fit."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.reference import losses_numpy as ref
from tf_lowprec.training import losses

NUM_CLASSES = 4
LABELS = np.array([0, 3, 1, 1, 2, 0])


def _logits():
    return np.random.default_rng(0).normal(0, 2, (len(LABELS), NUM_CLASSES))


def _expected(name, z, x):
    if name in ("softmax_cross_entropy", "sparse_softmax_cross_entropy"):
        return ref.softmax_cross_entropy(z, x).mean()
    if name == "sigmoid_cross_entropy":
        return ref.sigmoid_cross_entropy(z, x).mean()
    if name == "weighted_cross_entropy":
        return ref.weighted_cross_entropy(z, x, 3.0).mean()
    if name == "sigmoid_focal_cross_entropy":
        return ref.sigmoid_focal(z, ref.sigmoid(x), 0.25, 2.0).mean()
    if name == "weighted_kappa":
        return ref.weighted_kappa(z, ref.softmax(x), "quadratic")
    raise AssertionError(name)


KWARGS = {"weighted_cross_entropy": {"pos_weight": 3.0}}


@pytest.mark.parametrize("name", losses.available_losses())
def test_integer_labels_and_logits_match_numpy(name):
    x = _logits()
    loss = losses.get_loss(name, **KWARGS.get(name, {}))
    want = _expected(name, ref.one_hot(LABELS, NUM_CLASSES), x)
    for labels in (LABELS, LABELS[:, None]):  # (batch,) and (batch, 1)
        got = float(loss(labels, x.astype("float32")))
        assert got == pytest.approx(want, rel=1e-5, abs=1e-6)


@pytest.mark.parametrize(
    "name", [n for n in losses.available_losses() if not n.startswith("sparse")]
)
def test_one_hot_targets_with_sparse_labels_false(name):
    x = _logits().astype("float32")
    z = ref.one_hot(LABELS, NUM_CLASSES).astype("float32")
    kwargs = KWARGS.get(name, {})
    sparse = losses.get_loss(name, **kwargs)
    dense = losses.get_loss(name, sparse_labels=False, **kwargs)
    assert not isinstance(dense, losses.IntegerLabels)
    assert float(dense(z, x)) == pytest.approx(float(sparse(LABELS, x)), rel=1e-6)


def test_weighted_cross_entropy_is_tf_nn_op_averaged():
    rng = np.random.default_rng(1)
    x = rng.normal(0, 30, (5, 3)).astype("float32")  # includes huge logits
    z = rng.integers(0, 2, (5, 3)).astype("float32")
    loss = losses.WeightedBinaryCrossentropy(pos_weight=0.4, reduction=None)
    want = tf.reduce_mean(tf.nn.weighted_cross_entropy_with_logits(z, x, 0.4), -1)
    np.testing.assert_allclose(loss(z, x).numpy(), want.numpy(), rtol=1e-6)


def test_focal_reproduces_tfa_docstring_example():
    # tensorflow_addons SigmoidFocalCrossEntropy docstring (probabilities).
    loss = losses.SigmoidFocalCrossentropy(reduction=None)
    got = loss([[1.0], [1.0], [0.0]], [[0.97], [0.91], [0.03]]).numpy()
    np.testing.assert_allclose(got, [6.8532745e-06, 1.9097870e-04, 2.0559824e-05], rtol=1e-4)


def test_focal_is_num_classes_times_keras_balanced_focal_for_moderate_logits():
    x = _logits().astype("float32")
    z = ref.one_hot(LABELS, NUM_CLASSES).astype("float32")
    ours = losses.SigmoidFocalCrossentropy(0.3, 1.5, from_logits=True)
    keras_focal = keras.losses.BinaryFocalCrossentropy(
        apply_class_balancing=True, alpha=0.3, gamma=1.5, from_logits=True
    )
    assert float(ours(z, x)) == pytest.approx(NUM_CLASSES * float(keras_focal(z, x)), rel=1e-4)


def test_focal_keeps_gradient_for_confidently_wrong_logits():
    x = tf.Variable([[-40.0]])
    with tf.GradientTape() as tape:
        value = losses.SigmoidFocalCrossentropy(alpha=None, from_logits=True)([[1.0]], x)
    assert float(value) == pytest.approx(40.0, rel=1e-4)  # (1 - p_t)^2 ~ 1
    assert float(tape.gradient(value, x)[0, 0]) == pytest.approx(-1.0, rel=1e-3)


def test_focal_with_gamma_zero_and_no_alpha_is_summed_sigmoid_cross_entropy():
    x = _logits()
    z = ref.one_hot(LABELS, NUM_CLASSES)
    loss = losses.SigmoidFocalCrossentropy(alpha=None, gamma=0.0, from_logits=True)
    want = NUM_CLASSES * ref.sigmoid_cross_entropy(z, x).mean()
    assert float(loss(z, x.astype("float32"))) == pytest.approx(want, rel=1e-5)


def test_kappa_reproduces_tfa_docstring_example():
    # tensorflow_addons WeightedKappaLoss docstring (probabilities, quadratic).
    y_true = ref.one_hot([2, 1, 0, 3], 4)
    y_pred = [[0.1, 0.2, 0.6, 0.1], [0.1, 0.5, 0.3, 0.1], [0.8, 0.05, 0.05, 0.1],
              [0.01, 0.09, 0.1, 0.8]]  # fmt: skip
    loss = losses.WeightedKappaLoss(num_classes=4)
    assert float(loss(y_true, y_pred)) == pytest.approx(-1.1611925, abs=1e-5)


def test_kappa_linear_matches_numpy_and_perfect_prediction_is_log_epsilon():
    z = ref.one_hot(LABELS, NUM_CLASSES)
    p = ref.softmax(_logits())
    loss = losses.WeightedKappaLoss(weightage="linear")
    want = ref.weighted_kappa(z, p, "linear")
    assert float(loss(z, p.astype("float32"))) == pytest.approx(want, rel=1e-5)
    perfect = float(losses.WeightedKappaLoss()(z, z.astype("float32")))
    assert perfect == pytest.approx(np.log(1e-6), rel=1e-3)


@pytest.mark.parametrize(
    "loss",
    [
        losses.WeightedBinaryCrossentropy(pos_weight=2.0),
        losses.SigmoidFocalCrossentropy(alpha=None, gamma=1.0, from_logits=True),
        losses.WeightedKappaLoss(num_classes=4, weightage="linear", from_logits=True),
        losses.get_loss("softmax_cross_entropy", label_smoothing=0.1),
    ],
    ids=lambda loss: type(loss).__name__,
)
def test_serialization_round_trip(loss):
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert type(restored) is type(loss)
    assert restored.get_config() == loss.get_config()
    x = _logits().astype("float32")
    z = LABELS if isinstance(loss, losses.IntegerLabels) else ref.one_hot(LABELS, 4)
    assert float(restored(z, x)) == pytest.approx(float(loss(z, x)), rel=1e-6)


@pytest.mark.parametrize("name", losses.available_losses())
def test_fit_on_integer_labels_with_logit_model(name, tmp_path):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(32, 5)).astype("float32")
    y = rng.integers(0, NUM_CLASSES, 32)
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(NUM_CLASSES)])
    model.compile("sgd", loss=losses.get_loss(name), metrics=["sparse_categorical_accuracy"])
    history = model.fit(x, y, batch_size=16, epochs=2, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    model.save(tmp_path / "m.keras")
    keras.saving.load_model(tmp_path / "m.keras").evaluate(x, y, verbose=0)


def test_unknown_name_and_bad_argument_raise():
    with pytest.raises(ValueError, match="Unknown loss 'hinge'.*softmax_cross_entropy"):
        losses.get_loss("hinge")
    with pytest.raises(ValueError, match=r"does not take argument\(s\) \['pos_weight'\]"):
        losses.get_loss("sigmoid_cross_entropy", pos_weight=2.0)


@pytest.mark.parametrize(
    "factory, kwargs, message",
    [
        (losses.WeightedBinaryCrossentropy, {"pos_weight": 0.0}, "pos_weight=0.0"),
        (losses.SigmoidFocalCrossentropy, {"gamma": -1.0}, "gamma=-1.0"),
        (losses.SigmoidFocalCrossentropy, {"alpha": 1.5}, "alpha=1.5"),
        (losses.WeightedKappaLoss, {"weightage": "cubic"}, "weightage='cubic'"),
        (losses.WeightedKappaLoss, {"num_classes": 1}, "num_classes=1"),
        (losses.IntegerLabels, {"loss": "mse"}, "loss='mse'"),
    ],
)
def test_invalid_arguments_raise(factory, kwargs, message):
    with pytest.raises(ValueError, match=message):
        factory(**kwargs)
