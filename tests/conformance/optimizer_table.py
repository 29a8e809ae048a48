"""The optimizers the conformance suite runs, and its one list of expected differences.

Every Keras optimizer keeps the contract that Keras's own optimizer tests
check (`keras/src/optimizers/optimizer_test.py`, `optimizer_sparse_test.py`,
`loss_scale_optimizer_test.py`, the generic parts of `sgd_test.py` and
`adam_test.py`). `tests/conformance/` runs those checks, rewritten as
properties, for every entry of `CASES`:

* every tf_lowprec optimizer in `tf_lowprec.optimizers.available()` (names
  whose factory is a Keras class are Keras's own and are left out),
* two Keras baselines as controls (SGD with momentum, Adam),
* every wrapper: `LowPrecision` without quantizers, with a separate
  full-precision accumulator, with every quantizer in one format, around
  Adam; `SWA`; and whichever of `StochasticRounding`, `SGD8bit`, `Adam8bit`,
  `AdamW8bit` exist in `tf_lowprec.optimizers`.

A case is a factory `make(**base)` taking Keras's base optimizer arguments
(`learning_rate`, `clipnorm`, `use_ema`, `weight_decay`, ...). A wrapper
passes them to its inner optimizer (where the wrappers document that they
belong) and keeps `name` for itself.

`DIFFERENCES` is the one place where a case is allowed to differ from
Keras, each with its reason. A `REJECTS` entry is still checked: the
optimizer must refuse the feature with a `ValueError` at construction.
"""

import dataclasses
import inspect
from collections.abc import Callable

import keras
import numpy as np

from tf_lowprec import formats
from tf_lowprec import optimizers as lp
from tf_lowprec.optimizers import registry

LEARNING_RATE = 0.1


@dataclasses.dataclass(frozen=True)
class Case:
    """One optimizer configuration under test.

    Attributes:
        name: the test id.
        factory: `factory(**base_kwargs)` -> a new optimizer.
        family: key into `DIFFERENCES` (several cases share one).
        driven: SVRG-type optimizers, stepped through
            `apply_variance_reduced` after a snapshot (`prepare`), and
            trained inside `tf_lowprec.training.VarianceReduced`.
        stochastic: the case rounds stochastically.
    """

    name: str
    factory: Callable
    family: str
    driven: bool = False
    stochastic: bool = False

    def make(self, **base):
        base.setdefault("learning_rate", LEARNING_RATE)
        return self.factory(**base)

    def __repr__(self):
        return self.name


# ----------------------------------------------------------- expected differences

REJECTS = "rejects"  # ValueError at construction, naming the argument
TF1_SPARSE = "tf1_sparse"  # sparse steps touch only the rows in the gradient
SPARSE_ROUNDING = "sparse_rounding"  # same distribution, other random draws
NEEDS_TRAIN_STEP = "needs_train_step"  # only VarianceReduced can step it
KNOWN_BUG = "known_bug"  # xfail(strict=True): a bug in a file this suite's author does not own
KERAS_LIMITATION = "keras_limitation"  # the Keras control itself differs

_CLIP_WHY = (
    "the step's 'gradient' is the difference of two gradients, so clipping "
    "it would not clip the gradient"
)
_SVRG = {
    "clipnorm": (REJECTS, _CLIP_WHY),
    "clipvalue": (REJECTS, _CLIP_WHY),
    "global_clipnorm": (REJECTS, _CLIP_WHY),
    "gradient_accumulation_steps": (
        REJECTS,
        "a variance-reduced step needs its own full-gradient correction",
    ),
    "loss_scale_optimizer": (
        NEEDS_TRAIN_STEP,
        ("the step needs two gradients per batch (VarianceReduced.train_step); "
        "LossScaleOptimizer.apply cannot provide them and raises"),
    ),
}
_TF1_SPARSE_WHY = (
    "TF1 ProximalGradientDescent/ProximalAdagrad sparse kernels: rows absent "
    "from an IndexedSlices gradient are not thresholded (nor their "
    "accumulator touched), while a dense zero gradient row is"
)

