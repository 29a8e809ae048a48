"""Memory accounting of training: weights, optimizer state and gradients."""

from tf_lowprec.memory.report import MemoryReport, VariableBytes, report

__all__ = ["MemoryReport", "VariableBytes", "report"]
