"""`quantize_activations(model, A, E)`: SWALP's Q_A / Q_E after every activation.

A recipe (not a layer): it rewrites a whole model, inserting a
`tf_lowprec.layers.Quantize` after each activation that is not a model
output.

Reference:
    Yang, Zhang, Wang, De Sa, "SWALP: Stochastic Weight Averaging in
    Low-Precision Training", ICML 2019 (github.com/stevenygd/SWALP,
    `models/vgg_low.py`: a quantizer after every ReLU).
"""

import keras

from tf_lowprec.layers.quantize_layer import Quantize

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
    model,
    forward_format,
    backward_format=None,
    rounding="stochastic",
    backward_rounding="stochastic",
    seed=None,
):
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
        forward_format: format of the activations, or `None`.
        backward_format: format of the errors, or `None`. Defaults to `None`.
        rounding: forward rounding. Defaults to `"stochastic"` (as SWALP).
        backward_rounding: backward rounding. Defaults to `"stochastic"`.
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

    def fresh(layer):
        return layer.__class__.from_config(layer.get_config())

    if isinstance(model, keras.Sequential):
        layers = []
        last = len(model.layers) - 1
        for i, layer in enumerate(model.layers):
            layers.append(fresh(layer))
            if i != last and _is_activation(layer):
                layers.append(make_quantizer(layer.name))
        new_model = keras.Sequential(
            [keras.Input(batch_shape=model.inputs[0].shape, dtype=model.inputs[0].dtype)] + layers,
            name=model.name,
        )
    else:
        output_names = set(getattr(model, "output_names", None) or [])

        def call_function(layer, *args, **kwargs):
            out = layer(*args, **kwargs)
            if _is_activation(layer) and layer.name not in output_names:
                out = make_quantizer(layer.name)(out)
            return out

        try:
            new_model = keras.models.clone_model(
                model, clone_function=fresh, call_function=call_function
            )
        except ValueError as error:
            raise ValueError(
                "quantize_activations needs a Sequential or functional model. "
                f"Received: model={model.name!r}: {error}"
            ) from error
    old_weights = model.get_weights()
    new_shapes = [tuple(w.shape) for w in new_model.weights]
    if new_shapes != [tuple(w.shape) for w in old_weights]:
        raise ValueError(
            "quantize_activations could not align the weights of the rebuilt "
            f"model with the original (shapes {new_shapes} vs "
            f"{[tuple(w.shape) for w in old_weights]})."
        )
    new_model.set_weights(old_weights)
    return new_model
