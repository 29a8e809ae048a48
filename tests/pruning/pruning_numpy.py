"""Numpy oracles for pruning masks and schedules (written from the formulas)."""

import numpy as np


def keep_count(size, sparsity):
    """k = max(round_half_even(size * (1 - s)), 1)."""
    return max(int(np.round(size * (1.0 - sparsity))), 1)


def magnitude_mask(w, sparsity):
    """Keeps the k largest |w|; among ties the lower flat index survives."""
    flat = np.abs(np.asarray(w, np.float64)).ravel()
    k = keep_count(flat.size, sparsity)
    order = np.argsort(-flat, kind="stable")  # stable: equal values keep index order
    mask = np.zeros(flat.size, np.float32)
    mask[order[:k]] = 1.0
    return mask.reshape(np.shape(w))


def unit_mask(kernel, sparsity):
    """Keeps the k output units (last axis) of largest L1 norm; ties: lower index."""
    kernel = np.abs(np.asarray(kernel, np.float64))
    scores = kernel.reshape(-1, kernel.shape[-1]).sum(axis=0)
    k = keep_count(scores.size, sparsity)
    order = np.argsort(-scores, kind="stable")
    mask = np.zeros(scores.size, np.float32)
    mask[order[:k]] = 1.0
    return mask


def should_prune(step, begin, end, frequency):
    return begin <= step and (end == -1 or step <= end) and (step - begin) % frequency == 0


def polynomial_sparsity(step, initial, final, begin, end, power):
    p = min(1.0, max(0.0, (step - begin) / (end - begin)))
    return final + (initial - final) * (1.0 - p) ** power
