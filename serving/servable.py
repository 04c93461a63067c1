"""One loaded version of a model, loaded and run the way TF Serving does it.

TF Serving loads the MetaGraphDef whose tags are `--saved_model_tags` (default `serve`) into a TensorFlow session
and runs a request by feeding and fetching the tensor names its SignatureDef lists. So does this: the session
takes the tensors as they come, whatever their shape (TensorFlow reports what does not fit), and a SignatureDef
input key need not be a Python identifier (the trainer names `serving_raw`'s inputs by the CSV's own columns,
`class` for one), because the key only leads to a tensor name. Each (inputs, outputs) pair becomes a session
callable once, built at load time for every signature; a call then costs tens of microseconds of overhead.
"""
import dataclasses
import logging
import threading
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Dict, Optional, Sequence, Tuple

import grpc
import tensorflow as tf
from google.protobuf import text_format
from tensorflow.core.protobuf import config_pb2, meta_graph_pb2, saved_model_pb2
from tensorflow.python.saved_model import loader_impl

from tfx_tabular.pipeline.core import storage
from tfx_tabular.serving import protos
from tfx_tabular.serving.batching import Arrays, Batcher, BatchingOptions
from tfx_tabular.serving.errors import ServingError, not_found

log = logging.getLogger('tfx_tabular.serving')
SERVE_TAG = 'serve'
BATCHING_PARAMS_FILE = 'batching_params.pbtxt'  # --enable_per_model_batching_parameters reads it from the version


@dataclasses.dataclass
class ServableOptions:
    """How versions load: TF Serving's SessionBundleConfig, as far as the flags set it."""
    tags: Tuple[str, ...] = (SERVE_TAG,)
    session_config: Optional[config_pb2.ConfigProto] = None
    batching: Optional[BatchingOptions] = None
    per_model_batching: bool = False
    warmup: bool = True
    warmup_iterations: int = 1


def _tag_set(tags) -> str:
    return '{ ' + ' '.join(sorted(tags)) + ' }'


def read_meta_graph(path: str, tags: Sequence[str] = (SERVE_TAG,)) -> meta_graph_pb2.MetaGraphDef:
    """The MetaGraphDef whose tag set is `tags`, from saved_model.pb (or .pbtxt) at the SavedModel folder `path`."""
    saved_model = saved_model_pb2.SavedModel()
    binary = storage.join(path, 'saved_model.pb')
    if storage.exists(binary):
        saved_model.ParseFromString(storage.read_bytes(binary))
    else:
        text_format.Parse(storage.read_bytes(storage.join(path, 'saved_model.pbtxt')).decode('utf-8'), saved_model)
    for meta_graph in saved_model.meta_graphs:
        if set(meta_graph.meta_info_def.tags) == set(tags):
            return meta_graph
    raise not_found(f'Could not find meta graph def matching supplied tags: {_tag_set(tags)}. To inspect available '
                    'tag-sets in the SavedModel, please use the SavedModel CLI: `saved_model_cli`')


def check_saved_model_dir(path: str) -> None:
    """TF Serving's refusals before loading (session_bundle_util.cc), with its codes and messages."""
    if storage.exists(storage.join(path, 'export.meta')):
        raise ServingError(grpc.StatusCode.UNIMPLEMENTED, 'Session Bundle is deprecated and removed.')
    if not any(storage.exists(storage.join(path, f)) for f in ('saved_model.pb', 'saved_model.pbtxt')):
        raise not_found('Specified file path does not appear to contain a SavedModel bundle (should have a file '
                        f'called `saved_model.pb`) Specified file path: {path}')


def _batching_for(path: str, options: ServableOptions) -> Optional[BatchingOptions]:
    if options.batching is None:
        return None
    if not options.per_model_batching:
        return options.batching
    params_path = storage.join(path, BATCHING_PARAMS_FILE)
    if not storage.exists(params_path):
        return None  # TF Serving batches only the models that ship their own parameters
    params = protos.parse_text(storage.read_bytes(params_path).decode('utf-8'), protos.BatchingParameters,
                               params_path)
    return BatchingOptions.from_parameters(params)


