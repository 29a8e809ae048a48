"""Where dataset files are looked for, in order, and what counts as finding them.

Search order (first complete match wins):

1. the ``data_dir`` argument. When it is given it is the only place searched:
   a directory that does not exist, is a file, or holds no usable copy is an
   error (`DatasetNotFoundError`), never a silent fall back to another copy
   (a typo must not load other data);
2. the directory in the environment variable ``TF_LOWPREC_DATA``;
3. system directories: ``/usr/share/datasets/fashion-mnist`` for Fashion-MNIST
   (Debian/Ubuntu package ``dataset-fashion-mnist``);
4. the Keras cache, ``$KERAS_HOME/datasets`` (default ``~/.keras/datasets``), then
   ``/tmp/.keras/datasets`` where Keras falls back when its home is not writable.

Each base directory is tried as ``<base>/<name>/`` (for instance ``fashion_mnist/`` or
``fashion-mnist/``) and then as ``<base>`` itself. Note the flat layout cannot tell
MNIST from Fashion-MNIST (same file names): it serves whichever one is asked for.

Recognized files in a directory:

* MNIST / Fashion-MNIST: ``{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz`` (upstream),
  the same uncompressed (also spelled ``train-images.idx3-ubyte``); for MNIST also
  Keras' ``mnist.npz``.
* CIFAR-10: the extracted ``cifar-10-batches-py/`` folder (or the directory itself
  holding ``data_batch_1..5``/``test_batch``), ``cifar-10-python.tar.gz``, and the
  Keras cache names ``cifar-10-batches-py-target/cifar-10-batches-py/`` and
  ``cifar-10-batches-py-target_archive``.
* CIFAR-100: likewise with ``cifar-100-python/`` (``train``, ``test``),
  ``cifar-100-python.tar.gz``, ``cifar-100-python-target[_archive]``.

Only the files of the requested split are needed. A directory holding part of them
(say images without labels) is skipped, and reported if nothing is found at all.
"""

from __future__ import annotations

import dataclasses
import os

from tf_lowprec.data import cifar

ENV_VAR = "TF_LOWPREC_DATA"
# Module-level so tests (and unusual systems) can replace them.
SYSTEM_DIRS = {"fashion_mnist": ("/usr/share/datasets/fashion-mnist",)}
KERAS_FALLBACK_HOME = os.path.join("/tmp", ".keras")

_SUBFOLDERS = {
    "mnist": ("mnist",),
    "fashion_mnist": ("fashion_mnist", "fashion-mnist"),
    "cifar10": ("cifar10", "cifar-10"),
    "cifar100": ("cifar100", "cifar-100"),
}
_CIFAR_ARCHIVES = {  # upstream name, Keras >= 3.6 cache name, Keras 2 cache name
    "cifar10": ("cifar-10-python.tar.gz", "cifar-10-batches-py-target_archive",
                "cifar-10-batches-py.tar.gz"),
    "cifar100": ("cifar-100-python.tar.gz", "cifar-100-python-target_archive"),
}
_KERAS_TARGET = {"cifar10": "cifar-10-batches-py-target", "cifar100": "cifar-100-python-target"}


@dataclasses.dataclass(frozen=True)
class Source:
    """Files found for one split.

    Attributes:
        kind: ``"idx"`` (paths = images, labels), ``"npz"`` (Keras ``mnist.npz``),
            ``"cifar_folder"`` (an extracted folder) or ``"cifar_archive"`` (a tar.gz).
        paths: the file or folder paths, as described for `kind`.
        where: which search location it came from, e.g. ``"$TF_LOWPREC_DATA"``.
    """

    kind: str
    paths: tuple[str, ...]
    where: str


class DatasetNotFoundError(FileNotFoundError):
    """No usable local copy of a dataset, and none could be downloaded."""


