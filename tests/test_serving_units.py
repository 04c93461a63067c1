"""Serving parts that need no trained model: the batcher (on a real TF function), version folders and policies,
atomic push, the REST JSON rules, the Classify wire encoding, the metrics page, a SavedModel whose input keys are
not Python identifiers, and the flags.

The end-to-end tests (tests/test_serving.py, tests/test_tfserving_conformance.py) run them all together.
"""
import json
import os
import shutil
import threading
import time
from types import SimpleNamespace

import grpc
import numpy as np
import pytest
import tensorflow as tf

from tfx_tabular.serving import model_config as mc
from tfx_tabular.pipeline.core import storage
from tfx_tabular.serving.batching import Batcher, BatchingOptions
from tfx_tabular.serving.errors import ServingError, from_tf_error
from tfx_tabular.serving.push import PushError, push_model, rollback


@tf.function(input_signature=[tf.TensorSpec([None], tf.float32), tf.TensorSpec([None], tf.string)])
def _double(x, tag):
    tf.debugging.assert_non_negative(x, message='x must be non-negative')
    return {'y': x * 2, 'tag': tf.strings.join([tag, tf.fill(tf.shape(tag), '!')])}


def _run(inputs):
    out = _double(tf.constant(inputs['x'], tf.float32), tf.constant(inputs['tag'], tf.string))
    return {k: v.numpy() for k, v in out.items()}


def _submit_concurrently(batcher, requests):
    results = [None] * len(requests)
    barrier = threading.Barrier(len(requests))

    def call(i):
        barrier.wait()
        try:
            results[i] = batcher.submit(requests[i]).result(timeout=30)
        except Exception as e:  # noqa: BLE001 - the test looks at it
            results[i] = e
    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(requests))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def _request(i, rows=2, bad=False):
    x = np.arange(rows, dtype=np.float32) + 10 * i
    if bad:
        x[0] = -1
    return {'x': x, 'tag': np.array([f'r{i}-{j}'.encode() for j in range(rows)], dtype=object)}


def test_concurrent_requests_are_merged_and_each_gets_its_own_rows():
    batcher = Batcher(_run, BatchingOptions(max_batch_size=64, batch_timeout_micros=200_000, num_batch_threads=1))
    requests = [_request(i) for i in range(16)]
    results = _submit_concurrently(batcher, requests)
    for request, result in zip(requests, results):
        np.testing.assert_array_equal(result['y'], request['x'] * 2)
        assert [t.decode() for t in result['tag']] == [t.decode() + '!' for t in request['tag']]
    calls = sum(batcher.batch_sizes.values())
    assert calls < len(requests), batcher.batch_sizes  # merged: fewer model calls than requests
    assert max(batcher.batch_sizes) > 2
    assert sum(size * n for size, n in batcher.batch_sizes.items()) == 32
    batcher.close()
    batcher.join(5)


def test_a_bad_request_in_a_batch_fails_alone():
    batcher = Batcher(_run, BatchingOptions(max_batch_size=64, batch_timeout_micros=200_000, num_batch_threads=1))
    requests = [_request(i, bad=(i == 3)) for i in range(8)]
    results = _submit_concurrently(batcher, requests)
    assert isinstance(results[3], tf.errors.InvalidArgumentError)
    error = from_tf_error(results[3])
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT and 'x must be non-negative' in error.message
    assert '[[' not in error.message and '\n' not in error.message
    for i, (request, result) in enumerate(zip(requests, results)):
        if i != 3:
            np.testing.assert_array_equal(result['y'], request['x'] * 2)
    batcher.close()


