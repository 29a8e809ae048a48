"""NumPy oracle for SVRG (algorithms.md §2.1), step by step, in float64.

The loop of HazyResearch/torchhalp `SVRG.step` ("option I": the snapshot is
the last iterate) over a fixed sequence of minibatches, with two documented
differences of tf_lowprec: the full gradient is the exact sample mean
(batches weighted by size), and `weight_decay` is applied as
`w -= lr * wd * w` next to the step (equal to torch's coupled decay without
momentum).
"""

import numpy as np


def full_gradient(params, batches, grad):
    """Sample mean of the gradient over all `batches` (weighted by size)."""
    sums = [np.zeros_like(p) for p in params]
    count = 0
    for x, y in batches:
        n = len(x)
        for s, g in zip(sums, grad(params, x, y)):
            s += n * g
        count += n
    return [s / count for s in sums]


def learning_rate_at(lr, step):
    return lr(step) if callable(lr) else lr


def svrg(params, batches, grad, lr, T, steps, weight_decay=0.0):
    """Runs `steps` SVRG steps; step `t` uses `batches[t % len(batches)]`.

    Args:
        params: list of float arrays (the initial weights).
        batches: list of `(x, y)` minibatches, in training order.
        grad: `grad(params, x, y)` -> list of arrays, the gradient of the
            mean loss over the minibatch.
        lr: float, or `lr(step)` with the 0-based step count.
        T: steps between snapshots.
        steps: number of steps.
        weight_decay: decay coefficient.

    Returns:
        The weights after every step (a list of `steps` lists of arrays).
    """
    w = [np.array(p, np.float64) for p in params]
    trajectory = []
    for t in range(steps):
        if t % T == 0:
            w_snap = [p.copy() for p in w]
            mu = full_gradient(w_snap, batches, grad)
        x, y = batches[t % len(batches)]
        g_cur = grad(w, x, y)
        g_snap = grad(w_snap, x, y)
        rate = learning_rate_at(lr, t)
        w = [
            p - rate * weight_decay * p - rate * (gc - gs + m)
            for p, gc, gs, m in zip(w, g_cur, g_snap, mu)
        ]
        trajectory.append([p.copy() for p in w])
    return trajectory
