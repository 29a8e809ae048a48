"""Logical CPU devices: several tf.distribute replicas on one CPU."""

import tensorflow as tf


def use_logical_cpus(count):
    """Splits the first physical CPU into `count` logical devices.

    Lets `tf.distribute.MirroredStrategy` run `count` replicas on a machine
    without GPUs: right for checking multi-replica *correctness*, but the
    replicas share the same cores, so timings measure overhead, not scaling.
    Must run before TensorFlow initialises its devices (before any op or
    `tf.config.list_logical_devices`); in a test, do it in a subprocess.

    Args:
        count: Number of logical CPU devices, >= 1.

    Returns:
        The names of the logical CPU devices, e.g. `["/device:CPU:0", ...]`.

    Raises:
        ValueError: `count` is not a positive integer.
        RuntimeError: TensorFlow's devices were already initialised with a
            different number of logical CPUs.
    """
    if not isinstance(count, int) or count < 1:
        raise ValueError(f"`count` must be a positive integer. Received: count={count!r}")
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(count)]
        )
    except RuntimeError as error:
        existing = tf.config.list_logical_devices("CPU")
        if len(existing) != count:
            raise RuntimeError(
                f"Cannot split the CPU into {count} logical devices: TensorFlow "
                f"is already initialised with {len(existing)}. Call "
                "use_logical_cpus() before any TensorFlow op, or in a fresh "
                "process."
            ) from error
    return [device.name for device in tf.config.list_logical_devices("CPU")]
