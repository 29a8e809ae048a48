"""Shared statistical check for stochastic rounding tests."""

import numpy as np


def assert_unbiased(samples, target, ulp, discretization=2.0**-24, z=5.0):
    """Asserts mean(samples) == target within z standard errors.

    Each sample is `floor(v) * ulp` or `ceil(v) * ulp` with `v = target / ulp`;
    the up-probability is `frac(v)`, so one sample has variance
    `ulp^2 f (1 - f)` and the mean of `n` has standard error
    `ulp sqrt(f (1 - f) / n)`. The generator's uniforms have 24-bit
    resolution, which may add a bias of up to `discretization * ulp`.
    """
    samples = np.asarray(samples, np.float64)
    n = samples.size
    frac = target / ulp - np.floor(target / ulp)
    stderr = ulp * np.sqrt(frac * (1 - frac) / n)
    bias = abs(samples.mean() - target)
    bound = z * stderr + discretization * ulp
    assert bias <= bound, (
        f"mean {samples.mean()!r} vs target {target!r}: bias {bias:.3g} > "
        f"{bound:.3g} ({z} standard errors of {n} samples)"
    )
