"""Numpy oracles for the quantizers: tf_lowprec's definitions, QPyTorch, SWALP, HALP.

Each oracle is written from the published definition (algorithms.md §2.2,
§3), in plain float64 numpy where possible, independent of the bit tricks
used by `tf_lowprec.ops`. Random draws are passed in explicitly so that a
stochastic oracle can be compared with the TF op bit for bit:

* `u`: uniforms in [0, 1) (what `tf_lowprec.ops.rounding.uniform` gives),
* `bits`: raw uint32 draws (`tf_lowprec.ops.rounding.random_bits`).

Oracles named after the package (`fixed_point`, `block_floating_point`,
`floating_point`, `integer_affine`) define tf_lowprec's semantics. The
`qpytorch_*`, `swalp_*` and `halp_*` ones reproduce those libraries,
quirks included, for the "agrees except at ties/clamps" tests.
"""

import numpy as np


def _round_half_even(v):
    return np.round(v)


def _round_half_away(v):
    return np.sign(v) * np.floor(np.abs(v) + 0.5)


def _keep_nonfinite(x, q):
    return np.where(np.isfinite(x), q, x)


def _float32_exponent(m):
    """floor(log2(m)) for float32 magnitudes m > 0, exactly (via frexp)."""
    _, e = np.frexp(np.asarray(m, np.float64))
    return e - 1


# --------------------------------------------------------------------------
# tf_lowprec definitions


def fixed_point(x, wl, fl, rounding="nearest", u=None):
    """k = R(x 2^fl) clamped to [-2^(wl-1), 2^(wl-1)-1]; returns k 2^-fl."""
    x = np.asarray(x, np.float32)
    with np.errstate(over="ignore", invalid="ignore"):
        v = x.astype(np.float64) * 2.0**fl
        if rounding == "nearest":
            k = _round_half_even(v)
        else:
            k = np.floor(v + np.asarray(u, np.float64))
        k = np.clip(k, -(2.0 ** (wl - 1)), 2.0 ** (wl - 1) - 1)
    return _keep_nonfinite(x, (k * 2.0**-fl).astype(np.float32))


def block_axes(shape, axis, small_block_rank=1):
    """Reduction axes of a block: None = whole tensor."""
    rank = len(shape)
    if axis is None or rank <= small_block_rank:
        return None
    axis %= rank
    return tuple(d for d in range(rank) if d != axis)


def block_floating_point(
    x, wl, axis=0, small_block_rank=1, rounding="nearest", u=None
):
    """Shared E = floor(log2 max|x_finite|) clamped to [wl-128, 126];
    symmetric mantissa clamp |k| <= 2^(wl-1) - 1."""
    x = np.asarray(x, np.float32)
    axes = block_axes(x.shape, axis, small_block_rank)
    mag = np.where(np.isfinite(x), np.abs(x), 0.0).astype(np.float64)
    m = np.max(mag, axis=axes, keepdims=True)
    with np.errstate(divide="ignore"):
        e = np.where(m > 0, _float32_exponent(np.where(m > 0, m, 1.0)), -1000)
    e = np.clip(e, wl - 128, 126)
    ulp = np.ldexp(1.0, (e + 2 - wl).astype(np.int64))
    with np.errstate(invalid="ignore"):
        v = x.astype(np.float64) / ulp
        if rounding == "nearest":
            k = _round_half_even(v)
        else:
            k = np.floor(v + np.asarray(u, np.float64))
        k = np.clip(k, -(2.0 ** (wl - 1) - 1), 2.0 ** (wl - 1) - 1)
    return _keep_nonfinite(x, (k * ulp).astype(np.float32))


