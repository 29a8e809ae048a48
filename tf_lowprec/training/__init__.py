"""Training utilities: callbacks, schedules and losses."""

from tf_lowprec.training.epoch_timer import EpochTimer
from tf_lowprec.training.losses import IntegerLabels
from tf_lowprec.training.losses import SigmoidFocalCrossentropy
from tf_lowprec.training.losses import WeightedBinaryCrossentropy
from tf_lowprec.training.losses import WeightedKappaLoss
from tf_lowprec.training.losses import available_losses
from tf_lowprec.training.losses import get_loss
from tf_lowprec.training.lr_schedules import ConstantAndDrop
from tf_lowprec.training.lr_schedules import CosineAnnealing
from tf_lowprec.training.lr_schedules import MultiStep
from tf_lowprec.training.lr_schedules import PaperPiecewise
from tf_lowprec.training.batch_size_schedules import LinearBatchSize
from tf_lowprec.training.batch_size_schedules import ScheduledBatches
from tf_lowprec.training.batch_size_schedules import fit_with_batch_schedule
from tf_lowprec.training.batch_size_schedules import get_batch_size_schedule
from tf_lowprec.training.full_gradient import FullGradient
from tf_lowprec.training.full_gradient import FullGradientSnapshot
from tf_lowprec.training.full_gradient import full_gradient
from tf_lowprec.training.variance_reduced import VarianceReduced
from tf_lowprec.training.swa import SWA
from tf_lowprec.training.swa import StochasticWeightAveraging
from tf_lowprec.training.swa import recompute_batchnorm_statistics
from tf_lowprec.training.step_losses import StepLossRecorder
from tf_lowprec.training.tensorboard_diagnostics import TensorBoardDiagnostics
