"""int4 packing: round trip, layout, range check."""

import numpy as np
import pytest

from tf_lowprec.ops.packing import pack_int4, unpack_int4


@pytest.mark.parametrize("shape", [(7,), (3, 3, 2, 5), (1,), (4, 4)])
def test_round_trip(shape):
    codes = np.random.default_rng(0).integers(-8, 8, size=shape)
    packed = pack_int4(codes)
    assert packed.dtype == "int8" and packed.shape == ((codes.size + 1) // 2,)
    np.testing.assert_array_equal(unpack_int4(packed, shape), codes)


def test_nibble_layout_low_first():
    # [-3, 7] -> low nibble 0xD, high nibble 0x7 -> 0x7D = 125 (as Keras).
    np.testing.assert_array_equal(pack_int4(np.array([-3, 7, 2])), [125, 2])


def test_out_of_range_raises():
    with pytest.raises(ValueError, match="\\[-9, 0\\]"):
        pack_int4(np.array([-9, 0]))
