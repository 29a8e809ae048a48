"""One-call training setups built from the lower floors (SWALP)."""

from tf_lowprec.recipes.activation_quantization import quantize_activations
from tf_lowprec.recipes.swalp_training import SWALPSetup, low_precision_sgd, swalp, swalp_formats
