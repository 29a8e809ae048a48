"""Isolates data tests from the machine: no env var, no real caches, no network."""

import pytest

from tf_lowprec.data import loader as load_module
from tf_lowprec.data import locate

REAL_SYSTEM_DIRS = dict(locate.SYSTEM_DIRS)


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """Empty Keras home, no system dirs, no $TF_LOWPREC_DATA, download always fails."""
    monkeypatch.delenv(locate.ENV_VAR, raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    monkeypatch.setattr(locate, "KERAS_FALLBACK_HOME", str(tmp_path / "tmp_keras"))
    monkeypatch.setattr(locate, "SYSTEM_DIRS", {})

    def no_network(name):
        raise RuntimeError(f"URL fetch failure for {name}: network disabled in tests")

    monkeypatch.setattr(load_module, "_keras_load_data", no_network)
    return tmp_path