def test_max_batch_size_bounds_merges_and_larger_requests_are_refused():
    batcher = Batcher(_run, BatchingOptions(max_batch_size=4, batch_timeout_micros=100_000, num_batch_threads=1))
    results = _submit_concurrently(batcher, [_request(i, rows=3) for i in range(4)] + [_request(9, rows=10)])
    assert all(not isinstance(r, Exception) for r in results[:4])
    assert set(batcher.batch_sizes) == {3}  # 3 + 3 > 4: never merged
    assert isinstance(results[4], ServingError) and results[4].code == grpc.StatusCode.INVALID_ARGUMENT
    assert results[4].message == 'Task size 10 is larger than maximum input batch size 4'  # TF Serving's words
    batcher.close()


def test_large_batch_splitting_and_allowed_batch_sizes():
    """enable_large_batch_splitting runs a request in max_execution_batch_size chunks; allowed_batch_sizes pads a
    batch with copies of its first row up to the next allowed size, and the padding never reaches the caller."""
    options = BatchingOptions(max_batch_size=10, num_batch_threads=1, enable_large_batch_splitting=True,
                              max_execution_batch_size=4, allowed_batch_sizes=(2, 4))
    batcher = Batcher(_run, options)
    big, small = _request(1, rows=10), _request(2, rows=3)
    np.testing.assert_array_equal(batcher.submit(big).result(10)['y'], big['x'] * 2)
    assert batcher.batch_sizes == {4: 2, 2: 1}  # 10 rows: 4 + 4 + 2
    result = batcher.submit(small).result(10)
    np.testing.assert_array_equal(result['y'], small['x'] * 2)
    assert [t.decode() for t in result['tag']] == ['r2-0!', 'r2-1!', 'r2-2!']
    assert batcher.batch_sizes[4] == 3  # 3 rows padded to 4
    batcher.close()


def test_batching_parameters_are_checked_as_tf_serving_checks_them():
    from tfx_tabular.serving import protos
    params = protos.parse_text('max_batch_size { value: 8 } allowed_batch_sizes: 4 allowed_batch_sizes: 8 '
                               'num_batch_threads { value: 2 }', protos.BatchingParameters, 'b.txt')
    options = BatchingOptions.from_parameters(params)
    assert (options.max_batch_size, options.allowed_batch_sizes, options.num_batch_threads) == (8, (4, 8), 2)
    assert (options.batch_timeout_micros, options.max_enqueued_batches) == (0, 10)  # SharedBatchScheduler's
    from tfx_tabular.serving.batching import BatchingConfigError
    params.allowed_batch_sizes[-1] = 6
    with pytest.raises(BatchingConfigError, match='Last entry in allowed_batch_sizes must match max_batch_size; '
                                                  'last entry was 6; expected 8'):
        BatchingOptions.from_parameters(params)
    with pytest.raises(BatchingConfigError, match='pad_variable_length_inputs is not supported'):
        BatchingOptions.from_parameters(protos.BatchingParameters(pad_variable_length_inputs=True))
    batcher = Batcher(_run, BatchingOptions(num_batch_threads=1))
    with pytest.raises(ServingError, match='Batching session Run\\(\\) input tensors must have equal 0th-dimension '
                                           'size'):
        batcher.submit({'x': np.zeros(2, np.float32), 'tag': np.array([b'a'], dtype=object)})
    with pytest.raises(ServingError, match='must have at least one dimension'):
        batcher.submit({'x': np.float32(1), 'tag': np.array(b'a', dtype=object)})
    batcher.close()


def test_full_queue_answers_unavailable():
    release = threading.Event()

    def slow(inputs):
        release.wait(10)
        return _run(inputs)
    batcher = Batcher(slow, BatchingOptions(max_batch_size=2, num_batch_threads=1, max_enqueued_batches=1))
    futures = [batcher.submit(_request(0, rows=1))]
    time.sleep(0.2)  # the thread holds the first one
    futures += [batcher.submit(_request(i, rows=1)) for i in range(2)]  # the queue holds one batch: 2 rows
    with pytest.raises(ServingError) as e:
        batcher.submit(_request(5, rows=1))
    assert e.value.code == grpc.StatusCode.UNAVAILABLE
    assert e.value.message == 'The batch scheduling queue to which this task was submitted is full'
    release.set()
    assert all(f.result(10)['y'].shape == (1,) for f in futures)
    batcher.close()


