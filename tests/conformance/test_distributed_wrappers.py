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

WRAPPERS = [
    c.name
    for c in CASES
    if c.name not in registry.available() and not c.name.startswith("keras_")
]


@pytest.mark.slow
def test_wrappers_on_2_replicas_equal_one_device():
    assert WRAPPERS
    names = [f"table:{name}" for name in WRAPPERS]
    # The Embedding model too: sparse gradients through the wrappers.
    _assert_equivalent(_run(2, names, names))
