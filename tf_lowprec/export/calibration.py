"""Representative data for TFLite calibration: arrays, datasets or generators."""

import numpy as np
import tensorflow as tf


def representative_dataset(data, max_samples):
    """A zero-argument generator function as `TFLiteConverter.representative_dataset`.

    Args:
        data: a NumPy array (or a tuple/list of arrays, one per model input)
            of samples along axis 0, yielded one sample at a time; a
            `tf.data.Dataset` of batches (an `(x, y)` element uses `x`); or
            any iterable of input batches.
        max_samples: stop after this many samples (arrays) or batches.

    Returns:
        A function returning an iterator of lists of float32 arrays.
    """
    if isinstance(data, np.ndarray) or (
        isinstance(data, (tuple, list))
        and data
        and all(isinstance(a, np.ndarray) for a in data)
    ):
        arrays = [data] if isinstance(data, np.ndarray) else list(data)
        count = min(len(arrays[0]), max_samples)

        def from_arrays():
            for i in range(count):
                yield [a[i : i + 1].astype(np.float32) for a in arrays]

        return from_arrays

    def from_batches():
        for n, batch in enumerate(data):
            if n >= max_samples:
                return
            if (
                isinstance(batch, (tuple, list))
                and len(batch) == 2
                and not isinstance(data, (tuple, list))
            ):
                batch = batch[0]
            inputs = batch if isinstance(batch, (tuple, list)) else [batch]
            yield [tf.cast(x, tf.float32).numpy() for x in inputs]

    return from_batches