def test_closed_batcher_still_answers_in_flight_callers():
    batcher = Batcher(_run, BatchingOptions())
    batcher.close()
    batcher.join(5)
    np.testing.assert_array_equal(batcher.submit(_request(1)).result(5)['y'], _request(1)['x'] * 2)


@pytest.mark.parametrize('policy, expected', [
    ('', [30]),
    ('model_version_policy { latest { num_versions: 2 } }', [20, 30]),
    ('model_version_policy { all {} }', [10, 20, 30]),
    ('model_version_policy { specific { versions: 10 versions: 20 versions: 99 } }', [10, 20]),
])
def test_version_policy_is_tf_servings(policy, expected):
    config = mc.parse_models_config(
        f'model_config_list {{ config {{ name: "m" base_path: "/x/m" {policy} }} }}')
    assert mc.wanted_versions(config.model_config_list.config[0], [20, 10, 30]) == expected


def _fake_saved_model(path, size=2_000_000):
    """A SavedModel-shaped folder (big enough that copying it takes a while); push never parses it."""
    os.makedirs(os.path.join(path, 'variables'))
    for name in ('variables/variables.data-00000-of-00001', 'variables/variables.index', 'saved_model.pb'):
        with open(os.path.join(path, name), 'wb') as f:
            f.write(os.urandom(size))
    return path


def test_push_is_atomic_and_lists_the_model(tmp_path):
    source = _fake_saved_model(str(tmp_path / 'export'))
    expected = sorted(os.path.relpath(os.path.join(d, f), source) for d, _, fs in os.walk(source) for f in fs)
    base = str(tmp_path / 'push' / 'm')
    seen, stop = [], threading.Event()

    def watch():  # what a polling model server would see
        while not stop.is_set():
            for name in os.listdir(base) if os.path.isdir(base) else []:
                if name.isdigit():
                    root = os.path.join(base, name)
                    seen.append(sorted(os.path.relpath(os.path.join(d, f), root)
                                       for d, _, fs in os.walk(root) for f in fs))
    watcher = threading.Thread(target=watch)
    watcher.start()
    versions = [push_model(source, base)[0] for _ in range(3)]
    stop.set()
    watcher.join()
    assert versions == sorted(set(versions)) and versions[0] >= int(time.time()) - 60
    assert seen and all(files == expected for files in seen)  # never a half-copied version
    assert sorted(os.listdir(base)) == [str(v) for v in versions]  # no staging folder left
    config = mc.read_models_config(mc.models_config_path(str(tmp_path / 'push')))
    assert [(m.name, m.base_path) for m in config.model_config_list.config] == [('m', base)]


def test_failed_push_leaves_nothing_visible(tmp_path, monkeypatch):
    source = _fake_saved_model(str(tmp_path / 'export'), size=1000)
    base = str(tmp_path / 'push' / 'm')
    version, _ = push_model(source, base)

    def broken_copy(src, dst, **kw):
        os.makedirs(os.path.join(dst, 'variables'))
        shutil.copy(os.path.join(src, 'saved_model.pb'), dst)
        raise OSError('disk full')
    monkeypatch.setattr(shutil, 'copytree', broken_copy)
    with pytest.raises(OSError, match='disk full'):
        push_model(source, base)
    assert os.listdir(base) == [str(version)]
    with pytest.raises(PushError, match='exists'):
        monkeypatch.undo()
        push_model(source, base, version=version)
    assert os.listdir(base) == [str(version)]


