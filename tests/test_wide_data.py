"""Wide CSVs: Transform's analyzers do not multiply with the columns, and the grouped transforms give every column
what a transform of its own would, whatever the column is called."""
import os
from collections import Counter

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft
from tensorflow_transform import analyzer_nodes, impl_helper

from tfx_tabular.pipeline.core.config import Config
from tests.conftest import run_transform
from tfx_tabular.transforms.feature_columns import per_feature
from tfx_tabular.transforms.preprocessing import (NUMERIC_KEY, custom_config, feature_key, preprocessing_fn,
                                                  transformed_name)
from tfx_tabular.transforms.vocabularies import EMPTY_VOCABULARY_VALUE

SCALINGS = ['z_score', 'min_max', 'log', 'raw']


def _wide_features(width):
    """`width` columns of each numeric scaling, of two bucket counts, categorical with and without top_k, hashed,
    and a cross."""
    features = {}
    for i in range(width):
        for scaling in SCALINGS:
            features[f'{scaling}_{i}'] = {'kind': 'numeric', 'scaling': scaling}
        features[f'b3_{i}'] = {'kind': 'bucketized', 'buckets': 3}
        features[f'b5_{i}'] = {'kind': 'bucketized', 'buckets': 5}
        features[f'c_{i}'] = {'kind': 'categorical'}
        features[f'top_{i}'] = {'kind': 'categorical', 'top_k': 2, 'oov_buckets': 2}
        features[f'h_{i}'] = {'kind': 'hashed', 'hash_buckets': 8}
    features['cross'] = {'kind': 'crossed', 'columns': ['c_0', 'h_0'], 'hash_buckets': 16}
    return features


def _config(features):
    return Config(name='t', data={'csv': 'x.csv'}, serving={'model_name': 't'}, features=features,
                  label={'column': 'y', 'type': 'binary', 'classes': ['no', 'yes']})


def _spec(features, blanks=()):
    """Raw feature spec: numbers as floats, the rest as text; columns in `blanks` may be missing (VarLen)."""
    spec = {}
    for name, f in features.items():
        if f['kind'] == 'crossed':
            continue
        dtype = tf.float32 if f['kind'] in ('numeric', 'bucketized') else tf.string
        spec[name] = tf.io.VarLenFeature(dtype) if name in blanks else tf.io.FixedLenFeature([], dtype)
    spec['y'] = tf.io.FixedLenFeature([], tf.string)
    return spec


def _analysis_operations(features, blanks=()):
    """The operations of tf.Transform's analysis graph for the traced preprocessing_fn (each becomes Beam stages):
    a count of {operation kind: how many}."""
    config = _config(features)
    specs = impl_helper.get_type_specs_from_feature_specs(_spec(features, blanks))
    graph, _, _ = impl_helper.trace_preprocessing_function(
        lambda inputs: preprocessing_fn(inputs, custom_config(config)), specs, use_tf_compat_v1=False)
    seen, stack = {}, [sink.future for sink in graph.get_collection(analyzer_nodes.TENSOR_REPLACEMENTS)]
    while stack:
        operation = stack.pop().parent_operation
        if id(operation) not in seen:
            seen[id(operation)] = type(operation.operation_def).__name__
            stack.extend(operation.inputs)
    return Counter(seen.values())


def test_analyzers_do_not_grow_with_the_columns():
    """One column of each kind and fifty of each need the same analyzers, blanks or not: numeric columns of a
    scaling and bucketized columns of a bucket count share elementwise analyzers, categorical columns one
    vocabulary analyzer."""
    narrow, wide = _wide_features(1), _wide_features(50)
    assert len(wide) > 400
    operations = _analysis_operations(narrow)
    assert operations == _analysis_operations(wide)
    assert operations == _analysis_operations(wide, blanks={n for n, f in wide.items() if f['kind'] != 'crossed'})
    # The label's vocabulary, the categorical columns' one analyzer, at most 4 combiners (mean, var, share of
    # present values; min, max) per group: 4 scalings and 2 bucket counts.
    assert operations['VocabularyAccumulate'] == 1 and operations['PTransform'] == 1, operations
    assert operations['CacheableCombineAccumulate'] <= 4 * 6, operations


