"""Keras 3 optimizers for sparse and low-precision training.

Every name `get()` knows is registered in `registry.py`. The SWALP recipe
(`swalp`, `swalp_formats`, `low_precision_sgd`, `quantize_activations`,
`SWALPSetup`) moved to `tf_lowprec.recipes`, a higher floor that builds on
optimizers, layers and training; the old names here still work and forward
there with a `DeprecationWarning` (kept for one release).
"""

import warnings

from tf_lowprec.optimizers.adam8bit import Adam8bit, AdamW8bit
from tf_lowprec.optimizers.grda import GRDA
from tf_lowprec.optimizers.halp import HALP
from tf_lowprec.optimizers.low_precision import LowPrecision
from tf_lowprec.optimizers.proximal_adagrad import ProximalAdagrad
from tf_lowprec.optimizers.proximal_sgd import ProximalSGD
from tf_lowprec.optimizers.registry import available, get, register
from tf_lowprec.optimizers.sgd8bit import SGD8bit
from tf_lowprec.optimizers.stochastic_rounding import StochasticRounding
from tf_lowprec.optimizers.svrg import SVRG
from tf_lowprec.optimizers.swa import SWA

_MOVED_TO_RECIPES = (
    "SWALPSetup",
    "low_precision_sgd",
    "quantize_activations",
    "swalp",
    "swalp_formats",
)


def __getattr__(name):
    """Forwards the SWALP recipe's old names to `tf_lowprec.recipes` (deprecated)."""
    if name in _MOVED_TO_RECIPES:
        from tf_lowprec.recipes import swalp_training as recipe

        warnings.warn(
            f"`tf_lowprec.optimizers.{name}` moved to `tf_lowprec.recipes.{name}`; "
            "the old path will be removed in the next release.",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(recipe, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