def keras_dataset_dirs() -> list[str]:
    """The Keras download cache directories, in the order Keras itself uses them."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    dirs = [os.path.join(home, "datasets")]
    fallback = os.path.join(KERAS_FALLBACK_HOME, "datasets")
    if os.path.abspath(fallback) != os.path.abspath(dirs[0]):
        dirs.append(fallback)
    return dirs


def search_locations(name: str, data_dir=None) -> list[tuple[str, str | None]]:
    """``(label, base directory or None)`` pairs in search order.

    A given `data_dir` is the only location (see the module docstring).
    """
    if data_dir is not None:
        return [("data_dir argument", os.fspath(data_dir))]
    locations = [
        ("data_dir argument", os.fspath(data_dir) if data_dir is not None else None),
        (f"${ENV_VAR}", os.environ.get(ENV_VAR) or None),
    ]
    for d in SYSTEM_DIRS.get(name, ()):
        locations.append(("system directory", d))
    for d in keras_dataset_dirs():
        locations.append(("Keras cache", d))
    return locations


def candidate_dirs(name: str, base: str) -> list[str]:
    """``<base>/<name>`` under each accepted spelling, then ``<base>`` itself."""
    return [os.path.join(base, sub) for sub in _SUBFOLDERS[name]] + [base]


def _first_existing(directory: str, names) -> str | None:
    for n in names:
        path = os.path.join(directory, n)
        if os.path.isfile(path):
            return path
    return None


def _find_idx(name: str, split: str, directory: str):
    prefix = "train" if split == "train" else "t10k"
    images = _first_existing(directory, (
        f"{prefix}-images-idx3-ubyte.gz", f"{prefix}-images-idx3-ubyte",
        f"{prefix}-images.idx3-ubyte"))
    labels = _first_existing(directory, (
        f"{prefix}-labels-idx1-ubyte.gz", f"{prefix}-labels-idx1-ubyte",
        f"{prefix}-labels.idx1-ubyte"))
    if images and labels:
        return ("idx", (images, labels)), None
    if name == "mnist":
        npz = _first_existing(directory, ("mnist.npz",))
        if npz:
            return ("npz", (npz,)), None
    if images or labels:
        have, lack = (images, "labels") if images else (labels, "images")
        return None, f"incomplete: has {os.path.basename(have)} but no {prefix} {lack} file"
    return None, None


def _find_cifar(name: str, split: str, directory: str):
    folder_name = cifar.LAYOUTS[name][0]
    members = [m.split("/", 1)[1] for m in cifar.member_names(name, split)]
    notes = []
    for folder in (os.path.join(directory, folder_name),
                   os.path.join(directory, _KERAS_TARGET[name], folder_name),
                   directory):
        present = [m for m in members if os.path.isfile(os.path.join(folder, m))]
        if len(present) == len(members):
            return ("cifar_folder", (folder,)), None
        if present:
            missing = sorted(set(members) - set(present))
            notes.append(f"incomplete folder {folder}: missing {', '.join(missing)}")
    archive = _first_existing(directory, _CIFAR_ARCHIVES[name])
    if archive:
        return ("cifar_archive", (archive,)), None
    return None, "; ".join(notes) or None


def find_in_dir(name: str, split: str, directory: str):
    """Looks for `split` of `name` directly in `directory`.

    Returns:
        ``((kind, paths), None)`` when found, else ``(None, note)`` where `note` says
        what partial data was there (or is None).
    """
    if not os.path.isdir(directory):
        return None, "does not exist"
    if name in cifar.LAYOUTS:
        found, note = _find_cifar(name, split, directory)
    else:
        found, note = _find_idx(name, split, directory)
    return found, (note if found else note or "no matching files")


def expected_files(name: str, split: str) -> str:
    """One line naming the files that would satisfy a search, for error messages."""
    if name in cifar.LAYOUTS:
        return (f"{_CIFAR_ARCHIVES[name][0]} (upstream python version), or its "
                f"extracted {cifar.LAYOUTS[name][0]}/ folder")
    prefix = "train" if split == "train" else "t10k"
    extra = " or Keras' mnist.npz" if name == "mnist" else ""
    return (f"{prefix}-images-idx3-ubyte.gz and {prefix}-labels-idx1-ubyte.gz "
            f"(or uncompressed){extra}")


def locate(name: str, split: str, data_dir=None):
    """Finds local files for `split` of dataset `name` (canonical name).

    Returns:
        ``(source, report)``: the first `Source` found in search order, or None; and
        a list of ``"label: directory: outcome"`` lines for every directory looked at.
    """
    check_data_dir(data_dir)
    report = []
    for label, base in search_locations(name, data_dir):
        if base is None:
            report.append(f"{label}: (not set)")
            continue
        if not os.path.isdir(base):
            report.append(f"{label}: {base}: does not exist")
            continue
        for directory in candidate_dirs(name, base):
            found, note = find_in_dir(name, split, directory)
            if found:
                return Source(found[0], found[1], label), report
            report.append(f"{label}: {directory}: {note}")
    return None, report


def check_data_dir(data_dir) -> None:
    """Raises `DatasetNotFoundError` unless `data_dir` is None or a directory."""
    if data_dir is None:
        return
    if not isinstance(data_dir, (str, os.PathLike)):
        raise TypeError(
            f"Argument `data_dir` must be a path or None. Received: data_dir={data_dir!r}")
    path = os.fspath(data_dir)
    if not os.path.exists(path):
        raise DatasetNotFoundError(
            f"data_dir {path!r} does not exist (no other location is searched when "
            "data_dir is given).")
    if not os.path.isdir(path):
        raise DatasetNotFoundError(f"data_dir {path!r} is a file, not a directory.")


def not_found_message(name: str, split: str, report, reason: str) -> str:
    """Builds the error text listing every place looked and how to fix it."""
    lines = [f"Could not find the {name!r} dataset ({split} split): {reason}",
             "Looked in, in order:"]
    lines += [f"  - {r}" for r in report]
    lines.append(f"Expected: {expected_files(name, split)}.")
    lines.append(
        "To fix: put the files in a directory (directly or in a "
        f"'{_SUBFOLDERS[name][0]}/' subfolder) and pass data_dir=<dir> or set "
        f"{ENV_VAR}=<dir>; or put them in the Keras cache {keras_dataset_dirs()[0]}"
        " (run once with download=True on a machine with internet access)."
    )
    if name == "fashion_mnist":
        lines.append("On Debian/Ubuntu: `apt-get install dataset-fashion-mnist` "
                     "installs them in /usr/share/datasets/fashion-mnist.")
    return "\n".join(lines)