def test_linear_source_keys_give_tf_transforms_analyzer_fingerprints():
    """The Transform executor's `source_keys` (components/transform) fingerprints every analyzer with the raw
    inputs tf.Transform's own quadratic lookup finds, sparse (blank) inputs included."""
    from tensorflow_transform import graph_tools
    from tfx_tabular.components.transform.executor import linear_source_keys
    features = _wide_features(20)
    blanks = {n for i, n in enumerate(features) if i % 3 == 0 and features[n]['kind'] != 'crossed'}
    specs = impl_helper.get_type_specs_from_feature_specs(_spec(features, blanks))
    graph, inputs, _ = impl_helper.trace_preprocessing_function(
        lambda x: preprocessing_fn(x, custom_config(_config(features))), specs, use_tf_compat_v1=False)
    theirs = graph_tools.get_analyzers_fingerprint(graph, inputs)
    with linear_source_keys():
        ours = graph_tools.get_analyzers_fingerprint(graph, inputs)
    assert graph_tools._retrieve_source_keys.__module__ == graph_tools.__name__  # put back  # pylint: disable=protected-access
    assert ours == theirs and len(theirs) >= 8
    keys = set().union(*(f.source_keys for f in theirs.values()))
    assert blanks & keys and len(keys) > 100  # sparse and dense inputs both found


# ---- a real tf.Transform run on a wide table --------------------------------------------------------------------
WIDTH = 60
ROWS = 40
NAMES = ['a b', 'A b', 'a_b', '../up', 'naïve £', 'x=y', 'class', '1st', '%20 (x)', 'ñ' * 70]  # categorical columns


def _rows(rng):
    rows = []
    for r in range(ROWS):
        row = {f'n{j}': [float(rng.normal(j, 1 + j % 3))] if (r + j) % 7 else [] for j in range(WIDTH)}
        row.update({name: f'v{(r * (k + 1)) % (k + 2)} {name}'.encode() for k, name in enumerate(NAMES)})
        row['sparse'] = [b'only'] if r == 0 else []
        row['y'] = [b'no', b'yes'][r % 2]
        rows.append(row)
    rows[1][NAMES[0]] = b'line\nbreak'  # no vocabulary can hold it (one entry per line): OOV
    return rows


@pytest.fixture(scope='module')
def wide(tmp_path_factory):
    features = {f'n{j}': {'kind': 'numeric', 'scaling': SCALINGS[j % 4]} for j in range(WIDTH)}
    features.update({name: {'kind': 'categorical', 'top_k': 2 if k == 1 else None} for k, name in enumerate(NAMES)})
    features['sparse'] = {'kind': 'categorical', 'oov_buckets': 3}
    spec = {f'n{j}': tf.io.VarLenFeature(tf.float32) for j in range(WIDTH)}
    spec.update({name: tf.io.FixedLenFeature([], tf.string) for name in NAMES})
    spec['sparse'] = tf.io.VarLenFeature(tf.string)
    spec['y'] = tf.io.FixedLenFeature([], tf.string)
    rows = _rows(np.random.default_rng(3))
    out_dir = str(tmp_path_factory.mktemp('wide'))
    transformed, _ = run_transform(_config(features), rows, spec, out_dir)
    outputs = {k: np.array([row[k] for row in transformed]) for k in transformed[0]}
    return features, rows, {**outputs, **per_feature(outputs, _config(features).features)}, out_dir


def test_every_numeric_column_is_scaled_by_its_own_statistics(wide):
    features, rows, outputs, _ = wide
    for j in range(WIDTH):
        values = [row[f'n{j}'][0] if row[f'n{j}'] else None for row in rows]
        present = [v for v in values if v is not None]
        filled = np.array([np.mean(present) if v is None else v for v in values])
        scaling = features[f'n{j}']['scaling']
        if scaling == 'z_score':
            expected = (filled - filled.mean()) / filled.std()
        elif scaling == 'min_max':
            expected = (filled - filled.min()) / (filled.max() - filled.min())
        elif scaling == 'log':
            logs = np.log1p(np.maximum(filled, 0))
            expected = (logs - logs.mean()) / logs.std()
        else:
            expected = filled
        np.testing.assert_allclose(outputs[f'n{j}_xf'], expected, rtol=1e-4, atol=1e-4, err_msg=f'n{j} {scaling}')


def test_one_vocabulary_file_per_categorical_column_named_by_its_key(wide):
    features, rows, outputs, out_dir = wide
    categorical = [n for n, f in features.items() if f['kind'] == 'categorical']
    assets = set(os.listdir(os.path.join(out_dir, 'transform_fn', 'assets')))
    assert {feature_key(n) for n in categorical} <= assets
    assert len({feature_key(n) for n in categorical}) == len(categorical)
    assert all(len(a) <= 80 and '/' not in a and a.strip() == a for a in assets)
    tft_output = tft.TFTransformOutput(out_dir)
    for name in categorical:
        vocabulary = tft_output.vocabulary_by_name(feature_key(name))
        column = [row[name] if isinstance(row[name], bytes) else (row[name] or [b''])[0] for row in rows]
        present = [v for v in column if v and b'\n' not in v]
        counts = {v: present.count(v) for v in set(present)}
        expected = sorted(counts, key=lambda v: (counts[v], v), reverse=True)[:features[name].get('top_k')]
        assert vocabulary == (expected or [EMPTY_VOCABULARY_VALUE]), name
        oov = features[name].get('oov_buckets', 1)
        for value, got in zip(column, outputs[transformed_name(name)]):
            if value in expected:
                assert got == expected.index(value), name
            else:
                assert len(expected) <= got < len(expected) + oov, (name, value)


