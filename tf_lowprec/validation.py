"""Argument checks shared by every public constructor and command.

Each check takes the value and the argument's name, returns the value in its
canonical Python type (`float`, `int`, `bool`, `str`) and otherwise raises an
error whose message names the argument and repeats the value received:

* `ArgumentTypeError` for a value of the wrong type (a string, `None`, a
  bool where a number is wanted, a tensor). It subclasses both `TypeError`
  and `ValueError`, so `except ValueError` catches every bad argument.
* `ValueError` for a value of the right type outside the allowed set
  (NaN, an infinity, a negative count, a name that is not a choice).

Numbers are accepted as Python or NumPy scalars (`numbers.Real` /
`numbers.Integral`); bools never count as numbers. Nothing is coerced
silently: `2.5` is not an integer, a seed outside its range is rejected
rather than reduced modulo 2^32.

This module imports nothing from `tf_lowprec` (floor 0): every other module
may use it.
"""

import math
import numbers

# Stochastic-rounding seeds are stored as int64 and folded with the step; the
# int31 range is one that every TensorFlow random kernel accepts unchanged.
SEED_LIMIT = 2**31


class ArgumentTypeError(TypeError, ValueError):
    """A value of the wrong type (also a `ValueError`: one `except` for all)."""


def _received(name, value):
    return f"Received: {name}={value!r}"


