"""Scaling benchmark: `model.fit` throughput vs replicas or worker processes.

    tf-lowprec scale --workers 1,2 --models mlp,cnn --optimizers sgd,grda \
        --batch-sizes 128,512,2048 --out DIR           # processes on 127.0.0.1
    tf-lowprec scale --replicas 1,2,4 --devices gpu --out DIR   # one process

Two modes, each timing `model.fit` on synthetic batches of the dataset's
shape for every (model, optimizer, global batch size), the same global
batch and steps for every count:

* `--workers 1,2,...` (`run_workers`): real multi-process scaling. For each
  N, N worker processes on 127.0.0.1 join one cluster (generated
  `TF_CONFIG`, free ports) under `tf.distribute.MultiWorkerMirroredStrategy`
  (with `tf_lowprec.distribute.enable_multi_worker_fit()`), each pinned to
  its share of the cores (`os.sched_setaffinity`; TensorFlow's intra- and
  inter-op threads set to the share). Baselines, one process each without a
  strategy: all the cores (`same total threads`, also the N = 1 row) and
  one worker's share (`one worker's threads`). Per row:
  `speedup_vs_total_threads = ips_N / ips(1 process, all cores)` (> 1 only
  when several processes use the same cores better than one), and
  `speedup_vs_worker_threads = ips_N / ips(1 process, cores/N)` with
  `efficiency_vs_worker_threads = speedup_vs_worker_threads / N` (1 = linear
  scaling). A worker that dies stops the others and fails the run with its
  log's tail; collectives time out after `--collective-timeout` seconds, so
  a lost peer cannot hang a worker. Writes `scaling_workers.csv` and
  `scaling_workers.png`.
* `--replicas 1,2,4` (`run_replicas`, the default): one process with N
  replicas under `tf.distribute.MirroredStrategy`: N GPUs with
  `--devices gpu`, else N logical CPU devices, which share the same cores:
  those numbers measure tf.distribute's overhead, not scaling
  (`device_kind` says which). `speedup = ips_N / ips_1`,
  `efficiency = speedup / N`. Growing-batch schedules such as `30+10*epoch`
  are expanded to their batch size in each of `--schedule-epochs` epochs,
  one row each. Writes `scaling.csv` and `scaling.png`.

Timing, both modes: `images_per_second` = global batch x steps / wall time
of those steps, from the end of the first step of a `fit` call to the end
of its last (fit's set-up excluded), median of `--repeats` calls, after
`--warmup` steps that include tracing (`--warmup 0`: none; the excluded
first step still absorbs the tracing). `seconds_per_epoch` =
train examples / images_per_second. The global batch is rounded up to a
multiple of the replica count (`global_batch_used`): Keras 3.15's `fit`
needs equal per-replica batches.

Names, counts and devices are checked before anything is launched; a bad
one is a one-line error and exit status 2.
"""

import argparse
import json
import os
import statistics
import sys
import time

from tqdm.auto import tqdm

from tf_lowprec.distribute.local_cluster import (
    LocalCluster,
    WorkerFailed,
    available_cores,
    core_shares,
    python_module_command,
)
from tf_lowprec.experiments.results_io import save_figure_atomic, write_csv_atomic

TRAIN_EXAMPLES = {"mnist": 60000, "fashion_mnist": 60000, "cifar10": 50000, "cifar100": 50000}
MODULE = "tf_lowprec.experiments.scaling"


def _configs(args):
    """(model, optimizer, global batch, schedule, epoch) dicts to measure."""
    from tf_lowprec.training.batch_size_schedules import get_batch_size_schedule

    batches = [(b, "", "") for b in args.batch_sizes]
    for spec in args.batch_schedules:
        schedule = get_batch_size_schedule(spec)
        batches += [(schedule(e), spec, e) for e in range(args.schedule_epochs)]
    return [
        {"model": m, "optimizer": o, "global_batch": b, "schedule": s, "epoch": e}
        for m in args.models for o in args.optimizers for b, s, e in batches
    ]


# --- inside a measuring process ----------------------------------------------


