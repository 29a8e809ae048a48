"""2-replica MirroredStrategy equality for the wrappers (2 logical CPUs).

Every optimizer in `available()` (plain and recipe) already runs in
`tests/optimizers/test_distributed.py`; this adds the wrapper cases of the
conformance table that are not registry names, through the same subprocess
(`tests/optimizers/mirrored_equivalence.py`) and the same tolerance.
"""

import pytest

from tests.conformance.optimizer_table import CASES
from tests.optimizers.test_distributed import _assert_equivalent, _run
from tf_lowprec.optimizers import registry

# LowPrecision without quantizers is its inner SGD, and LowPrecision(Adam)
# takes the same separate-accumulator path as `low_precision_separate`.
_SAME_PATH = {"low_precision_none", "low_precision_adam"}
WRAPPERS = [
    c.name
    for c in CASES
    if c.name not in registry.available()
    and not c.name.startswith("keras_")
    and c.name not in _SAME_PATH
]


@pytest.mark.slow
def test_wrappers_on_2_replicas_equal_one_device():
    assert WRAPPERS
    names = [f"table:{name}" for name in WRAPPERS]
    # The Embedding model too (sparse gradients) for the quantizing wrapper.
    _assert_equivalent(_run(2, names, ["table:low_precision_stochastic"]))
