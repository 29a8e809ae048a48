"""Optimizers by name: the baseline comparison set and later additions.

```python
from tf_lowprec import optimizers

opt = optimizers.get("momentum", learning_rate=0.1)   # keras SGD(momentum=0.9)
opt = optimizers.get("proximal_adagrad", l1_regularization_strength=1e-4)
optimizers.available()  # ['adadelta', 'adagrad', 'adam', 'ftrl', 'grda', ...]
```

Keras built-ins are used wherever they exist (never reimplemented); a name is
a Keras class plus a few fixed defaults (e.g. `momentum` is
`keras.optimizers.SGD(momentum=0.9)`). Each optimizer keeps its own default
learning rate, so sweeps should pass `learning_rate` explicitly.

Every tf_lowprec name is registered at the bottom of this file (one place);
users add their own with `register(name, factory)`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

import keras

from tf_lowprec.optimizers.adam8bit import Adam8bit, AdamW8bit
from tf_lowprec.optimizers.grda import GRDA
from tf_lowprec.optimizers.halp import HALP
from tf_lowprec.optimizers.proximal_adagrad import ProximalAdagrad
from tf_lowprec.optimizers.proximal_sgd import ProximalSGD
from tf_lowprec.optimizers.sgd8bit import SGD8bit
from tf_lowprec.optimizers.svrg import SVRG

_REGISTRY = {}


def normalize_name(name: str) -> str:
    """The lookup key of a name: stripped, lower case, `-` read as `_`.

    Shared by every name table of the package (optimizers here,
    `tf_lowprec.training.get_loss`).
    """
    return name.strip().lower().replace("-", "_")


def _accepted_keywords(factory):
    """Named keyword parameters of `factory`, or None if it takes any."""
    try:
        params = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return None
    named = {
        p.name
        for p in params
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }
    takes_var_kw = any(p.kind is p.VAR_KEYWORD for p in params)
    if takes_var_kw and isinstance(factory, type):
        # A class's `**kwargs` forwards to its bases (an optimizer's to Keras's
        # base arguments: clipnorm, weight_decay, use_ema, ...): collect the
        # named parameters up the MRO until an `__init__` takes no `**kwargs`.
        for cls in factory.__mro__[1:]:
            init = cls.__dict__.get("__init__")
            if init is None or cls is object:
                continue
            base = inspect.signature(init).parameters.values()
            named |= {p.name for p in base if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
            if not any(p.kind is p.VAR_KEYWORD for p in base):
                break
        return named - {"self"}
    if takes_var_kw and not named:
        return None  # e.g. `lambda **kw: ...`: nothing to check against
    return named


def register(
    name: str,
    factory: Callable[..., keras.optimizers.Optimizer],
    defaults: Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> Callable[..., keras.optimizers.Optimizer]:
    """Makes `get(name, **overrides)` return `factory(**defaults, **overrides)`.

    Args:
        name: The lookup name; case-insensitive, `-` and `_` are the same.
        factory: An optimizer class, or any callable returning a
            `keras.optimizers.Optimizer`. Its named keyword parameters are
            the accepted overrides (a Keras optimizer's `**kwargs` only
            forwards to the base class, whose arguments are all named).
        defaults: Optional dict of keyword arguments fixed for this name
            (`{"momentum": 0.9}` for `"momentum"`); overrides win.
            Defaults to `None`.
        overwrite: Whether an existing name may be replaced. Defaults to
            `False`.

    Returns:
        `factory`, unchanged.
    """
    key = normalize_name(name)
    if not key:
        raise ValueError(f"`name` must be non-empty. Received: name={name!r}.")
    if not callable(factory):
        raise ValueError(
            f"`factory` must be callable. Received: factory={factory!r}."
        )
    if key in _REGISTRY and not overwrite:
        raise ValueError(
            f"Optimizer name {key!r} is already registered; pass "
            "`overwrite=True` to replace it."
        )
    _REGISTRY[key] = (factory, dict(defaults or {}))
    return factory


def available() -> list[str]:
    """Sorted list of the registered optimizer names."""
    return sorted(_REGISTRY)


def get(
    identifier: str | dict[str, Any] | keras.optimizers.Optimizer, **overrides: Any
) -> keras.optimizers.Optimizer:
    """Builds an optimizer from a name, a config dict, or passes one through.

    Args:
        identifier: A registered name (see `available()`), a
            `keras.optimizers.Optimizer` instance (returned as is), or a
            config dict as written by `keras.optimizers.serialize`
            (deserialized, with `overrides` merged into its config).
        **overrides: Constructor arguments, e.g. `learning_rate=0.1`.

    Returns:
        A new `keras.optimizers.Optimizer` (or `identifier` itself).

    Raises:
        ValueError: for an unknown name (the message lists the valid ones)
            or an argument the optimizer does not take.
    """
    if isinstance(identifier, keras.optimizers.Optimizer):
        if overrides:
            raise ValueError(
                "Overrides cannot be applied to an optimizer instance. "
                f"Received: overrides={overrides}."
            )
        return identifier
    if isinstance(identifier, dict):
        config = dict(identifier)
        config["config"] = {**config.get("config", {}), **overrides}
        return keras.optimizers.deserialize(config)
    if not isinstance(identifier, str):
        raise ValueError(
            "`identifier` must be an optimizer name, a config dict or a "
            f"keras.optimizers.Optimizer. Received: identifier={identifier!r}."
        )
    key = lookup_key("optimizer", _REGISTRY, identifier)
    factory, defaults = _REGISTRY[key]
    if isinstance(factory, _Deferred):
        factory = factory.resolve()
    check_keywords("Optimizer", key, factory, overrides)
    return factory(**{**defaults, **overrides})


def lookup_key(kind: str, table: Mapping[str, Any], name: str) -> str:
    """`normalize_name(name)` if it is in `table`, else a `ValueError` that
    lists the valid names (shared with `tf_lowprec.training.get_loss`)."""
    key = normalize_name(name)
    if key not in table:
        raise ValueError(f"Unknown {kind} {name!r}. Valid names: {', '.join(sorted(table))}.")
    return key


def check_keywords(
    kind: str, key: str, factory: Callable[..., Any], kwargs: Mapping[str, Any]
) -> set[str] | None:
    """Raises `ValueError` if `factory` does not take every name in `kwargs`.

    Shared by the package's name tables (optimizers here,
    `tf_lowprec.training.get_loss`).

    Returns:
        The accepted keyword names, or `None` if `factory` takes any.
    """
    accepted = _accepted_keywords(factory)
    if accepted is not None:
        unknown = sorted(set(kwargs) - accepted)
        if unknown:
            raise ValueError(
                f"{kind} {key!r} does not take argument(s) {unknown}. "
                f"Accepted: {', '.join(sorted(accepted))}."
            )
    return accepted


class _Deferred:
    """A factory defined on a higher floor, imported when first used."""

    def __init__(self, load):
        self._load = load

    def resolve(self):
        return self._load()

    def __call__(self, **kwargs):
        return self.resolve()(**kwargs)


def _swalp_recipe(name):
    """`tf_lowprec.recipes.swalp_training.<name>`: the one documented upward
    import of this package (see `tests/test_import_floors.py`)."""
    from tf_lowprec.recipes import swalp_training

    return getattr(swalp_training, name)


# The baseline comparison set (Keras built-ins) and tf_lowprec's own.
register("sgd", keras.optimizers.SGD)
register("momentum", keras.optimizers.SGD, {"momentum": 0.9})
register("nesterov", keras.optimizers.SGD, {"momentum": 0.9, "nesterov": True})
register("adam", keras.optimizers.Adam)
register("rmsprop", keras.optimizers.RMSprop)
register("rmsprop_centered", keras.optimizers.RMSprop, {"centered": True})
register("adagrad", keras.optimizers.Adagrad)
register("adadelta", keras.optimizers.Adadelta)
register("ftrl", keras.optimizers.Ftrl)
register("proximal_sgd", ProximalSGD)
register("proximal_adagrad", ProximalAdagrad)
# GRDA with c=0 is plain SGD; the named baseline uses the authors' recommended
# regime (0 < c <= 0.005, mu in {0.501, 0.51, 0.55}).
register("grda", GRDA, {"c": 0.005, "mu": 0.55})
# Need a `tf_lowprec.training.VarianceReduced` model (full-gradient snapshots).
register("svrg", SVRG)
register("halp", HALP)
# Block-wise 8-bit states (Dettmers et al. 2022); same defaults as Keras.
register("sgd8bit", SGD8bit)
register("adam8bit", Adam8bit)
register("adamw8bit", AdamW8bit)


# `get("low_precision_sgd", learning_rate=0.05)`: SWALP's SGD-LP.
register("low_precision_sgd", _Deferred(lambda: _swalp_recipe("low_precision_sgd")))
