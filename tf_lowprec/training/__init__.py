"""Training utilities: callbacks, schedules and losses."""

from tf_lowprec.training.epoch_timer import EpochTimer