def test_a_line_break_and_a_blank_are_out_of_vocabulary(wide):
    _, _, outputs, out_dir = wide
    vocabulary = tft.TFTransformOutput(out_dir).vocabulary_by_name(feature_key(NAMES[0]))
    assert outputs[transformed_name(NAMES[0])][1] == len(vocabulary)
    assert tft.TFTransformOutput(out_dir).vocabulary_by_name('sparse') == [b'only']
    assert outputs['sparse_xf'][0] == 0 and all(1 <= i < 4 for i in outputs['sparse_xf'][1:])


def test_walking_every_output_is_linear_in_the_width(wide):
    """tf.Transform walks every output's subgraph back to the inputs whenever it loads the graph (each Beam worker,
    the Trainer, the projector): outputs each computed from a stack of all the columns would make that quadratic in
    the width. The numeric columns come out as one block; each id output's subgraph holds its own column only."""
    _, _, outputs, out_dir = wide
    assert outputs[NUMERIC_KEY].shape[1] == WIDTH
    transform_fn = tf.saved_model.load(os.path.join(out_dir, 'transform_fn')).transform_fn
    graph = (transform_fn.concrete_functions[0] if hasattr(transform_fn, 'concrete_functions') else transform_fn).graph
    captured = {t.op.name for t in graph.internal_captures}
    inputs = {t.op.name for t in graph.inputs} - captured
    assert len(inputs) >= 3 * WIDTH
    walked = 0
    for tensor in graph.outputs:
        seen, stack = set(), [tensor.op]
        while stack:
            op = stack.pop()
            if op.name not in seen:
                seen.add(op.name)
                stack.extend(t.op for t in op.inputs)
        walked += len(seen)
        if len(seen & inputs) > 3:  # more than one column's input (a sparse one is indices, values, shape)
            assert len(seen & inputs) >= 3 * WIDTH, tensor.name  # only the numeric block reads many columns
    assert walked < 2 * len(graph.get_operations())


def test_one_trace_answers_tf_transforms_inspections():
    """The Transform executor's `InspectionTrace`: TFX's three inspections of `preprocessing_fn` give tf.Transform's
    own answers from one trace; the analysis build, which empties the trace's analyzer collection, comes last and
    a later inspection traces again."""
    import tensorflow_transform.beam as tft_beam
    from unittest import mock
    from tensorflow_transform.beam import analysis_graph_builder
    from tensorflow_transform.beam.analyzer_cache import DatasetKey
    from tfx_tabular.components.transform.executor import InspectionTrace
    features = _wide_features(3)
    specs = impl_helper.get_type_specs_from_feature_specs(_spec(features, blanks={'c_1', 'z_score_2'}))
    fn = lambda x: preprocessing_fn(x, custom_config(_config(features)))  # noqa: E731
    keys = [DatasetKey('train')]

    def inspections():
        return (sorted(tft.get_analyze_input_columns(fn, specs)), sorted(tft.get_transform_input_columns(fn, specs)),
                analysis_graph_builder.get_analysis_cache_entry_keys(fn, specs, keys, False),
                sorted(tft.get_analyze_input_columns(fn, specs)))
    theirs = inspections()
    traces = mock.Mock(wraps=impl_helper.trace_preprocessing_function)
    with mock.patch.object(impl_helper, 'trace_preprocessing_function', traces), InspectionTrace().patches():
        ours = inspections()
    assert tft.get_analyze_input_columns.__module__.startswith('tensorflow_transform')  # put back
    assert ours == theirs and len(theirs[2]) >= 8 and 'c_1' in theirs[0] and 'h_0' not in theirs[0]
    assert set(theirs[0]) < set(theirs[1])  # hashed columns: transformed, not analyzed
    assert traces.call_count == 2  # the first three inspections, then the one after the build
    assert tft_beam.analysis_graph_builder is analysis_graph_builder


