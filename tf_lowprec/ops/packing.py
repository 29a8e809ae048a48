"""Two signed 4-bit integers per byte: `pack_int4` / `unpack_int4`.

Layout: the codes are flattened (row-major); code `2i` goes into the low
nibble and code `2i + 1` into the high nibble of byte `i` (an odd count is
padded with a zero). Each nibble is a 4-bit two's-complement integer in
`[-8, 7]`. Bytes are stored as `int8`. This is the nibble order of
`keras.quantizers.pack_int4`, applied to the flattened tensor so that no
axis needs padding (a 3x3 kernel would waste a quarter of its bytes if
packed along a size-3 axis).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import tensorflow as tf

if TYPE_CHECKING:
    from tensorflow.types.experimental import TensorLike

__all__ = ["pack_int4", "unpack_int4"]


def pack_int4(codes: TensorLike) -> tf.Tensor:
    """Packs integer codes in `[-8, 7]` into an `int8` tensor of `ceil(n/2)`.

    Raises:
        ValueError: if a code is outside `[-8, 7]` (checked eagerly).
    """
    codes = tf.reshape(tf.cast(codes, tf.int32), [-1])
    if tf.executing_eagerly():
        values = codes.numpy()
        if values.size and (values.min() < -8 or values.max() > 7):
            raise ValueError(
                "`codes` must lie in [-8, 7] to be packed as int4. Received: "
                f"codes in [{values.min()}, {values.max()}]"
            )
    padded = tf.pad(codes, [[0, tf.size(codes) % 2]])
    pairs = tf.reshape(padded, [-1, 2])
    low = tf.bitwise.bitwise_and(pairs[:, 0], 0xF)
    high = tf.bitwise.left_shift(tf.bitwise.bitwise_and(pairs[:, 1], 0xF), 4)
    byte = tf.bitwise.bitwise_or(low, high)
    # Reinterpret 0..255 as a signed byte.
    return tf.cast(tf.where(byte > 127, byte - 256, byte), tf.int8)


def unpack_int4(packed: TensorLike, shape: Sequence[int]) -> tf.Tensor:
    """Inverse of `pack_int4`: int32 codes of the given static `shape`."""
    size = int(np.prod(shape, dtype=np.int64))
    byte = tf.cast(tf.reshape(packed, [-1]), tf.int32)
    # Sign-extend each nibble with an arithmetic right shift.
    low = tf.bitwise.right_shift(tf.bitwise.left_shift(byte, 28), 28)
    high = tf.bitwise.right_shift(tf.bitwise.left_shift(byte, 24), 28)
    codes = tf.reshape(tf.stack([low, high], axis=1), [-1])[:size]
    return tf.reshape(codes, shape)