DIFFERENCES = {
    "grda": {
        "weight_decay": (
            REJECTS,
            ("gRDA recomputes the weights from the dual accumulator every step, "
            "so decoupled decay would have no effect; c and mu regularise"),
        ),
    },
    "proximal_sgd": {"sparse": (TF1_SPARSE, _TF1_SPARSE_WHY)},
    "proximal_adagrad": {"sparse": (TF1_SPARSE, _TF1_SPARSE_WHY)},
    "svrg": dict(_SVRG),
    "halp": {
        **_SVRG,
        "use_ema": (
            REJECTS,
            ("the weights are recomputed from the center and the integer "
            "offset every step, so an EMA overwrite could not persist"),
        ),
    },
    "low_precision_stochastic": {
        "sparse": (
            SPARSE_ROUNDING,
            ("stochastic rounding draws one uniform per element of the "
            "quantized tensor: the touched rows of a sparse gradient and the "
            "dense gradient get different (equally unbiased) draws"),
        ),
    },
    "recipe": {
        argument: (
            REJECTS,
            ("a recipe (`low_precision_sgd`) takes only its own arguments "
            "(learning rate, momentum, weight decay, formats, seed); build "
            "LowPrecision(keras.optimizers.SGD(...)) for the other Keras ones"),
        )
        for argument in (
            "clipnorm",
            "clipvalue",
            "global_clipnorm",
            "use_ema",
            "loss_scale_factor",
            "gradient_accumulation_steps",
            "name",
        )
    },
    "keras_adam": {
        "sparse": (
            KERAS_LIMITATION,
            ("keras.optimizers.Adam squares each row of an IndexedSlices "
            "gradient before scatter-adding, so duplicate indices give a sum "
            "of squares, not the square of the summed row (the dense result)"),
        ),
    },
}

# Bugs found by this suite in files owned by others, as xfail(strict=True):
# each entry turns into a failure the day it is fixed, and is then removed.
# (None open: the 8-bit optimizers and StochasticRounding now auto-number
# their names and take raw tf.Variables.)
_KNOWN_BUGS = {}
for _family, _bugs in _KNOWN_BUGS.items():
    _entries = DIFFERENCES.setdefault(_family, {})
    for _feature, _reason in _bugs.items():
        _entries.setdefault(_feature, (KNOWN_BUG, _reason))


def difference(case, feature):
    """`(kind, reason)` if `case` may differ from Keras on `feature`, else None."""
    return DIFFERENCES.get(case.family, {}).get(feature)


def mark_known(request, case, feature):
    """Applies `xfail(strict=True)` for a listed bug in a file owned elsewhere."""
    kind_reason = difference(case, feature)
    if kind_reason is not None and kind_reason[0] == KNOWN_BUG:
        import pytest

        request.applymarker(pytest.mark.xfail(strict=True, reason=kind_reason[1]))


# ------------------------------------------------------------------ factories


def _sgd(**base):
    return keras.optimizers.SGD(momentum=0.9, **base)


def _wrapper(cls, inner=_sgd, **wrapper_kwargs):
    def make(name=None, **base):
        return cls(inner(**base), name=name, **wrapper_kwargs)

    return make


def _takes_optimizer(cls):
    return "optimizer" in inspect.signature(cls).parameters


BFP8 = formats.BlockFloatingPoint(8)
FIXED = formats.FixedPoint(12, 8)

_OWN_KWARGS = {
    "grda": {"c": 0.05, "mu": 0.6},
    "proximal_sgd": {
        "l1_regularization_strength": 0.01,
        "l2_regularization_strength": 0.01,
    },
    "proximal_adagrad": {
        "l1_regularization_strength": 0.01,
        "l2_regularization_strength": 0.01,
    },
    "svrg": {"T": 1000},
    # mu=1: offsets span +-|g~|; 16 bits keep a few steps off the clip.
    "halp": {"T": 1000, "mu": 1.0, "bits": 16, "seed": 3},
}


