"""Sparsity measurement and pruning."""

from tf_lowprec.pruning.callbacks import UpdatePruningStep, update_masks
from tf_lowprec.pruning.export import ExportSizes, export_sizes, gzipped_size
from tf_lowprec.pruning.filter_removal import FilterRemoval, remove_pruned_filters
from tf_lowprec.pruning.filters import PruneFilters, prune_filters
from tf_lowprec.pruning.flops import FlopsReport, count_flops
from tf_lowprec.pruning.magnitude import PruneLowMagnitude, prune_low_magnitude
from tf_lowprec.pruning.masking import keep_count, magnitude_mask, unit_mask
from tf_lowprec.pruning.schedules import ConstantSparsity, PolynomialDecay, PruningSchedule
from tf_lowprec.pruning.sparsity import LayerSparsity, SparsityLogger, SparsityReport, sparsity
from tf_lowprec.pruning.strip import strip_pruning
from tf_lowprec.pruning.wrapper import PruningWrapper
