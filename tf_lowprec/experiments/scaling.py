"""Multi-replica scaling benchmark: throughput vs number of replicas.

    tf-lowprec scale --replicas 1,2,4 --models mlp,cnn --optimizers sgd,grda \
        --batch-sizes 128,512 --batch-schedules "30+10*epoch,50+50*epoch" --out DIR

For every replica count N, a subprocess sets up N devices (N GPUs with
`--devices gpu`; otherwise N logical CPU devices, which must be configured
before TensorFlow initialises) and, under `tf.distribute.MirroredStrategy`,
times `model.fit` on synthetic batches of the dataset's shape for every
(model, optimizer, global batch size). Reported per row:

* `images_per_second`: global batch x steps / wall time of those steps
  (steady state: the first step of each repeat and fit's set-up excluded;
  median of repeats, after a warm-up that includes tracing);
* `seconds_per_epoch`: `train_examples / images_per_second`;
* `global_batch_used`: the global batch rounded up to a multiple of N (Keras
  3.15's `fit` under MirroredStrategy fails on uneven per-replica batches);
* `speedup = throughput_N / throughput_1` and scaling efficiency
  `throughput_N / (N x throughput_1)`, both at the same global batch
  (strong scaling).

Growing-batch schedules such as `30+10*epoch` are expanded to their batch size
in each of `--schedule-epochs` epochs; each epoch gets its own row
(`schedule`, `epoch`), so the time per epoch of the whole schedule can be
read off the table.

On logical CPU devices all replicas share the same cores: the numbers measure
tf.distribute's overhead, not real scaling. Every row says which devices it
ran on (`device_kind`). Writes `<out>/scaling.csv` and `<out>/scaling.png`.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from tqdm.auto import tqdm

from tf_lowprec.experiments.results_io import save_figure_atomic, write_csv_atomic

TRAIN_EXAMPLES = {"mnist": 60000, "fashion_mnist": 60000, "cifar10": 50000, "cifar100": 50000}


def _configs(args):
    """(model, optimizer, global batch, schedule, epoch) tuples to measure."""
    from tf_lowprec.training.batch_size_schedules import get_batch_size_schedule

    batches = [(b, "", "") for b in args.batch_sizes]
    for spec in args.batch_schedules:
        schedule = get_batch_size_schedule(spec)
        batches += [(schedule(e), spec, e) for e in range(args.schedule_epochs)]
    return [
        {"model": m, "optimizer": o, "global_batch": b, "schedule": s, "epoch": e}
        for m in args.models for o in args.optimizers for b, s, e in batches
    ]


def _measure(config, strategy, dataset, steps, repeats, warmup):
    """Median images/second of `model.fit` on one synthetic global batch."""
    import keras
    import numpy as np
    import tensorflow as tf

    from tf_lowprec import data, models
    from tf_lowprec.optimizers import registry

    meta = data.info(dataset)
    # Keras 3.15's fit under MirroredStrategy fails on uneven per-replica
    # batches (its symbolic build reduces the first batch across replicas),
    # so the global batch is rounded up to a multiple of the replica count.
    replicas = strategy.num_replicas_in_sync
    batch = -(-int(config["global_batch"]) // replicas) * replicas
    rng = np.random.default_rng(0)
    x = rng.normal(size=(batch, *meta.input_shape)).astype("float32")
    y = rng.integers(0, meta.num_classes, batch).astype("int32")
    batches = tf.data.Dataset.from_tensors((x, y)).repeat().prefetch(2)
    with strategy.scope():
        keras.utils.set_random_seed(0)
        model = models.get(config["model"], input_shape=meta.input_shape,
                           num_classes=meta.num_classes)
        model.compile(registry.get(config["optimizer"]),
                      keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(batches, epochs=1, steps_per_epoch=warmup, verbose=0)
    rates = []
    for _ in range(repeats):
        # Steady state only: from the end of the first step to the end of the
        # last, so fit()'s per-call set-up is not counted.
        stamps = []
        timer = keras.callbacks.LambdaCallback(
            on_train_batch_end=lambda batch, logs: stamps.append(time.perf_counter()))
        model.fit(batches, epochs=1, steps_per_epoch=steps + 1, verbose=0, callbacks=[timer])
        rates.append(steps * batch / (stamps[-1] - stamps[0]))
    return statistics.median(rates), batch


def _worker(args):
    """Subprocess body: measure every config on `args.replicas` devices."""
    import tensorflow as tf

    (replicas,) = args.replicas
    if args.devices == "gpu":
        gpus = tf.config.list_physical_devices("GPU")
        if len(gpus) < replicas:
            raise SystemExit(f"--replicas {replicas}: only {len(gpus)} GPUs visible")
        name = tf.config.experimental.get_device_details(gpus[0]).get("device_name", "GPU")
        devices = [d.name for d in tf.config.list_logical_devices("GPU")[:replicas]]
        kind = f"{replicas} x {name}"
    else:
        from tf_lowprec.experiments.devices import use_logical_cpus

        devices = use_logical_cpus(replicas)
        kind = f"{replicas} logical CPU devices on {os.cpu_count()} cores"
    strategy = tf.distribute.MirroredStrategy(devices)
    for config in json.loads(args.configs):
        rate, batch = _measure(config, strategy, args.dataset, args.steps, args.repeats, args.warmup)
        print(json.dumps({**config, "global_batch_used": batch, "replicas": replicas,
                          "device_kind": kind, "images_per_second": rate}), flush=True)


def _add_derived(rows, dataset):
    single = {(r["model"], r["optimizer"], r["global_batch"]): r["images_per_second"]
              for r in rows if r["replicas"] == 1}
    for r in rows:
        base = single.get((r["model"], r["optimizer"], r["global_batch"]))
        r["seconds_per_epoch"] = TRAIN_EXAMPLES[dataset] / r["images_per_second"]
        r["speedup"] = r["images_per_second"] / base if base else float("nan")
        r["efficiency"] = r["speedup"] / r["replicas"] if base else float("nan")
    return rows


def plot(rows, path):
    """Seconds per epoch and efficiency vs replicas, one line per batch size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pairs = list(dict.fromkeys((r["model"], r["optimizer"]) for r in rows))
    figure, axes = plt.subplots(len(pairs), 2, figsize=(10, 3.4 * len(pairs)), squeeze=False)
    for (model, optimizer), (time_axis, eff_axis) in zip(pairs, axes):
        fixed = [r for r in rows if (r["model"], r["optimizer"]) == (model, optimizer) and not r["schedule"]]
        for batch in sorted({r["global_batch"] for r in fixed}):
            line = sorted((r for r in fixed if r["global_batch"] == batch), key=lambda r: r["replicas"])
            n = [r["replicas"] for r in line]
            time_axis.plot(n, [r["seconds_per_epoch"] for r in line], marker="o", label=f"batch {batch}")
            eff_axis.plot(n, [r["efficiency"] for r in line], marker="o", label=f"batch {batch}")
        time_axis.set_title(f"{model} / {optimizer}: seconds per epoch")
        eff_axis.set_title(f"{model} / {optimizer}: efficiency T_N / (N T_1)")
        for axis in (time_axis, eff_axis):
            axis.set_xlabel("replicas")
            axis.set_xticks(sorted({r["replicas"] for r in rows}))
            axis.grid(alpha=0.3)
        eff_axis.axhline(1.0, color="gray", lw=0.8)
        time_axis.legend(fontsize="small")
    figure.suptitle(rows[0]["device_kind"].split(" ", 1)[1] if rows else "")
    figure.tight_layout()
    save_figure_atomic(figure, path)
    plt.close(figure)


