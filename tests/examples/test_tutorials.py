"""Every keras.io-format tutorial in examples/tutorials/ runs top to bottom in smoke mode.

`TF_LOWPREC_SMOKE=1` makes each tutorial train on a few hundred images for one
epoch, so a tutorial that stops working (an API it uses changed, a plot
fails) fails here. Tutorials run in this process (`runpy`, the cheap way: one
TensorFlow start) each in its own empty working directory, after
`keras.backend.clear_session()` and with the float32 dtype policy restored;
a tutorial that must configure TensorFlow's devices before its first op
(`several_devices.py` splits the CPU into logical devices) runs in a fresh
process instead. One tutorial is also converted to a notebook.
"""

import ast
import importlib.util
import itertools
import os
import pathlib
import runpy
import subprocess
import sys

import matplotlib

matplotlib.use("Agg")  # before pyplot: what a script without a display uses

import keras
import matplotlib.pyplot as plt
import nbformat
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
FOLDER = ROOT / "examples" / "tutorials"
HEADER_FIELDS = ("Title", "Author", "Date created", "Last modified", "Description", "Accelerator")
# Set up logical devices before TensorFlow's first op: needs a process of its own.
OWN_PROCESS = {"several_devices.py"}


def _docstring(path):
    return ast.get_docstring(ast.parse(path.read_text()), clean=False) or ""


def _tutorials():
    """The tutorials: `*.py` files whose module string is a keras.io header."""
    return sorted(p for p in FOLDER.glob("*.py")
                  if not p.name.startswith("_") and _docstring(p).lstrip().startswith("Title:"))


TUTORIALS = _tutorials()


def _converter():
    spec = importlib.util.spec_from_file_location("to_notebook", FOLDER / "to_notebook.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_tutorial_has_the_keras_io_header_and_is_listed():
    assert len(TUTORIALS) >= 6
    readme = (FOLDER / "README.md").read_text()
    assert 0 <= readme.find("TF_LOWPREC_SMOKE") < readme.index("| tutorial |")  # at the top
    for path in TUTORIALS:
        lines = [line for line in _docstring(path).strip().splitlines() if line.strip()]
        assert [line.split(":")[0] for line in lines] == list(HEADER_FIELDS), path.name
        assert lines[1] == "Author: tf_lowprec contributors"
        assert f"({path.name})" in readme, f"{path.name} missing from the README"
        source = path.read_text()
        assert "sys.path" not in source and "TF_LOWPREC_SMOKE" in source, path.name


@pytest.fixture
def smoke(tmp_path, monkeypatch):
    monkeypatch.setenv("TF_LOWPREC_SMOKE", "1")
    monkeypatch.chdir(tmp_path)
    shown = []
    monkeypatch.setattr(plt, "show", lambda *args, **kwargs: shown.append(len(plt.get_fignums())))
    keras.backend.clear_session()
    keras.mixed_precision.set_global_policy("float32")
    yield tmp_path, shown
    plt.close("all")
    keras.mixed_precision.set_global_policy("float32")
    keras.backend.clear_session()


@pytest.mark.slow
@pytest.mark.parametrize("path", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_tutorial_runs_in_smoke_mode(path, smoke):
    tmp_path, shown = smoke
    if path.name in OWN_PROCESS:
        env = {**os.environ, "TF_LOWPREC_SMOKE": "1", "MPLBACKEND": "Agg",
               "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "2"}
        done = subprocess.run([sys.executable, str(path)], check=False, cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        return
    runpy.run_path(str(path), run_name="__main__")
    assert shown and all(count > 0 for count in shown), "every plt.show() has a figure to show"


def test_a_tutorial_converts_to_a_notebook(tmp_path):
    converter = _converter()
    path = FOLDER / "grda_directional_pruning.py"
    (written,) = converter.main([str(path), "--out-dir", str(tmp_path)])
    notebook = nbformat.read(written, as_version=4)
    nbformat.validate(notebook)
    kinds = [cell.cell_type for cell in notebook.cells]
    assert kinds[0] == "markdown"
    assert notebook.cells[0].source.startswith("# Directional pruning with GRDA\n")
    assert "**Author:** tf_lowprec contributors" in notebook.cells[0].source
    assert "code" in kinds and "markdown" in kinds[1:]
    # No two code cells in a row: prose separates them, as in the source.
    assert all(not (a == b == "code") for a, b in itertools.pairwise(kinds))
    code = "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "code")
    assert "plt.show()" in code and '"""' not in code
    compile(code, "notebook", "exec")
    # Every code line of the tutorial is in a code cell, in order.
    source_code = [line for kind, text in converter.cells(path.read_text()) if kind == "code"
                   for line in text.splitlines()]
    assert [line for line in code.splitlines()] == source_code
