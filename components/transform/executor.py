"""TFX's Transform executor, with the costs that grow with the number of columns cut (bench/width.py).

- **Analyzer fingerprints in linear time.** tf.Transform fingerprints every analyzer by the raw inputs it reads, when
  it builds the analysis and again when it checks the final trace against it (`graph_tools.get_analyzers_fingerprint`).
  Its `_retrieve_source_keys` looks each raw input up in a list of the analyzer's sources: inputs x sources
  comparisons per analyzer, and every analyzer of the numeric block reads every numeric column
  (transforms/preprocessing.py): 1.5 to 1.8 s per fingerprint at 1,000 columns, 0.4 s with `source_keys`.
- **One trace for the inspections.** TFX's executor asks tf.Transform which columns the analyzers read (twice), which
  columns the transform reads and which analysis cache entries there are; each answer traces `preprocessing_fn`
  anew (about 1 s at 1,000 columns). `InspectionTrace` traces once and answers all four.
- **Record batches of 1,000 examples.** Left to Beam, the batch size starts at 1 and grows, and at times stays at 1
  or 2 for hundreds of batches; decoding an example of 1,000 features costs about 7 ms alone against 0.8 ms in a
  batch of 1,000, and every batch runs the transform graph once. 1,000 is what the tuning grows to (tfx_bsl's cap).
- **The transform graph loaded once** for the train and eval splits (`one_loaded_transform_graph`), not per split.
- **cloudpickle** instead of dill for Beam's pickling of DoFns, in this process (`IN_PROCESS_PICKLER`).
- **A split read and decoded once** when Beam runs in this process: TFX reads the train split once for the analysis
  and again for the transform, to spare distributed runners a large materialization; in this process the decoded
  batches of a small CSV simply stay in memory between the two.

The patches are in place while the executor runs, in this process: Beam's in-process runner included, not Beam
worker processes, which run TFX's code unchanged.
"""
import contextlib
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Set
from unittest import mock

import apache_beam as beam
import tensorflow_transform as tft
from apache_beam.utils import shared
from tensorflow_transform import graph_tools, impl_helper, tf_utils
from tensorflow_transform.beam import analysis_graph_builder
from tensorflow_transform.beam import impl as tft_impl
from tfx import types
from tfx.components.transform import executor as tfx_transform
from tfx_bsl.tfxio import tf_example_record

from tfx_tabular.pipeline.core.beam import runs_in_process

DECODE_BATCH_SIZE = 1000  # examples per record batch: tfx_bsl's cap for Beam's batch size tuning
# Beam pickles every DoFn when it builds the pipeline and again for each bundle; dill's pure-Python pickler spends
# 4 to 6 s of Transform there at 1,000 columns, cloudpickle (C pickler) about 2.7 s less. In this process nothing
# pickled leaves it, so the library only changes the speed.
IN_PROCESS_PICKLER = '--pickle_library=cloudpickle'


def source_keys(sourced_tensors: Iterable, structured_inputs: Mapping[str, Any]) -> Set[str]:
    """`graph_tools._retrieve_source_keys`: the keys of the inputs that `sourced_tensors` depend on."""
    sources = graph_tools.retrieve_sources([t.op for t in sourced_tensors], ignore_control_dependencies=True)
    hashable_sources = {tf_utils.hashable_tensor_or_op(s) for s in sources}
    return {key for key, value in structured_inputs.items()
            if any(tf_utils.hashable_tensor_or_op(component) in hashable_sources
                   for component in graph_tools._decompose_tensor_or_op(value))}  # pylint: disable=protected-access


def linear_source_keys():
    """A context in which tf.Transform fingerprints analyzers with `source_keys`."""
    return mock.patch.object(graph_tools, '_retrieve_source_keys', source_keys)


