"""NumPy oracle for HALP (algorithms.md §2.2), step by step, in float64.

The loop of torchhalp's numpy `baseline_halp` (test/test_halp.py) and
`HALP.step`, generalised to several weight tensors with a scale per tensor,
minibatches, a learning-rate schedule and weight decay, and with tf_lowprec's
documented choices: exact sample-mean full gradient, `delta = 0` gives a
zero offset (not NaN), decay on the weights (`decay_on="weights"`) or on the
offset (`"offset"`, torchhalp). Rounding is round-half-to-even, or
`floor(v + u)` with the noise supplied by the caller.
"""

import numpy as np

from tests.reference.svrg_numpy import full_gradient, learning_rate_at


def quantize_codes(value, delta, bits, noise=None):
    """`clamp(R(value / delta), -2^(b-1), 2^(b-1) - 1)`; 0 where delta == 0."""
    if delta <= 0:
        return np.zeros_like(value)
    v = value / delta
    k = np.round(v) if noise is None else np.floor(v) + (noise < v - np.floor(v))
    return np.clip(k, -(2.0 ** (bits - 1)), 2.0 ** (bits - 1) - 1)


def scale(full_grad, mu, bits):
    return np.linalg.norm(full_grad) / (mu * (2.0 ** (bits - 1) - 1))


def halp(
    params,
    batches,
    grad,
    lr,
    T,
    steps,
    mu,
    bits,
    weight_decay=0.0,
    decay_on="weights",
    noise=None,
):
    """Runs `steps` HALP steps; step `t` uses `batches[t % len(batches)]`.

    Args as `svrg_numpy.svrg`, plus `mu`, `bits`, `decay_on` and `noise`
    (`noise(step, index, shape)` -> U[0, 1) samples for stochastic
    rounding; None for round-to-nearest).

    Returns:
        `(trajectory, state)`: the weights `w~ + delta * k` after every step,
        and the final `{"center", "codes", "delta"}`.
    """
    center = [np.array(p, np.float64) for p in params]
    codes = [np.zeros_like(c) for c in center]
    delta = [0.0 for _ in center]
    trajectory = []
    for t in range(steps):
        if t % T == 0:
            center = [c + d * k for c, d, k in zip(center, delta, codes)]
            mu_full = full_gradient(center, batches, grad)
            delta = [scale(g, mu, bits) for g in mu_full]
            codes = [np.zeros_like(c) for c in center]
        w = [c + k * d for c, k, d in zip(center, codes, delta)]
        x, y = batches[t % len(batches)]
        g_cur = grad(w, x, y)
        g_snap = grad(center, x, y)
        rate = learning_rate_at(lr, t)
        new_codes = []
        for i, (gc, gs, m, k, d, p) in enumerate(
            zip(g_cur, g_snap, mu_full, codes, delta, w)
        ):
            direction = gc - gs + m
            z = k * d
            if weight_decay:
                direction = direction + weight_decay * (p if decay_on == "weights" else z)
            u = None if noise is None else noise(t, i, z.shape)
            new_codes.append(quantize_codes(z - rate * direction, d, bits, u))
        codes = new_codes
        trajectory.append([c + k * d for c, k, d in zip(center, codes, delta)])
    return trajectory, {"center": center, "codes": codes, "delta": delta}
