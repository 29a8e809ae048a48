"""`TensorBoardDiagnostics`: what sparse and low-precision training does, in TensorBoard.

Keras's `TensorBoard` callback shows losses and metrics. This callback adds
what tf_lowprec's methods change inside the model, as scalars and histograms
in a run `<log_dir>/diagnostics` next to Keras's `train` / `validation` runs
(same default `log_dir="logs"`, so one `tensorboard --logdir logs` shows all):

| tag | what | from |
|---|---|---|
| `sparsity/global`, `sparsity/<layer>` | fraction of exact zeros | any model (`pruning.sparsity`) |
| `weights/<variable>` (histogram) | trainable weights | any model |
| `grda/threshold` | the soft threshold `thr_n` | `GRDA` (also inside wrappers) |
| `halp/saturation`, `halp/saturation/<variable>` | fraction of offset codes at `-2^(b-1)` or `2^(b-1)-1` | `HALP` |
| `halp/offset/<variable>` (histogram) | the integer offset codes | `HALP` |
| `swa/num_averaged` | snapshots in the running average | `SWA` |
| `quantization_error/<layer>` | `rms(q(w) - w) / rms(w)` of the layer's weight grid, nearest rounding | `QuantizedDense`, `QuantizedConv2D` |
| `int8_range/<layer>/min`, `.../max` | frozen activation range (nudged so 0 is on the grid) | `quantize_model(scheme="int8")` |

Written every epoch (and every `update_freq` batches when it is an int).

Example:

```python
model.fit(x, y, epochs=5, callbacks=[
    keras.callbacks.TensorBoard("logs"),
    tf_lowprec.callbacks.TensorBoardDiagnostics("logs"),
])
# tensorboard --logdir logs
```
"""

from __future__ import annotations

import os
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from tf_lowprec import validation
from tf_lowprec.layers.int8.model_ranges import activation_quantizers
from tf_lowprec.optimizers.grda import GRDA
from tf_lowprec.optimizers.halp import HALP
from tf_lowprec.optimizers.swa import find_swa_optimizer
from tf_lowprec.pruning.sparsity import sparsity
from tf_lowprec.quantizers import Quantizer


def _optimizer_chain(optimizer):
    """The optimizer and every optimizer it wraps (`inner_optimizer`)."""
    chain, seen = [], set()
    while optimizer is not None and id(optimizer) not in seen:
        chain.append(optimizer)
        seen.add(id(optimizer))
        optimizer = getattr(optimizer, "inner_optimizer", None)
    return chain


def _find(optimizer, cls):
    return next((o for o in _optimizer_chain(optimizer) if isinstance(o, cls)), None)


def _tag(name):
    return name.replace(":", "_")


def halp_saturation(optimizer, variables):
    """`{variable path: fraction of offset codes at the clamp}` for a built `HALP`."""
    low, high = -(2 ** (optimizer.bits - 1)), 2 ** (optimizer.bits - 1) - 1
    fractions = {}
    for variable in variables:
        codes = np.asarray(optimizer.offset(variable).numpy())
        fractions[variable.path] = (
            float(np.mean((codes == low) | (codes == high))) if codes.size else 0.0
        )
    return fractions


def weight_quantization_error(layer):
    """`rms(q(w) - w) / rms(w)` for the weight quantizer of a quantized layer, or None.

    Uses the layer's weight format with nearest rounding (deterministic: the
    distance from the weights to their grid, whatever rounding training uses).
    """
    quantizer = getattr(layer, "weight_quantizer", None)
    kernel = getattr(layer, "kernel", None)
    if quantizer is None or kernel is None:
        return None
    w = tf.convert_to_tensor(kernel)
    q = Quantizer(quantizer.format, "nearest")(w)
    rms = float(tf.sqrt(tf.reduce_mean(tf.square(w))))
    if rms == 0.0:
        return 0.0
    return float(tf.sqrt(tf.reduce_mean(tf.square(q - w)))) / rms


