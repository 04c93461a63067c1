"""One loaded version of a model: the SignatureDefs TF Serving reads from saved_model.pb, and the functions behind them.

TF Serving validates requests against the SignatureDef map of the MetaGraphDef tagged `serve`, and fetches only
the outputs listed there; the server does the same, running each signature's function from the loaded
SavedModel, through a batcher when every input and output of the signature is batch-major.
"""
from typing import Dict, Optional

import numpy as np
import tensorflow as tf
from google.protobuf import text_format
from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2

from serving import storage
from serving.batching import Arrays, Batcher, BatchingOptions

SERVE_TAG = 'serve'
INIT_OP_SIGNATURE = '__saved_model_init_op'  # TF's restore op, listed as a signature; never callable


def read_meta_graph(path: str) -> meta_graph_pb2.MetaGraphDef:
    """The MetaGraphDef tagged `serve`, from saved_model.pb (or .pbtxt) at the SavedModel folder `path`."""
    saved_model = saved_model_pb2.SavedModel()
    binary = storage.join(path, 'saved_model.pb')
    if storage.exists(binary):
        saved_model.ParseFromString(storage.read_bytes(binary))
    else:
        text_format.Parse(storage.read_bytes(storage.join(path, 'saved_model.pbtxt')).decode('utf-8'), saved_model)
    for meta_graph in saved_model.meta_graphs:
        if SERVE_TAG in meta_graph.meta_info_def.tags:
            return meta_graph
    raise ValueError(f'{path}: no MetaGraphDef tagged {SERVE_TAG!r}; export the model with serving signatures')


def argument_names(signature_name: str, signature_def, function) -> Dict[str, str]:
    """{SignatureDef input key: keyword of the loaded function}. They differ where the exporter renamed a key that
    is not a Python identifier (a CSV column named `class`); TF Serving feeds inputs by tensor name, and TF names
    a signature's input tensor `<signature>_<keyword>:0`, so the tensor name links the two."""
    keywords = set(function.structured_input_signature[1])
    by_tensor = {f'{signature_name}_{k}:0': k for k in keywords}
    return {key: key if key in keywords else by_tensor.get(info.name, key)
            for key, info in signature_def.inputs.items()}


def is_batch_major(signature_def) -> bool:
    """Every input and output has a known rank >= 1 and an unknown first dimension: requests can be stacked."""
    for info in list(signature_def.inputs.values()) + list(signature_def.outputs.values()):
        shape = info.tensor_shape
        if shape.unknown_rank or not shape.dim or shape.dim[0].size != -1:
            return False
    return bool(signature_def.inputs)


class Servable:
    """A model version ready to answer requests; `close` stops its batchers once queued work is done."""

    def __init__(self, name: str, version: int, path: str, batching: Optional[BatchingOptions] = None):
        self.name, self.version, self.path = name, version, path
        meta_graph = read_meta_graph(path)
        self.signature_defs = dict(meta_graph.signature_def)
        self._model = tf.saved_model.load(path, tags=[SERVE_TAG])
        self._functions = {k: self._model.signatures[k] for k in self.signature_defs if k in self._model.signatures}
        self._batchers: Dict[str, Batcher] = {}
        if batching is not None:
            for key, signature_def in self.signature_defs.items():
                if key in self._functions and is_batch_major(signature_def):
                    self._batchers[key] = Batcher(self._runner(key), batching, f'{name}-{version}-{key}')

    def _runner(self, signature_name: str):
        function = self._functions[signature_name]
        signature_def = self.signature_defs[signature_name]
        dtypes = {k: tf.dtypes.as_dtype(v.dtype) for k, v in signature_def.inputs.items()}
        arguments = argument_names(signature_name, signature_def, function)
        outputs = list(signature_def.outputs)

        def run(inputs: Arrays) -> Arrays:
            result = function(**{arguments[k]: tf.constant(v, dtype=dtypes[k]) for k, v in inputs.items()})
            return {k: result[k].numpy() for k in outputs}
        return run

    def run(self, signature_name: str, inputs: Arrays) -> Arrays:
        """Outputs (those the SignatureDef lists) for validated inputs; raises TF's errors for bad values."""
        if signature_name not in self._functions:
            raise KeyError(signature_name)
        batcher = self._batchers.get(signature_name)
        if batcher is not None:
            return batcher.submit(inputs).result()
        return self._runner(signature_name)(inputs)

    def warm_up(self) -> None:
        """Runs each batch-major signature on an empty batch, so the first request does not pay for tracing."""
        for key, signature_def in self.signature_defs.items():
            if key in self._functions and is_batch_major(signature_def):
                empty = {k: np.zeros([0] + [max(d.size, 1) for d in v.tensor_shape.dim[1:]],
                                     dtype=tf.dtypes.as_dtype(v.dtype).as_numpy_dtype)
                         for k, v in signature_def.inputs.items()}
                try:
                    self._runner(key)(empty)
                except Exception:  # noqa: BLE001 - some graphs refuse empty batches; warm-up is best effort
                    pass

    def close(self) -> None:
        for batcher in self._batchers.values():
            batcher.close()

    @property
    def batch_sizes(self):
        """{signature: Counter(rows per model call)} of the batched signatures."""
        return {k: b.batch_sizes for k, b in self._batchers.items()}
