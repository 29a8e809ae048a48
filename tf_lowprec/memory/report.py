"""`report(model, optimizer)`: bytes per parameter of weights, state, gradients.

```python
print(tf_lowprec.memory.report(model, model.optimizer))
```

prints, for `Dense(1000)` on 1000 inputs with bfloat16 variables, trained
with `StochasticRounding(Adam8bit())` (the bias, under `min_8bit_size`,
keeps float32 moments):

```
1,001,000 trainable parameters
                   bytes  bytes/param  float32 bytes  float32 bytes/param
weights        2,002,000        2.000      4,004,000                4.000
optimizer      2,039,256        2.037      8,008,000                8.000
gradients      2,002,000        2.000      4,004,000                4.000
total          6,043,256        6.037     16,016,000               16.000
```

What is counted (the persistent tensors of a training step; activations,
which scale with the batch, and temporaries are not):

* weights: every model variable (trainable and not, e.g. BatchNorm
  statistics) at its stored dtype;
* optimizer state: every non-scalar optimizer variable (slots, 8-bit
  codes and their scales, LowPrecision/SWA copies); scalars such as the
  step counter and learning rate are left out;
* gradients: one per trainable variable, in the variable's dtype (what
  TensorFlow's `GradientTape` returns for it).

"float32" is the same model and optimizer with every tensor stored in
float32: a state of `n` codes counts `4 n` bytes and the block scales of
8-bit states (`*_absmax_*`, `tf_lowprec.optimizers.blockwise_states`)
count 0, as a float32 optimizer has none. Bytes per parameter divide by
the number of trainable parameters.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import keras
import numpy as np

from tf_lowprec.optimizers.blockwise_states import ABSMAX

KINDS = ("weights", "optimizer", "gradients")


@dataclasses.dataclass(frozen=True)
class VariableBytes:
    """One stored tensor: its kind, name, shape, dtype and bytes."""

    kind: str
    name: str
    shape: tuple
    dtype: str
    bytes: int
    float32_bytes: int


@dataclasses.dataclass(frozen=True)
class MemoryReport:
    """Totals per kind and the per-variable rows (`rows`)."""

    parameters: int
    rows: tuple

    def bytes(self, kind: str | None = None) -> int:
        """Bytes of one kind ("weights", "optimizer", "gradients") or all."""
        return sum(r.bytes for r in self.rows if kind in (None, r.kind))

    def float32_bytes(self, kind: str | None = None) -> int:
        """The same in float32 (see the module docstring)."""
        return sum(r.float32_bytes for r in self.rows if kind in (None, r.kind))

    def per_parameter(self, kind: str | None = None) -> float:
        return self.bytes(kind) / max(self.parameters, 1)

    def as_dict(self) -> dict[str, Any]:
        """Plain numbers: `{kind: {bytes, bytes_per_parameter, float32_bytes,
        float32_bytes_per_parameter}}` for each kind and "total", plus
        "parameters"."""
        result = {"parameters": self.parameters}
        for kind in (*KINDS, None):
            result[kind or "total"] = {
                "bytes": self.bytes(kind),
                "bytes_per_parameter": self.per_parameter(kind),
                "float32_bytes": self.float32_bytes(kind),
                "float32_bytes_per_parameter": self.float32_bytes(kind)
                / max(self.parameters, 1),
            }
        return result

    def __str__(self):
        lines = [
            f"{self.parameters:,} trainable parameters",
            (
                f"{'':10}{'bytes':>14}{'bytes/param':>13}{'float32 bytes':>15}"
                f"{'float32 bytes/param':>21}"
            ),
        ]
        data = self.as_dict()
        for kind in (*KINDS, "total"):
            row = data[kind]
            lines.append(
                f"{kind:10}{row['bytes']:>14,}{row['bytes_per_parameter']:>13.3f}"
                f"{row['float32_bytes']:>15,}{row['float32_bytes_per_parameter']:>21.3f}"
            )
        return "\n".join(lines)


def _size(variable):
    return int(np.prod(variable.shape, dtype=np.int64))


def _row(kind, variable, name, float32_bytes=None):
    dtype = keras.backend.standardize_dtype(variable.dtype)
    size = _size(variable)
    return VariableBytes(
        kind=kind,
        name=name,
        shape=tuple(int(d) for d in variable.shape),
        dtype=dtype,
        bytes=size * np.dtype(dtype if dtype != "bfloat16" else "float16").itemsize,
        float32_bytes=4 * size if float32_bytes is None else float32_bytes,
    )


def report(
    model: keras.layers.Layer, optimizer: keras.optimizers.Optimizer | None = None
) -> MemoryReport:
    """Bytes of weights, optimizer state and gradients of `model` training.

    Args:
        model: a built `keras.Model` (or a layer with `variables`).
        optimizer: a `keras.optimizers.Optimizer`; defaults to
            `model.optimizer`. If it is not built yet it is built on
            `model.trainable_variables` (what the first training step does).

    Returns:
        A `MemoryReport`; `str(report)` is a table, `report.as_dict()` the
        numbers, `report.rows` one `VariableBytes` per tensor.
    """
    if not getattr(model, "built", True) or not model.variables:
        raise ValueError(
            f"`model` must be built (have variables). Received: model={model!r}"
        )
    optimizer = (
        optimizer if optimizer is not None else getattr(model, "optimizer", None)
    )
    rows = [_row("weights", v, v.path) for v in model.variables]
    trainable = model.trainable_variables
    rows += [_row("gradients", v, v.path) for v in trainable]
    if optimizer is not None:
        if not isinstance(optimizer, keras.optimizers.Optimizer):
            raise ValueError(
                "`optimizer` must be a keras.optimizers.Optimizer or None. "
                f"Received: optimizer={optimizer!r}"
            )
        if not optimizer.built:
            optimizer.build(trainable)
        for v in optimizer.variables:
            if len(v.shape) == 0:
                continue  # step counters, learning rate, loss scale
            scale = f"_{ABSMAX}_" in v.name
            rows.append(_row("optimizer", v, v.path, 0 if scale else None))
    parameters = sum(_size(v) for v in trainable)
    return MemoryReport(parameters=parameters, rows=tuple(rows))