@keras.saving.register_keras_serializable(package="tf_lowprec")
class TensorBoardDiagnostics(keras.callbacks.Callback):
    """Writes sparsity, GRDA threshold, HALP saturation, SWA count and quantization diagnostics.

    Args:
        log_dir: TensorBoard log directory (the one given to
            `keras.callbacks.TensorBoard`); events go to
            `<log_dir>/diagnostics`. Defaults to `"logs"`, as Keras's.
        histograms: Also write weight and HALP offset histograms. Defaults
            to `True`.
        update_freq: `"epoch"`, or an int: also write every that many
            batches (costs a host copy of the weights each time). Defaults
            to `"epoch"`.
    """

    def __init__(
        self,
        log_dir: str | os.PathLike[str] = "logs",
        histograms: bool = True,
        update_freq: str | int = "epoch",
    ) -> None:
        super().__init__()
        if not isinstance(log_dir, (str, os.PathLike)) or not str(log_dir):
            raise ValueError(
                f"`log_dir` must be a non-empty path. Received: log_dir={log_dir!r}"
            )
        if update_freq != "epoch":
            validation.positive_int(update_freq, "update_freq")
        self.log_dir = os.fspath(log_dir)
        self.histograms = validation.boolean(histograms, "histograms")
        self.update_freq = update_freq
        self._writer = None
        self._batches = 0

    def _step(self):
        optimizer = getattr(self.model, "optimizer", None)
        if optimizer is not None and getattr(optimizer, "built", False):
            return int(optimizer.iterations.numpy())
        return self._batches

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._writer = tf.summary.create_file_writer(os.path.join(self.log_dir, "diagnostics"))

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self._batches += 1
        if self.update_freq != "epoch" and self._batches % self.update_freq == 0:
            self.write(self._step())

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.write(self._step())

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def write(self, step: int) -> None:
        """Writes one set of diagnostics at `step` (the optimizer's iteration)."""
        if self._writer is None:
            self.on_train_begin()
        model = self.model
        optimizer = getattr(model, "optimizer", None)
        with self._writer.as_default(step=step):
            report = sparsity(model)
            tf.summary.scalar("sparsity/global", report.sparsity)
            for name, layer in report.layers.items():
                tf.summary.scalar(f"sparsity/{_tag(name)}", layer.sparsity)
            if self.histograms:
                for variable in model.trainable_variables:
                    tf.summary.histogram(f"weights/{_tag(variable.path)}", variable)
            for layer in model._flatten_layers(include_self=False):
                error = weight_quantization_error(layer)
                if error is not None:
                    tf.summary.scalar(f"quantization_error/{_tag(layer.name)}", error)
            for quantizer in activation_quantizers(model):
                low, high, *_ = quantizer.nudged_range()
                tf.summary.scalar(f"int8_range/{_tag(quantizer.name)}/min", float(low))
                tf.summary.scalar(f"int8_range/{_tag(quantizer.name)}/max", float(high))
            if optimizer is not None and getattr(optimizer, "built", False):
                self._write_optimizer(optimizer, model.trainable_variables)
        self._writer.flush()

    def _write_optimizer(self, optimizer, variables):
        grda = _find(optimizer, GRDA)
        if grda is not None and grda.built:
            tf.summary.scalar("grda/threshold", float(grda.threshold.numpy()))
        halp = _find(optimizer, HALP)
        if halp is not None and halp.built:
            fractions = halp_saturation(halp, variables)
            total = sum(int(np.prod(v.shape)) for v in variables)
            overall = sum(
                fractions[v.path] * int(np.prod(v.shape)) for v in variables
            ) / max(total, 1)
            tf.summary.scalar("halp/saturation", overall)
            for path, fraction in fractions.items():
                tf.summary.scalar(f"halp/saturation/{_tag(path)}", fraction)
                if self.histograms:
                    variable = next(v for v in variables if v.path == path)
                    tf.summary.histogram(
                        f"halp/offset/{_tag(path)}",
                        tf.cast(halp.offset(variable).value, tf.float32),
                    )
        swa = find_swa_optimizer(optimizer)
        if swa is not None and swa.built:
            tf.summary.scalar("swa/num_averaged", swa.num_averaged)

    def get_config(self) -> dict[str, Any]:
        return {
            "log_dir": self.log_dir,
            "histograms": self.histograms,
            "update_freq": self.update_freq,
        }
