"""Every tf_lowprec `fit` callback, in one namespace (like `keras.callbacks`).

  SparsityLogger            sparsity (global, per layer) into the epoch logs
  TensorBoardDiagnostics    sparsity, GRDA threshold, HALP saturation, SWA count,
                            quantization error and int8 ranges into TensorBoard
  StochasticWeightAveraging SWA / SWALP averaging (with the BatchNorm recompute)
  UpdatePruningStep         magnitude-pruning mask updates (TFMOT's schedule)
  FullGradientSnapshot      SVRG/HALP full-gradient snapshot every T steps
  EpochTimer                seconds per epoch into the logs
  StepLossRecorder          training loss every step (for loss curves)

Each is defined next to what it serves (pruning/, training/); this module only
gathers them.
"""

from tf_lowprec.pruning.callbacks import UpdatePruningStep
from tf_lowprec.pruning.sparsity import SparsityLogger
from tf_lowprec.training.epoch_timer import EpochTimer
from tf_lowprec.training.full_gradient import FullGradientSnapshot
from tf_lowprec.training.step_losses import StepLossRecorder
from tf_lowprec.training.swa import StochasticWeightAveraging
from tf_lowprec.training.tensorboard_diagnostics import TensorBoardDiagnostics

__all__ = [
    "EpochTimer",
    "FullGradientSnapshot",
    "SparsityLogger",
    "StepLossRecorder",
    "StochasticWeightAveraging",
    "TensorBoardDiagnostics",
    "UpdatePruningStep",
]