def _measure(config, strategy, dataset, steps, repeats, warmup):
    """Median images/second of `model.fit` on one synthetic global batch."""
    import keras
    import numpy as np
    import tensorflow as tf

    from tf_lowprec import data, models
    from tf_lowprec.optimizers import registry

    meta = data.info(dataset)
    replicas = strategy.num_replicas_in_sync
    batch = -(-int(config["global_batch"]) // replicas) * replicas
    rng = np.random.default_rng(0)
    x = rng.normal(size=(batch, *meta.input_shape)).astype("float32")
    y = rng.integers(0, meta.num_classes, batch).astype("int32")
    options = tf.data.Options()
    # One global batch, split across the workers (DATA sharding; there are
    # no files to shard).
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    batches = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch).repeat().with_options(options)
    with strategy.scope():
        keras.utils.set_random_seed(0)
        model = models.get(config["model"], input_shape=meta.input_shape,
                           num_classes=meta.num_classes)
        model.compile(registry.get(config["optimizer"]),
                      keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    if warmup > 0:
        model.fit(batches, epochs=1, steps_per_epoch=warmup, verbose=0)
    rates = []
    for _ in range(repeats):
        stamps = []
        timer = keras.callbacks.LambdaCallback(
            on_train_batch_end=lambda step, logs, stamps=stamps: stamps.append(time.perf_counter()))
        model.fit(batches, epochs=1, steps_per_epoch=steps + 1, verbose=0, callbacks=[timer])
        rates.append(steps * batch / (stamps[-1] - stamps[0]))
    return statistics.median(rates), batch


def _emit(path, row):
    with open(path, "a") as f:
        f.write(json.dumps(row) + "\n")


def _replica_process(args):
    """Body of one `--replicas` measuring process (N devices, MirroredStrategy)."""
    import tensorflow as tf

    replicas = args.count
    if args.devices == "gpu":
        gpus = tf.config.list_physical_devices("GPU")
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
        _emit(args.rows_file, {**config, "global_batch_used": batch, "replicas": replicas,
                               "device_kind": kind, "images_per_second": rate})


def _worker_process(args):
    """Body of one `--workers` process: a cluster member (TF_CONFIG) or a one-process baseline."""
    import tensorflow as tf

    from tf_lowprec import distribute

    threads = int(os.environ.get("TF_NUM_INTRAOP_THREADS", "0"))
    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    if "TF_CONFIG" in os.environ:
        distribute.enable_multi_worker_fit()
        options = tf.distribute.experimental.CommunicationOptions(
            timeout_seconds=args.collective_timeout)
        strategy = tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
        chief = strategy.cluster_resolver.task_id == 0
    else:
        strategy, chief = tf.distribute.get_strategy(), True
    for config in json.loads(args.configs):
        rate, batch = _measure(config, strategy, args.dataset, args.steps, args.repeats, args.warmup)
        if chief:
            _emit(args.rows_file, {**config, "global_batch_used": batch, "images_per_second": rate})


# --- the parent: launching, collecting, deriving -----------------------------


def _read_rows(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def _launch(args, configs, label, workers, cores, extra, bar, tf_config=True, env=None):
    """Runs one measuring launch; returns its rows (one per config)."""
    rows_file = os.path.join(args.out, "logs", f"{label}.jsonl")
    if os.path.exists(rows_file):
        os.remove(rows_file)
    command = python_module_command(
        MODULE, "--measure", *extra, "--dataset", args.dataset, "--steps", args.steps,
        "--repeats", args.repeats, "--warmup", args.warmup, "--configs", json.dumps(configs),
        "--rows-file", rows_file, "--collective-timeout", args.collective_timeout)
    bar.set_description(label)
    seen = 0

    def progress():
        nonlocal seen
        done = len(_read_rows(rows_file))
        bar.update(done - seen)
        seen = done

    env = {"TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    with LocalCluster(workers, command, cores=cores, env=env, tf_config=tf_config,
                      log_dir=os.path.join(args.out, "logs", label)) as cluster:
        cluster.wait(timeout=args.timeout, on_poll=progress)
    progress()
    rows = _read_rows(rows_file)
    if len(rows) != len(configs):
        raise WorkerFailed(f"{label}: {len(rows)} of {len(configs)} rows written; "
                           f"see {cluster.log_dir}")
    return rows


def run_workers(args, configs):
    """`--workers` mode: rows with images/s, speedups and efficiencies per worker count."""
    cores = available_cores()[: args.cores] if args.cores else available_cores()
    counts = sorted(set(args.workers))
    # (processes, cores of each): all cores in one process, each worker
    # count, and one worker's share alone.
    plan = {(1, len(cores)): [cores]}
    for n in counts:
        shares = core_shares(n, cores)
        plan.setdefault((n, len(shares[0])), shares)
        plan.setdefault((1, len(shares[0])), [shares[0]])
    cpu_env = {"CUDA_VISIBLE_DEVICES": ""}
    bar = tqdm(total=len(configs) * len(plan), unit="config")
    measured = {}
    try:
        for (n, per_worker), shares in plan.items():
            label = f"{n}proc_{per_worker}cores"
            measured[(n, per_worker)] = _launch(args, configs, label, n, shares, ["--mode", "workers"], bar,
                                    tf_config=n > 1, env=cpu_env)
    finally:
        bar.close()
    total = len(cores)
    rows = []
    for n in counts:
        threads = len(core_shares(n, cores)[0])
        for i, config in enumerate(configs):
            ips = measured[(n, threads)][i]["images_per_second"]
            base_total = measured[(1, total)][i]["images_per_second"]
            base_worker = measured[(1, threads)][i]["images_per_second"]
            rows.append({
                **config, "global_batch_used": measured[(n, threads)][i]["global_batch_used"],
                "workers": n, "cores_per_worker": threads, "total_cores": total,
                "images_per_second": ips,
                "seconds_per_epoch": TRAIN_EXAMPLES[args.dataset] / ips,
                "ips_1proc_total_threads": base_total,
                "ips_1proc_worker_threads": base_worker,
                "speedup_vs_total_threads": ips / base_total,
                "speedup_vs_worker_threads": ips / base_worker,
                "efficiency_vs_worker_threads": ips / base_worker / n,
            })
    return rows


def run_replicas(args, configs):
    """`--replicas` mode: rows per replica count (MirroredStrategy in one process)."""
    bar = tqdm(total=len(configs) * len(args.replicas), unit="config")
    rows = []
    try:
        for n in args.replicas:
            env = None if args.devices == "gpu" else {"CUDA_VISIBLE_DEVICES": ""}
            rows += _launch(args, configs, f"{n}replicas", 1, None,
                            ["--mode", "replicas", "--count", n, "--devices", args.devices],
                            bar, tf_config=False, env=env)
    finally:
        bar.close()
    single = {(r["model"], r["optimizer"], r["global_batch"]): r["images_per_second"]
              for r in rows if r["replicas"] == 1}
    for r in rows:
        base = single.get((r["model"], r["optimizer"], r["global_batch"]))
        r["seconds_per_epoch"] = TRAIN_EXAMPLES[args.dataset] / r["images_per_second"]
        r["speedup"] = r["images_per_second"] / base if base else float("nan")
        r["efficiency"] = r["speedup"] / r["replicas"] if base else float("nan")
    return rows


# --- plots -------------------------------------------------------------------


def _figure(rows):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pairs = list(dict.fromkeys((r["model"], r["optimizer"]) for r in rows))
    figure, axes = plt.subplots(len(pairs), 2, figsize=(10, 3.4 * len(pairs)), squeeze=False)
    return plt, figure, zip(pairs, axes)


def _lines(axis, rows, x, y):
    for batch in sorted({r["global_batch"] for r in rows}):
        line = sorted((r for r in rows if r["global_batch"] == batch), key=lambda r: r[x])
        axis.plot([r[x] for r in line], [r[y] for r in line], marker="o", label=f"batch {batch}")
    axis.set_xlabel(x)
    axis.set_xticks(sorted({r[x] for r in rows}))
    axis.grid(alpha=0.3)


def _plot_pairs(rows, x, columns, decorate, suptitle, path):
    """One figure row per (model, optimizer), fixed-batch runs only.

    `columns` names the two panels' `(y, title)`; `decorate(mine, left,
    right)` adds reference lines and legends to a row's panels.
    """
    plt, figure, panels = _figure(rows)
    for (model, optimizer), axes in panels:
        mine = [r for r in rows if (r["model"], r["optimizer"]) == (model, optimizer) and not r["schedule"]]
        for axis, (y, title) in zip(axes, columns):
            _lines(axis, mine, x, y)
            axis.set_title(f"{model} / {optimizer}: {title}")
        decorate(mine, *axes)
    if suptitle:
        figure.suptitle(suptitle)
    figure.tight_layout()
    save_figure_atomic(figure, path)
    plt.close(figure)


def plot(rows, path):
    """`--replicas`: seconds per epoch and efficiency vs replicas, one line per batch size."""

    def decorate(mine, time_axis, eff_axis):
        eff_axis.axhline(1.0, color="gray", lw=0.8)
        time_axis.legend(fontsize="small")

    columns = [("seconds_per_epoch", "seconds per epoch"), ("efficiency", "efficiency T_N / (N T_1)")]
    suptitle = rows[0]["device_kind"].split(" ", 1)[1] if rows else ""
    _plot_pairs(rows, "replicas", columns, decorate, suptitle, path)


def plot_workers(rows, path):
    """`--workers`: speedup vs one process with all cores, and vs one with a worker's cores."""

    def decorate(mine, total_axis, worker_axis):
        total_axis.axhline(1.0, color="gray", lw=0.8)
        counts = sorted({r["workers"] for r in mine})
        worker_axis.plot(counts, counts, color="gray", lw=0.8, ls="--", label="linear")
        total_axis.legend(fontsize="small")

    columns = [
        ("speedup_vs_total_threads", "vs 1 process, all cores"),
        ("speedup_vs_worker_threads", "vs 1 process, one worker's cores"),
    ]
    suptitle = f"MultiWorkerMirroredStrategy on 127.0.0.1, {rows[0]['total_cores']} cores" if rows else ""
    _plot_pairs(rows, "workers", columns, decorate, suptitle, path)


# --- command line ------------------------------------------------------------


def _csv_list(cast):
    return lambda text: [cast(t) for t in text.split(",") if t.strip()]


def build_parser():
    parser = argparse.ArgumentParser(prog="tf-lowprec scale", description=__doc__.split("\n")[0])
    counts = parser.add_mutually_exclusive_group()
    counts.add_argument("--replicas", type=_csv_list(int), default=None,
                        help="replica counts in one process (default 1,2,4)")
    counts.add_argument("--workers", type=_csv_list(int), default=None,
                        help="worker-process counts on 127.0.0.1 (MultiWorkerMirroredStrategy)")
    parser.add_argument("--models", type=_csv_list(str), default=["mlp", "cnn"])
    parser.add_argument("--optimizers", type=_csv_list(str), default=["sgd", "grda"])
    parser.add_argument("--batch-sizes", type=_csv_list(int), default=[128, 512])
    parser.add_argument("--batch-schedules", type=_csv_list(str), default=[],
                        help='growing global batch, e.g. "30+10*epoch,50+50*epoch"')
    parser.add_argument("--schedule-epochs", type=int, default=3)
    parser.add_argument("--dataset", default="fashion_mnist", choices=sorted(TRAIN_EXAMPLES))
    parser.add_argument("--devices", default="cpu", choices=["cpu", "gpu"])
    parser.add_argument("--cores", type=int, default=0,
                        help="--workers: cores to use (default: all this process may use)")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--collective-timeout", type=float, default=600.0,
                        help="--workers: seconds before a collective op gives up on a peer")
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds one launch may take before it is stopped (default: none)")
    parser.add_argument("--out", default="scaling_out")
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--mode", choices=["replicas", "workers"], help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--configs", help=argparse.SUPPRESS)
    parser.add_argument("--rows-file", help=argparse.SUPPRESS)
    return parser