def floating_point(x, exp_bits, man_bits, rounding="nearest", bits=None):
    """IEEE-style float(e, m): RNE (or the bit-level stochastic rule), subnormals,
    saturation at the largest finite value; NaN/inf pass through."""
    x = np.asarray(x, np.float32)
    bias = 2 ** (exp_bits - 1) - 1
    emin = 1 - bias
    max_value = (2.0 - 2.0**-man_bits) * 2.0**bias
    a = np.abs(x).astype(np.float64)
    safe = np.where((a > 0) & np.isfinite(a), a, 1.0)
    ex = np.maximum(_float32_exponent(safe), emin)
    ulp = np.ldexp(1.0, (ex - man_bits).astype(np.int64))
    v = a / ulp  # exact: power-of-two scaling in float64
    if rounding == "nearest":
        k = _round_half_even(v)
    else:
        bits = np.asarray(bits, np.uint32).astype(np.int64)
        drop = 23 - man_bits
        # tf_lowprec adds `drop` random low bits in the normal range (and, for
        # 8 exponent bits, float32's own subnormals); below the format's
        # normal range (exp_bits < 8) it compares a 24-bit uniform instead.
        w_bits = (bits & (2**drop - 1)) / 2.0**drop
        w_unif = (bits >> 8) / 2.0**24
        sub = (a < 2.0**emin) & (exp_bits < 8)
        k = np.floor(v + np.where(sub, w_unif, w_bits))
    q = np.minimum(k * ulp, max_value)
    q = np.where(a == 0, 0.0, q)
    q = np.copysign(q, x.astype(np.float64)).astype(np.float32)
    return _keep_nonfinite(x, q)


def integer_affine(x, bits, symmetric=True, per_channel_axis=None, u=None):
    """Codes, scale, zero point and dequantized values, in float32 arithmetic
    (the same IEEE operations as the TF kernel, so results are exact; the
    scale divides by multiplying with the float32 reciprocal, as XLA does)."""
    x = np.asarray(x, np.float32)
    if per_channel_axis is None:
        axes = None
    else:
        ch = per_channel_axis % x.ndim
        axes = tuple(d for d in range(x.ndim) if d != ch)
    finite = np.isfinite(x)
    clean = np.where(finite, x, np.float32(0))
    low = np.min(clean, axis=axes, keepdims=True)
    high = np.max(clean, axis=axes, keepdims=True)
    code_max = np.float32(2 ** (bits - 1) - 1)
    if symmetric:
        code_min = -code_max
        scale = np.maximum(high, -low) * np.float32(1.0 / float(code_max))
        scale = np.where(scale > 0, scale, np.float32(1)).astype(np.float32)
        zero_point = np.zeros_like(scale)
    else:
        code_min = np.float32(-(2 ** (bits - 1)))
        low = np.minimum(low, np.float32(0))
        high = np.maximum(high, np.float32(0))
        scale = (high - low) * np.float32(1.0 / (2**bits - 1))
        scale = np.where(scale > 0, scale, np.float32(1)).astype(np.float32)
        zero_point = np.clip(np.round(code_min - low / scale), code_min, code_max)
    v = (x / scale).astype(np.float32)
    if u is None:
        k = _round_half_even(v)
    else:
        k = np.floor(v.astype(np.float64) + np.asarray(u, np.float64))
    codes = np.clip(k + zero_point, code_min, code_max).astype(np.float32)
    dequantized = ((codes - zero_point) * scale).astype(np.float32)
    return codes, scale, zero_point, _keep_nonfinite(x, dequantized)


# --------------------------------------------------------------------------
# QPyTorch (Tiiiger/QPyTorch, qtorch/quant/quant_cpu, quant_cuda)


def qpytorch_fixed_point(x, wl, fl, rounding="nearest", r=None, device="cpu"):
    """fixed_point_quantize(x, wl, fl, clamp=True, symmetric=False).

    Nearest: CPU `nearbyint` (half even), CUDA `round` (half away from zero).
    Stochastic: `nearbyint(x 2^fl + r - 0.5)`, r ~ U[0, 1).
    """
    x = np.asarray(x, np.float32).astype(np.float64)
    v = x * 2.0**fl
    if rounding == "nearest":
        k = _round_half_even(v) if device == "cpu" else _round_half_away(v)
    else:
        k = _round_half_even(v + np.asarray(r, np.float64) - 0.5)
    k = np.clip(k, -(2.0 ** (wl - 1)), 2.0 ** (wl - 1) - 1)
    return (k * 2.0**-fl).astype(np.float32)


