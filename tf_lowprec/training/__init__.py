"""Training utilities: callbacks, schedules and losses."""

from tf_lowprec.training.batch_size_schedules import (
    LinearBatchSize,
    ScheduledBatches,
    fit_with_batch_schedule,
    get_batch_size_schedule,
)
from tf_lowprec.training.epoch_timer import EpochTimer
from tf_lowprec.training.full_gradient import FullGradient, FullGradientSnapshot, full_gradient
from tf_lowprec.training.losses import (
    IntegerLabels,
    SigmoidFocalCrossentropy,
    WeightedBinaryCrossentropy,
    WeightedKappaLoss,
    available_losses,
    get_loss,
)
from tf_lowprec.training.lr_schedules import (
    ConstantAndDrop,
    CosineAnnealing,
    MultiStep,
    PaperPiecewise,
)
from tf_lowprec.training.step_losses import StepLossRecorder
from tf_lowprec.training.swa import SWA, StochasticWeightAveraging, recompute_batchnorm_statistics
from tf_lowprec.training.tensorboard_diagnostics import TensorBoardDiagnostics
from tf_lowprec.training.variance_reduced import VarianceReduced
