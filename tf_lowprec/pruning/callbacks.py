"""Driving the masks from training: `update_masks` and the `UpdatePruningStep` callback."""

from __future__ import annotations

from typing import Any, Self

import keras
from keras import ops

from tf_lowprec.models import rewrite
from tf_lowprec.pruning.wrapper import PruningWrapper


def pruning_wrappers(model):
    """Every `PruningWrapper` in `model` (nested models included), in model order."""
    return [layer for layer in rewrite.walk(model) if isinstance(layer, PruningWrapper)]


def _attach(wrappers):
    for wrapper in wrappers:
        wrapper.mask_updates_attached = True


def _update(wrappers, step, last_step):
    updated = []
    for wrapper in wrappers:
        if getattr(wrapper, "follow", None) is not None:
            continue
        schedule = wrapper.pruning_schedule
        at = schedule.last_pruning_step(step, last_step)
        if at is None:
            continue
        _, sparsity = schedule(at)
        wrapper.update_masks(sparsity)
        updated.append(wrapper.name)
    if not updated:
        return updated
    by_name = {w.name: w for w in wrappers}
    for wrapper in wrappers:
        leader_name = getattr(wrapper, "follow", None)
        if leader_name is None:
            continue
        leader = by_name.get(leader_name)
        if leader is None:
            raise ValueError(
                f"`{wrapper.name}` follows `{leader_name}`, which is not in the model. "
                f"Received: follow={leader_name!r}"
            )
        if leader_name in updated:
            wrapper.assign_masks(leader.masks)
            updated.append(wrapper.name)
    return updated


def update_masks(model: keras.Model, step: int, last_step: int | None = None) -> list[str]:
    """Recomputes the masks whose schedule prunes at `step`.

    For each wrapper, `should_prune, sparsity = schedule(step)`; if it
    prunes, its masks are recomputed from the current weights and the newly
    masked weights are zeroed. Followers (`PruneFilters(..., follow=...)`)
    then copy their leader's mask. `fit` users add `UpdatePruningStep`
    instead; call this in a custom training loop before each step, with
    `step = optimizer.iterations + 1`.

    Args:
        model: A model containing pruning wrappers (or one wrapper layer).
        step: The 1-based index of the training step about to run.
        last_step: With several steps per call (`steps_per_execution`), the
            last step of the block: each wrapper then uses its latest pruning
            step in `[step, last_step]`. Defaults to `step`.

    Returns:
        The names of the wrappers whose masks were recomputed.
    """
    wrappers = [model] if isinstance(model, PruningWrapper) else pruning_wrappers(model)
    _attach(wrappers)
    return _update(wrappers, step, step if last_step is None else last_step)


@keras.saving.register_keras_serializable(package="tf_lowprec")
class UpdatePruningStep(keras.callbacks.Callback):
    """Updates pruning masks at step boundaries during `fit` (required).

    Before each training step it calls `update_masks(model, step)` with
    `step = optimizer.iterations + 1`, the TFMOT convention, so resuming a
    saved model (whose optimizer keeps its iteration count) continues the
    schedule where it stopped. The decision is taken in Python between
    steps; the compiled training step only applies the variable constraints.

    With `steps_per_execution = n`, the callback runs once per block of `n`
    steps and uses the latest pruning step inside the block, at its start.

    Example:

    ```python
    pruned.fit(x, y, epochs=3, callbacks=[UpdatePruningStep()])
    ```
    """

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        wrappers = pruning_wrappers(self.model)
        if not wrappers:
            raise ValueError(
                "UpdatePruningStep needs a model with pruning wrappers "
                "(prune_low_magnitude / prune_filters). Received: model="
                f"{self.model.name!r} with none."
            )
        _attach(wrappers)
        self._wrappers = wrappers
        self._steps_per_call = max(int(getattr(self.model, "steps_per_execution", 1) or 1), 1)

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._epoch_start = int(ops.convert_to_numpy(self.model.optimizer.iterations))

    def on_train_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        first = self._epoch_start + batch + 1
        _update(self._wrappers, first, first + self._steps_per_call - 1)

    def get_config(self) -> dict[str, Any]:
        return {}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Self:
        return cls(**config)
