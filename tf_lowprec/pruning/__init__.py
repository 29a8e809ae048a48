"""Sparsity measurement and pruning."""

from tf_lowprec.pruning.sparsity import LayerSparsity
from tf_lowprec.pruning.sparsity import SparsityLogger
from tf_lowprec.pruning.sparsity import SparsityReport
from tf_lowprec.pruning.sparsity import sparsity
