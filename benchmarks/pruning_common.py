"""What the pruning-comparison scripts share: the model, the schedule, settings, row access.

`pruning_comparison.py` (accuracy runs), `pruning_timing.py` (step and
inference time) and `pruning_report.py` (table and plots) all use these, so
the three agree on the architecture, the pruning schedule and how a results
row is read. The settings of a comparison are written to
`<out>/settings.csv` by `pruning_comparison.py`, and read back by the other
two.
"""

import math
import os

from tf_lowprec import models, pruning
from tf_lowprec.experiments.results_io import read_csv, write_csv_atomic

LAYERS = ("conv_1", "conv_2", "dense", "logits")
SETTINGS = "settings.csv"
# settings.csv column -> parser of its text
_TYPES = {
    "dataset": str, "epochs": int, "batch_size": int, "learning_rate": float,
    "momentum": float, "limit": lambda v: int(v) if v else None, "seed": int,
    "sparsities": lambda v: [float(s) for s in v.split(",")], "prune_until": float,
    "frequency": int, "grda_c": float, "grda_mus": lambda v: [float(m) for m in v.split(",")],
    "steps": int,
}


def build(meta):
    """The compared CNN (`tf_lowprec.models.cnn`) for the dataset `meta`."""
    return models.cnn(meta.input_shape, meta.num_classes)


def kernel_sizes(model):
    """`{layer name: number of kernel weights}` (Conv/Dense kernels, biases excluded)."""
    sizes = {}
    for layer in model.layers:
        kernels = [w for w in layer.weights if len(w.shape) >= 2]
        if kernels:
            sizes[layer.name] = sum(math.prod(w.shape) for w in kernels)
    return sizes


def schedule(settings, steps, final):
    """PolynomialDecay 0 -> `final` (power 3) over the first `prune_until` of `steps`."""
    end = max(1, round(settings.prune_until * steps))
    return pruning.PolynomialDecay(0.0, final, begin_step=0, end_step=end, power=3,
                                   frequency=settings.frequency)


class Settings:
    """Attribute access to a comparison's settings (argparse namespace or settings.csv row)."""

    def __init__(self, values):
        self.__dict__.update(values)


def write_settings(out, args, steps):
    values = {k: (",".join(map(str, v)) if isinstance(v, list) else v)
              for k, v in vars(args).items() if k in _TYPES}
    write_csv_atomic(os.path.join(out, SETTINGS), [{**values, "steps": steps}])


def read_settings(out):
    """The settings a comparison in `out` ran with."""
    path = os.path.join(out, SETTINGS)
    if not os.path.exists(path):
        raise ValueError(f"No {SETTINGS} in {out}: run pruning_comparison.py with --out {out} "
                         "first.")
    row = {"momentum": "0.0", **read_csv(path)[0]}  # files from before --momentum existed
    return Settings({k: parse(row[k]) for k, parse in _TYPES.items() if k in row})


def final_rows(rows):
    """`{run: its last row}`, in first-seen order."""
    final = {}
    for row in rows:
        final[row["run"]] = row
    return final


def number(row, key, default=float("nan")):
    """`row[key]` as a float; `default` when missing, empty or not a number."""
    value = row.get(key, "")
    try:
        return float(value) if value not in ("", None) else default
    except (TypeError, ValueError):
        return default


def method_of(run):
    """`"GRDA mu=0.7"` -> `"GRDA"`."""
    return run.split(" ")[0]
