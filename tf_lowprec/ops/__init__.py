"""Pure tensor functions (no variables) shared by layers and optimizers."""

from tf_lowprec.ops.integer_affine import affine_codes, affine_parameters
from tf_lowprec.ops.prox import prox_elastic_net, prox_l1, prox_l2, soft_threshold
from tf_lowprec.ops.quantize import quantize, quantize_gradient
from tf_lowprec.ops.rounding import round_nearest, round_stochastic
from tf_lowprec.ops.scaled_integer import quantize_scaled
