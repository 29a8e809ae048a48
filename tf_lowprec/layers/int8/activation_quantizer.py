"""`ActivationQuantizer`: int8 activation fake quantization with moving-average ranges."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import keras
import tensorflow as tf

from tf_lowprec.layers.int8 import fake_quant

if TYPE_CHECKING:
    from tensorflow.types.experimental import TensorLike


def _cross_replica(value, reducer):
    """`reducer` over the copies of scalar `value` on every replica."""
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return value
    gathered = context.all_gather(tf.reshape(value, [1]), axis=0)
    return reducer(gathered)


@keras.saving.register_keras_serializable(package="tf_lowprec")
class ActivationQuantizer(keras.layers.Layer):
    """Fake-quantizes a tensor to int8 with a range learned during training.

    The range follows TFMOT's `MovingAverageQuantizer` (Jacob et al. 2018,
    section 3.1): on each training call, with the batch extremes widened to
    include zero, `b_min = min(min x, 0)` and `b_max = max(max x, 0)`,

        range_min <- decay * range_min + (1 - decay) * b_min
        range_max <- decay * range_max + (1 - decay) * b_max

    and the output is `FakeQuant(x, range_min, range_max)` with the updated
    range (8 bits, asymmetric, nudged so 0 is a grid point, see
    `fake_quant.nudged_range`). The first training call sets the range to
    the batch extremes instead of averaging them into an arbitrary initial
    value (TFMOT starts from [-6, 6], which with decay 0.999 takes thousands
    of steps to forget). At inference the stored range is used unchanged
    (frozen). `updates` counts the training calls; a range with
    `updates == 0` was never learned, and the exporter refuses it.

    Under a `tf.distribute` strategy the batch extremes are taken over the
    global batch (gathered from every replica), so every replica stores the
    same range and training matches a single device.

    Args:
        ema_decay: decay of the moving averages, in [0, 1). Defaults to
            `0.999` (TFMOT's value).
        **kwargs: base `keras.layers.Layer` arguments.
    """

    def __init__(self, ema_decay: float = 0.999, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if (
            isinstance(ema_decay, bool)
            or not isinstance(ema_decay, (int, float))
            or not (0.0 <= ema_decay < 1.0)
        ):
            raise ValueError(
                f"`ema_decay` must be a number in [0, 1). Received: ema_decay={ema_decay!r}"
            )
        self.ema_decay = float(ema_decay)

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        def scalar(name):
            return self.add_weight(
                shape=(),
                initializer="zeros",
                trainable=False,
                autocast=False,
                aggregation="mean",
                name=name,
            )

        self.range_min = scalar("range_min")
        self.range_max = scalar("range_max")
        self.updates = scalar("updates")

    def update(self, inputs: TensorLike, nonnegative: bool = False) -> None:
        """Training-time range update from the batch `inputs` (no quantization).

        `nonnegative=True` says `inputs >= 0` holds by construction (a ReLU
        or ReLU6 output), so `b_min = min(min x, 0) = 0` without reading
        the tensor.
        """
        flat = tf.stop_gradient(tf.cast(inputs, tf.float32))
        if nonnegative:
            batch_min = tf.zeros([], tf.float32)
        else:
            batch_min = _cross_replica(
                tf.minimum(tf.reduce_min(flat), 0.0), tf.reduce_min
            )
        batch_max = _cross_replica(tf.maximum(tf.reduce_max(flat), 0.0), tf.reduce_max)
        first = tf.equal(self.updates, 0.0)
        decay = self.ema_decay
        new_min = tf.where(
            first, batch_min, decay * self.range_min + (1 - decay) * batch_min
        )
        new_max = tf.where(
            first, batch_max, decay * self.range_max + (1 - decay) * batch_max
        )
        self.range_min.assign(new_min)
        self.range_max.assign(new_max)
        self.updates.assign_add(1.0)

    def fake_quantize(self, inputs: TensorLike) -> tf.Tensor:
        """FakeQuant of `inputs` to the current range (no update)."""
        outputs = fake_quant.quantize_activations(
            tf.cast(inputs, tf.float32),
            tf.convert_to_tensor(self.range_min),
            tf.convert_to_tensor(self.range_max),
        )
        return tf.cast(outputs, inputs.dtype)

    def call(self, inputs: TensorLike, training: bool | None = None) -> tf.Tensor:
        if training:
            self.update(inputs)
        return self.fake_quantize(inputs)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return input_shape

    def nudged_range(self) -> tuple[float, float, float, int]:
        """The frozen grid: `(nudged_min, nudged_max, scale, uint8 zero_point)`."""
        return fake_quant.nudged_range(
            keras.ops.convert_to_numpy(self.range_min),
            keras.ops.convert_to_numpy(self.range_max),
        )

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "ema_decay": self.ema_decay}