def test_rollback_pins_and_survives_a_push(tmp_path):
    source = _fake_saved_model(str(tmp_path / 'export'), size=1000)
    push_dir = str(tmp_path / 'push')
    v1, _ = push_model(source, os.path.join(push_dir, 'm'))
    v2, _ = push_model(source, os.path.join(push_dir, 'm'))
    line = rollback(push_dir, 'm', str(v1))
    assert f'latest 1 -> pinned to version {v1}' in line
    push_model(source, os.path.join(push_dir, 'm'))
    entry = mc.find_model(mc.read_models_config(mc.models_config_path(push_dir)), 'm')
    assert list(entry.model_version_policy.specific.versions) == [v1]
    with pytest.raises(mc.ModelConfigError, match=f'versions: {v1}, {v2}'):
        rollback(push_dir, 'm', '12345')
    rollback(push_dir, 'm', 'latest')
    entry = mc.find_model(mc.read_models_config(mc.models_config_path(push_dir)), 'm')
    assert not entry.HasField('model_version_policy')


def test_push_and_rollback_on_an_object_store_uri(tmp_path):
    """gs:// and s3:// push directories go through tf.io.gfile; TF's in-memory ram:// filesystem stands in."""
    source = _fake_saved_model(str(tmp_path / 'export'), size=1000)
    push_dir = f'ram://{tmp_path.name}/push'
    v1, path = push_model(source, f'{push_dir}/m')
    v2, _ = push_model(source, f'{push_dir}/m')
    assert path == f'{push_dir}/m/{v1}' and v2 > v1
    assert mc.list_versions(f'{push_dir}/m') == [v1, v2]
    assert sorted(storage.listdir(path)) == ['saved_model.pb', 'variables']
    assert storage.read_bytes(f'{path}/saved_model.pb') == open(os.path.join(source, 'saved_model.pb'), 'rb').read()
    rollback(push_dir, 'm', str(v1))
    entry = mc.find_model(mc.read_models_config(mc.models_config_path(push_dir)), 'm')
    assert entry.base_path == f'{push_dir}/m' and list(entry.model_version_policy.specific.versions) == [v1]


def test_version_folders_are_read_as_tf_serving_reads_them(tmp_path):
    """FileSystemStoragePathSource: any child whose name absl::SimpleAtoi reads as a number is a version, from
    that folder (`00000123` is 123); of two folders with one number the later name wins."""
    for name in ('00000123', '124', '0124', 'abc', '12a', '.incoming-1', '-5', str(2 ** 63)):
        (tmp_path / name).mkdir()
    assert mc.version_folders(str(tmp_path)) == {123: '00000123', 124: '124', -5: '-5'}
    assert [mc.parse_version(n) for n in ('+7', ' 8 ', '0x9', '', '٣')] == [7, 8, None, None, None]
    assert mc.list_versions(str(tmp_path)) == []  # pushed versions need a saved_model.pb