def _csv_list(cast):
    return lambda text: [cast(t) for t in text.split(",") if t.strip()]


def build_parser():
    parser = argparse.ArgumentParser(prog="tf-lowprec scale", description=__doc__.split("\n")[0])
    parser.add_argument("--replicas", type=_csv_list(int), default=[1, 2, 4])
    parser.add_argument("--models", type=_csv_list(str), default=["mlp", "cnn"])
    parser.add_argument("--optimizers", type=_csv_list(str), default=["sgd", "grda"])
    parser.add_argument("--batch-sizes", type=_csv_list(int), default=[128, 512])
    parser.add_argument("--batch-schedules", type=_csv_list(str), default=[],
                        help='growing global batch, e.g. "30+10*epoch,50+50*epoch"')
    parser.add_argument("--schedule-epochs", type=int, default=3)
    parser.add_argument("--dataset", default="fashion_mnist", choices=sorted(TRAIN_EXAMPLES))
    parser.add_argument("--devices", default="cpu", choices=["cpu", "gpu"])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--out", default="scaling_out")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--configs", help=argparse.SUPPRESS)
    return parser


def _validate(parser, args):
    if not args.replicas or any(n < 1 for n in args.replicas):
        parser.error(f"--replicas: positive integers required, got {args.replicas}")
    if 1 not in args.replicas:
        parser.error("--replicas must include 1 (the baseline of speedup and efficiency)")
    if any(b < 1 for b in args.batch_sizes):
        parser.error(f"--batch-sizes: positive integers required, got {args.batch_sizes}")
    for flag, value in (("--steps", args.steps), ("--repeats", args.repeats),
                        ("--schedule-epochs", args.schedule_epochs)):
        if value < 1:
            parser.error(f"{flag}: must be >= 1, got {value}")


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.worker:
        _worker(args)
        return 0
    _validate(parser, args)
    configs = _configs(args)
    rows = []
    bar = tqdm(total=len(configs) * len(args.replicas), unit="config")
    for replicas in args.replicas:
        bar.set_description(f"{replicas} replica(s)")
        command = [sys.executable, "-m", "tf_lowprec.experiments.scaling", "--worker",
                   "--replicas", str(replicas), "--devices", args.devices, "--dataset", args.dataset,
                   "--steps", str(args.steps), "--repeats", str(args.repeats),
                   "--warmup", str(args.warmup), "--configs", json.dumps(configs)]
        with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as worker:
            for line in worker.stdout:
                if line.startswith("{"):
                    rows.append(json.loads(line))
                    bar.update(1)
        if worker.returncode != 0:
            raise RuntimeError(f"scaling worker for {replicas} replica(s) failed "
                               f"(exit {worker.returncode}); its stderr is above")
    bar.close()
    rows = _add_derived(rows, args.dataset)
    write_csv_atomic(os.path.join(args.out, "scaling.csv"), rows)
    plot(rows, os.path.join(args.out, "scaling.png"))
    for r in rows:
        label = f"{r['schedule']} ep{r['epoch']}" if r["schedule"] else ""
        print(f"{r['model']:>8} {r['optimizer']:>5} N={r['replicas']} batch={r['global_batch']:>4} "
              f"{label:<18} {r['images_per_second']:9.0f} img/s  {r['seconds_per_epoch']:7.1f} s/epoch  "
              f"eff {r['efficiency']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
