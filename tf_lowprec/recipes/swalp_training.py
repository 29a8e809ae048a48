"""SWALP: the paper's whole setup in one call (low-precision SGD + weight averaging).

SWALP (Yang et al., 2019) trains with every number in 8-bit block floating
point and averages the low-precision iterates in full precision:

* weights, gradients, momentum and the weight accumulator: 8-bit BFP with
  one shared exponent per output channel ("small-block FC": biases and
  other 1-D tensors share one exponent), stochastic rounding
  (`LowPrecision(SGD(momentum=0.9))`);
* activations (forward) and back-propagated errors (backward): 8-bit BFP,
  one exponent per tensor, stochastic rounding, after every activation
  except the logits (`quantize_activations`, i.e. `Quantize` layers);
* learning rate: SWALP's `schedule` = `PaperPiecewise(lr, total=swa_start,
  final_learning_rate=swa_lr)` per epoch; averaging of the weights at the
  end of every epoch from `swa_start` on, in float32, with a BatchNorm
  recompute (`tf_lowprec.training.SWA` + `StochasticWeightAveraging`).

`swalp(model, steps_per_epoch, swa_start)` returns the model, the optimizer
and the callbacks; `word_length=None` gives the full-precision baselines
(SGD-FP / SWA-FP) and `average=False` the non-averaged ones (SGD-LP /
SGD-FP), all on the same schedule.

Blocks in Keras layout: Keras kernels put the output channel last
(`Dense (in, out)`, `Conv2D (kh, kw, in, out)`) where torch puts it first,
so SWALP's per-dim-0 blocks are `BlockFloatingPoint(8, axis=-1)` here.

Also registered as `tf_lowprec.optimizers.get("low_precision_sgd")`; the
old paths `tf_lowprec.optimizers.swalp` etc. forward here (deprecated).

References:
    - [Yang, Zhang, Wang, De Sa, "SWALP: Stochastic Weight Averaging in
      Low-Precision Training", ICML 2019](https://arxiv.org/abs/1904.11943);
      code: github.com/stevenygd/SWALP (`train.py`, `utils.py`,
      `exp/block_vgg_swa.sh`: all word lengths 8, `--small-block FC
      --block-dim B`, stochastic rounding, momentum 0.9).
"""

from __future__ import annotations

import dataclasses

import keras

from tf_lowprec import validation
from tf_lowprec.formats import BlockFloatingPoint
from tf_lowprec.optimizers.low_precision import LowPrecision
from tf_lowprec.optimizers.swa import SWA
from tf_lowprec.quantizers import Quantizer, QuantizerLike
from tf_lowprec.recipes.activation_quantization import quantize_activations
from tf_lowprec.training.lr_schedules import PaperPiecewise
from tf_lowprec.training.swa import BatchNormData, StochasticWeightAveraging


def swalp_formats(word_length: int = 8) -> tuple[BlockFloatingPoint, BlockFloatingPoint]:
    """`(optimizer_format, activation_format)` of the SWALP paper.

    `BlockFloatingPoint(word_length, axis=-1)` (one exponent per output
    channel, 1-D tensors one block) for weights, gradients, momentum and
    accumulator; `BlockFloatingPoint(word_length, axis=None)` (one exponent
    per tensor, as SWALP's `BlockQuantizer`) for activations and errors.
    """
    return (
        BlockFloatingPoint(word_length, axis=-1, small_block_rank=1),
        BlockFloatingPoint(word_length, axis=None),
    )


def low_precision_sgd(
    learning_rate: float | keras.optimizers.schedules.LearningRateSchedule = 0.05,
    momentum: float = 0.9,
    word_length: int = 8,
    rounding: str = "stochastic",
    weight_decay: float | None = None,
    nesterov: bool = False,
    seed: int | None = None,
    quantizer: QuantizerLike | None = None,
) -> LowPrecision:
    """SGD with momentum, with weights, gradients, momentum and accumulator in BFP.

    `LowPrecision(keras.optimizers.SGD(learning_rate, momentum, nesterov,
    weight_decay=weight_decay))` with `swalp_formats(word_length)[0]` and
    `rounding` for all four quantizers: the optimizer of SWALP's SGD-LP and
    SWALP runs. Since the weight and accumulator formats agree, no separate
    accumulator is kept (see `LowPrecision`).

    Args:
        learning_rate: float or `LearningRateSchedule`. Defaults to `0.05`.
        momentum: float in `[0, 1)`. Defaults to `0.9`.
        word_length: BFP mantissa bits. Defaults to `8`.
        rounding: `"stochastic"` or `"nearest"`. Defaults to `"stochastic"`.
        weight_decay: Keras's decoupled decay (`w -= lr * wd * w`, on the
            accumulator) or `None`; SWALP's coupled `5e-4` with momentum 0.9
            is roughly `5e-3` here. Defaults to `None`.
        nesterov: Defaults to `False`.
        seed: stochastic-rounding seed (see `LowPrecision`). Defaults to `None`.
        quantizer: a `tf_lowprec.quantizers.Quantizer` (or a format, rounded
            stochastically) for all four quantities instead of
            `word_length` / `rounding`. Defaults to `None`.

    Returns:
        A `LowPrecision` optimizer.
    """
    learning_rate = validation.learning_rate(learning_rate)
    momentum = validation.float_in_range(momentum, "momentum", 0.0, 1.0, high_open=True)
    validation.optimizer_common_args(weight_decay=weight_decay)
    if quantizer is None:
        quantizer = Quantizer(swalp_formats(word_length)[0], rounding)
    return LowPrecision(
        keras.optimizers.SGD(
            learning_rate=learning_rate,
            momentum=momentum,
            nesterov=nesterov,
            weight_decay=weight_decay,
        ),
        weight_quantizer=quantizer,
        gradient_quantizer=quantizer,
        momentum_quantizer=quantizer,
        accumulator_quantizer=quantizer,
        seed=seed,
    )


