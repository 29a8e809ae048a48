"""An exclusive lock on an output directory: one writer at a time.

Two sweeps writing to the same `--out` would each rewrite `results.csv`
from their own rows, and the last writer's file would silently drop the
other's runs. `DirectoryLock` takes an advisory `flock` on
`<directory>/.lock` for the whole time a writer owns the directory; a second
writer fails at once with `DirectoryLockedError` (it does not wait: a sweep
can run for hours, and a silent queue looks like a hang), naming the process
that holds the lock.

The operating system drops the lock when its holder exits, however it exits
(crash, `SIGKILL`, power loss of a network client aside), so a stale lock
never blocks a resume. `flock` is per open file description, so two locks
in one process conflict as well. POSIX only (`fcntl`); on other systems the
lock is a no-op.
"""

import contextlib
import os

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

LOCK_NAME = ".lock"


def check_output_dir(path, name="out"):
    """Raises `ValueError` unless `path` is, or can be created as, a writable directory.

    Run before any training, so that a typo in an output path fails at once
    rather than after hours of work.
    """
    path = os.path.abspath(os.fspath(path))
    if os.path.exists(path) and not os.path.isdir(path):
        raise ValueError(f"{name} must be a directory; {path!r} is a file.")
    existing = path
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise ValueError(f"{name} {path!r} cannot be created: {existing!r} is a file.")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"{name} {path!r} is not writable (no write permission on {existing!r}).")


class DirectoryLockedError(RuntimeError):
    """Another writer holds the directory's lock."""


class DirectoryLock:
    """`with DirectoryLock(path):` holds `<path>/.lock` exclusively.

    Args:
        directory: The directory to own; created if absent.
    """

    def __init__(self, directory):
        self.directory = os.fspath(directory)
        self.path = os.path.join(self.directory, LOCK_NAME)
        self._fd = None

    def acquire(self):
        """Takes the lock or raises `DirectoryLockedError` at once."""
        os.makedirs(self.directory, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 64, 0).decode(errors="replace").strip()
                os.close(fd)
                raise DirectoryLockedError(
                    f"{self.directory} is in use by another writer (pid "
                    f"{holder or 'unknown'}); wait for it to finish or choose "
                    "another output directory."
                ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self):
        """Drops the lock (the file stays; its content is only informative)."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc_info):
        self.release()
