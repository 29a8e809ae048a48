"""Epoch-curve plots from results rows."""

from tf_lowprec.experiments.plots import plot_epoch_curves


def test_plot_epoch_curves_writes_png_from_csv_strings(tmp_path):
    rows = [
        {"optimizer": name, "epoch": str(e), "test_accuracy": str(0.5 + 0.1 * e), "sparsity": str(s * e)}
        for name, s in [("SGD", 0.0), ("GRDA", 0.2)]
        for e in (1, 2, 3)
    ]
    path = plot_epoch_curves(rows, ["test_accuracy", "sparsity"], str(tmp_path / "p.png"), title="t")
    with open(path, "rb") as f:
        assert f.read(4) == b"\x89PNG"