def _validate(args):
    """The first problem with `args` as one line, or `None`."""
    from tf_lowprec import models
    from tf_lowprec.optimizers import registry

    counts = args.workers if args.workers is not None else args.replicas
    flag = "--workers" if args.workers is not None else "--replicas"
    if not counts or any(n < 1 for n in counts):
        return f"{flag}: positive integers required, got {counts}"
    if 1 not in counts:
        return f"{flag} must include 1 (the baseline of speedup and efficiency)"
    if any(b < 1 for b in args.batch_sizes):
        return f"--batch-sizes: positive integers required, got {args.batch_sizes}"
    for name, value, low in (("--steps", args.steps, 1), ("--repeats", args.repeats, 1),
                             ("--schedule-epochs", args.schedule_epochs, 1),
                             ("--warmup", args.warmup, 0), ("--cores", args.cores, 0)):
        if value < low:
            return f"{name}: must be >= {low}, got {value}"
    if args.collective_timeout <= 0:
        return f"--collective-timeout: must be > 0, got {args.collective_timeout}"
    unknown = [m for m in args.models if m.strip().lower() not in models.NAMES]
    if unknown or not args.models:
        return f"--models: unknown {unknown or args.models}; valid: {', '.join(models.NAMES)}"
    valid = registry.available()
    unknown = [o for o in args.optimizers if registry.normalize_name(o) not in valid]
    if unknown or not args.optimizers:
        return f"--optimizers: unknown {unknown or args.optimizers}; valid: {', '.join(valid)}"
    for spec in args.batch_schedules:
        from tf_lowprec.training.batch_size_schedules import get_batch_size_schedule

        try:
            get_batch_size_schedule(spec)
        except ValueError as error:
            return f"--batch-schedules: {error}"
    if args.workers is not None:
        if args.devices == "gpu":
            return "--workers runs on CPU cores; for GPUs use --replicas (MirroredStrategy)"
        cores = len(available_cores())
        if args.cores > cores:
            return f"--cores: {args.cores} requested, {cores} available"
    elif args.devices == "gpu":
        import tensorflow as tf

        gpus = len(tf.config.list_physical_devices("GPU"))
        if gpus < max(counts):
            return f"--devices gpu --replicas {max(counts)}: {gpus} GPU(s) visible"
    return None


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.measure:
        (_worker_process if args.mode == "workers" else _replica_process)(args)
        return 0
    if args.workers is None and args.replicas is None:
        args.replicas = [1, 2, 4]
    problem = _validate(args)
    if problem:
        parser.exit(2, f"{parser.prog}: error: {problem}\n")
    os.makedirs(os.path.join(args.out, "logs"), exist_ok=True)
    configs = _configs(args)
    try:
        if args.workers is not None:
            rows = run_workers(args, configs)
            name = "scaling_workers"
        else:
            rows = run_replicas(args, configs)
            name = "scaling"
    except (WorkerFailed, TimeoutError) as error:
        print(f"{parser.prog}: failed: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{parser.prog}: interrupted; every worker was stopped", file=sys.stderr)
        return 130
    write_csv_atomic(os.path.join(args.out, f"{name}.csv"), rows)
    (plot_workers if args.workers is not None else plot)(rows, os.path.join(args.out, f"{name}.png"))
    for r in rows:
        label = f"{r['schedule']} ep{r['epoch']}" if r["schedule"] else ""
        head = (f"{r['model']:>8} {r['optimizer']:>5} batch={r['global_batch']:>4} {label:<18} "
                f"{r['images_per_second']:9.0f} img/s  {r['seconds_per_epoch']:7.1f} s/epoch")
        if args.workers is not None:
            print(f"workers={r['workers']} x {r['cores_per_worker']} cores {head}  "
                  f"x{r['speedup_vs_total_threads']:.2f} vs 1 proc/{r['total_cores']} cores  "
                  f"x{r['speedup_vs_worker_threads']:.2f} vs 1 proc/{r['cores_per_worker']} cores "
                  f"(eff {r['efficiency_vs_worker_threads']:.2f})")
        else:
            print(f"N={r['replicas']} {head}  eff {r['efficiency']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
