"""API misuse gets a clear error naming the argument (was a bare KeyError,
AttributeError, TypeError, or silently did nothing)."""

import keras
import numpy as np
import pytest

from tests.subclassed_model import built_subclassed_model
from tf_lowprec.formats import IntegerAffine
from tf_lowprec.layers import quantize_weights
from tf_lowprec.optimizers import SVRG
from tf_lowprec.pruning import prune_filters, prune_low_magnitude
from tf_lowprec.training import VarianceReduced


def _functional():
    inputs = keras.Input((3,))
    outputs = keras.layers.Dense(2, name="d2")(keras.layers.Dense(4, name="d1")(inputs))
    return keras.Model(inputs, outputs)


def test_loss_passed_positionally_to_variance_reduced_compile():
    model = VarianceReduced(_functional())
    model.compile(SVRG(0.1, T=2), "mse")
    assert model.loss == "mse"
    model.fit(np.ones((4, 3)), np.ones((4, 2)), batch_size=2, epochs=1, verbose=0)
    assert all(np.isfinite(w).all() for w in model.get_weights())


def test_prune_filters_on_a_subclassed_model():
    model = built_subclassed_model()
    with pytest.raises(ValueError, match="Functional or Sequential.*subclassed"):
        prune_filters(model)
    with pytest.raises(ValueError, match="Functional or Sequential.*to_prune="):
        prune_low_magnitude(model)


@pytest.mark.parametrize("prune", [prune_low_magnitude, prune_filters])
def test_unknown_layer_names_are_refused(prune):
    with pytest.raises(ValueError, match=r"`layers` names \['typo'\].*\['d1', 'd2'"):
        prune(_functional(), layers=["typo"])
    with pytest.raises(TypeError, match=r"not a string; use layers=\['d1'\]"):
        prune(_functional(), layers="d1")


def test_quantize_weights_on_an_unbuilt_model():
    model = keras.Sequential([keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="must be a built keras.Model"):
        quantize_weights(model, IntegerAffine(8, per_channel_axis=-1))


def test_quantize_weights_layer_names_string_is_not_iterated():
    with pytest.raises(TypeError, match=r"layer_names=\['d1'\]"):
        quantize_weights(_functional(), IntegerAffine(8, per_channel_axis=-1), layer_names="d1")
    _, report = quantize_weights(_functional(), IntegerAffine(8, per_channel_axis=-1),
                                 layer_names=["d1"])
    assert "d1" in str(report)
