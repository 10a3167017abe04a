"""Every exported SavedModel uses only TensorFlow's own registered ops (what stock
TensorFlow Serving ships): no custom ops, no Python callbacks (py_function)."""
from __future__ import annotations

import pytest

from tfrec.models import MODELS

PYTHON_OPS = {"PyFunc", "PyFuncStateless", "EagerPyFunc"}


def saved_model_ops(path) -> set[str]:
    """The op types of every node of the SavedModel's graph and of its function library."""
    from tensorflow.core.protobuf import saved_model_pb2

    saved = saved_model_pb2.SavedModel()
    saved.ParseFromString((path / "saved_model.pb").read_bytes())
    ops = set()
    for meta_graph in saved.meta_graphs:
        ops.update(node.op for node in meta_graph.graph_def.node)
        for function in meta_graph.graph_def.library.function:
            ops.update(node.op for node in function.node_def)
    return ops


@pytest.mark.parametrize("name", sorted(MODELS))
def test_exported_savedmodel_uses_only_registered_tensorflow_ops(fitted, name):
    from tensorflow.python.framework import op_def_registry

    _, _, path = fitted.exported(name)
    ops = saved_model_ops(path)
    assert "TopKV2" in ops, "the graph's ops were not read (recommend's top-k is missing)"
    unknown = sorted(op for op in ops if op_def_registry.get(op) is None)
    assert not unknown, f"{name}: ops not registered in TensorFlow (custom ops TF Serving lacks): {unknown}"
    assert not ops & PYTHON_OPS, f"{name}: Python callbacks in the SavedModel: {sorted(ops & PYTHON_OPS)}"


def test_the_check_sees_a_python_callback(tmp_path):
    """The op listing finds a py_function, which a SavedModel must not hold."""
    from tfrec._keras import tf

    module = tf.Module()
    module.f = tf.function(lambda x: tf.py_function(lambda v: v * 2, [x], tf.float32), input_signature=[tf.TensorSpec([None], tf.float32)])
    tf.saved_model.save(module, str(tmp_path), signatures={"f": module.f})
    assert "EagerPyFunc" in saved_model_ops(tmp_path)