def qpytorch_block(x, wl, dim=-1, rounding="nearest", rand_bits=None):
    """block_quantize(x, wl, dim): bit-level emulation in float32.

    base = 6 * 2^E; t = bits(float32(x + base)); round the low 23 - wl bits
    (nearest: + half, ties toward +inf; stochastic: + random bits), subtract
    base, clip |q| to (2^(wl-1) - 1) ulp symmetrically.
    """
    x = np.asarray(x, np.float32)
    if dim == -1:
        m = np.max(np.abs(x)) * np.ones_like(x)
    else:
        axes = tuple(d for d in range(x.ndim) if d != dim)
        m = np.broadcast_to(np.max(np.abs(x), axis=axes, keepdims=True), x.shape)
    m_bits = m.astype(np.float32).view(np.uint32)
    max_exp_bits = (m_bits << np.uint32(1) >> np.uint32(24)) << np.uint32(23)
    base = max_exp_bits.view(np.float32) * np.float32(6)
    t = (x + base).astype(np.float32).view(np.uint32).astype(np.uint64)
    mask = np.uint64(2 ** (23 - wl) - 1)
    if rounding == "nearest":
        t = t + np.uint64(2 ** (23 - wl - 1))
    else:
        t = t + (np.asarray(rand_bits, np.uint32).astype(np.uint64) & mask)
    t = (t & ~mask & np.uint64(0xFFFFFFFF)).astype(np.uint32)
    q = (t.view(np.float32) - base).astype(np.float32)
    q_exp_bits = (q.view(np.uint32) << np.uint32(1) >> np.uint32(24)) << np.uint32(23)
    max_man = np.uint32(((1 << 23) - 1) >> (23 - (wl - 2)) << (23 - (wl - 2)))
    clipped = (max_exp_bits | max_man).view(np.float32) * np.sign(q)
    return np.where(q_exp_bits > max_exp_bits, clipped, q).astype(np.float32)


def qpytorch_float_nearest(x, exp_bits, man_bits):
    """float_quantize(x, exp, man, "nearest") for inputs in the normal range:
    add half an ulp to the bits and truncate (mantissa ties away from zero)."""
    x = np.asarray(x, np.float32)
    drop = 23 - man_bits
    b = x.view(np.uint32).astype(np.uint64)
    b = (b + np.uint64(1 << (drop - 1))) & ~np.uint64((1 << drop) - 1)
    return b.astype(np.uint32).view(np.float32)


# --------------------------------------------------------------------------
# SWALP (stevenygd/SWALP, models/quantizer.py block_quantize)


def swalp_block(x, wl, small_block="FC", block_dim="B", rounding="nearest", u=None):
    """SWALP's block quantizer with exponent bits ebit = 8.

    Tensors of rank <= {"FC": 1, "Conv": 2, "None": 4}[small_block] use one
    exponent; otherwise one per index of dim 0 ("B"). E = floor(log2(max))
    clamped to [-128, 127] (computed exactly here; SWALP uses float32 log2).
    An all-zero whole tensor is returned as is; an all-zero row gives NaN
    (0 * inf), as in SWALP.
    """
    x = np.asarray(x, np.float32).astype(np.float64)
    threshold = {"FC": 1, "Conv": 2, "None": 4}[small_block]
    if x.ndim <= threshold:
        m = np.max(np.abs(x))
        if m == 0:
            return x.astype(np.float32)
        m = np.full((1,) * x.ndim, m)
    else:
        if block_dim != "B":
            raise NotImplementedError(block_dim)
        m = np.max(np.abs(x), axis=tuple(range(1, x.ndim)), keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        e = np.where(m > 0, _float32_exponent(np.where(m > 0, m, 1.0)), -np.inf)
        e = np.clip(e, -128, 127)
        # float32 like torch: 2^(128 + wl - 2) overflows to inf, 0 * inf = NaN.
        scale = np.exp2(-e + (wl - 2)).astype(np.float32)
        i = (x.astype(np.float32) * scale).astype(np.float64)
        if rounding == "nearest":
            i = _round_half_even(i)
        else:
            i = np.floor(i + np.asarray(u, np.float64))
        i = np.clip(i, -(2.0 ** (wl - 1)), 2.0 ** (wl - 1) - 1)
        return (i * np.exp2(e - (wl - 2))).astype(np.float32)


# --------------------------------------------------------------------------
# HALP (HazyResearch/torchhalp, torchhalp/quantize.py quantize_)


def halp_quantize(x, delta, bits, biased=True, u=None):
    """clamp(floor(x/delta + u), -2^(b-1), 2^(b-1)-1) * delta; u = 0.5 when
    biased (round half up), else U[0, 1)."""
    x = np.asarray(x, np.float64)
    shift = 0.5 if biased else np.asarray(u, np.float64)
    k = np.floor(x / delta + shift)
    k = np.clip(k, -(2.0 ** (bits - 1)), 2.0 ** (bits - 1) - 1)
    return k * delta
