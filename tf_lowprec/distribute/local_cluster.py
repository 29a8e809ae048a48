"""N TensorFlow worker processes on 127.0.0.1: a multi-worker cluster on one machine.

`LocalCluster(n, command)` starts `command` `n` times, each with a generated
`TF_CONFIG` (`{"cluster": {"worker": ["127.0.0.1:<free port>", ...]},
"task": {"type": "worker", "index": i}}`), so that
`tf.distribute.MultiWorkerMirroredStrategy()` in each process joins the same
cluster; worker 0 is the chief. Each worker can be pinned to its own share
of the cores (`core_shares`): `os.sched_setaffinity` where the OS has it,
and TensorFlow's intra-/inter-op thread pools sized to the share through
`TF_NUM_INTRAOP_THREADS` / `TF_NUM_INTEROP_THREADS` / `OMP_NUM_THREADS`.

`wait()` returns when every worker has exited 0 and raises
`WorkerFailed` as soon as one exits otherwise, after stopping the others
(they would block in their next collective op); leaving the `with` block
for any reason (an exception, Ctrl-C) stops every worker still running:
SIGTERM, then SIGKILL after a grace period. Each worker's stdout and stderr
go to `<log_dir>/worker<i>.log`; the tail of the failed worker's log is in
the error message.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Self


class WorkerFailed(RuntimeError):
    """A worker process exited with a non-zero status."""


def free_ports(count):
    """`count` distinct TCP ports free on 127.0.0.1 right now."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def tf_config(addresses, index):
    """The `TF_CONFIG` dict of worker `index` in a cluster of `addresses`."""
    return {"cluster": {"worker": list(addresses)}, "task": {"type": "worker", "index": index}}


def available_cores():
    """The cores this process may run on (sorted)."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def core_shares(workers, cores=None):
    """Splits `cores` (default: `available_cores()`) into `workers` contiguous shares.

    With fewer cores than workers the shares wrap around (several workers
    then share a core). Raises `ValueError` for `workers < 1`.
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"`workers` must be a positive integer. Received: workers={workers!r}")
    cores = list(available_cores() if cores is None else cores)
    if len(cores) < workers:
        return [[cores[i % len(cores)]] for i in range(workers)]
    size, extra = divmod(len(cores), workers)
    shares, start = [], 0
    for i in range(workers):
        end = start + size + (i < extra)
        shares.append(cores[start:end])
        start = end
    return shares


def thread_environment(threads):
    """Environment variables that size TensorFlow's (and oneDNN's) thread pools."""
    threads = str(int(threads))
    return {"TF_NUM_INTRAOP_THREADS": threads, "TF_NUM_INTEROP_THREADS": threads,
            "OMP_NUM_THREADS": threads}


def _pin(pid, cores):
    if cores and hasattr(os, "sched_setaffinity"):
        try:
            os.sched_setaffinity(pid, cores)
        except OSError:  # the process already exited
            pass


def _stop(process, grace):
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _tail(path, lines=25):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""


class LocalCluster:
    """`workers` copies of `command` forming one TF cluster on 127.0.0.1.

    Args:
        workers: Number of worker processes (>= 1). With `tf_config=False`
            (one process without `TF_CONFIG`), must be 1.
        command: argv list; `sys.executable` is a good first element.
        cores: One list of core ids per worker (e.g. `core_shares(workers)`),
            or `None` to leave scheduling to the OS.
        env: Extra environment variables for every worker.
        worker_env: Callable `index -> dict` of per-worker variables
            (e.g. `CUDA_VISIBLE_DEVICES`).
        log_dir: Directory for the worker logs (default: a new temporary one).
        tf_config: Set `TF_CONFIG` (default); `False` runs one plain process.
        grace: Seconds between SIGTERM and SIGKILL when stopping a worker.
        cwd: Working directory of the workers.
    """

    def __init__(
        self,
        workers: int,
        command: Sequence[str],
        cores: Sequence[Sequence[int]] | None = None,
        env: Mapping[str, str] | None = None,
        worker_env: Callable[[int], Mapping[str, str]] | None = None,
        log_dir: str | None = None,
        tf_config: bool = True,
        grace: float = 5.0,
        cwd: str | os.PathLike[str] | None = None,
    ) -> None:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"`workers` must be a positive integer. Received: workers={workers!r}")
        if not tf_config and workers != 1:
            raise ValueError(f"Without `tf_config` there is one process. Received: workers={workers}")
        if cores is not None and len(cores) != workers:
            raise ValueError(f"`cores` needs one list per worker ({workers}). Received: cores={cores!r}")
        self.workers = workers
        self.command = list(command)
        self.cores = cores
        self.env = dict(env or {})
        self.worker_env = worker_env
        self.log_dir = log_dir or tempfile.mkdtemp(prefix="tf_lowprec_cluster_")
        self.use_tf_config = tf_config
        self.grace = grace
        self.cwd = cwd
        self.processes = []

    def log_path(self, index: int) -> str:
        return os.path.join(self.log_dir, f"worker{index}.log")

    def start(self) -> Self:
        os.makedirs(self.log_dir, exist_ok=True)
        addresses = [f"127.0.0.1:{port}" for port in free_ports(self.workers)]
        base = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
        base.update(self.env)
        for index in range(self.workers):
            env = dict(base)
            if self.use_tf_config:
                env["TF_CONFIG"] = json.dumps(tf_config(addresses, index))
            if self.cores is not None:
                env.update(thread_environment(len(self.cores[index])))
            if self.worker_env is not None:
                env.update(self.worker_env(index))
            with open(self.log_path(index), "wb") as log:
                process = subprocess.Popen(self.command, env=env, cwd=self.cwd, stdout=log,
                                           stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            # Still in Python's start-up, long before TensorFlow creates its
            # thread pools (threads inherit the affinity).
            _pin(process.pid, self.cores[index] if self.cores else None)
            self.processes.append(process)
        return self

    def poll(self) -> bool | None:
        """`None` while any worker runs; raises `WorkerFailed` if one failed; else `True`."""
        for index, process in enumerate(self.processes):
            code = process.poll()
            if code not in (None, 0):
                self.stop()
                how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
                raise WorkerFailed(
                    f"worker {index} of {self.workers} {how}; the other workers were stopped. "
                    f"Its log ({self.log_path(index)}) ends with:\n{_tail(self.log_path(index))}")
        return True if all(p.poll() == 0 for p in self.processes) else None

    def wait(
        self,
        timeout: float | None = None,
        interval: float = 0.2,
        on_poll: Callable[[], object] | None = None,
    ) -> None:
        """Waits for all workers; raises `WorkerFailed` or `TimeoutError` (workers stopped)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if on_poll is not None:
                on_poll()
            if deadline is not None and time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"{self.workers} worker(s) still running after {timeout} s; stopped")
            time.sleep(interval)

    def stop(self) -> None:
        """Stops every worker still running (SIGTERM, then SIGKILL)."""
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            _stop(process, self.grace)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False


def python_module_command(module, *args):
    """`[sys.executable, "-m", module, *args]`."""
    return [sys.executable, "-m", module, *map(str, args)]
