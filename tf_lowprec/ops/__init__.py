"""Pure tensor functions (no variables) shared by layers and optimizers."""

from tf_lowprec.ops.prox import prox_elastic_net
from tf_lowprec.ops.prox import prox_l1
from tf_lowprec.ops.prox import prox_l2
from tf_lowprec.ops.prox import soft_threshold
from tf_lowprec.ops.integer_affine import affine_codes
from tf_lowprec.ops.integer_affine import affine_parameters
from tf_lowprec.ops.quantize import quantize
from tf_lowprec.ops.quantize import quantize_gradient
from tf_lowprec.ops.rounding import round_nearest
from tf_lowprec.ops.rounding import round_stochastic
from tf_lowprec.ops.scaled_integer import quantize_scaled
