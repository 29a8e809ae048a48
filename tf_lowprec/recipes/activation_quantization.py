"""`quantize_activations(model, A, E)`: SWALP's Q_A / Q_E after every activation.

A recipe (not a layer): it rewrites a whole model, inserting a
`tf_lowprec.layers.Quantize` after each activation that is not a model
output.

Reference:
    Yang, Zhang, Wang, De Sa, "SWALP: Stochastic Weight Averaging in
    Low-Precision Training", ICML 2019 (github.com/stevenygd/SWALP,
    `models/vgg_low.py`: a quantizer after every ReLU).
"""

from __future__ import annotations

import keras

from tf_lowprec.layers.quantize_layer import Quantize
from tf_lowprec.models import rewrite
from tf_lowprec.quantizers import QuantizerLike

_ACTIVATION_LAYERS = (
    keras.layers.ReLU,
    keras.layers.Activation,
    keras.layers.LeakyReLU,
    keras.layers.ELU,
    keras.layers.PReLU,
    keras.layers.Softmax,
)


def _is_activation(layer):
    if isinstance(layer, keras.layers.Activation):
        return layer.activation is not keras.activations.linear
    if isinstance(layer, _ACTIVATION_LAYERS):
        return True
    activation = getattr(layer, "activation", None)
    return callable(activation) and activation is not keras.activations.linear


def quantize_activations(
    model: keras.Model,
    forward_format: QuantizerLike | None,
    backward_format: QuantizerLike | None = None,
    rounding: str = "stochastic",
    backward_rounding: str = "stochastic",
    seed: int | None = None,
) -> keras.Model:
    """A copy of `model` with a `Quantize` layer after every activation.

    "Activation" means an activation layer (`ReLU`, `Activation`, ...) or a
    layer with its own non-linear `activation` (e.g. `Dense(...,
    activation="relu")`). Layers that produce a model output are left alone
    (SWALP does not quantize the logits), and so is the input. Each inserted
    `Quantize(forward_format, backward_format, rounding, backward_rounding)`
    quantizes the activation on the way forward and the error on the way
    back: SWALP's `Q_A` / `Q_E` after every ReLU.

    (`tf_lowprec.layers.quantize_model` swaps Dense/Conv2D for their
    quantized versions, whose `output_format` acts on the layer's own
    activation; the models here keep activations as separate layers, hence
    the insertion.)

    Args:
        model: a `keras.Sequential` or functional model (not subclassed).
        forward_format: `tf_lowprec.quantizers.Quantizer` of the
            activations, a format (rounded with `rounding`), or `None`.
        backward_format: `Quantizer` of the errors, a format (rounded with
            `backward_rounding`), or `None`. Defaults to `None`.
        rounding: rounding of a bare forward format. Defaults to
            `"stochastic"` (as SWALP).
        backward_rounding: rounding of a bare backward format. Defaults to
            `"stochastic"`.
        seed: int or `None`; the `k`-th inserted layer gets `seed + k`.
            Defaults to `None`.

    Returns:
        A new, uncompiled model with the same weights (copied).
    """
    counter = [0]

    def make_quantizer(name):
        index = counter[0]
        counter[0] += 1
        return Quantize(
            forward_format,
            backward_format,
            rounding=rounding,
            backward_rounding=backward_rounding,
            seed=None if seed is None else seed + index,
            name=f"{name}_quantize",
        )

    def insert_after(layer):
        if _is_activation(layer) and layer.name not in output_names:
            return make_quantizer(layer.name)
        return None

    output_names = set(getattr(model, "output_names", None) or [])
    return rewrite.rebuild(model, insert_after=insert_after, what="quantize_activations")
