"""The timing machinery every benchmark in benchmarks/ shares.

A benchmark compares variants (an optimizer, a quantized layer, a pruning
method) with a baseline on a machine whose load drifts. The recipe, here
once:

1. `step_timer(step, steps)`: a zero-argument callable that runs `step()`
   `steps` times back to back, waits for the last result, and returns the
   wall-clock and process-CPU seconds per call (`Timing`).
2. `interleave(timers, repeats, warmup)`: every repeat times every variant
   once, in an order rotated by one each repeat, so a slow spell of the
   machine hits every variant alike and no variant always runs first.
3. `paired_summary(rows, baseline)`: per variant, the median seconds, the
   ratio of medians to the baseline, and the median over repeats of the
   *paired* ratio variant/baseline (the two timed back to back in the same
   repeat), which is the number to quote on a shared machine.
4. `environment()`: one row describing where it ran (CPU model, cores, load
   average, Python/NumPy/TensorFlow/Keras/tf_lowprec versions); benchmarks
   add it to their summary rows (`with_environment`) and print it.

Used as `from harness import ...` by the scripts in this folder (run as
`python benchmarks/<script>.py`, which puts this folder on `sys.path`).
Importing it loads neither TensorFlow nor Keras, so the tf_keras process of
`tfmot_prune.py` can use it too.
"""

import argparse
import dataclasses
import importlib.metadata
import os
import platform
import statistics
import time

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
"""Where the benchmarks write their CSV files by default: benchmarks/results."""


@dataclasses.dataclass(frozen=True)
class Timing:
    """Seconds per call: wall clock and CPU time of this process (all its threads)."""

    seconds: float
    cpu_seconds: float


def wait(result):
    """Blocks until `result` (a tensor, a number, a list/tuple/dict of them, or None) exists."""
    if result is None:
        return
    if isinstance(result, dict):
        result = list(result.values())
    if isinstance(result, (list, tuple)):
        for item in result[-1:]:
            wait(item)
        return
    numpy = getattr(result, "numpy", None)
    if callable(numpy):
        numpy()
    else:
        float(result)


def step_timer(step, steps=1, units=1):
    """A callable that times `steps` back-to-back calls of `step()` and returns a per-unit `Timing`.

    Only the last call's result is waited for (`wait`): asynchronous work of
    the earlier calls is finished by then, and the timer does not add a
    synchronisation to every step. The time is divided by `steps * units`
    (e.g. `units` = training steps inside one `fit` call).
    """
    if steps < 1:
        raise ValueError(f"`steps` must be >= 1. Received: steps={steps!r}")
    if units <= 0:
        raise ValueError(f"`units` must be > 0. Received: units={units!r}")

    def timed():
        start, cpu_start = time.perf_counter(), time.process_time()
        result = None
        for _ in range(steps):
            result = step()
        wait(result)
        return Timing((time.perf_counter() - start) / (steps * units),
                      (time.process_time() - cpu_start) / (steps * units))

    return timed


def train_step_timer(model, x, y, steps=1):
    """`step_timer` of `model.train_on_batch(x, y)`."""
    return step_timer(lambda: model.train_on_batch(x, y), steps)


def interleave(timers, repeats, warmup=1):
    """Times every variant `repeats` times, rotating the order each repeat.

    Args:
        timers: `{name: callable}`; each call times one repeat and returns a
            `Timing` (or plain seconds).
        repeats: Number of timed repeats (>= 1).
        warmup: Untimed calls of every timer first (tracing, caches).

    Returns:
        One row per variant and repeat: `variant`, `repeat`, `position` (its
        place in that repeat's order), `seconds`, `cpu_seconds`.
    """
    if repeats < 1:
        raise ValueError(f"`repeats` must be >= 1. Received: repeats={repeats!r}")
    names = list(timers)
    for _ in range(warmup):
        for name in names:
            timers[name]()
    rows = []
    for repeat in range(repeats):
        shift = repeat % len(names)
        for position, name in enumerate(names[shift:] + names[:shift]):
            timing = timers[name]()
            if not isinstance(timing, Timing):
                timing = Timing(float(timing), float("nan"))
            rows.append({"variant": name, "repeat": repeat, "position": position,
                         "seconds": timing.seconds, "cpu_seconds": timing.cpu_seconds})
    return rows


def paired_summary(rows, baseline, variant_key="variant"):
    """Medians and ratios per variant of `interleave` rows (of one workload).

    Returns:
        One dict per variant (baseline included): `variant`, `baseline`,
        `repeats`, `median_seconds`, `median_cpu_seconds`, `ratio` (median
        over the baseline's median), `paired_ratio` (median over repeats of
        the variant's time over the baseline's in the same repeat) and
        `cpu_ratio` (ratio of median CPU times).
    """
    times, cpu = {}, {}
    for row in rows:
        times.setdefault(row[variant_key], {})[row["repeat"]] = float(row["seconds"])
        cpu.setdefault(row[variant_key], {})[row["repeat"]] = float(row["cpu_seconds"])
    if baseline not in times:
        raise ValueError(f"No rows for the baseline {baseline!r}; variants: {list(times)}")
    base = times[baseline]
    base_median = statistics.median(base.values())
    base_cpu = statistics.median(cpu[baseline].values())
    summary = []
    for name, ours in times.items():
        median_cpu = statistics.median(cpu[name].values())
        summary.append({
            "variant": name, "baseline": baseline, "repeats": len(ours),
            "median_seconds": statistics.median(ours.values()),
            "median_cpu_seconds": median_cpu,
            "ratio": statistics.median(ours.values()) / base_median,
            "paired_ratio": statistics.median(ours[k] / base[k] for k in ours if k in base),
            "cpu_ratio": median_cpu / base_cpu if base_cpu > 0 else float("nan"),
        })
    return summary


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(package):
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return ""