@dataclasses.dataclass(frozen=True)
class SWALPSetup:
    """What `swalp()` returns: compile `model` with `optimizer`, fit with `callbacks`."""

    model: keras.Model
    optimizer: keras.optimizers.Optimizer
    callbacks: list


def swalp(
    model: keras.Model,
    steps_per_epoch: int,
    swa_start: int,
    learning_rate: float = 0.05,
    swa_lr: float = 0.01,
    momentum: float = 0.9,
    weight_decay: float | None = None,
    word_length: int = 8,
    rounding: str = "stochastic",
    average: bool = True,
    frequency: int = 1,
    data: BatchNormData | None = None,
    batchnorm_steps: int | None = None,
    seed: int | None = None,
    optimizer_quantizer: QuantizerLike | None = None,
    activation_quantizer: QuantizerLike | None = None,
) -> SWALPSetup:
    """The SWALP paper's training setup for `model`, in one call.

    ```python
    setup = tf_lowprec.recipes.swalp(
        tf_lowprec.models.vgg16(), steps_per_epoch=391, swa_start=200, data=train)
    setup.model.compile(setup.optimizer, loss=keras.losses.SparseCategoricalCrossentropy(
        from_logits=True), metrics=["accuracy"])
    setup.model.fit(train, epochs=300, validation_data=test, callbacks=setup.callbacks)
    ```

    * model: `quantize_activations(model, A, A)` with `A =
      swalp_formats(word_length)[1]` (8-bit BFP activations and errors);
    * optimizer: `SWA(low_precision_sgd(PaperPiecewise(learning_rate,
      total=swa_start, steps_per_epoch, final_learning_rate=swa_lr),
      momentum, word_length, rounding, weight_decay))`;
    * callbacks: `[StochasticWeightAveraging(start_epoch=swa_start,
      frequency, data=data)]`.

    Train for more than `swa_start` epochs (the paper: 300 with
    `swa_start=200` for VGG16, `learning_rate=0.05, swa_lr=0.01`). The
    non-averaged model after `swa_start` epochs is SWALP's "SGD-LP" number;
    the averaged one at the end is "SWALP".

    Baselines on the same schedule: `average=False` (no SWA wrapper or
    callback), `word_length=None` (full precision: the model is returned
    unchanged and the optimizer is plain Keras SGD).

    Note: SWALP evaluates its averaged model with full-precision
    activations; here the averaged weights go back into the quantized
    model. Copy them into the original model (`model.set_weights(
    setup.model.get_weights())`, same weight order) for the paper's
    evaluation.

    Args:
        model: a Sequential or functional Keras model (outputs logits).
        steps_per_epoch: batches per epoch (the schedule is per epoch).
        swa_start: epochs before averaging starts (`total` of the schedule).
        learning_rate: initial rate. Defaults to `0.05`.
        swa_lr: rate of the averaging phase. Defaults to `0.01`.
        momentum: Defaults to `0.9`.
        weight_decay: decoupled weight decay (see `low_precision_sgd`).
            Defaults to `None`.
        word_length: BFP word length, or `None` for full precision.
            Defaults to `8`.
        rounding: rounding of every quantizer. Defaults to `"stochastic"`.
        average: add weight averaging. Defaults to `True`.
        frequency: epochs between snapshots. Defaults to `1`.
        data: training data for BatchNorm recomputes (required if the model
            has BatchNorm layers and `average`). Defaults to `None`.
        batchnorm_steps: batches per BatchNorm recompute. Defaults to `None`.
        seed: seed of every stochastic rounding (`None`: random). Defaults
            to `None`.
        optimizer_quantizer: a `tf_lowprec.quantizers.Quantizer` for
            weights, gradients, momentum and accumulator instead of the
            paper's (`word_length`, `rounding`). Defaults to `None`.
        activation_quantizer: a `Quantizer` for activations and errors
            instead of the paper's. Defaults to `None`.

    Returns:
        A `SWALPSetup(model, optimizer, callbacks)`.
    """
    schedule = PaperPiecewise(
        learning_rate,
        total=swa_start,
        steps_per_epoch=steps_per_epoch,
        final_learning_rate=swa_lr,
    )
    if word_length is None:
        optimizer = keras.optimizers.SGD(
            learning_rate=schedule, momentum=momentum, weight_decay=weight_decay
        )
    else:
        activation = activation_quantizer or Quantizer(swalp_formats(word_length)[1], rounding)
        model = quantize_activations(
            model, activation, activation, rounding=rounding, backward_rounding=rounding, seed=seed
        )
        optimizer = low_precision_sgd(
            schedule,
            momentum=momentum,
            word_length=word_length,
            rounding=rounding,
            weight_decay=weight_decay,
            seed=seed,
            quantizer=optimizer_quantizer,
        )
    callbacks = []
    if average:
        optimizer = SWA(optimizer)
        callbacks.append(
            StochasticWeightAveraging(
                start_epoch=swa_start,
                frequency=frequency,
                data=data,
                batchnorm_steps=batchnorm_steps,
            )
        )
    return SWALPSetup(model=model, optimizer=optimizer, callbacks=callbacks)
