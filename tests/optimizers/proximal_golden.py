"""Shared runs of the proximal optimizer tests (ProximalSGD, ProximalAdagrad).

`golden_run`: the setting of TF's proximal optimizer tests (algorithms.md
§4.4) for golden vectors. `dense_run` / `sparse_run`: the same random
gradients applied to the optimizer and, step by step, to an oracle (TF's
`ApplyProximal*` kernels, the numpy reference), so each test file keeps only
its oracle and its assertions.
"""

import keras
import numpy as np
import tensorflow as tf

from tests.reference import proximal_numpy as ref

G0, G1 = [0.1, 0.2], [0.01, 0.02]
DENSE_SHAPES = [(7, 5), (3,), (2, 3, 4)]


def golden_run(optimizer, steps):
    """`steps` updates of `[1, 2]` and `[4, 3]` with constant gradients `G0`, `G1`, as numpy."""
    v0, v1 = keras.Variable([1.0, 2.0]), keras.Variable([4.0, 3.0])
    for _ in range(steps):
        optimizer.apply([tf.constant(G0), tf.constant(G1)], [v0, v1])
    return v0.numpy(), v1.numpy()


def dense_run(make_optimizer, make_oracle, oracle_step, steps=25):
    """Dense float32 gradients on three shapes under an `ExponentialDecay` schedule.

    `make_optimizer(schedule)` builds the optimizer; `make_oracle(w)` the
    oracle's state for one variable's initial value `w`;
    `oracle_step(state, g, lr)` applies one gradient to it at the schedule's
    learning rate of that step. Returns `(optimizer, variables, states)`.
    """
    rng = np.random.default_rng(1)
    init = [rng.normal(0, 0.5, s).astype(np.float32) for s in DENSE_SHAPES]
    schedule = keras.optimizers.schedules.ExponentialDecay(0.3, 7, 0.8)
    optimizer = make_optimizer(schedule)
    ours = [keras.Variable(w) for w in init]
    states = [make_oracle(w) for w in init]
    for step in range(steps):
        grads = [rng.normal(0, 1, s).astype(np.float32) for s in DENSE_SHAPES]
        lr = float(schedule(step))
        optimizer.apply([tf.constant(g) for g in grads], ours)
        for state, g in zip(states, grads):
            oracle_step(state, g, lr)
    return optimizer, ours, states


def sparse_run(optimizer, make_oracle, oracle_step, steps=15):
    """`tf.IndexedSlices` gradients (6 rows of a (9, 4) variable, duplicates likely).

    `make_oracle(w)` builds the oracle's state from the initial value `w`;
    `oracle_step(state, idx, rows, uniq, summed) -> state` applies one sparse
    gradient to it: indices `idx` (possibly repeated) with their `rows`, and
    the same with duplicates summed (`uniq`, `summed`: what TF's kernels
    take). Returns `(variable, state)`.
    """
    rng = np.random.default_rng(2)
    init = rng.normal(0, 0.5, (9, 4)).astype(np.float32)
    ours = keras.Variable(init)
    state = make_oracle(init)
    for _ in range(steps):
        idx = rng.integers(0, 9, size=6).astype(np.int32)  # duplicates likely
        rows = rng.normal(0, 1, (6, 4)).astype(np.float32)
        grad = tf.IndexedSlices(tf.constant(rows), tf.constant(idx), tf.constant([9, 4]))
        optimizer.apply([grad], [ours])
        state = oracle_step(state, idx, rows, *ref.sum_duplicates(idx, rows))
    return ours, state
