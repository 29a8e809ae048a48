"""The installed package: public surface and house rules."""

import pathlib
import re

import tf_lowprec

PACKAGE = pathlib.Path(tf_lowprec.__file__).parent


def test_version_and_subpackages():
    assert re.fullmatch(r"\d+\.\d+\.\d+", tf_lowprec.__version__)
    for name in ("optimizers", "formats", "ops", "layers", "pruning", "training", "data",
                 "models", "experiments", "quantizers", "validation", "callbacks", "recipes",
                 "export", "memory", "distribute"):
        assert hasattr(tf_lowprec, name), name
    assert tf_lowprec.optimizers.get("grda").__class__ is tf_lowprec.optimizers.GRDA


def test_library_never_uses_tf_keras():
    """TFMOT flips tf.keras to tf_keras process-wide; the library uses `import keras`."""
    pattern = re.compile(r"\btf\.keras\.\w|from tensorflow import keras|tensorflow\.keras\b")
    offenders = [
        f"{path.relative_to(PACKAGE)}:{number}"
        for path in PACKAGE.rglob("*.py")
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if pattern.search(line.split("#")[0])
    ]
    assert offenders == []