def environment():
    """Where and with what a benchmark ran, as one flat row (load average read now)."""
    try:
        load = os.getloadavg()
    except OSError:
        load = (float("nan"),) * 3
    return {
        "cpu_model": _cpu_model(),
        "cpu_cores": os.cpu_count(),
        "load_average_1m": round(load[0], 2),
        "load_average_5m": round(load[1], 2),
        "load_average_15m": round(load[2], 2),
        "python": platform.python_version(),
        "numpy": _version("numpy"),
        "tensorflow": _version("tensorflow") or _version("tensorflow-cpu"),
        "keras": _version("keras"),
        "tf_lowprec": _version("tf_lowprec") or _version("tf-lowprec"),
    }


def with_environment(rows, env=None):
    """`rows` with the `environment()` columns appended to each."""
    env = environment() if env is None else env
    return [{**row, **env} for row in rows]


def describe(env):
    """One line for the console."""
    return (f"# {env['cpu_model']}, {env['cpu_cores']} cores, load average "
            f"{env['load_average_1m']}/{env['load_average_5m']}/{env['load_average_15m']}; "
            f"TF {env['tensorflow']}, Keras {env['keras']}, tf_lowprec {env['tf_lowprec']}")


def same_start_models(build, make_batch, optimizers, jit_compile=False, prepare=None,
                      classes=10, seed=0):
    """Compiled copies of `build()`, one per optimizer, all from the same weights, and a batch.

    `optimizers` is `{name: factory}`; `make_batch(rng)` returns `(x,
    batch_size)` and the labels are drawn uniformly from `classes` with the
    same `rng`; `prepare(name, model)`, if given, may rewrite a model (e.g.
    quantize its activations) before it is compiled with sparse categorical
    cross-entropy on logits. Returns `(models, x, y, batch_size)`, `x` and
    `y` as tensors, ready for `time_train_steps`.
    """
    import keras
    import numpy as np
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    weights = build().get_weights()
    rng = np.random.default_rng(seed)
    x, batch = make_batch(rng)
    y = rng.integers(0, classes, batch).astype("int32")
    models = {}
    for name, make_optimizer in optimizers.items():
        model = build()
        model.set_weights(weights)
        if prepare is not None:
            model = prepare(name, model)
        model.compile(
            optimizer=make_optimizer(),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            jit_compile=jit_compile,
        )
        models[name] = model
    return models, tf.constant(x), tf.constant(y), batch


def time_train_steps(models, x, y, repeats, steps, warmup):
    """`interleave` over `train_on_batch(x, y)` of compiled `models` (`{name: model}`).

    Each model first runs `warmup` untimed steps (tracing); every repeat then
    times `steps` consecutive steps per model. Rows as `interleave`'s, plus
    `params` (the model's parameter count).
    """
    for model in models.values():
        train_step_timer(model, x, y, warmup)()
    timers = {name: train_step_timer(model, x, y, steps) for name, model in models.items()}
    return [{**row, "params": models[row["variant"]].count_params()}
            for row in interleave(timers, repeats, warmup=0)]


def time_same_start(workload, jit_compile, build, make_batch, optimizers, repeats, steps, warmup,
                    prepare=None):
    """`time_train_steps` of `same_start_models(build, make_batch, optimizers, ...)`.

    The measurement of one grid point of a benchmark that compares
    optimizers (or prepared models) on one workload. Returns `(info, rows)`:
    `info` is `{"workload", "jit_compile", "batch_size"}`, which every row
    carries (add it to the summary rows too), `rows` are
    `time_train_steps`'s.
    """
    models, x, y, batch = same_start_models(build, make_batch, optimizers, jit_compile,
                                            prepare=prepare)
    info = {"workload": workload, "jit_compile": jit_compile, "batch_size": batch}
    return info, [{**info, **row} for row in time_train_steps(models, x, y, repeats, steps, warmup)]


