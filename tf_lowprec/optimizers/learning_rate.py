"""`LearningRate`: what every optimizer's `learning_rate` argument accepts."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeAlias

import keras

LearningRate: TypeAlias = (
    float | keras.optimizers.schedules.LearningRateSchedule | Callable[[], float]
)
"""A learning rate as Keras optimizers take it: a positive float, a
`keras.optimizers.schedules.LearningRateSchedule` (evaluated at each step), or
a zero-argument callable."""
