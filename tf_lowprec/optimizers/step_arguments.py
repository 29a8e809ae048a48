"""The argument types of an optimizer's `update_step(gradient, variable, learning_rate)`.

Keras calls `update_step` once per trainable variable and step, after gradient
clipping and before weight decay; these aliases name what it passes.
"""

from __future__ import annotations

from typing import TypeAlias

import tensorflow as tf

Gradient: TypeAlias = tf.Tensor | tf.IndexedSlices
"""A variable's gradient: dense, or `tf.IndexedSlices` for a sparse (embedding) update."""

CurrentLearningRate: TypeAlias = float | tf.Tensor
"""The learning rate of this step (a schedule already evaluated at `iterations`)."""
