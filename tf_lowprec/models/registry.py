"""`get(name, **kwargs)`: build a model by name."""

from __future__ import annotations

from typing import Any

import keras

from tf_lowprec.models.cnn import cnn
from tf_lowprec.models.mlp import mlp
from tf_lowprec.models.resnet import resnet18
from tf_lowprec.models.vgg import vgg16

MODELS = {"mlp": mlp, "cnn": cnn, "resnet18": resnet18, "vgg16": vgg16}
NAMES = tuple(MODELS)


def get(name: str, **kwargs: Any) -> keras.Model:
    """Builds model `name` (`"mlp"`, `"cnn"`, `"resnet18"`, `"vgg16"`) with `kwargs`.

    Example:
        >>> model = get("vgg16", num_classes=100, batch_norm=True)

    Raises:
        ValueError: unknown `name`, or a bad argument of the builder.
    """
    key = name.strip().lower() if isinstance(name, str) else name
    if key not in MODELS:
        raise ValueError(
            f"Unknown model. Received: name={name!r}. Valid names: {', '.join(NAMES)}."
        )
    return MODELS[key](**kwargs)
