"""NumPy oracles for one low-precision SGD-with-momentum step (SWALP).

Two transcriptions of algorithms.md §3.4 in float32 numpy, each quantizer a
callable `q(name, x)` (the caller decides format, rounding and random
draws, e.g. `quant_numpy.block_floating_point` with the uniforms of
`tf_lowprec.ops.rounding.uniform`):

* `KerasLowPrecisionSGD`: what `LowPrecision(keras.optimizers.SGD(momentum))`
  defines, in Keras's velocity convention and op order:

      g   = Q_G(g)
      a   = a - (a * wd) * lr                  (decoupled decay, if any)
      v   = v * m - g * lr
      a   = a + v
      a   = Q_ACC(a)
      w   = Q_W(a)        (only with a separate accumulator; else w = a)
      v   = Q_M(v)

* `SwalpTorchSGD`: SWALP's `utils.train_batch` around `torch.optim.SGD`:

      g   = Q_G(g)
      buf = m * buf + (g + wd * a)             (buf = g + wd * a on step 1)
      a   = a - lr * buf
      a   = Q_ACC(a);  w = Q_W(a)
      buf = Q_G(buf)                           (SWALP reuses Q_G for momentum)

Every intermediate is rounded to float32 exactly where TensorFlow/torch
round it, so the oracles can be compared bit for bit.
"""

import numpy as np

F32 = np.float32


def _identity(name, x):
    return x


class KerasLowPrecisionSGD:
    """`LowPrecision(SGD(momentum))` on a list of float32 arrays."""

    def __init__(self, weights, momentum, weight_decay=None, separate_accumulator=False):
        self.m = F32(momentum)
        self.wd = None if weight_decay is None else F32(weight_decay)
        self.acc = [np.array(w, F32) for w in weights]
        self.w = [np.array(w, F32) for w in weights]
        self.v = [np.zeros_like(a) for a in self.acc]
        self.separate = separate_accumulator

    def step(self, grads, lr, q=_identity):
        """One step; `q(name, i, x)` quantizes stream `name` of variable `i`."""
        lr = F32(lr)
        for i, g in enumerate(grads):
            g = q("gradient", i, np.asarray(g, F32))
            a = self.acc[i]
            if self.wd is not None:
                a = (a - (a * self.wd) * lr).astype(F32)
            v = (self.v[i] * self.m - g * lr).astype(F32)
            a = (a + v).astype(F32)
            a = q("accumulator", i, a)
            self.w[i] = q("weight", i, a) if self.separate else a
            self.acc[i] = a
            self.v[i] = q("momentum", i, v)
        return [w.copy() for w in self.w]


class SwalpTorchSGD:
    """SWALP's step (torch SGD, coupled weight decay) on float32 arrays."""

    def __init__(self, weights, momentum, weight_decay=0.0):
        self.m = F32(momentum)
        self.wd = F32(weight_decay)
        self.acc = [np.array(w, F32) for w in weights]
        self.w = [np.array(w, F32) for w in weights]
        self.buf = None

    def step(self, grads, lr, q=_identity):
        lr = F32(lr)
        first = self.buf is None
        if first:
            self.buf = [None] * len(grads)
        for i, g in enumerate(grads):
            g = q("gradient", i, np.asarray(g, F32))
            d = g if self.wd == 0 else (g + self.wd * self.acc[i]).astype(F32)
            buf = d.copy() if first else (self.m * self.buf[i] + d).astype(F32)
            a = (self.acc[i] + (-lr) * buf).astype(F32)
            a = q("accumulator", i, a)
            self.acc[i] = a
            self.w[i] = q("weight", i, a)
            self.buf[i] = q("momentum", i, buf)
        return [w.copy() for w in self.w]
