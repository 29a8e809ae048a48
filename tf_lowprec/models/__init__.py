"""Small Keras 3 functional models; every one outputs LOGITS (use from_logits=True).

    >>> from tf_lowprec import models
    >>> model = models.get("resnet18", num_classes=100, width=16)
"""

from tf_lowprec.models.cnn import cnn
from tf_lowprec.models.mlp import mlp
from tf_lowprec.models.registry import NAMES, get
from tf_lowprec.models.resnet import resnet18
from tf_lowprec.models.vgg import vgg16

__all__ = ["NAMES", "cnn", "get", "mlp", "resnet18", "vgg16"]
