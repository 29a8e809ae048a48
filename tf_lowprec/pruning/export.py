"""Sparse export: how small a pruned model gets as a compressed file and as TFLite.

Zeros alone do not shrink a `.keras` file (TFMOT issues 162, 722, 760): the
weights are stored densely. They pay off once the file is compressed, or
when the TFLite converter stores sparse tensors in a compressed format
(`tf.lite.Optimize.EXPERIMENTAL_SPARSITY`).

TFLite path for Keras 3 on TF 2.21: `model.export(path, format="litert")`,
which writes a SavedModel through `keras.export.ExportArchive` and converts
it with `tf.lite.TFLiteConverter.from_saved_model` (extra keyword
arguments become converter attributes, e.g. `optimizations=[...]`).
`TFLiteConverter.from_keras_model` targets tf.keras models and is not used.
"""

from __future__ import annotations

import dataclasses
import gzip
import os
import tempfile
from typing import Any

import keras

from tf_lowprec.models import rewrite
from tf_lowprec.pruning.wrapper import PruningWrapper


def gzipped_size(path: str | os.PathLike[str]) -> int:
    """Bytes of the file at `path` after `gzip -9` (deterministic, no timestamp)."""
    with open(path, "rb") as f:
        return len(gzip.compress(f.read(), compresslevel=9, mtime=0))


@dataclasses.dataclass(frozen=True)
class ExportSizes:
    """File sizes in bytes of one model, exported several ways.

    Attributes:
        keras: `.keras` file (weights stored densely).
        keras_gzip: That file gzip-compressed.
        tflite: Float32 TFLite flatbuffer, default conversion.
        tflite_gzip: That file gzip-compressed.
        tflite_sparse: TFLite converted with
            `optimizations=[tf.lite.Optimize.EXPERIMENTAL_SPARSITY]`, which
            stores sufficiently sparse weight tensors in a sparse format.
            `None` when `tflite=False`.
    """

    keras: int
    keras_gzip: int
    tflite: int | None
    tflite_gzip: int | None
    tflite_sparse: int | None

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def export_sizes(
    model: keras.Model, directory: str | os.PathLike[str] | None = None, tflite: bool = True
) -> ExportSizes:
    """Exports `model` (pruning wrappers stripped first) and measures the files.

    The `.keras` file holds the architecture and weights only: a compiled
    model is copied without its optimizer first (Keras 3 always saves the
    optimizer state with the model).

    Args:
        model: A Functional or Sequential Keras model, pruned (wrappers are
            stripped with `strip_pruning`, so masks are baked in) or not.
        directory: Where to write `model.keras`, `model.tflite` and
            `model_sparse.tflite`; a temporary directory (deleted) when `None`.
            Defaults to `None`.
        tflite: Also convert to TFLite (a few seconds per conversion).
            Defaults to `True`.

    Returns:
        An `ExportSizes`. Compare a pruned model's with its dense baseline's.
    """
    if not isinstance(model, keras.Model):
        raise ValueError(f"`model` must be a keras.Model. Received: model={model!r}")
    if any(isinstance(layer, PruningWrapper) for layer in rewrite.walk(model)):
        from tf_lowprec.pruning.strip import strip_pruning

        model = strip_pruning(model)
    if getattr(model, "optimizer", None) is not None:
        # `.keras` files carry the optimizer state (gRDA's accumulator doubles
        # the file); measure the deployable model: an uncompiled copy.
        # (`clone_model` would compile the copy again.)
        copy = model.__class__.from_config(model.get_config())
        copy.set_weights(model.get_weights())
        model = copy
    if directory is None:
        with tempfile.TemporaryDirectory() as tmp:
            return export_sizes(model, tmp, tflite)
    os.makedirs(directory, exist_ok=True)
    keras_path = os.path.join(directory, "model.keras")
    model.save(keras_path)
    sizes = {"keras": os.path.getsize(keras_path), "keras_gzip": gzipped_size(keras_path),
             "tflite": None, "tflite_gzip": None, "tflite_sparse": None}
    if tflite:
        import tensorflow as tf

        dense_path = os.path.join(directory, "model.tflite")
        model.export(dense_path, format="litert", verbose=False)
        sparse_path = os.path.join(directory, "model_sparse.tflite")
        model.export(sparse_path, format="litert", verbose=False,
                     optimizations=[tf.lite.Optimize.EXPERIMENTAL_SPARSITY])
        sizes.update(tflite=os.path.getsize(dense_path), tflite_gzip=gzipped_size(dense_path),
                     tflite_sparse=os.path.getsize(sparse_path))
    return ExportSizes(**sizes)
