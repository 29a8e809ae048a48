"""SGD8bit, Adam8bit, AdamW8bit: against Keras's float32 optimizers."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from tf_lowprec import optimizers
from tf_lowprec.ops import blockwise
from tf_lowprec.ops.quantize import quantize
from tf_lowprec.optimizers import Adam8bit, AdamW8bit, LowPrecision, SGD8bit

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Largest quantization error of a stored state, relative to its block maximum:
# half the widest gap of the signed / unsigned dynamic table.
EPS_SIGNED = 0.9 / 64 / 2
EPS_UNSIGNED = 0.9 / 128 / 2
SIZE, BLOCK = 4096, 256


def _quadratic(seed=0):
    """f(w) = 1/2 sum a_i (w_i - c_i)^2: curvatures in [0.5, 2], optimum c."""
    rng = np.random.default_rng(seed)
    a = rng.uniform(0.5, 2.0, SIZE).astype(np.float32)
    c = rng.standard_normal(SIZE).astype(np.float32)
    return a, c


def _states(opt, slot):
    """Dequantized float32 state `slot` ("momentum"/"velocity") of one variable."""
    codes = [v for v in opt.variables if v.name.startswith(f"{slot}_codes_")]
    scales = [v for v in opt.variables if v.name.startswith(f"{slot}_absmax_")]
    assert len(codes) == len(scales) == 1
    values = blockwise.dequantize_blockwise(
        codes[0].value, scales[0].value, opt.block_size
    )
    return values.numpy(), scales[0].numpy()


@pytest.mark.parametrize(
    "ours,keras_optimizer",
    [
        (
            lambda **k: Adam8bit(amsgrad=True, **k),
            lambda: keras.optimizers.Adam(amsgrad=True),
        ),
        (lambda **k: AdamW8bit(**k), lambda: keras.optimizers.AdamW()),
        (
            lambda **k: SGD8bit(0.05, momentum=0.9, nesterov=True, **k),
            lambda: keras.optimizers.SGD(0.05, momentum=0.9, nesterov=True),
        ),
    ],
)
def test_float32_states_below_min_8bit_size_are_keras(ours, keras_optimizer):
    a, c = _quadratic()
    results = []
    for opt in (ours(min_8bit_size=SIZE + 1), keras_optimizer()):
        w = keras.Variable(np.zeros(SIZE, np.float32))
        for _ in range(5):
            opt.apply([tf.constant(a * (w.numpy() - c))], [w])
        results.append(w.numpy())
        assert all(v.dtype in ("float32", "int64") for v in opt.variables)
    # Same rule in float32; XLA may fuse multiply-adds (a few ulps).
    np.testing.assert_allclose(results[0], results[1], rtol=1e-5, atol=1e-6)


def test_sgd8bit_tracks_sgd_within_the_propagated_quantization_bound():
    """Derived bound. With v = mu v - lr g, w += v (Keras SGD) on the quadratic,
    the differences (dw, dv) between the 8-bit and the float32 runs obey
    z_{t+1} = A z_t + (0, e_{t+1}) per coordinate, A = [[1 - lr a, mu], [-lr a, mu]],
    where e_t is the rounding of the stored velocity, |e_t| <= EPS_SIGNED * s_t
    (s_t: its block's stored scale). Hence |dw_T| <= sum_k |(A^{T-k})_{01}| EPS s_k.
    """
    a, c = _quadratic()
    lr, mu, steps = 0.1, 0.9, 25
    opt8, opt32 = (
        SGD8bit(lr, momentum=mu, block_size=BLOCK),
        keras.optimizers.SGD(lr, momentum=mu),
    )
    w8, w32 = (keras.Variable(np.zeros(SIZE, np.float32)) for _ in range(2))
    scales = []
    for _ in range(steps):
        opt8.apply([tf.constant(a * (w8.numpy() - c))], [w8])
        opt32.apply([tf.constant(a * (w32.numpy() - c))], [w32])
        scales.append(np.repeat(_states(opt8, "momentum")[1], BLOCK))
    assert opt8.variables[2].dtype == "int8"
    # P_j = (A^j)[:, 1] per coordinate, j = 0 .. steps-1.
    A = np.array([[1 - lr * a, np.full(SIZE, mu)], [-lr * a, np.full(SIZE, mu)]])
    column = np.array([np.zeros(SIZE), np.ones(SIZE)])
    bound = np.zeros(SIZE)
    for k in range(steps, 0, -1):  # power T-k applied to the error of step k
        bound += np.abs(column[0]) * EPS_SIGNED * scales[k - 1]
        column = np.einsum("ijn,jn->in", A, column)
    deviation = np.abs(w8.numpy() - w32.numpy())
    assert deviation.max() > 0  # really quantized
    assert np.all(deviation <= bound + 1e-5), (deviation - bound).max()
    # The bound is informative: far below the distance travelled.
    assert bound.max() < 0.05 * np.abs(w32.numpy()).max()


def test_adam8bit_step_is_keras_adam_on_the_dequantized_state():
    """Per-step derived bound: from the 8-bit run's dequantized moments, Keras
    Adam gives the same weight step, and the stored new moments are within
    EPS * (block scale) of Keras Adam's float32 ones."""
    a, c = _quadratic()
    ours = Adam8bit(0.01, block_size=BLOCK)
    w = keras.Variable(np.zeros(SIZE, np.float32))
    for step in range(6):
        g = tf.constant(a * (w.numpy() - c))
        reference = keras.optimizers.Adam(0.01)
        w_ref = keras.Variable(w.numpy())
        reference.build([w_ref])
        if step:
            reference.iterations.assign(step)
            reference._momentums[0].assign(_states(ours, "momentum")[0])
            reference._velocities[0].assign(_states(ours, "velocity")[0])
        ours.apply([g], [w])
        reference.apply([g], [w_ref])
        np.testing.assert_allclose(w.numpy(), w_ref.numpy(), rtol=1e-6, atol=1e-7)
        for slot, keras_slot, eps in (
            ("momentum", reference._momentums[0], EPS_SIGNED),
            ("velocity", reference._velocities[0], EPS_UNSIGNED),
        ):
            values, scales = _states(ours, slot)
            error = np.abs(values - keras_slot.numpy())
            assert np.all(error <= eps * np.repeat(scales, BLOCK) * (1 + 1e-5) + 1e-12)


def test_adam8bit_trajectory_follows_adam_on_the_quadratic():
    """Stated tolerance: after 150 steps both runs have reduced the loss
    > 100x and the 8-bit run's loss is within 10% of float32 Adam's."""
    a, c = _quadratic(1)

    def final_loss(opt):
        w = keras.Variable(np.zeros(SIZE, np.float32))
        step = tf.function(lambda: opt.apply([a * (w - c)], [w]))
        for _ in range(150):
            step()
        return 0.5 * np.sum(a * (w.numpy() - c) ** 2)

    losses = [
        final_loss(Adam8bit(0.05, block_size=BLOCK)),
        final_loss(keras.optimizers.Adam(0.05)),
    ]
    start = 0.5 * np.sum(a * c**2)
    assert max(losses) < start / 100
    assert abs(losses[0] - losses[1]) <= 0.1 * losses[1], losses


def _model(dtype="float32"):
    rng = np.random.default_rng(1)
    model = keras.Sequential(
        [
            keras.Input((32,)),
            keras.layers.Dense(64, activation="relu", dtype=dtype),
            keras.layers.Dense(3, dtype=dtype),
        ]
    )
    model.set_weights([rng.normal(0, 0.3, w.shape) for w in model.get_weights()])
    return model


def _data():
    rng = np.random.default_rng(2)
    return rng.normal(size=(64, 32)).astype("float32"), rng.integers(0, 3, 64)


def test_keras_resume_is_bit_identical(tmp_path):
    """StochasticRounding(AdamW8bit(amsgrad)) on bfloat16 weights: 8-bit codes
    (int8 m, uint8 v and v_hat), float32 small states, rounding seeds."""
    x, y = _data()
    model = _model("bfloat16")
    optimizer = optimizers.StochasticRounding(
        AdamW8bit(0.01, amsgrad=True, block_size=64, min_8bit_size=1024), seed=3
    )
    model.compile(
        optimizer, keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    path = str(tmp_path / "m.keras")
    model.save(path)
    restored = keras.models.load_model(path)
    assert type(restored.optimizer) is type(model.optimizer)
    assert restored.optimizer.get_config() == model.optimizer.get_config()
    for m in (model, restored):
        m.fit(x, y, batch_size=16, epochs=1, verbose=0, shuffle=False)
    stored_dtypes = {v.dtype for v in model.optimizer.variables}
    assert {"int8", "uint8"} & stored_dtypes
    for a_, b_ in zip(model.get_weights(), restored.get_weights()):
        np.testing.assert_array_equal(a_, b_)
    for a_, b_ in zip(model.optimizer.variables, restored.optimizer.variables):
        np.testing.assert_array_equal(a_.numpy(), b_.numpy())


def test_low_precision_wraps_adam8bit():
    from tf_lowprec.formats import BlockFloatingPoint

    rng = np.random.default_rng(4)
    kernel = keras.Variable(rng.normal(size=(32, 64)).astype(np.float32))
    bias = keras.Variable(np.zeros(64, np.float32))
    bfp8 = BlockFloatingPoint(8, axis=-1)
    inner = Adam8bit(0.01, block_size=64, min_8bit_size=1024)
    opt = LowPrecision(inner, weight_quantizer=bfp8, momentum_quantizer=bfp8, seed=1)
    for _ in range(3):
        opt.apply([tf.constant(kernel.numpy()), tf.ones(64)], [kernel, bias])
    # The kernel's moments are 8-bit codes (on the separate accumulator the
    # inner optimizer is built on); the bias's float32 moments are the state
    # slots LowPrecision finds and quantizes with its momentum quantizer.
    codes = sorted(
        (v.dtype, tuple(v.shape)) for v in inner.variables if "int8" in v.dtype
    )
    assert codes == [("int8", (32, 64)), ("uint8", (32, 64))]
    slots = [s for slots in opt._refs.state_slots for s in slots]
    assert len(slots) == 2 and all(
        s.shape == (64,) and s.dtype == "float32" for s in slots
    )
    for slot in slots:
        values = slot.numpy()
        np.testing.assert_array_equal(values, quantize(values, bfp8).numpy())
    # The model weights are on the 8-bit grid (Q_W of the accumulators), and moved.
    np.testing.assert_array_equal(kernel.numpy(), quantize(kernel.value, bfp8).numpy())
    assert not np.array_equal(kernel.numpy(), opt.accumulators[0].numpy())
    assert np.all(bias.numpy() < 0)


# (argument, bad value): checked by `BlockwiseStates` for every class, then
# each class's own rule arguments.
_SHARED_BAD = [
    ("block_size", 0),
    ("block_size", -4),
    ("block_size", 2.0),
    ("block_size", True),
    ("min_8bit_size", -1),
    ("learning_rate", 0.0),
    ("clipnorm", -1.0),
]
_OWN_BAD = {
    SGD8bit: [("momentum", 1.5), ("nesterov", "yes")],
    Adam8bit: [("beta_1", 1.0), ("epsilon", 0.0), ("amsgrad", 1)],
    AdamW8bit: [("beta_2", -0.1)],
}


@pytest.mark.parametrize(
    "cls,argument,value",
    [(cls, *bad) for cls, own in _OWN_BAD.items() for bad in _SHARED_BAD + own],
)
def test_bad_arguments_raise_value_error(cls, argument, value):
    with pytest.raises(ValueError, match=argument):
        cls(**{argument: value})


def test_non_float_variable_and_bits_raise_value_error():
    with pytest.raises(ValueError, match="var_list"):
        Adam8bit().build([keras.Variable(np.zeros(4, np.int32), trainable=False)])
    with pytest.raises(ValueError, match="bits"):
        blockwise.quantize_blockwise(np.ones(4, np.float32), bits=4)
    with pytest.raises(ValueError, match="weight_decay"):
        AdamW8bit(weight_decay=None)


def test_registered_names_and_state_bytes():
    for name, cls in (
        ("sgd8bit", SGD8bit),
        ("adam8bit", Adam8bit),
        ("adamw8bit", AdamW8bit),
    ):
        assert type(optimizers.get(name)) is cls
    w = keras.Variable(np.zeros((256, 1024), np.float32))
    for opt, limit in ((Adam8bit(), 2.1), (SGD8bit(momentum=0.9), 1.05)):
        opt.build([w])
        state = sum(
            np.prod(v.shape) * np.dtype(v.dtype).itemsize
            for v in opt.variables
            if v.shape
        )
        assert state / w.numpy().size <= limit


@pytest.mark.slow
def test_mirrored_strategy_equals_one_device():
    completed = subprocess.run(
        [sys.executable, "-m", "tests.optimizers.eight_bit_mirrored"],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    results = {}
    for line in completed.stdout.strip().splitlines():
        if line.startswith("{"):
            results.update(json.loads(line))
    assert set(results) == {"adamw8bit", "sr_adam8bit_bf16"}
    for name, r in results.items():
        assert r["replicas_identical"], name  # same all-reduced step, same codes
        assert {"int8", "uint8"} & set(r["state_dtypes"]), name
        if r["variable_dtype"] == "bfloat16":
            # The bf16 forward/backward on 8 vs 16 samples rounds the gradient
            # differently (relative 2^-8); a stochastic rounding decision may
            # then flip, by one ulp (2^-8 of the weight's binade) per flip.
            assert r["max_abs_diff"] <= 4 * 2**-8 * r["max_abs_weight"], (name, r)
        else:  # float32 round-off of a sum split across replicas, over 8 steps
            assert r["max_abs_diff"] <= 2e-6 * max(1.0, r["max_abs_weight"]), (name, r)


def test_chunked_kernel_equals_one_pass(monkeypatch):
    """The update loop over chunks of blocks (whole chunks in the loop, a
    partial last chunk after it) gives the same codes, scales and weights
    as one pass over the whole tensor."""
    from tf_lowprec.optimizers import blockwise_states

    rng = np.random.default_rng(5)
    w0 = rng.normal(size=(13, 13)).astype(np.float32)  # 169 = 10 blocks of 16 + 9
    grads = rng.normal(size=(3, 13, 13)).astype(np.float32)
    results = []
    # One pass; chunks of 3 blocks (3 in the loop, 2 left); of 1 block (11, none).
    for entries in (1000, 48, 16):
        monkeypatch.setattr(blockwise_states, "CHUNK_ENTRIES", entries)
        opt = Adam8bit(0.01, amsgrad=True, block_size=16, min_8bit_size=1)
        w = keras.Variable(w0)
        for g in grads:
            opt.apply([tf.constant(g)], [w])
        results.append([w.numpy()] + [v.numpy() for v in opt.variables])
    for other in results[1:]:
        for a_, b_ in zip(results[0], other):
            np.testing.assert_array_equal(a_, b_)


def _apply_step(opt, variables):
    def step(gradients):
        opt.apply(gradients, variables)

    return step


def test_kernel_lanes_and_update_order_change_no_result(monkeypatch):
    """Under tf.function the kernels run in lanes, last variable first; the
    updates are independent, so one or two lanes give the same bits as
    eager updates in variable order."""
    from tf_lowprec.optimizers import blockwise_states

    rng = np.random.default_rng(6)
    shapes = [(40, 30), (30,), (30, 20), (20, 10)]
    starts = [rng.normal(size=s).astype(np.float32) for s in shapes]
    grads = [
        [tf.constant(rng.normal(size=s).astype(np.float32)) for s in shapes]
        for _ in range(3)
    ]
    results = []
    for lanes, graph in ((1, False), (1, True), (2, True)):
        monkeypatch.setattr(blockwise_states, "KERNEL_LANES", lanes)
        opt = Adam8bit(0.01, block_size=16, min_8bit_size=100)
        ws = [keras.Variable(s) for s in starts]
        opt.build(ws)
        step = _apply_step(opt, ws)
        step = tf.function(step) if graph else step
        for g in grads:
            step(g)
        assert {v.dtype for v in opt.variables} >= {"int8", "uint8", "float32"}
        results.append([w.numpy() for w in ws] + [v.numpy() for v in opt.variables])
    for other in results[1:]:
        for a_, b_ in zip(results[0], other):
            np.testing.assert_array_equal(a_, b_)