def _is_real(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _is_integer(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def real(value, name, what="a real number"):
    """Returns `value` as `float` if it is a (Python or NumPy) real number."""
    if not _is_real(value):
        raise ArgumentTypeError(f"Argument `{name}` must be {what}. {_received(name, value)}")
    return float(value)


def finite_float(value, name):
    """A finite real number (NaN and +-inf rejected)."""
    value_f = real(value, name, "a finite real number")
    if not math.isfinite(value_f):
        raise ValueError(f"Argument `{name}` must be finite. {_received(name, value)}")
    return value_f


def positive_float(value, name):
    """A finite real number > 0."""
    value_f = real(value, name, "a positive real number")
    if not (math.isfinite(value_f) and value_f > 0):
        raise ValueError(
            f"Argument `{name}` must be a finite number > 0. {_received(name, value)}"
        )
    return value_f


def non_negative_float(value, name):
    """A finite real number >= 0."""
    value_f = real(value, name, "a non-negative real number")
    if not (math.isfinite(value_f) and value_f >= 0):
        raise ValueError(
            f"Argument `{name}` must be a finite number >= 0. {_received(name, value)}"
        )
    return value_f


def float_in_range(value, name, low, high, low_open=False, high_open=False):
    """A finite real number in `[low, high]` (`(` / `)` with `*_open`)."""
    value_f = real(value, name, "a real number")
    above = value_f > low if low_open else value_f >= low
    below = value_f < high if high_open else value_f <= high
    if not (math.isfinite(value_f) and above and below):
        interval = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
        raise ValueError(f"Argument `{name}` must be in {interval}. {_received(name, value)}")
    return value_f


def integer(value, name, minimum=None, maximum=None):
    """A (Python or NumPy) integer in `[minimum, maximum]` (bounds optional)."""
    if not _is_integer(value):
        raise ArgumentTypeError(f"Argument `{name}` must be an integer. {_received(name, value)}")
    value_i = int(value)
    if (minimum is not None and value_i < minimum) or (maximum is not None and value_i > maximum):
        if maximum is None:
            bounds = f">= {minimum}"
        elif minimum is None:
            bounds = f"<= {maximum}"
        else:
            bounds = f"in [{minimum}, {maximum}]"
        raise ValueError(f"Argument `{name}` must be an integer {bounds}. {_received(name, value)}")
    return value_i


def positive_int(value, name):
    """An integer >= 1."""
    return integer(value, name, minimum=1)


def non_negative_int(value, name):
    """An integer >= 0."""
    return integer(value, name, minimum=0)


def positive_int_tuple(value, name, allow_empty=True, length=None):
    """A tuple (or list) of integers >= 1; returned as a tuple of ints."""
    ok = isinstance(value, (tuple, list)) and (value or allow_empty)
    ok = ok and (length is None or len(value) == length)
    if not ok or any(not _is_integer(v) or v < 1 for v in value):
        if length is not None:
            what = f"a tuple of {length} positive integers"
        else:
            what = f"a {'' if allow_empty else 'non-empty '}tuple of positive integers"
        raise ValueError(f"Argument `{name}` must be {what}. {_received(name, value)}")
    return tuple(int(v) for v in value)


def image_shape(value, name="input_shape", min_size=1):
    """An `(height, width, channels)` tuple of positive ints, H and W >= `min_size`."""
    shape = positive_int_tuple(value, name, length=3)
    if min(shape[:2]) < min_size:
        raise ValueError(
            f"Argument `{name}` needs height and width >= {min_size} for this model. "
            f"{_received(name, value)}"
        )
    return shape


def boolean(value, name):
    """A bool (Python or NumPy); 0/1 and strings are rejected."""
    numpy_bool = type(value).__module__ == "numpy" and type(value).__name__ in ("bool", "bool_")
    if isinstance(value, bool) or numpy_bool:
        return bool(value)
    raise ArgumentTypeError(f"Argument `{name}` must be a bool. {_received(name, value)}")


def choice(value, name, options):
    """One of `options` (strings compared exactly)."""
    if not isinstance(value, str):
        raise ArgumentTypeError(
            f"Argument `{name}` must be one of {tuple(options)}. {_received(name, value)}"
        )
    if value not in options:
        raise ValueError(
            f"Argument `{name}` must be one of {tuple(options)}. {_received(name, value)}"
        )
    return value


def names(value, name, known=None):
    """A list, tuple or set of strings (each one of `known`, if given); returns a set.

    A single string is refused rather than iterated character by character.
    """
    if isinstance(value, str):
        raise ArgumentTypeError(
            f"Argument `{name}` must be a list of names, not a string; use "
            f"{name}=[{value!r}]. {_received(name, value)}"
        )
    if not isinstance(value, (list, tuple, set, frozenset)) or not all(
        isinstance(v, str) for v in value
    ):
        raise ArgumentTypeError(
            f"Argument `{name}` must be a list of names (strings). {_received(name, value)}"
        )
    if known is not None:
        unknown = sorted(set(value) - set(known))
        if unknown:
            raise ValueError(
                f"Argument `{name}` names {unknown}, which are not among {sorted(known)}. "
                f"{_received(name, value)}"
            )
    return set(value)


def seed(value, name="seed", allow_none=True):
    """An integer seed in `[0, 2^31)` (Python or NumPy int), or `None`.

    Out-of-range seeds are rejected, never reduced: two different seeds
    never give the same random stream.
    """
    if value is None and allow_none:
        return None
    if not _is_integer(value):
        what = "an integer or None" if allow_none else "an integer"
        raise ArgumentTypeError(f"Argument `{name}` must be {what}. {_received(name, value)}")
    value_i = int(value)
    if not 0 <= value_i < SEED_LIMIT:
        raise ValueError(
            f"Argument `{name}` must be in [0, 2**31). {_received(name, value)}"
        )
    return value_i


def optional(check, value, name, *args, **kwargs):
    """`None`, or `check(value, name, ...)`."""
    return None if value is None else check(value, name, *args, **kwargs)


def learning_rate(value, name="learning_rate"):
    """A positive finite learning rate as `float`; schedules pass through.

    Callables and `LearningRateSchedule`s are evaluated per step, so only
    their type is checked here. Keras rejects integer rates, so `1` becomes
    `1.0`.
    """
    if callable(value):
        return value
    return positive_float(value, name)


def optimizer_common_args(**base_args):
    """Checks the arguments every Keras optimizer takes (Keras does not).

    `keras.optimizers.Optimizer` accepts `weight_decay=inf` or
    `clipnorm=nan` and then trains to NaN weights; every tf_lowprec optimizer
    calls this with its base keyword arguments (`**kwargs`) before forwarding
    them to `super().__init__`. `None` means "off" for all of them. The other
    base arguments (`name`, `use_ema`, ...) are left to Keras, which checks
    them and rejects unknown names.
    """
    for name, check in _OPTIMIZER_BASE_CHECKS:
        optional(check, base_args.get(name), name)


_OPTIMIZER_BASE_CHECKS = (
    ("weight_decay", non_negative_float),
    ("clipnorm", positive_float),
    ("clipvalue", positive_float),
    ("global_clipnorm", positive_float),
    ("loss_scale_factor", positive_float),
    ("gradient_accumulation_steps", positive_int),
)
