"""mean ± sd cells and per-epoch bands against numpy."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np

from tf_lowprec.experiments.seed_statistics import by_epoch, mean_sd, plot_band


def test_mean_sd_cells():
    values = ["0.875", 0.871, "0.879", "", "nan"]
    expected = 100 * np.array([0.875, 0.871, 0.879])
    assert mean_sd(values, 100) == f"{expected.mean():.2f} ± {expected.std(ddof=1):.2f}"
    assert mean_sd([3.14159], digits=3) == "3.142"
    assert mean_sd(["", None]) == ""


def test_by_epoch_and_band():
    rows = [{"epoch": e, "seed": s, "acc": str(0.1 * e + 0.01 * s)} for s in range(3)
            for e in (2, 1)] + [{"epoch": 3, "seed": 0, "acc": ""}]
    epochs, means, sds = by_epoch(rows, "acc", scale=100)
    assert epochs == [1, 2]
    np.testing.assert_allclose(means, [11, 21])
    np.testing.assert_allclose(sds, [1, 1])
    figure, axis = plt.subplots()
    line = plot_band(axis, rows, "acc", "run", scale=100)
    np.testing.assert_allclose(line.get_ydata(), [11, 21])
    assert plot_band(axis, rows, "missing", "none") is None
    plt.close(figure)
