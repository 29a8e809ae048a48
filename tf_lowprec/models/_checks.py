"""Argument checks shared by the model builders (ValueError naming arg and value)."""

from __future__ import annotations

import numbers


def positive_int(value, arg: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"`{arg}` must be a positive integer. Received: {arg}={value!r}")
    return int(value)


def num_classes(value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 2:
        raise ValueError(
            f"`num_classes` must be an integer >= 2. Received: num_classes={value!r}"
        )
    return int(value)


def int_tuple(value, arg: str, allow_empty: bool = True) -> tuple[int, ...]:
    """A tuple of positive ints (lists accepted)."""
    if not isinstance(value, (tuple, list)) or (not value and not allow_empty) or any(
        isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1 for v in value
    ):
        need = "a non-empty" if not allow_empty else "a"
        raise ValueError(
            f"`{arg}` must be {need} tuple of positive integers. Received: {arg}={value!r}"
        )
    return tuple(int(v) for v in value)


def image_shape(value, min_size: int = 1) -> tuple[int, int, int]:
    """An (H, W, C) tuple with H, W >= `min_size`."""
    shape = int_tuple(value, "input_shape")
    if len(shape) != 3:
        raise ValueError(
            f"`input_shape` must be (height, width, channels). Received: input_shape={value!r}"
        )
    if min(shape[:2]) < min_size:
        raise ValueError(
            f"`input_shape` needs height and width >= {min_size} for this model. "
            f"Received: input_shape={value!r}"
        )
    return shape
