"""Training beyond one process: `model.fit` under MultiWorkerMirroredStrategy.

  enable_multi_worker_fit()  the one call that makes Keras 3.15's `fit` run
                             under MultiWorkerMirroredStrategy, with
                             checkpoints written the TensorFlow way.
  checkpoint_paths           chief writes, workers write to temporary paths.
  local_cluster              N worker processes on 127.0.0.1 (TF_CONFIG,
                             free ports, pinned cores, clean shutdown).
"""

from tf_lowprec.distribute import (
    checkpoint_paths,  # noqa: F401
    local_cluster,  # noqa: F401
)
from tf_lowprec.distribute.local_cluster import LocalCluster, WorkerFailed  # noqa: F401
from tf_lowprec.distribute.multi_worker_fit import (  # noqa: F401
    disable_multi_worker_fit,
    enable_multi_worker_fit,
    needs_workaround,
)
