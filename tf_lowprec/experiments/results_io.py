"""Result files that are never left half-written."""

from __future__ import annotations

import csv
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from typing import Any


def write_csv_atomic(
    path: str | os.PathLike[str],
    rows: Iterable[Mapping[str, Any]],
    fieldnames: Sequence[str] | None = None,
) -> None:
    """Writes `rows` (dicts) to `path` atomically: a temp file, then rename.

    An interrupted write leaves either the old file or the new one, never a
    truncated mix. Columns default to the union of the rows' keys in first-seen
    order.

    Args:
        path: Destination CSV path; parent directories are created.
        rows: Iterable of dicts.
        fieldnames: Column order. Defaults to the keys in first-seen order.
    """
    rows = list(rows)
    if fieldnames is None:
        fieldnames = list(dict.fromkeys(key for row in rows for key in row))

    def write(f):
        writer = csv.DictWriter(f, fieldnames=fieldnames, restval="")
        writer.writeheader()
        writer.writerows(rows)

    _replace_atomically(path, write, suffix=".csv", newline="")


def write_text_atomic(path, text):
    """Writes the string `text` to `path` atomically (temp file, fsync, rename)."""
    _replace_atomically(path, lambda f: f.write(text), suffix=os.path.splitext(path)[1])


def write_bytes_atomic(path, data):
    """Writes the bytes `data` to `path` atomically (temp file, fsync, rename)."""
    _replace_atomically(path, lambda f: f.write(data), suffix=os.path.splitext(path)[1],
                        mode="wb")


def _replace_atomically(path, write, suffix, newline=None, mode="w"):
    """Calls `write(f)` on a temp file in `path`'s directory, then renames it over `path`."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=suffix)
    try:
        with os.fdopen(fd, mode, newline=newline) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def read_csv(path: str | os.PathLike[str]) -> list[dict[str, str]]:
    """Reads a CSV written by `write_csv_atomic` into a list of dicts (strings)."""
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def save_figure_atomic(figure, path, dpi=120):
    """Saves a matplotlib figure to `path` via a temp file and rename."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    suffix = os.path.splitext(path)[1] or ".png"
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=suffix)
    os.close(fd)
    try:
        figure.savefig(tmp, dpi=dpi, bbox_inches="tight")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
