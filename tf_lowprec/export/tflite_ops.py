"""Reading op and tensor types back from a TFLite flatbuffer (TFLite interpreter)."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

INTEGER_KERNELS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")


def interpreter(model_path, num_threads=None, delegates=True):
    """A `tf.lite.Interpreter` (or `ai_edge_litert`'s, when installed), allocated.

    With `delegates=False` the default XNNPACK delegate is not applied, so
    the op list shows every builtin op (for inspection).
    """
    try:
        from ai_edge_litert import interpreter as module
    except ImportError:
        import tensorflow as tf

        module = tf.lite
        resolvers = tf.lite.experimental.OpResolverType
    else:
        resolvers = module.OpResolverType
    kwargs = {} if num_threads is None else {"num_threads": num_threads}
    if not delegates:
        kwargs["experimental_op_resolver_type"] = (
            resolvers.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        )
    result = module.Interpreter(model_path=str(model_path), **kwargs)
    result.allocate_tensors()
    return result


def kernel_types(model_path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """One row per CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED op.

    Returns:
        A list of dicts: `op`, `input`, `weight`, `bias`, `output` (NumPy
        dtype names of those tensors; `bias` None when absent).
    """
    interp = interpreter(model_path, delegates=False)
    tensors = {t["index"]: t for t in interp.get_tensor_details()}
    rows = []
    for op in interp._get_ops_details():
        if op["op_name"] not in INTEGER_KERNELS:
            continue
        inputs = [i for i in op["inputs"] if i >= 0]

        def dtype(index):
            return np.dtype(tensors[index]["dtype"]).name

        rows.append(
            {
                "op": op["op_name"],
                "input": dtype(inputs[0]),
                "weight": dtype(inputs[1]),
                "bias": dtype(inputs[2]) if len(inputs) > 2 else None,
                "output": dtype(op["outputs"][0]),
            }
        )
    return rows


def op_names(model_path):
    """The op names of the flatbuffer's main graph, in execution order."""
    return [
        op["op_name"]
        for op in interpreter(model_path, delegates=False)._get_ops_details()
    ]
