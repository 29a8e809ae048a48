"""Closed-form numpy references for the named losses (float64, per sample).

Written from the formulas (tf.nn.weighted_cross_entropy_with_logits; Lin et
al. 2017 focal loss as TFA summed it; de la Torre et al. 2018 weighted
kappa), with the naive, non-stabilized expressions: fine for moderate logits.
"""

import numpy as np


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def one_hot(labels, num_classes):
    return np.eye(num_classes)[np.asarray(labels).reshape(-1)]


def softmax_cross_entropy(z, x):
    return -(z * np.log(softmax(x))).sum(axis=-1)


def weighted_cross_entropy(z, x, pos_weight=1.0):
    p = sigmoid(x)
    ce = -pos_weight * z * np.log(p) - (1 - z) * np.log(1 - p)
    return ce.mean(axis=-1)


def sigmoid_cross_entropy(z, x):
    return weighted_cross_entropy(z, x, 1.0)


def sigmoid_focal(z, p, alpha=0.25, gamma=2.0):
    """`p` are probabilities; returns the sum over the last axis."""
    ce = -z * np.log(p) - (1 - z) * np.log(1 - p)
    p_t = z * p + (1 - z) * (1 - p)
    a_t = 1.0 if alpha is None else z * alpha + (1 - z) * (1 - alpha)
    return (a_t * (1 - p_t) ** gamma * ce).sum(axis=-1)


def weighted_kappa(z, p, weightage="quadratic", epsilon=1e-6):
    """Batch loss log(1 - kappa + eps) with explicit loops."""
    n, c = p.shape
    power = 1 if weightage == "linear" else 2
    w = np.array([[abs(i - j) ** power for j in range(c)] for i in range(c)], float)
    labels = z.argmax(axis=-1)
    observed = sum(w[labels[k], j] * p[k, j] for k in range(n) for j in range(c))
    hist_true, hist_pred = z.sum(axis=0), p.sum(axis=0)
    expected = sum(
        hist_true[i] * w[i, j] * hist_pred[j] for i in range(c) for j in range(c)
    ) / n
    return np.log(observed / expected + epsilon)