def _registry_cases():
    cases = []
    for name in registry.available():
        factory, defaults = registry._REGISTRY[name]
        if getattr(factory, "__module__", "").startswith("keras"):
            continue  # Keras's own optimizer under a tf_lowprec name
        if inspect.isclass(factory):
            kwargs = {**defaults, **_OWN_KWARGS.get(name, {})}
            cases.append(
                Case(
                    name,
                    lambda _f=factory, _k=kwargs, **base: _f(**_k, **base),
                    family=name,
                    driven=issubclass(factory, lp.SVRG),
                    stochastic=name == "halp",
                )
            )
        else:  # a recipe function returning a configured optimizer
            cases.append(
                Case(
                    name,
                    lambda _n=name, learning_rate=LEARNING_RATE, **base: registry.get(
                        _n, learning_rate=learning_rate, seed=5, **base
                    ),
                    family="recipe",
                    stochastic=True,
                )
            )
    return cases


def _new_wrapper_cases():
    """`StochasticRounding` and the 8-bit optimizers, when they exist."""
    cases = []
    registered = {factory for factory, _ in registry._REGISTRY.values()}
    for cls_name in ("StochasticRounding", "SGD8bit", "Adam8bit", "AdamW8bit"):
        cls = getattr(lp, cls_name, None)
        if cls is None or cls in registered:
            continue  # absent, or already a case through `available()`
        if _takes_optimizer(cls):
            factory = _wrapper(cls)
        else:
            factory = cls
        cases.append(Case(cls_name, factory, family=cls_name, stochastic=True))
    return cases


CASES = (
    [
        Case("keras_sgd_momentum", _sgd, family="keras"),
        Case("keras_adam", keras.optimizers.Adam, family="keras_adam"),
    ]
    + _registry_cases()
    + [
        Case("low_precision_none", _wrapper(lp.LowPrecision), family="low_precision"),
        Case(
            "low_precision_separate",
            _wrapper(lp.LowPrecision, weight_quantizer=(FIXED, "nearest")),
            family="low_precision_separate",
        ),
        Case(
            "low_precision_stochastic",
            _wrapper(
                lp.LowPrecision,
                weight_quantizer=BFP8,
                gradient_quantizer=BFP8,
                momentum_quantizer=BFP8,
                accumulator_quantizer=BFP8,
                seed=11,
            ),
            family="low_precision_stochastic",
            stochastic=True,
        ),
        Case(
            "low_precision_adam",
            _wrapper(
                lp.LowPrecision,
                inner=keras.optimizers.Adam,
                weight_quantizer=(BFP8, "nearest"),
                gradient_quantizer=(BFP8, "nearest"),
                momentum_quantizer=(BFP8, "nearest"),
            ),
            family="low_precision_separate",
        ),
        Case("swa", _wrapper(lp.SWA), family="swa"),
    ]
    + _new_wrapper_cases()
)

def innermost(optimizer):
    """The optimizer that does the update (through any wrappers)."""
    while hasattr(optimizer, "inner_optimizer"):
        optimizer = optimizer.inner_optimizer
    return optimizer


def tracked(optimizer, variables):
    """The variables the inner optimizer updates for these model variables.

    A `LowPrecision` with a separate accumulator runs its inner optimizer
    (slots, EMA, weight decay) on the full-precision accumulators.
    """
    if getattr(optimizer, "separate_accumulator", False):
        return optimizer.accumulators
    return list(variables)


def full_gradient(variable):
    """The snapshot full gradient given to SVRG-type optimizers in `prepare`."""
    return np.full(variable.shape, 0.5, "float32")


def prepare(case, optimizer, variables):
    """Builds `optimizer` on `variables`; SVRG types also take a snapshot."""
    if not optimizer.built:
        optimizer.build(list(variables))
    if case.driven:
        optimizer.take_snapshot(
            [full_gradient(v) for v in optimizer._trainable_variables]
        )


def step(case, optimizer, grads, variables):
    """One `apply` (or `apply_variance_reduced`) of `grads` to `variables`."""
    if case.driven:
        if not optimizer.built:
            prepare(case, optimizer, variables)
        optimizer.apply_variance_reduced(list(grads), list(variables))
    else:
        optimizer.apply(list(grads), list(variables))
