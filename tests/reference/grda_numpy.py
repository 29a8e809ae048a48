"""NumPy oracle for gRDA: the authors' PyTorch/TF1 semantics, step by step.

Transcribed from the update rule in algorithms.md §1.2 (accumulated threshold,
accumulator initialised at the weights), in float64.
"""

import numpy as np


class GRDANumpy:
    """Reference gRDA over a list of float64 arrays.

    `step(grads, lr)` applies one step with learning rate `lr` and returns the
    new weights; `threshold` holds the shared `thr_n`.
    """

    def __init__(self, weights, c, mu):
        self.c, self.mu = float(c), float(mu)
        self.acc = [np.array(w, dtype=np.float64) for w in weights]
        self.n = 0
        self.threshold = 0.0

    def step(self, grads, lr):
        self.n += 1
        n = float(self.n)
        self.threshold += self.c * lr ** (self.mu + 0.5) * (n**self.mu - (n - 1.0) ** self.mu)
        weights = []
        for acc, g in zip(self.acc, grads):
            acc -= lr * np.asarray(g, dtype=np.float64)
            weights.append(np.sign(acc) * np.maximum(np.abs(acc) - self.threshold, 0.0))
        return weights
