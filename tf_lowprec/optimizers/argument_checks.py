"""Validation of optimizer hyperparameters: ValueError naming argument and value."""

import math
import numbers


def check_positive_number(value, name):
    """Raises unless `value` is a finite real number > 0 (bools rejected)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(
            f"Argument `{name}` must be a positive number. Received: {name}={value!r}"
        )
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"Argument `{name}` must be positive. Received: {name}={value!r}")


def check_non_negative(value, name):
    """Raises unless `value` is a real number >= 0 (bools rejected)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value >= 0:
        raise ValueError(f"Argument `{name}` must be >= 0. Received: {name}={value!r}")


def check_learning_rate(learning_rate):
    """Validates a numeric learning rate and returns it as a float.

    Schedules and callables pass through unchecked (they are evaluated per
    step); Keras itself rejects integer rates, so `1` becomes `1.0`.
    """
    if isinstance(learning_rate, numbers.Real) and not isinstance(learning_rate, bool):
        check_positive_number(learning_rate, "learning_rate")
        return float(learning_rate)
    return learning_rate