def same_start_measure(workloads, variants, baselines, prepare=None):
    """The `measure` of a benchmark that times variants on workloads from the same start.

    For `measure_grid` / `grid_main`: `measure(workload, jit_compile,
    repeats, steps, warmup)` runs `time_same_start` on `workloads[workload]`
    (a `(build, make_batch)` pair) with the optimizer factories
    `variants(workload)` (`{variant: factory}`) and `prepare`, and returns
    its rows and a summary: for each variant in `baselines` (`{variant:
    its baseline variant}`) that ran, its `paired_summary` row against its
    own baseline, with the grid point's `info`.
    """

    def measure(workload, jit_compile, repeats, steps, warmup):
        build, make_batch = workloads[workload]
        optimizers = variants(workload)
        info, rows = time_same_start(workload, jit_compile, build, make_batch, optimizers,
                                     repeats, steps, warmup, prepare=prepare)
        summary = []
        for name, baseline in baselines.items():
            if name in optimizers:
                pair = [row for row in rows if row["variant"] in (name, baseline)]
                summary += [{**info, **row} for row in paired_summary(pair, baseline)
                            if row["variant"] == name]
        return rows, summary

    return measure


def add_arguments(parser, repeats, steps, warmup, out=None, jit_compile=False):
    """Adds the common `--repeats`, `--steps`, `--warmup` and `--out` options with these defaults.

    With `jit_compile=True` also `--jit-compile` (a comma-separated subset of
    `false,true`; read it with `jit_modes`). `out` defaults to `RESULTS`.
    """
    if jit_compile:
        parser.add_argument("--jit-compile", default="false,true",
                            help="comma-separated subset of false,true")
    parser.add_argument("--repeats", type=int, default=repeats, help="timed repeats per variant")
    parser.add_argument("--steps", type=int, default=steps, help="steps per timed repeat")
    parser.add_argument("--warmup", type=int, default=warmup, help="untimed steps first")
    parser.add_argument("--out", default=out or RESULTS, help="results folder")


def choices(parser, flag, text, valid):
    """The comma-separated `text` of option `flag` as a list; a parser error names any invalid one."""
    values = [v.strip() for v in text.split(",") if v.strip()]
    for value in values:
        if value not in valid:
            parser.error(f"{flag}: unknown {value!r}; valid: {', '.join(map(str, valid))}")
    return values


def jit_modes(parser, text):
    """`--jit-compile` text -> list of booleans."""
    return [value == "true" for value in choices(parser, "--jit-compile", text, ("false", "true"))]


def gather(results):
    """Concatenates an iterable of `(rows, summary)` pairs into one `(rows, summary)`."""
    rows, summary = [], []
    for timed, summarized in results:
        rows += timed
        summary += summarized
    return rows, summary


def workload_parser(doc, workloads, **defaults):
    """A parser for `doc`'s benchmark: `--workloads` (default `workloads`) and `add_arguments(**defaults)`."""
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument("--workloads", default=workloads)
    add_arguments(parser, **defaults)
    return parser


def measure_grid(measure, parser, args, workloads):
    """`gather` of `measure(workload, jit_compile, repeats, steps, warmup)` over the grid.

    The grid is `--workloads` (names in `workloads`) by `--jit-compile` of
    `workload_parser`'s `args`; without a `--jit-compile` option it is the
    workloads alone, measured as `measure(workload, repeats, steps, warmup)`.
    """
    names = choices(parser, "--workloads", args.workloads, workloads)
    if not hasattr(args, "jit_compile"):
        return gather(measure(name, args.repeats, args.steps, args.warmup) for name in names)
    return gather(
        measure(name, jit, args.repeats, args.steps, args.warmup)
        for name in names
        for jit in jit_modes(parser, args.jit_compile))


def grid_main(parser, argv, measure, workloads, files, line):
    """The main of a grid benchmark: parse, measure, save, print; returns 0 (the exit status).

    Parses `argv` with `parser` (a `workload_parser`), runs `measure_grid(
    measure, parser, args, workloads)`, `save`s its rows and summary to
    `args.out` under the two names in `files` (`(rows file, summary file)`)
    and prints `line(row)` for each summary row.
    """
    args = parser.parse_args(argv)
    rows, summary = measure_grid(measure, parser, args, workloads)
    rows_file, summary_file = files
    save(args.out, {rows_file: rows, summary_file: summary})
    for row in summary:
        print(line(row))
    return 0


def ratio_line(workload_width, variant_width):
    """A `line(row)` for `grid_main`: one summary row of a `--jit-compile` grid.

    `<workload> xla=<jit_compile> <variant>: <median> ms/step vs <baseline>
    -> x<ratio> (paired median x<paired_ratio>)`, the names right-aligned to
    the given widths.
    """

    def line(row):
        return (f"{row['workload']:>{workload_width}} xla={row['jit_compile']!s:5} "
                f"{row['variant']:>{variant_width}}: {1e3 * row['median_seconds']:7.2f} ms/step "
                f"vs {row['baseline']} -> x{row['ratio']:.3f} "
                f"(paired median x{row['paired_ratio']:.3f})")

    return line


def save(out, files):
    """Writes `{file name: rows}` to `out` (atomically) with the environment columns; prints it.

    Returns:
        The `environment()` row.
    """
    from tf_lowprec.experiments.results_io import write_csv_atomic

    env = environment()
    for name, rows in files.items():
        write_csv_atomic(os.path.join(out, name), with_environment(rows, env))
    print(describe(env))
    return env
