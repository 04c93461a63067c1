"""Serving parts that need no trained model: the batcher (on a real TF function), version policies, atomic push.

The end-to-end tests (tests/test_serving.py) run them all together on the pipeline's pushed model.
"""
import os
import shutil
import threading
import time

import grpc
import numpy as np
import pytest
import tensorflow as tf

from serving import model_config as mc
from serving import storage
from serving.batching import Batcher, BatchingOptions
from serving.errors import ServingError, from_tf_error
from serving.push import PushError, push_model, rollback


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


def test_max_batch_size_bounds_merges_and_big_requests_run_alone():
    batcher = Batcher(_run, BatchingOptions(max_batch_size=4, batch_timeout_micros=100_000, num_batch_threads=1))
    results = _submit_concurrently(batcher, [_request(i, rows=3) for i in range(4)] + [_request(9, rows=10)])
    assert all(not isinstance(r, Exception) for r in results)
    assert max(batcher.batch_sizes) == 10 and batcher.batch_sizes[10] == 1  # the big one, alone
    assert set(batcher.batch_sizes) - {10} == {3}  # 3 + 3 > 4: never merged
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