def test_rest_json_is_read_and_written_as_tf_serving_does():
    from tfx_tabular.serving import rest
    assert [rest.decimal(v) for v in (3.0, 0.1, 1e-5, 9e6, 2.5, float('nan'), float('-inf'))] == \
        ['3.0', '0.1', '1e-05', '9e+06', '2.5', 'NaN', '-Infinity']
    assert rest.decimal(float(np.float32(1 / 3))) == '0.333333343'  # six digits would not read back
    assert rest.decimal(1 / 3, single=False) == '0.33333333333333331'  # %.17g, max_digits10 of a double
    for body, message in ((b'', 'JSON Parse error: The document is empty'),
                          (b'instances = [1, 2]', 'JSON Parse error: Invalid value. at offset: 0'),
                          (b'{"a": [1 2]}', "JSON Parse error: Missing a comma or ']' after an array element."),
                          (b'{"a": 1 "b": 2}', "JSON Parse error: Missing a comma or '}' after an object member."),
                          (b'[1]', 'JSON Value: [1] Is not object')):
        with pytest.raises(ServingError) as e:
            rest.parse_json(body)
        assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT and e.value.message.startswith(message), body
    assert np.isnan(rest.parse_json(b' {"a": NaN} and what follows')['a'])  # rapidjson's kParseStopWhenDoneFlag

    inputs = {'x': SimpleNamespace(dtype=tf.float32.as_datatype_enum),
              'n': SimpleNamespace(dtype=tf.int64.as_datatype_enum)}
    arrays = rest._from_instances({'instances': [{'x': [1.0, 2.0], 'n': 3}, {'x': [3.0, 4.0], 'n': 4}]}, inputs)
    assert arrays['x'].tolist() == [[1.0, 2.0], [3.0, 4.0]] and arrays['x'].dtype == np.float32
    assert arrays['n'].tolist() == [3, 4] and arrays['n'].dtype == np.int64
    with pytest.raises(ServingError, match="Failed to process element: 1 key: n of 'instances' list. Error: "
                                           'INVALID_ARGUMENT: JSON Value: 4.5 Type: Number is not of expected '
                                           'type: int64'):
        rest._from_instances({'instances': [{'x': [1.0], 'n': 3}, {'x': [3.0], 'n': 4.5}]}, inputs)
    with pytest.raises(ServingError, match='Expecting tensor size: 2 but got: 3'):
        rest._from_instances({'instances': [{'x': [1.0, 2.0], 'n': 3}, {'x': [3.0, 4.0, 5.0], 'n': 4}]}, inputs)
    with pytest.raises(ServingError, match='Expecting shape \\[1,2\\] but got: \\[2,1\\]'):
        rest._from_instances({'instances': [{'x': [[1.0, 2.0]], 'n': 3}, {'x': [[3.0], [4.0]], 'n': 4}]}, inputs)
    example = rest._example({'a': 1, 'b': 2.0, 'c': 'x', 'd': [True, 2], 'e': {'b64': 'AAE='}})
    kinds = {k: f.WhichOneof('kind') for k, f in example.features.feature.items()}
    assert kinds == {'a': 'int64_list', 'b': 'float_list', 'c': 'bytes_list', 'd': 'int64_list', 'e': 'bytes_list'}
    assert list(example.features.feature['e'].bytes_list.value) == [b'\x00\x01']
    with pytest.raises(ServingError, match='Unexpected element type in feature: m expecting type: int64'):
        rest._example({'m': [1, 2.5]})
    outputs = {'y': np.array([[1.5], [2.0]], np.float32), 'id_bytes': np.array([b'\xff', b'ok'], dtype=object)}
    assert json.loads(rest.tensors_json(outputs, rows=True)) == {
        'predictions': [{'y': [1.5], 'id_bytes': {'b64': '/w=='}}, {'y': [2.0], 'id_bytes': {'b64': 'b2s='}}]}
    assert json.loads(rest.tensors_json({'y': outputs['y']}, rows=False)) == {'outputs': [[1.5], [2.0]]}


def test_classify_answer_written_directly_equals_the_protobuf_one():
    from tensorflow_serving.apis import classification_pb2
    from tfx_tabular.serving.inference import encode_classification_result
    classes = np.array([[b'a', b'b'], [b'a', b'\xff']], dtype=object)
    scores = np.array([[0.25, 0.75], [1.0, 0.0]], np.float32)
    for with_classes, with_scores in ((True, True), (True, False), (False, True)):
        expected = classification_pb2.ClassificationResult()
        for i in range(2):
            row = expected.classifications.add()
            for c in range(2):
                entry = row.classes.add()
                if with_classes:
                    entry.label = classes[i, c].decode('utf-8', 'replace')
                if with_scores:
                    entry.score = scores[i, c]
        encoded = encode_classification_result(classes if with_classes else None, scores if with_scores else None,
                                                2, 2)
        assert classification_pb2.ClassificationResult.FromString(encoded) == expected


