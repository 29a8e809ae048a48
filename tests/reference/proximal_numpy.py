"""Numpy oracles for ProximalSGD / ProximalAdagrad (TF1 kernel semantics).

Transcribed from the update rules in the optimizer docstrings (and
algorithms.md §4.1-4.2), not from any implementation. Sparse variants take
`(indices, rows)` with possibly repeated indices and sum them first, as TF1's
`Optimizer._apply_sparse_duplicate_indices` did.
"""

import numpy as np


def soft_threshold(x, t):
    return np.sign(x) * np.maximum(np.abs(x) - t, 0.0)


def proximal_sgd_step(w, g, lr, l1=0.0, l2=0.0):
    """Returns the new `w` after one FOBOS step."""
    p = w - lr * g
    return soft_threshold(p, lr * l1) / (1.0 + lr * l2)


def proximal_adagrad_step(w, acc, g, lr, l1=0.0, l2=0.0):
    """Returns `(w, acc)` after one ProximalAdagrad step (no epsilon)."""
    acc = acc + g * g
    eta = lr / np.sqrt(acc)
    p = w - eta * g
    return soft_threshold(p, eta * l1) / (1.0 + eta * l2), acc


def sum_duplicates(indices, rows):
    """`(unique_indices, summed_rows)` in first-occurrence order."""
    indices = np.asarray(indices)
    uniq, first = np.unique(indices, return_index=True)
    uniq = uniq[np.argsort(first)]
    summed = np.stack([rows[indices == i].sum(axis=0) for i in uniq])
    return uniq, summed


def proximal_sgd_sparse_step(w, indices, rows, lr, l1=0.0, l2=0.0):
    w = w.copy()
    idx, g = sum_duplicates(indices, rows)
    w[idx] = proximal_sgd_step(w[idx], g, lr, l1, l2)
    return w


def proximal_adagrad_sparse_step(w, acc, indices, rows, lr, l1=0.0, l2=0.0):
    w, acc = w.copy(), acc.copy()
    idx, g = sum_duplicates(indices, rows)
    w[idx], acc[idx] = proximal_adagrad_step(w[idx], acc[idx], g, lr, l1, l2)
    return w, acc
