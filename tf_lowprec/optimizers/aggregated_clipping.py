"""Gradient clipping after the cross-replica all-reduce."""

import tensorflow as tf


def _multi_replica():
    context = tf.distribute.get_replica_context()
    return context is not None and context.num_replicas_in_sync > 1


class AggregatedClippingMixin:
    """Makes `clipnorm` / `global_clipnorm` / `clipvalue` see the global gradient.

    Keras 3 (TF backend) clips each replica's gradient *before* the SUM
    all-reduce, so under `tf.distribute.MirroredStrategy` or
    `MultiWorkerMirroredStrategy` a clipped model trains differently from the
    same model on one device with the same global batch (keras-team/keras
    semantics inherited from tf.keras; TF issues #33929, #36001). Optimizers
    with this mixin defer clipping while in a multi-replica replica context
    and clip the all-reduced (global-batch mean) gradient instead, which is
    what clipping means on one device. Single-device behaviour is unchanged.

    Put it first in the bases: `class GRDA(AggregatedClippingMixin,
    keras.optimizers.Optimizer)`. It relies on the TF backend's
    `_all_reduce_sum_gradients` hook (Keras 3.x).
    """

    def _clip_gradients(self, grads):
        if _multi_replica():
            return grads  # clipped after aggregation, below
        return super()._clip_gradients(grads)

    def _all_reduce_sum_gradients(self, grads_and_vars):
        reduced = super()._all_reduce_sum_gradients(grads_and_vars)
        if not _multi_replica():
            return reduced
        present = [i for i, (g, _) in enumerate(reduced) if g is not None]
        clipped = super()._clip_gradients([reduced[i][0] for i in present])
        reduced = list(reduced)
        for i, g in zip(present, clipped):
            reduced[i] = (g, reduced[i][1])
        return reduced