class Servable:
    """A model version ready to answer requests; `close` stops its batchers once queued work is done."""

    def __init__(self, name: str, version: int, path: str, options: Optional[ServableOptions] = None):
        options = options or ServableOptions()
        self.name, self.version, self.path = name, version, path
        check_saved_model_dir(path)
        meta_graph = read_meta_graph(path, options.tags)
        self.signature_defs = dict(meta_graph.signature_def)
        self._session = tf.compat.v1.Session(graph=tf.Graph(), config=options.session_config)
        # With the inter-op parallelism left at 0 ("auto-configured", TF Serving's flag default), a run without a
        # deadline executes its ops in the thread that asked, not in TensorFlow's inter-op pool: the server's
        # request threads already run requests side by side, and this spares a thread hand-off per op (measured
        # here: a third less CPU per 1-row Classify, 1.5x the throughput of 8 concurrent 64-row ones). A run with
        # a deadline (--rest_api_timeout_in_ms) uses the pool, where TensorFlow can cut it short.
        config = options.session_config
        self._inline = config is None or config.inter_op_parallelism_threads == 0
        loader_impl.SavedModelLoader(path).load(self._session, list(options.tags))
        self._callables: Dict[tuple, object] = {}
        self._lock = threading.Lock()
        for signature_def in self.signature_defs.values():  # builds and optimizes each graph now, not on a request
            try:
                self._callable(sorted(signature_def.inputs), list(signature_def.outputs), signature_def)
            except Exception as e:  # noqa: BLE001 - e.g. the init-op signature; a request will report it
                log.debug('%s %d: no callable for a signature: %s', name, version, e)
        batching = _batching_for(path, options)
        self._batchers: Dict[str, Batcher] = {}
        if batching is not None:
            for key in self.signature_defs:
                self._batchers[key] = Batcher(self._batched_runner(key), batching, f'{name}-{version}-{key}')

    def _callable(self, aliases: Sequence[str], outputs: Sequence[str], signature_def, timeout_ms: int = 0):
        feeds = tuple(signature_def.inputs[a].name for a in aliases)
        fetches = tuple(signature_def.outputs[a].name for a in outputs)
        key = (feeds, fetches, timeout_ms)
        function = self._callables.get(key)
        if function is None:
            with self._lock:
                function = self._callables.get(key)
                if function is None:
                    options = config_pb2.CallableOptions(feed=feeds, fetch=fetches)
                    if timeout_ms > 0:
                        options.run_options.timeout_in_ms = timeout_ms
                    elif self._inline:
                        options.run_options.inter_op_thread_pool = -1  # TensorFlow: the caller's thread
                    function = self._session._make_callable_from_options(options)  # noqa: SLF001 - TF's own API
                    self._callables[key] = function
        return function

    def _call(self, signature_def, inputs: Arrays, outputs: Sequence[str], timeout_ms: int = 0) -> Arrays:
        aliases = sorted(inputs)
        values = self._callable(aliases, outputs, signature_def, timeout_ms)(*[inputs[a] for a in aliases])
        return dict(zip(outputs, values))

    def _batched_runner(self, signature_name: str):
        signature_def = self.signature_defs[signature_name]
        outputs = list(signature_def.outputs)
        return lambda inputs: self._call(signature_def, inputs, outputs)

    def run(self, signature_name: str, inputs: Arrays, outputs: Sequence[str], timeout_ms: int = 0) -> Arrays:
        """The `outputs` (SignatureDef aliases) for `inputs` (aliases to numpy arrays of the SignatureDef's dtypes).

        Raises TensorFlow's errors for inputs the graph refuses. A run that takes every input and output of a
        signature goes through its batcher, if batching is on; others run alone, as TF Serving's batching
        session lets through the runs that match none of its signatures. `timeout_ms` bounds the run (0: none).
        """
        signature_def = self.signature_defs[signature_name]
        batcher = self._batchers.get(signature_name)
        if batcher is not None and set(outputs) == set(signature_def.outputs) and \
                set(inputs) == set(signature_def.inputs):
            future = batcher.submit(inputs)
            try:
                result = future.result(timeout_ms / 1000 if timeout_ms > 0 else None)
            except FutureTimeout:
                raise ServingError(grpc.StatusCode.DEADLINE_EXCEEDED, 'Timed out waiting for the batched run; '
                                   'the model is busy') from None
            return {k: result[k] for k in outputs}
        return self._call(signature_def, inputs, outputs, timeout_ms)

    def close(self) -> None:
        """Stops the batchers; the session goes once the last request holding this servable is answered."""
        for batcher in self._batchers.values():
            batcher.close()

    @property
    def batch_sizes(self):
        """{signature: Counter(rows per model run)} of the batched signatures."""
        return {k: b.batch_sizes for k, b in self._batchers.items()}
