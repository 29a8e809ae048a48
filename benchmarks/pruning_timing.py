"""Step time and inference time of the pruning comparison's methods (interleaved, paired).

    nice python benchmarks/pruning_timing.py --tfmot-python VENV/bin/python   # idle machine
    python benchmarks/pruning_timing.py --skip-tfmot --time-steps 2 --time-repeats 2 \\
        --out /tmp/pc                                                # smoke

Uses the settings of the comparison in `--out` (`settings.csv`, written by
`pruning_comparison.py`) and, for the inference speedups, its
`pruning_comparison.csv` (the unit counts the structured runs kept).

* `timing.csv`: seconds per training step of each method. Every Keras 3
  method trains on the same `--time-steps` cached batches (one `fit` epoch
  per timed call); `harness.interleave` alternates the methods over
  `--time-repeats` rounds after one warm-up call each and keeps medians,
  with the time ratio to SGD and the median paired ratio. TFMOT is timed the
  same way against tf_keras SGD inside its own process
  (`tfmot_prune.py --time-steps`). Masks update every `frequency` steps
  during the timed steps, as in training.
* `inference.csv`: each structured run's smaller model (rebuilt from the
  kept unit counts; its speed depends only on its shape) against the dense
  CNN over the test set (batches of 1000, traced), interleaved; the speedup
  is the inverse of the paired median ratio.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

import keras
import numpy as np
import tensorflow as tf
from harness import describe, environment, interleave, paired_summary, step_timer
from pruning_common import build, final_rows, method_of, read_settings, schedule
from tfmot_shared_data import fixed_order_train

from tf_lowprec import data, models, pruning
from tf_lowprec.experiments.results_io import read_csv, write_csv_atomic
from tf_lowprec.optimizers.grda import GRDA

HERE = os.path.dirname(os.path.abspath(__file__))


def _fit_timer(model, train, callbacks, steps):
    return step_timer(lambda: model.fit(train, epochs=1, verbose=0, callbacks=callbacks)
                      .history["loss"][-1], units=steps)


def time_training(settings, init_path, args):
    n = args.time_steps
    meta = data.info(settings.dataset)
    train, _ = fixed_order_train(settings.dataset, settings.batch_size, settings.seed,
                                 n * settings.batch_size)
    train = train.cache()
    with np.load(init_path) as f:
        weights = [f[f"arr_{i}"] for i in range(len(f.files))]

    def plain():
        model = build(meta)
        model.set_weights(weights)
        return model

    lr = settings.learning_rate

    def sgd():
        return keras.optimizers.SGD(lr, momentum=settings.momentum)

    mu = settings.grda_mus[len(settings.grda_mus) // 2]
    total = settings.steps
    methods = {
        "SGD": (plain(), sgd(), []),
        "GRDA": (plain(), GRDA(lr, c=settings.grda_c, mu=mu), []),
        "magnitude": (pruning.prune_low_magnitude(plain(), schedule(settings, total, 0.9)),
                      sgd(), [pruning.UpdatePruningStep()]),
        "structured": (pruning.prune_filters(plain(), schedule(settings, total, 0.7)),
                       sgd(), [pruning.UpdatePruningStep()]),
    }
    timers = {}
    for name, (model, optimizer, callbacks) in methods.items():
        model.compile(optimizer, keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=["accuracy"])
        timers[name] = _fit_timer(model, train, callbacks, n)
    summary = paired_summary(interleave(timers, args.time_repeats, warmup=1), "SGD")
    rows = [{"method": r["variant"], "seconds_per_step": r["median_seconds"], "reference": "SGD",
             "ratio": r["ratio"], "paired_ratio": r["paired_ratio"]} for r in summary]
    if not args.skip_tfmot:
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "timing.json")
            plan = schedule(settings, total, 0.9)
            subprocess.run([
                args.tfmot_python, os.path.join(HERE, "tfmot_prune.py"),
                "--init-weights", init_path, "--out-json", out, "--dataset", settings.dataset,
                "--batch-size", str(settings.batch_size), "--learning-rate", str(lr),
                "--momentum", str(settings.momentum),
                "--seed", str(settings.seed), "--final-sparsity", "0.9",
                "--end-step", str(plan.end_step), "--frequency", str(plan.frequency),
                "--time-steps", str(n), "--time-repeats", str(args.time_repeats),
            ], check=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
            with open(out) as f:
                measured = json.load(f)
        rows += [{"method": name, "seconds_per_step": r["median_seconds"],
                  "reference": "tf_keras SGD", "ratio": r["ratio"],
                  "paired_ratio": r["paired_ratio"]}
                 for name, r in (("tf_keras SGD", measured["tf_keras SGD"]),
                                 ("TFMOT", measured["TFMOT"]))]
    return rows


def time_inference(settings, rows, repeats):
    meta = data.info(settings.dataset)
    test_x = np.concatenate([x for x, _ in data.load(settings.dataset, "test", 1000)
                             .as_numpy_iterator()])
    batches = [tf.constant(test_x[i:i + 1000]) for i in range(0, len(test_x), 1000)]

    def timer(model):
        forward = tf.function(lambda batch: model(batch, training=False))
        return step_timer(lambda: [forward(batch) for batch in batches])

    result = []
    for name, row in final_rows(rows).items():
        if method_of(name) != "structured" or not row.get("units_kept"):
            continue
        kept = {layer: counts[0] for layer, counts in json.loads(row["units_kept"]).items()}
        small = models.cnn(meta.input_shape, meta.num_classes,
                           filters=(kept["conv_1"], kept["conv_2"]), dense_units=kept["dense"])
        summary = paired_summary(
            interleave({"dense": timer(build(meta)), "small": timer(small)}, repeats, warmup=1),
            "dense")
        by = {r["variant"]: r for r in summary}
        result.append({"run": name, "dense_seconds": by["dense"]["median_seconds"],
                       "small_seconds": by["small"]["median_seconds"],
                       "speedup": 1.0 / by["small"]["paired_ratio"]})
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join(HERE, "results", "pruning"))
    parser.add_argument("--tfmot-python", default=None, metavar="PYTHON",
                        help="interpreter of a virtual environment with tf_lowprec[tfmot]")
    parser.add_argument("--skip-tfmot", action="store_true")
    parser.add_argument("--time-steps", type=int, default=100,
                        help="training steps per timed call")
    parser.add_argument("--time-repeats", type=int, default=8)
    parser.add_argument("--inference-repeats", type=int, default=7)
    args = parser.parse_args(argv)
    if not args.skip_tfmot and not args.tfmot_python:
        parser.error("--tfmot-python PYTHON is required (or pass --skip-tfmot)")
    settings = read_settings(args.out)
    keras.utils.set_random_seed(settings.seed)
    init_path = os.path.join(tempfile.mkdtemp(prefix="pruning_init_"), "initial_weights.npz")
    np.savez(init_path, *build(data.info(settings.dataset)).get_weights())  # as the runs
    env = environment()
    timing = time_training(settings, init_path, args)
    write_csv_atomic(os.path.join(args.out, "timing.csv"), [{**r, **env} for r in timing])
    rows = read_csv(os.path.join(args.out, "pruning_comparison.csv"))
    inference = time_inference(settings, rows, args.inference_repeats)
    write_csv_atomic(os.path.join(args.out, "inference.csv"), [{**r, **env} for r in inference])
    print(describe(env))
    for row in timing:
        print(f"{row['method']:>13}: {1e3 * row['seconds_per_step']:.2f} ms/step, "
              f"x{row['ratio']:.2f} {row['reference']} (paired x{row['paired_ratio']:.2f})")
    for row in inference:
        print(f"{row['run']}: inference speedup x{row['speedup']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
