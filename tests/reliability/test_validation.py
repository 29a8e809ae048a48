"""tf_lowprec.validation: every check names the argument and the value."""


import numpy as np
import pytest

from tf_lowprec import validation
from tf_lowprec.validation import ArgumentTypeError

NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize("check, value, error", [
    (validation.positive_float, NAN, ValueError),
    (validation.positive_float, INF, ValueError),
    (validation.positive_float, -INF, ValueError),
    (validation.positive_float, 0.0, ValueError),
    (validation.positive_float, -1e-30, ValueError),
    (validation.positive_float, "0.1", ArgumentTypeError),
    (validation.positive_float, None, ArgumentTypeError),
    (validation.positive_float, True, ArgumentTypeError),
    (validation.positive_float, np.array([0.1]), ArgumentTypeError),
    (validation.non_negative_float, NAN, ValueError),
    (validation.non_negative_float, INF, ValueError),
    (validation.non_negative_float, -0.5, ValueError),
    (validation.finite_float, NAN, ValueError),
    (validation.finite_float, -INF, ValueError),
    (validation.positive_int, 0, ValueError),
    (validation.positive_int, 2.0, ArgumentTypeError),
    (validation.positive_int, False, ArgumentTypeError),
    (validation.positive_int, "3", ArgumentTypeError),
    (validation.non_negative_int, -1, ValueError),
    (validation.boolean, 1, ArgumentTypeError),
    (validation.boolean, "yes", ArgumentTypeError),
    (validation.seed, -1, ValueError),
    (validation.seed, 2**32 + 7, ValueError),  # no silent modulo
    (validation.seed, 2**31, ValueError),
    (validation.seed, True, ArgumentTypeError),
    (validation.seed, 1.0, ArgumentTypeError),
])
def test_bad_values_raise_naming_argument_and_value(check, value, error):
    with pytest.raises(error) as info:
        check(value, "arg")
    assert "`arg`" in str(info.value)
    assert f"arg={value!r}" in str(info.value)


def test_type_errors_are_value_errors_too():
    # One `except ValueError` catches every bad argument (Keras style); the
    # wrong-type case is also a TypeError.
    with pytest.raises(ValueError):
        validation.positive_float("x", "arg")
    with pytest.raises(TypeError):
        validation.positive_float("x", "arg")


@pytest.mark.parametrize("value, expected", [
    (np.float32(0.25), 0.25), (np.float64(3.0), 3.0), (2, 2.0), (np.int64(5), 5.0),
])
def test_numpy_and_python_numbers_are_accepted_as_floats(value, expected):
    out = validation.positive_float(value, "arg")
    assert type(out) is float and out == expected


def test_numpy_integers_are_integers_and_seeds():
    assert validation.positive_int(np.int32(4), "n") == 4
    assert type(validation.seed(np.int64(7))) is int
    assert validation.seed(np.uint32(2**31 - 1)) == 2**31 - 1
    assert validation.seed(None) is None
    with pytest.raises(ArgumentTypeError, match="seed=None"):
        validation.seed(None, allow_none=False)


def test_boolean_accepts_numpy_bool():
    assert validation.boolean(np.bool_(True), "flag") is True


def test_ranges_and_choices():
    assert validation.float_in_range(0.0, "p", 0.0, 1.0, high_open=True) == 0.0
    with pytest.raises(ValueError, match=r"in \[0.0, 1.0\).*p=1.0"):
        validation.float_in_range(1.0, "p", 0.0, 1.0, high_open=True)
    with pytest.raises(ValueError, match="p=nan"):
        validation.float_in_range(NAN, "p", -INF, INF)
    assert validation.integer(3, "k", minimum=1, maximum=3) == 3
    with pytest.raises(ValueError, match=r"in \[1, 3\]. Received: k=4"):
        validation.integer(4, "k", minimum=1, maximum=3)
    assert validation.choice("a", "mode", ("a", "b")) == "a"
    with pytest.raises(ValueError, match=r"one of \('a', 'b'\). Received: mode='c'"):
        validation.choice("c", "mode", ("a", "b"))
    with pytest.raises(ArgumentTypeError, match="mode=None"):
        validation.choice(None, "mode", ("a", "b"))


def test_learning_rate_passes_schedules_and_floats_ints():
    schedule = lambda step: 0.1  # noqa: E731
    assert validation.learning_rate(schedule) is schedule
    assert validation.learning_rate(1) == 1.0
    for bad in (NAN, INF, 0, -0.1):
        with pytest.raises(ValueError, match="learning_rate"):
            validation.learning_rate(bad)


def test_tuples_and_image_shapes():
    assert validation.positive_int_tuple([2, np.int64(3)], "units") == (2, 3)
    with pytest.raises(ValueError, match=r"units=\(\)"):
        validation.positive_int_tuple((), "units", allow_empty=False)
    with pytest.raises(ValueError, match=r"needs height and width >= 8.*input_shape=\(4, 4, 1\)"):
        validation.image_shape((4, 4, 1), min_size=8)
    with pytest.raises(ValueError, match=r"3 positive integers.*input_shape=\(4, 4\)"):
        validation.image_shape((4, 4))


def test_optimizer_common_args():
    validation.optimizer_common_args(weight_decay=0.0, clipnorm=1.0)
    for name, value in (("weight_decay", INF), ("clipnorm", NAN), ("global_clipnorm", 0.0),
                        ("clipvalue", -1.0), ("loss_scale_factor", INF),
                        ("gradient_accumulation_steps", 0), ("weight_decay", "0.1")):
        with pytest.raises(ValueError, match=f"{name}="):
            validation.optimizer_common_args(**{name: value})


def test_validation_imports_nothing_from_tf_lowprec():
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(validation))
    imported = [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names]
    imported += [node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    assert imported and not [m for m in imported if m and m.startswith("tf_lowprec")]