def test_metrics_page_is_prometheus_text_with_tf_servings_names():
    from tfx_tabular.serving.metrics import Registry
    registry = Registry()
    registry.request('m', 'Predict', 'GRPC', 'OK', 12.0)
    registry.request('m', 'Predict', 'GRPC', 'OK', 5000.0)
    registry.request('m', 'Predict', 'GRPC', 'NOT_FOUND', 1.0)
    page = registry.render().splitlines()
    assert '# TYPE :tensorflow:serving:request_count counter' in page
    assert ':tensorflow:serving:request_count{model_name="m",status="OK"} 2' in page
    assert ':tensorflow:serving:request_count{model_name="m",status="NOT_FOUND"} 1' in page
    buckets = [line for line in page if line.startswith(':tensorflow:serving:request_latency_bucket')]
    assert len(buckets) == 34 and buckets[0].endswith('le="10"} 0') and buckets[1].endswith('le="18"} 1')
    assert buckets[-1] == (':tensorflow:serving:request_latency_bucket{model_name="m",API="Predict",'
                           'entrypoint="GRPC",le="+Inf"} 2')
    assert ':tensorflow:serving:request_latency_sum{model_name="m",API="Predict",entrypoint="GRPC"} 5012' in page


def test_signature_input_keys_need_not_be_identifiers(tmp_path):
    """TF Serving feeds a SignatureDef's inputs by tensor name; the trainer renames `serving_raw`'s keys to the
    CSV's columns (`class` is not an identifier). The servable feeds by tensor name too."""
    from tensorflow.core.protobuf import saved_model_pb2
    from tfx_tabular.serving.inference import predict_arrays
    from tfx_tabular.serving.servable import Servable

    class Model(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name='class_'),
                                      tf.TensorSpec([None], tf.float32, name='age')])
        def serve(self, class_, age):
            return {'y': class_ * 10 + age}
    path = str(tmp_path / '1')
    model = Model()
    tf.saved_model.save(model, path, signatures={'serving_default': model.serve})
    saved_model = saved_model_pb2.SavedModel.FromString(open(os.path.join(path, 'saved_model.pb'), 'rb').read())
    inputs = saved_model.meta_graphs[0].signature_def['serving_default'].inputs
    inputs['class'].CopyFrom(inputs['class_'])
    del inputs['class_']
    with open(os.path.join(path, 'saved_model.pb'), 'wb') as f:
        f.write(saved_model.SerializeToString())
    servable = Servable('m', 1, path)
    out = predict_arrays(servable, '', {'class': np.array([1.0, 2.0], np.float32), 'age': np.array([3.0, 4.0],
                                                                                                     np.float32)})
    assert out['y'].tolist() == [13.0, 24.0]
    servable.close()


def test_flags_build_tf_servings_session_config_and_refuse_conflicts():
    import argparse
    from tfx_tabular.serving import flags
    parser = argparse.ArgumentParser()
    flags.add_flags(parser)
    args = parser.parse_args(['--tensorflow_intra_op_parallelism=2', '--tensorflow_inter_op_parallelism=3',
                              '--mixed_precision=bfloat16', '--enable_batching'])
    config = flags.session_config(args)
    assert (config.intra_op_parallelism_threads, config.inter_op_parallelism_threads) == (2, 3)
    assert config.graph_options.rewrite_options.auto_mixed_precision_onednn_bfloat16 == 1  # ON
    assert flags.batching_options(args).max_batch_size == 1000  # TF Serving's default
    args = parser.parse_args(['--tensorflow_intra_op_parallelism=2', '--tensorflow_inter_op_parallelism=3',
                              '--tensorflow_session_parallelism=4'])
    with pytest.raises(flags.FlagError, match='You cannot configure all'):
        flags.session_config(args)
    # Auto (0): one intra-op thread while requests run side by side; merged batches keep TensorFlow's pool.
    config = flags.session_config(parser.parse_args([]))
    assert (config.intra_op_parallelism_threads, config.inter_op_parallelism_threads) == (1, 0)
    assert flags.session_config(parser.parse_args(['--enable_batching'])).intra_op_parallelism_threads == 0
    assert parser.parse_args(['--enable_batching']).enable_batching is True
    assert parser.parse_args(['--enable_batching=false']).enable_batching is False
    assert parser.parse_args([]).model_name is None and parser.parse_args([]).port == 8500
