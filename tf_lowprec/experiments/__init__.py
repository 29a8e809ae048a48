"""Experiment runners, result files and plots."""

from tf_lowprec.experiments.plots import plot_epoch_curves
from tf_lowprec.experiments.results_io import read_csv
from tf_lowprec.experiments.results_io import write_csv_atomic
from tf_lowprec.experiments.run_grid import run_grid
from tf_lowprec.experiments.train_run import train_and_evaluate
