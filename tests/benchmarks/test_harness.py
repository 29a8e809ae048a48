"""benchmarks/harness.py: rotation order, paired medians, the step timer, the environment row."""

import importlib.util
import os
import statistics

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_spec = importlib.util.spec_from_file_location(
    "harness", os.path.join(ROOT, "benchmarks", "harness.py"))
harness = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(harness)


def test_interleave_rotates_the_order_and_warms_up():
    calls = []

    def timer(name):
        def timed():
            calls.append(name)
            return harness.Timing(1.0, 0.5)
        return timed

    rows = harness.interleave({n: timer(n) for n in "abc"}, repeats=4, warmup=1)
    assert calls[:3] == ["a", "b", "c"]  # the warm-up, untimed
    assert calls[3:] == list("abc" "bca" "cab" "abc")
    assert [(r["variant"], r["repeat"], r["position"]) for r in rows[3:6]] == [
        ("b", 1, 0), ("c", 1, 1), ("a", 1, 2)]
    assert len(rows) == 12 and all(r["seconds"] == 1.0 for r in rows)
    with pytest.raises(ValueError, match="repeats"):
        harness.interleave({"a": timer("a")}, repeats=0)


def test_paired_summary_matches_numpy():
    rng = np.random.default_rng(0)
    base = rng.uniform(1, 2, 7)
    ours = base * rng.uniform(1.1, 1.3, 7)
    rows = [{"variant": "base", "repeat": i, "seconds": b, "cpu_seconds": 2 * b}
            for i, b in enumerate(base)]
    rows += [{"variant": "ours", "repeat": i, "seconds": o, "cpu_seconds": o}
             for i, o in enumerate(ours)]
    summary = {r["variant"]: r for r in harness.paired_summary(rows, "base")}
    assert summary["base"]["ratio"] == summary["base"]["paired_ratio"] == 1.0
    row = summary["ours"]
    assert row["median_seconds"] == pytest.approx(np.median(ours))
    assert row["ratio"] == pytest.approx(np.median(ours) / np.median(base))
    assert row["paired_ratio"] == pytest.approx(np.median(ours / base))
    assert row["cpu_ratio"] == pytest.approx(np.median(ours) / np.median(2 * base))
    assert row["repeats"] == 7
    with pytest.raises(ValueError, match="baseline"):
        harness.paired_summary(rows, "missing")


def test_step_timer_divides_by_steps_and_units():
    calls = []

    class Result:
        def numpy(self):
            calls.append("waited")

    def step():
        calls.append("step")
        return Result()

    timing = harness.step_timer(step, steps=3, units=10)()
    assert calls == ["step", "step", "step", "waited"]  # only the last result is waited for
    assert 0 <= timing.seconds < 1 and timing.cpu_seconds >= 0
    harness.wait([1.0, {"a": Result()}])
    assert calls[-1] == "waited"
    with pytest.raises(ValueError, match="steps"):
        harness.step_timer(step, steps=0)


def test_environment_row():
    env = harness.environment()
    assert env["cpu_cores"] == os.cpu_count() and env["cpu_model"]
    assert env["tensorflow"] and env["keras"] and env["numpy"] == np.__version__
    assert statistics.mean([env["load_average_1m"]]) >= 0
    rows = harness.with_environment([{"a": 1}], env)
    assert rows == [{"a": 1, **env}]
    assert str(env["cpu_cores"]) in harness.describe(env)


def test_cli_helpers_and_gather(tmp_path, capsys):
    import argparse

    parser = argparse.ArgumentParser()
    harness.add_arguments(parser, repeats=3, steps=4, warmup=1, out=str(tmp_path),
                          jit_compile=True)
    args = parser.parse_args(["--jit-compile", "true"])
    assert (args.repeats, args.steps, args.warmup, args.out) == (3, 4, 1, str(tmp_path))
    assert harness.jit_modes(parser, args.jit_compile) == [True]
    assert harness.choices(parser, "--workloads", "a, b", ("a", "b")) == ["a", "b"]
    with pytest.raises(SystemExit):
        harness.choices(parser, "--workloads", "a,c", ("a", "b"))
    assert "--workloads: unknown 'c'" in capsys.readouterr().err
    assert harness.gather([([1], [2]), ([3], [4])]) == ([1, 3], [2, 4])
    env = harness.save(str(tmp_path), {"s.csv": [{"x": 1}]})
    text = (tmp_path / "s.csv").read_text()
    assert text.startswith("x,cpu_model,") and str(env["cpu_cores"]) in text


def test_grid_main_measures_the_grid_saves_both_files_and_prints_each_summary_row(
    tmp_path, capsys
):
    calls = []

    def measure(workload, jit_compile, repeats, steps, warmup):
        calls.append((workload, jit_compile, repeats, steps, warmup))
        return [{"w": workload, "jit": jit_compile}], [{"w": workload, "r": len(calls)}]

    parser = harness.workload_parser("Doc.\nMore.", "a,b", repeats=3, steps=2, warmup=1,
                                     jit_compile=True)
    status = harness.grid_main(
        parser, ["--workloads", "b", "--out", str(tmp_path)], measure, ("a", "b"),
        ("rows.csv", "summary.csv"), lambda row: f"row {row['w']} {row['r']}")
    assert status == 0
    assert calls == [("b", False, 3, 2, 1), ("b", True, 3, 2, 1)]
    assert (tmp_path / "rows.csv").read_text().startswith("w,jit,cpu_model,")
    assert (tmp_path / "summary.csv").read_text().startswith("w,r,cpu_model,")
    assert capsys.readouterr().out.splitlines()[-2:] == ["row b 1", "row b 2"]


def test_time_same_start_tags_every_row_with_the_grid_point():
    import keras

    def build():
        return keras.Sequential([keras.Input((3,)), keras.layers.Dense(10)])  # 10 classes

    def make_batch(rng):
        return rng.normal(size=(4, 3)).astype("float32"), 4

    optimizers = {"sgd": lambda: keras.optimizers.SGD(0.1),
                  "adam": lambda: keras.optimizers.Adam(0.1)}
    info, rows = harness.time_same_start("tiny", False, build, make_batch, optimizers,
                                         repeats=2, steps=1, warmup=1)
    assert info == {"workload": "tiny", "jit_compile": False, "batch_size": 4}
    assert len(rows) == 4 and {row["variant"] for row in rows} == {"sgd", "adam"}
    assert all(row.items() >= info.items() and row["params"] == 40 for row in rows)

    measure = harness.same_start_measure({"tiny": (build, make_batch)}, lambda name: optimizers,
                                         {"adam": "sgd", "absent": "sgd"})
    rows, summary = measure("tiny", False, 2, 1, 1)
    assert len(rows) == 4 and [row["variant"] for row in summary] == ["adam"]
    assert summary[0].items() >= {**info, "baseline": "sgd", "repeats": 2}.items()
    assert summary[0] == {**info, **harness.paired_summary(rows, "sgd")[1]}


def test_ratio_line():
    row = {"workload": "mlp", "jit_compile": True, "variant": "lp_sgd", "median_seconds": 0.0123,
           "baseline": "sgd", "ratio": 1.5, "paired_ratio": 1.25}
    assert harness.ratio_line(4, 8)(row) == (
        " mlp xla=True    lp_sgd:   12.30 ms/step vs sgd -> x1.500 (paired median x1.250)")