class InspectionTrace:
    """One trace of `preprocessing_fn` shared by tf.Transform's inspections of it.

    `get_analyze_input_columns` and `get_transform_input_columns` only read the traced graph; building the analysis
    for `get_analysis_cache_entry_keys` empties its collection of analyzers, so that inspection uses the trace last
    and the next inspection traces again.
    """

    def __init__(self):
        self._traces: Dict[Any, Any] = {}
        self._trace_fn = impl_helper.trace_preprocessing_function

    def _trace(self, preprocessing_fn, input_specs, use_tf_compat_v1, base_temp_dir=None):
        key = (preprocessing_fn, tuple(sorted(input_specs.items(), key=lambda item: item[0])), use_tf_compat_v1,
               base_temp_dir)
        if key not in self._traces:
            self._traces[key] = self._trace_fn(preprocessing_fn, input_specs, use_tf_compat_v1, base_temp_dir)
        return self._traces[key]

    def _sharing(self, inspect: Callable, last_use: bool) -> Callable:
        def inspect_shared(*args, **kwargs):
            try:
                with mock.patch.object(impl_helper, 'trace_preprocessing_function', self._trace):
                    return inspect(*args, **kwargs)
            finally:
                if last_use:
                    self._traces.clear()
        return inspect_shared

    def patches(self) -> contextlib.ExitStack:
        stack = contextlib.ExitStack()
        for module, name, last_use in ((tft, 'get_analyze_input_columns', False),
                                       (tft, 'get_transform_input_columns', False),
                                       (analysis_graph_builder, 'get_analysis_cache_entry_keys', True)):
            stack.enter_context(mock.patch.object(module, name, self._sharing(getattr(module, name), last_use)))
        return stack


class _ReadOnce(beam.PTransform):
    """`read` applied once per pipeline and `key`; later applications give the same PCollection."""

    def __init__(self, sources: Dict[Any, beam.PCollection], key: Any, read: beam.PTransform):
        super().__init__()
        self._sources, self._key, self._read = sources, key, read

    def expand(self, pbegin):
        key = (id(pbegin.pipeline), self._key)
        if key not in self._sources:
            self._sources[key] = pbegin | 'ReadAndDecode' >> self._read
        return self._sources[key]


def decode_once():
    """A context in which TFX's reads of the same tf.Example files with the same projected schema share one read."""
    sources: Dict[Any, beam.PCollection] = {}
    beam_source = tf_example_record.TFExampleRecord.BeamSource

    def shared_beam_source(tfxio: tf_example_record.TFExampleRecord, batch_size: Optional[int] = None):
        key = (str(tfxio._file_pattern), tfxio.raw_record_column_name, batch_size,  # pylint: disable=protected-access
               tfxio._schema.SerializeToString(deterministic=True))  # pylint: disable=protected-access
        return _ReadOnce(sources, key, beam_source(tfxio, batch_size))
    return mock.patch.object(tf_example_record.TFExampleRecord, 'BeamSource', shared_beam_source)


def one_loaded_transform_graph():
    """A context in which the TransformDataset steps of a pipeline (one per split) share one handle to the loaded
    transform graph (Beam's `Shared`, keyed by the handle's key): each loaded it again (about 2 s at 1,000 columns)."""
    key = shared._shared_map.make_key()  # pylint: disable=protected-access
    expand = tft_impl.TransformDataset.expand

    def expand_sharing(self, dataset_and_transform_fn):
        with mock.patch.object(shared._shared_map, 'make_key', lambda: key):  # pylint: disable=protected-access
            return expand(self, dataset_and_transform_fn)
    return mock.patch.object(tft_impl.TransformDataset, 'expand', expand_sharing)


class TransformProcessor(tfx_transform.TransformProcessor):
    """TFX's TransformProcessor (what its executor runs) reading record batches of DECODE_BATCH_SIZE examples."""

    def _GetDesiredBatchSize(self, data_format: int, schema) -> Optional[int]:
        size = super()._GetDesiredBatchSize(data_format, schema)
        return DECODE_BATCH_SIZE if size is None else size


class Executor(tfx_transform.Executor):
    """TFX's Transform executor with the width costs above cut."""

    def Do(self, input_dict: Dict[str, List[types.Artifact]], output_dict: Dict[str, List[types.Artifact]],
           exec_properties: Dict[str, Any]) -> None:
        with contextlib.ExitStack() as stack:
            stack.enter_context(mock.patch.object(tfx_transform, 'TransformProcessor', TransformProcessor))
            stack.enter_context(linear_source_keys())
            stack.enter_context(InspectionTrace().patches())
            if runs_in_process(self._beam_pipeline_args):
                stack.enter_context(decode_once())
                stack.enter_context(one_loaded_transform_graph())
                if not any(a.startswith('--pickle_library') for a in self._beam_pipeline_args):
                    self._beam_pipeline_args = [*self._beam_pipeline_args, IN_PROCESS_PICKLER]
            return super().Do(input_dict, output_dict, exec_properties)
