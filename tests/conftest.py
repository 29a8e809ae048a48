"""Test-session setup: quiet TensorFlow, TF backend, deterministic seeds."""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")  # CI has no GPU; keep runs identical

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _seed_everything():
    """Every test starts from the same Keras/NumPy/TF random state."""
    import keras

    keras.utils.set_random_seed(1234)
    yield


@pytest.fixture
def float64():
    """Runs a test with float64 as Keras's floatx and dtype policy."""
    import keras

    policy = keras.config.dtype_policy()
    keras.config.set_floatx("float64")
    keras.config.set_dtype_policy("float64")
    yield
    keras.config.set_floatx("float32")
    keras.config.set_dtype_policy(policy)