def test_a_split_read_twice_in_this_process_is_decoded_once(tmp_path):
    """Transform's executor in this process: the same files with the same projected schema read and decoded once,
    whatever the labels; another projection reads again; record batches of DECODE_BATCH_SIZE examples."""
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.testing.util import assert_that, equal_to
    from tensorflow_metadata.proto.v0 import schema_pb2
    from tfx.proto import example_gen_pb2
    from tfx_bsl.tfxio import tf_example_record
    from tfx_tabular.components.transform.executor import DECODE_BATCH_SIZE, TransformProcessor, decode_once
    path = str(tmp_path / 'examples.tfrecord')
    with tf.io.TFRecordWriter(path) as writer:
        for i in range(2500):
            writer.write(tf.train.Example(features=tf.train.Features(feature={
                'a': tf.train.Feature(float_list=tf.train.FloatList(value=[i])),
                'b': tf.train.Feature(bytes_list=tf.train.BytesList(value=[b'x%d' % (i % 7)]))})).SerializeToString())
    schema = schema_pb2.Schema()
    schema.feature.add(name='a', type=schema_pb2.FLOAT)
    schema.feature.add(name='b', type=schema_pb2.BYTES)
    batch_size = TransformProcessor()._GetDesiredBatchSize(example_gen_pb2.FORMAT_TF_EXAMPLE, schema)  # pylint: disable=protected-access
    assert batch_size == DECODE_BATCH_SIZE
    rows = lambda batches: [(b.num_rows, b.schema.names) for b in batches]  # noqa: E731
    with decode_once(), beam.Pipeline(options=PipelineOptions(['--direct_running_mode=in_memory'])) as pipeline:
        first = pipeline | 'Analyze' >> tf_example_record.TFExampleRecord(path, schema=schema).BeamSource(batch_size)
        again = pipeline | 'Transform' >> tf_example_record.TFExampleRecord(path, schema=schema).BeamSource(batch_size)
        only_a = pipeline | 'Other' >> tf_example_record.TFExampleRecord(path, schema=schema).Project(['a']).BeamSource(
            batch_size)
        assert again is first and only_a is not first
        expected = [(1000, ['a', 'b']), (1000, ['a', 'b']), (500, ['a', 'b'])]
        assert_that(first | 'Rows' >> beam.combiners.ToList() | beam.Map(lambda b: sorted(rows(b))),
                    equal_to([sorted(expected)]))
    decodes = [t for t in pipeline.to_runner_api().components.transforms.values()
               if t.unique_name.endswith('/Decode')]
    assert len(decodes) == 2
    assert tf_example_record.TFExampleRecord.BeamSource.__qualname__ == 'RecordBasedTFXIO.BeamSource'  # put back


def test_the_transform_steps_of_two_splits_load_the_graph_once(tmp_path):
    """The Transform executor's `one_loaded_transform_graph`: tf.Transform's TransformDataset on two splits, in this
    process, loads the transform graph once and gives each split its own rows."""
    import apache_beam as beam
    import tensorflow_transform.beam as tft_beam
    from unittest import mock
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.testing.util import assert_that, equal_to
    from tensorflow_transform.beam import impl as tft_impl
    from tensorflow_transform.tf_metadata import dataset_metadata, schema_utils
    from tfx_tabular.components.transform.executor import one_loaded_transform_graph
    metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(
        {'x': tf.io.FixedLenFeature([], tf.float32)}))
    loads = mock.Mock(wraps=tft_impl._RunMetaGraphDoFn._make_graph_state)  # pylint: disable=protected-access

    def centred(inputs):
        return {'y': inputs['x'] - tft.mean(inputs['x'])}
    with mock.patch.object(tft_impl._RunMetaGraphDoFn, '_make_graph_state',  # pylint: disable=protected-access
                           lambda self, *args: loads(self, *args)):
        with one_loaded_transform_graph(), tft_beam.Context(temp_dir=str(tmp_path)), beam.Pipeline(
                options=PipelineOptions(['--direct_running_mode=in_memory'])) as pipeline:
            train = pipeline | 'Train' >> beam.Create([{'x': 1.0}, {'x': 3.0}])
            evaluation = pipeline | 'Eval' >> beam.Create([{'x': 10.0}])
            transform_fn = (train, metadata) | tft_beam.AnalyzeDataset(centred)
            (train_out, _) = ((train, metadata), transform_fn) | 'TransformTrain' >> tft_beam.TransformDataset()
            (eval_out, _) = ((evaluation, metadata), transform_fn) | 'TransformEval' >> tft_beam.TransformDataset()
            assert_that(train_out, equal_to([{'y': -1.0}, {'y': 1.0}]), label='train')
            assert_that(eval_out, equal_to([{'y': 8.0}]), label='eval')
    final = {call.args[1] for call in loads.call_args_list}
    assert loads.call_count == 2 and len(final) == 2  # the analysis phase's graph, then the transform graph once
