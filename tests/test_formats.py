"""Number formats: validation, derived constants, equality, serialization."""

import json

import keras
import numpy as np
import pytest

from tf_lowprec.formats import BlockFloatingPoint, FixedPoint, FloatingPoint, IntegerAffine

ALL_FORMATS = [
    FixedPoint(8, 4),
    FixedPoint(16, -2),
    BlockFloatingPoint(8),
    BlockFloatingPoint(6, axis=None),
    BlockFloatingPoint(8, axis=-1, small_block_rank=0),
    FloatingPoint(8, 7),
    FloatingPoint(5, 10),
    FloatingPoint(4, 3),
    IntegerAffine(8),
    IntegerAffine(4, symmetric=False, per_channel_axis=-1),
]


@pytest.mark.parametrize("fmt", ALL_FORMATS, ids=repr)
def test_config_round_trip(fmt):
    config = fmt.get_config()
    json.dumps(config)
    assert type(fmt).from_config(config) == fmt


@pytest.mark.parametrize("fmt", ALL_FORMATS, ids=repr)
def test_keras_serialization_round_trip(fmt):
    serialized = keras.saving.serialize_keras_object(fmt)
    assert serialized["registered_name"] == f"tf_lowprec>{type(fmt).__name__}"
    restored = keras.saving.deserialize_keras_object(
        json.loads(json.dumps(serialized))
    )
    assert restored == fmt and type(restored) is type(fmt)


def test_equality_hash_and_repr():
    assert FixedPoint(8, 4) == FixedPoint(8, 4)
    assert FixedPoint(8, 4) != FixedPoint(8, 3)
    assert FixedPoint(8, 4) != BlockFloatingPoint(8)
    assert len({FixedPoint(8, 4), FixedPoint(8, 4), FloatingPoint(5, 2)}) == 2
    assert repr(FixedPoint(8, 4)) == (
        "FixedPoint(word_length=8, fractional_length=4)"
    )
    assert eval(repr(BlockFloatingPoint(8, axis=None))) == BlockFloatingPoint(
        8, axis=None
    )


def test_formats_are_frozen():
    fmt = FixedPoint(8, 4)
    with pytest.raises(AttributeError):
        fmt.word_length = 4


def test_numpy_integers_are_accepted_and_normalized():
    fmt = FixedPoint(np.int64(8), np.int32(4))
    assert type(fmt.word_length) is int and fmt == FixedPoint(8, 4)


def test_fixed_point_constants():
    fmt = FixedPoint(8, 4)
    assert (fmt.ulp, fmt.min_value, fmt.max_value) == (0.0625, -8.0, 7.9375)
    fmt = FixedPoint(4, -1)  # steps of 2 in [-16, 14]
    assert (fmt.ulp, fmt.min_value, fmt.max_value) == (2.0, -16.0, 14.0)


def test_floating_point_constants_match_numpy_types():
    half = FloatingPoint(5, 10)
    info = np.finfo(np.float16)
    assert half.max_value == float(info.max)
    assert half.min_normal == float(info.smallest_normal)
    assert half.min_subnormal == float(info.smallest_subnormal)
    single = FloatingPoint(8, 23)
    assert single.max_value == float(np.finfo(np.float32).max)
    assert FloatingPoint(4, 3).max_value == 240.0
    assert FloatingPoint(5, 2).max_value == 57344.0


def test_block_reduction_axes():
    fmt = BlockFloatingPoint(8, axis=0)
    assert fmt.reduction_axes(1) is None  # small-block rule: one block
    assert fmt.reduction_axes(2) == [1]
    assert fmt.reduction_axes(4) == [1, 2, 3]
    assert BlockFloatingPoint(8, axis=-1).reduction_axes(4) == [0, 1, 2]
    assert BlockFloatingPoint(8, axis=None).reduction_axes(3) is None
    assert BlockFloatingPoint(8, small_block_rank=0).reduction_axes(1) == []
    assert BlockFloatingPoint(8, small_block_rank=2).reduction_axes(2) is None
    with pytest.raises(ValueError, match="axis=2"):
        BlockFloatingPoint(8, axis=2).reduction_axes(2)


def test_integer_affine_code_ranges():
    assert (IntegerAffine(8).code_min, IntegerAffine(8).code_max) == (-127, 127)
    asym = IntegerAffine(4, symmetric=False)
    assert (asym.code_min, asym.code_max) == (-8, 7)


@pytest.mark.parametrize(
    "factory, match",
    [
        (lambda: FixedPoint(1, 0), "word_length=1"),
        (lambda: FixedPoint(25, 0), "word_length=25"),
        (lambda: FixedPoint(8.0, 2), "word_length=8.0"),
        (lambda: FixedPoint(True, 2), "word_length=True"),
        (lambda: FixedPoint(8, 127), "fractional_length=127"),
        (lambda: FixedPoint(8, -121), "fractional_length=-121"),
        (lambda: FixedPoint(8, "4"), "fractional_length='4'"),
        (lambda: BlockFloatingPoint(0), "word_length=0"),
        (lambda: BlockFloatingPoint(8, axis=1.5), "axis=1.5"),
        (lambda: BlockFloatingPoint(8, small_block_rank=-1), "small_block_rank=-1"),
        (lambda: FloatingPoint(1, 3), "exponent_bits=1"),
        (lambda: FloatingPoint(9, 3), "exponent_bits=9"),
        (lambda: FloatingPoint(5, 24), "mantissa_bits=24"),
        (lambda: FloatingPoint(5, -1), "mantissa_bits=-1"),
        (lambda: IntegerAffine(1), "bits=1"),
        (lambda: IntegerAffine(17), "bits=17"),
        (lambda: IntegerAffine(8, symmetric="yes"), "symmetric='yes'"),
        (lambda: IntegerAffine(8, per_channel_axis=0.0), "per_channel_axis=0.0"),
    ],
)
def test_invalid_arguments_raise_value_error_naming_them(factory, match):
    with pytest.raises(ValueError, match=match):
        factory()
