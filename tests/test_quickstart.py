"""The quickstart end to end on tiny generated Fashion-MNIST files."""

import pytest

from tests.data.formats import write_idx_dataset
from tf_lowprec import quickstart
from tf_lowprec.experiments import cli
from tf_lowprec.experiments.results_io import read_csv


@pytest.mark.slow
def test_quickstart_writes_table_csv_and_plot(tmp_path, capsys):
    data_dir = tmp_path / "data"
    write_idx_dataset(str(data_dir), n_train=64, n_test=32, seed=0)
    out = tmp_path / "out"
    code = quickstart.main([
        "--data-dir", str(data_dir), "--epochs", "2", "--batch-size", "16",
        "--c", "0.05", "--mu", "0.7", "--out", str(out), "--quiet",
    ])
    assert code == 0
    rows = read_csv(out / "quickstart.csv")
    assert [r["optimizer"] for r in rows] == ["SGD", "SGD", "GRDA(c=0.05, mu=0.7)", "GRDA(c=0.05, mu=0.7)"]
    # SGD's only exact zeros are biases of units that never activated.
    assert float(rows[1]["sparsity"]) < 0.01
    assert float(rows[-1]["sparsity"]) > 0.05
    assert all(0.0 <= float(r["test_accuracy"]) <= 1.0 for r in rows)
    with open(out / "quickstart.png", "rb") as f:
        assert f.read(4) == b"\x89PNG"
    printed = capsys.readouterr().out
    assert "test acc" in printed and "GRDA(c=0.05, mu=0.7)" in printed


def test_quickstart_rejects_bad_flags(capsys):
    with pytest.raises(SystemExit):
        quickstart.main(["--epochs", "0"])
    assert "--epochs" in capsys.readouterr().err


def test_cli_lists_commands_and_rejects_unknown(capsys):
    assert cli.main([]) == 0
    assert "quickstart" in capsys.readouterr().out
    assert cli.main(["nope"]) == 2
    assert "unknown command 'nope'" in capsys.readouterr().err
