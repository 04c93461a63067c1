"""End to end on the real pipeline's pushed model, through the real gRPC stack and tensorflow-serving-api stubs.

The shared penguins pipeline run (its Pusher is the atomic one) is checked in place, read-only; its model is
pushed again into a push directory of this module's own, which `tfx-tabular serve` serves as a subprocess on
loopback. Then: Classify, Predict, metadata and status against the in-process SavedModel;
the REST API; the `predict` CLI; client retries; 500 malformed requests; a new version pushed under a
20-second load of 8 clients; rollback and version policies through models.config; a clean stop.
"""
import concurrent.futures
import csv
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from types import SimpleNamespace

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import (classification_pb2, get_model_status_pb2, inference_pb2, model_management_pb2,
                                     model_service_pb2_grpc, predict_pb2, prediction_service_pb2_grpc, regression_pb2)

from tfx_tabular.pipeline.core.config import load_config
from tfx_tabular.serving import model_config as mc
from tfx_tabular.serving.client import ServingClient
from tfx_tabular.serving.errors import ServingError
from tfx_tabular.serving.examples import raw_feature_dtypes, serialize, to_columns
from tfx_tabular.serving.push import push_model
from tfx_tabular.serving.servable import read_meta_graph
from tests.conftest import free_port, read_line, run_cli

MODEL = 'penguins'
AVAILABLE = get_model_status_pb2.ModelVersionStatus.State.AVAILABLE
END = get_model_status_pb2.ModelVersionStatus.State.END


@pytest.fixture(scope='module')
def pushed(penguins_run, tmp_path_factory):
    """The shared penguins run's model, pushed into this module's push directory (tests add versions to it)."""
    config_path, _, summary = penguins_run
    assert summary['pushed'], summary.get('validation_failures')
    config = load_config(config_path)
    push_dir = str(tmp_path_factory.mktemp('push'))
    version, model_dir = push_model(summary['pushed_to'], os.path.join(push_dir, MODEL))
    model = tf.saved_model.load(model_dir)
    with open(config.csv_files[0], newline='') as f:
        rows = list(csv.DictReader(f))
    return SimpleNamespace(config=config, summary=summary, push_dir=push_dir, base=os.path.join(push_dir, MODEL),
                           model_dir=model_dir, version=version, model=model, rows=rows,
                           dtypes=raw_feature_dtypes(model_dir), classes=summary['label']['classes'])


def _expected_scores(pushed, rows):
    out = pushed.model.signatures['serving_default'](inputs=tf.constant(serialize(rows, pushed.dtypes)))
    return [c.decode() for c in out['classes'].numpy()[0]], out['scores'].numpy()


@pytest.fixture(scope='module')
def server(pushed, tmp_path_factory):
    """`tfx-tabular serve` on the push directory (its models.config), gRPC on a free port, REST too."""
    log_path = tmp_path_factory.mktemp('server') / 'server.log'
    rest_port = free_port()
    exe = os.path.join(os.path.dirname(sys.executable), 'tfx-tabular')
    with open(log_path, 'w') as log:
        proc = subprocess.Popen(
            [exe, 'serve', '--model_base_path', pushed.push_dir, '--port', str(free_port()), '--rest_api_port',
             str(rest_port), '--file_system_poll_wait_seconds', '0.5', '--max_message_mb', '4'],
            stdout=subprocess.PIPE, stderr=log, text=True)
    try:
        line = read_line(proc.stdout, 180)
        match = re.search(r'Serving gRPC on (127\.0\.0\.1:\d+), REST on http://(127\.0\.0\.1:\d+); models: penguins',
                          line)
        assert match, (line, log_path.read_text()[-3000:])
        yield SimpleNamespace(proc=proc, target=match[1], rest=f'http://{match[2]}', log=log_path)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)


@pytest.fixture(scope='module')
def client(server):
    with ServingClient(server.target, timeout=20, retries=0) as c:
        yield c


def _available(client):
    return sorted(s.version for s in client.status(MODEL) if s.state == AVAILABLE)


def _wait_for(condition, timeout=90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


def test_pipeline_pushes_tf_serving_layout_and_models_config(pushed):
    summary, config = pushed.summary, pushed.config  # the pipeline's own push, read only
    base = os.path.join(config.push_path, config.serving.model_name)
    pushed_to = summary['pushed_to']
    assert os.path.dirname(pushed_to) == base and os.path.basename(pushed_to).isdigit()
    assert os.path.isfile(os.path.join(pushed_to, 'saved_model.pb'))
    assert os.path.isdir(os.path.join(pushed_to, 'variables'))
    assert all(name.isdigit() for name in os.listdir(base))  # no staging folder left behind
    pusher = next(c for c in summary['components'] if c['component'] == 'Pusher')
    properties = pusher['outputs']['pushed_model']['properties']
    assert properties['pushed'] == 1 and properties['pushed_destination'] == pushed_to
    assert properties['pushed_version'] == os.path.basename(pushed_to)
    models = mc.read_models_config(mc.models_config_path(config.push_path))
    assert [(m.name, m.base_path, m.model_platform) for m in models.model_config_list.config] == [
        (MODEL, base, 'tensorflow')]
    # TF Serving's Classify takes this signature: classify method, one `inputs` tensor, one or two outputs.
    signature = read_meta_graph(pushed_to).signature_def['serving_default']
    assert signature.method_name == 'tensorflow/serving/classify'
    assert list(signature.inputs) == ['inputs'] and sorted(signature.outputs) == ['classes', 'scores']


def test_classify_predict_metadata_and_status_over_grpc(pushed, client):
    assert [(s.version, s.state, s.status.error_code) for s in client.status(MODEL)] == [(pushed.version, AVAILABLE, 0)]
    version, signatures = client.metadata(MODEL)
    assert version == pushed.version
    assert {'serving_default', 'serving_raw', 'transform_features'} <= set(signatures)
    assert signatures['serving_default'].method_name == 'tensorflow/serving/classify'

    rows = pushed.rows[::10]
    classes, scores = _expected_scores(pushed, rows)
    assert sorted(classes) == sorted(pushed.classes)
    result = client.classify_records(MODEL, rows)
    assert (result.model, result.version, result.signature) == (MODEL, pushed.version, 'serving_default')
    assert [[label for label, _ in r] for r in result.results] == [classes] * len(rows)
    got = np.array([[s for _, s in r] for r in result.results])
    np.testing.assert_allclose(got, scores, atol=1e-6)  # the server answers what the SavedModel answers
    correct = sum(label == r['species'] for (label, _), r in zip(result.top(), rows))
    assert correct / len(rows) >= 0.9

    predicted = client.predict(MODEL, {'inputs': serialize(rows, pushed.dtypes)})
    assert set(predicted.outputs) == {'classes', 'scores'}  # the outputs the SignatureDef lists
    np.testing.assert_allclose(predicted.outputs['scores'], scores, atol=1e-6)
    raw = client.predict_records(MODEL, rows)
    assert raw.signature == 'serving_raw'
    np.testing.assert_allclose([[s for _, s in r] for r in raw.results], scores, atol=1e-5)
    only = client.predict(MODEL, to_columns(rows, pushed.dtypes), signature='serving_raw', output_filter=['scores'])
    assert list(only.outputs) == ['scores']

    # Shared features in the context: TF Serving's ExampleListWithContext.
    shared = ('island', 'sex', 'year')
    context = serialize([rows[0]], {k: pushed.dtypes[k] for k in shared})[0]
    own = serialize(rows[:1] * 3, {k: v for k, v in pushed.dtypes.items() if k not in shared})
    with_context = client.classify(MODEL, own, context=tf.train.Example.FromString(context))
    np.testing.assert_allclose([[s for _, s in r] for r in with_context.results], [scores[0]] * 3, atol=1e-6)

    assert client.classify_records(MODEL, rows[:2], version=pushed.version).version == pushed.version
    for version, code, text in ((pushed.version + 1, 'NOT_FOUND', f'Specific(penguins, {pushed.version + 1})'),
                                ('stable', 'INVALID_ARGUMENT', 'Unrecognized servable version label: stable')):
        with pytest.raises(ServingError) as e:
            client.classify_records(MODEL, rows[:1], version=version)
        assert e.value.code.name == code and text in e.value.message
    with pytest.raises(ServingError) as e:
        client.status('nope')
    assert e.value.code == grpc.StatusCode.NOT_FOUND and 'Could not find any versions of model nope' in e.value.message


def test_multi_inference_and_regress_answer_as_tf_serving(pushed, server):
    """MultiInference with a classify task on serving_default answers Classify's scores; Regress refuses a
    classification signature with TF Serving's check (one output tensor)."""
    rows = pushed.rows[:3]
    classes, scores = _expected_scores(pushed, rows)
    request = inference_pb2.MultiInferenceRequest()
    task = request.tasks.add()
    task.model_spec.name, task.method_name = MODEL, 'tensorflow/serving/classify'
    for e in serialize(rows, pushed.dtypes):
        request.input.example_list.examples.add().ParseFromString(e)
    with grpc.insecure_channel(server.target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        result = stub.MultiInference(request, timeout=20).results[0]
        assert (result.model_spec.name, result.model_spec.signature_name) == (MODEL, 'serving_default')
        got = [[(c.label, c.score) for c in item.classes] for item in result.classification_result.classifications]
        assert [[label for label, _ in row] for row in got] == [classes] * 3
        np.testing.assert_allclose([[s for _, s in row] for row in got], scores, atol=1e-6)
        regress = regression_pb2.RegressionRequest()
        regress.model_spec.name = MODEL
        regress.input.CopyFrom(request.input)
        with pytest.raises(grpc.RpcError) as e:
            stub.Regress(regress, timeout=20)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and e.value.details() == 'Expected one output Tensor.'


def _http(url, body=None):
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    request = urllib.request.Request(url, data=data, method='POST' if data is not None else 'GET')
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_rest_api_speaks_tf_servings_json(pushed, server):
    rows = pushed.rows[:3]
    classes, scores = _expected_scores(pushed, rows)
    url = f'{server.rest}/v1/models/{MODEL}'
    examples = [{k: (float(r[k]) if pushed.dtypes[k].is_floating else int(r[k]) if pushed.dtypes[k].is_integer
                     else r[k]) for k in pushed.dtypes} for r in rows]
    status, body = _http(url + ':classify', {'examples': examples})
    assert status == 200, body
    assert [[label for label, _ in r] for r in body['results']] == [classes] * 3
    np.testing.assert_allclose([[s for _, s in r] for r in body['results']], scores, atol=1e-6)

    status, body = _http(url + ':predict', {'signature_name': 'serving_raw', 'instances': examples})
    assert status == 200 and len(body['predictions']) == 3, body
    np.testing.assert_allclose([p['scores'] for p in body['predictions']], scores, atol=1e-5)
    columns = {k: [e[k] for e in examples] for k in examples[0]}
    status, body = _http(f'{url}/versions/{pushed.version}:predict', {'signature_name': 'serving_raw',
                                                                      'inputs': columns})
    assert status == 200 and body['outputs']['classes'] == [classes] * 3, body

    status, body = _http(url)
    assert status == 200 and body['model_version_status'] == [
        {'version': str(pushed.version), 'state': 'AVAILABLE', 'status': {'error_code': 'OK', 'error_message': ''}}]
    status, body = _http(url + '/metadata')
    assert status == 200 and body['model_spec']['version'] == str(pushed.version)
    assert body['metadata']['signature_def']['signature_def']['serving_default']['method_name'] == \
        'tensorflow/serving/classify'

    assert _http(f'{server.rest}/v1/models/nope')[0] == 404
    status, body = _http(url + ':predict', b'{not json')
    assert status == 400 and 'JSON' in body['error']
    bad = dict(examples[0], year=2008.5)  # a float where the model parses int64
    status, body = _http(url + ':classify', {'examples': [bad]})
    assert status == 400 and 'year' in body['error']


def test_predict_cli_prints_classes_and_scores(pushed, server, tmp_path):
    rows = pushed.rows[::50]
    classes, scores = _expected_scores(pushed, rows)
    expected = [classes[i] for i in scores.argmax(axis=1)]
    csv_path = tmp_path / 'rows.csv'
    header = list(rows[0])
    csv_path.write_text(','.join(header) + '\n' + ''.join(','.join(r[h] for h in header) + '\n' for r in rows))
    result = run_cli('predict', '--target', server.target, '--model', MODEL, str(csv_path))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f'{MODEL} version {pushed.version}, signature serving_default'
    assert lines[1].split()[:3] == ['row', 'class', 'score'] and lines[1].split()[3:] == classes
    assert [line.split()[1] for line in lines[2:]] == expected

    json_path = tmp_path / 'rows.json'
    json_path.write_text(json.dumps(rows))
    result = run_cli('predict', '--target', server.target, '--model', MODEL, '--api', 'predict',
                     '--output', 'json', str(json_path))
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r['class'] for r in records] == expected and records[0]['version'] == pushed.version
    np.testing.assert_allclose([[r['scores'][c] for c in classes] for r in records], scores, atol=1e-5)

    result = run_cli('predict', '--target', server.target, '--model', 'nope', str(csv_path))
    assert result.returncode == 1 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert 'NOT_FOUND' in result.stderr and 'Latest(nope)' in result.stderr and '--model' in result.stderr
    missing = tmp_path / 'missing.csv'
    missing.write_text('island,sex\nBiscoe,male\n')
    result = run_cli('predict', '--target', server.target, '--model', MODEL, str(missing))
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "record 1: columns 'bill_depth_mm', 'bill_length_mm', 'body_mass_g', 'flipper_length_mm', 'year' are " \
        'missing' in result.stderr

    result = run_cli('serving', 'status', '--target', server.target, '--model', MODEL)
    assert result.returncode == 0, result.stderr
    assert f'version {pushed.version}: AVAILABLE' in result.stdout
    assert 'signature serving_default (classify): inputs -> classes, scores' in result.stdout


def test_client_retries_while_the_server_is_unavailable(pushed):
    from tfx_tabular.serving.server import ModelServer, ServerOptions
    port = free_port()
    start = time.monotonic()
    with ServingClient(f'127.0.0.1:{port}', timeout=2, retries=2, backoff=0.05) as down:
        with pytest.raises(ServingError) as e:
            down.status(MODEL)
    assert e.value.code == grpc.StatusCode.UNAVAILABLE and time.monotonic() - start < 10

    answers = []
    with ServingClient(f'127.0.0.1:{port}', timeout=5, retries=8, backoff=0.25) as patient:
        caller = threading.Thread(target=lambda: answers.append(patient.status(MODEL)))
        caller.start()
        time.sleep(0.5)  # the first tries meet a closed port
        local = ModelServer(ServerOptions(port=port), mc.single_model_config(pushed.base, MODEL)).start()
        try:
            caller.join(60)
            assert answers and answers[0][0].state == AVAILABLE

            # ModelService.HandleReloadConfigRequest swaps the model list before it answers.
            request = model_management_pb2.ReloadConfigRequest()
            request.config.CopyFrom(mc.single_model_config(pushed.base, 'renamed'))
            with grpc.insecure_channel(f'127.0.0.1:{port}') as channel:
                model_service_pb2_grpc.ModelServiceStub(channel).HandleReloadConfigRequest(request, timeout=60)
            assert [s.state for s in patient.status('renamed')] == [AVAILABLE]
            assert patient.classify_records('renamed', pushed.rows[:1]).model == 'renamed'
            with pytest.raises(ServingError) as e:
                patient.status(MODEL)
            assert e.value.code == grpc.StatusCode.NOT_FOUND
        finally:
            local.stop()


def _malformed_cases(pushed):
    """(name, method path, request bytes, expected code, text the message must contain)."""
    rows = pushed.rows[:2]
    columns = {k: tf.make_tensor_proto(v) for k, v in to_columns(rows, pushed.dtypes).items()}
    good = serialize(rows, pushed.dtypes)
    service = '/tensorflow.serving.PredictionService'
    predict, classify = f'{service}/Predict', f'{service}/Classify'

    def predict_request(signature='serving_raw', **inputs):
        request = predict_pb2.PredictRequest()
        request.model_spec.name, request.model_spec.signature_name = MODEL, signature
        for k, v in inputs.items():
            request.inputs[k].CopyFrom(v)
        return request.SerializeToString()

    def classify_request(examples, signature='', model=MODEL):
        request = classification_pb2.ClassificationRequest()
        request.model_spec.name, request.model_spec.signature_name = model, signature
        for e in examples:
            request.input.example_list.examples.add().ParseFromString(e)
        return request.SerializeToString()

    def example(drop=None, **override):
        e = tf.train.Example.FromString(good[0])
        if drop:
            del e.features.feature[drop]
        for k, feature in override.items():
            e.features.feature[k].CopyFrom(feature)
        return e.SerializeToString()

    huge = tf.make_tensor_proto([1.0], dtype=tf.float32)
    huge.tensor_shape.dim[0].size = 10 ** 12
    return [
        ('wrong dtype', predict, predict_request(**dict(columns, bill_length_mm=tf.make_tensor_proto(['a', 'b']))),
         'INVALID_ARGUMENT', 'bill_length_mm'),
        ('wrong dtype in a tf.Example', classify,
         classify_request([example(year=tf.train.Feature(float_list=tf.train.FloatList(value=[2008.0])))]),
         'INVALID_ARGUMENT', 'year'),
        ('missing feature', classify, classify_request([good[1], example(drop='island')]), 'INVALID_ARGUMENT',
         'island'),
        ('missing input', predict, predict_request(**{k: v for k, v in columns.items() if k != 'sex'}),
         'INVALID_ARGUMENT', 'Missing but required: {sex}'),
        # Shapes are TensorFlow's business, as in TF Serving: here the model's own concat refuses the extra row.
        ('inputs of different lengths', predict,
         predict_request(**dict(columns, body_mass_g=tf.make_tensor_proto([1.0, 2.0, 3.0], dtype=tf.float32))),
         'INVALID_ARGUMENT', 'Dimension 0 in both shapes must be equal'),
        ('shape promising 10^12 values', predict, predict_request(**dict(columns, bill_depth_mm=huge)),
         'INVALID_ARGUMENT', 'tensor parsing error: bill_depth_mm'),
        ('unknown signature (Predict)', predict, predict_request('nope', **columns), 'FAILED_PRECONDITION',
         'Serving signature key "nope" not found'),
        ('unknown signature (Classify)', classify, classify_request(good, 'nope'), 'INVALID_ARGUMENT',
         'No signature was found with the name: nope'),
        ('Classify on a signature of many inputs', classify, classify_request(good, 'serving_raw'),
         'INVALID_ARGUMENT', 'Expected one input Tensor.'),
        ('empty Classify', classify, classify_request([]), 'INVALID_ARGUMENT', 'Input is empty'),
        ('unknown model', classify, classify_request(good, model='pengwin'), 'NOT_FOUND',
         'Latest(pengwin)'),
        ('no model spec', predict, predict_pb2.PredictRequest().SerializeToString(), 'INVALID_ARGUMENT',
         'Missing ModelSpec'),
        ('oversize', predict,
         predict_request('serving_default', inputs=tf.make_tensor_proto([b'x' * (5 << 20)])), 'RESOURCE_EXHAUSTED', ''),
        ('garbage bytes as examples', predict,
         # TF's lenient tf.Example parser reads some garbage as an empty example ("feature ... is required")
         # and rejects the rest ("Could not parse"); both are INVALID_ARGUMENT, as in TF Serving.
         predict_request('serving_default', inputs=tf.make_tensor_proto([os.urandom(64)])), 'INVALID_ARGUMENT',
         ''),
        ('garbage bytes on the wire', predict, b'\x0f' + os.urandom(200), 'INTERNAL', 'deserializing'),
    ]


def test_500_malformed_requests_get_the_right_status_and_the_server_stays_healthy(pushed, server, client):
    cases = _malformed_cases(pushed)
    rows = pushed.rows[:2]
    _, scores = _expected_scores(pushed, rows)
    channel = grpc.insecure_channel(server.target, options=[('grpc.max_send_message_length', 64 << 20)])
    calls = {path: channel.unary_unary(path) for path in {c[1] for c in cases}}  # raw bytes in, raw bytes out
    plan = [cases[i % len(cases)] for i in range(500)]
    random.Random(0).shuffle(plan)

    def send(case):
        name, path, payload, code, text = case
        try:
            calls[path](payload, timeout=30)
            return name, 'OK', ''
        except grpc.RpcError as e:
            return name, e.code().name, e.details() or ''

    def good():
        return client.classify_records(MODEL, rows)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(send, case) for case in plan]
        valid = [pool.submit(good) for _ in range(50)]  # mixed in: may share a batch with bad requests
        outcomes = [f.result() for f in futures]
        answers = [f.result() for f in valid]
    channel.close()
    expected = {c[0]: (c[3], c[4]) for c in cases}
    wrong = [(name, code, details) for name, code, details in outcomes
             if code != expected[name][0] or expected[name][1] not in details]
    assert not wrong, wrong[:5]
    assert len(outcomes) == 500 and {name for name, _, _ in outcomes} == set(expected)
    for answer in answers:
        np.testing.assert_allclose([[s for _, s in r] for r in answer.results], scores, atol=1e-6)
    # Healthy afterwards: still running, answering, and no unexpected exception was logged.
    assert server.proc.poll() is None
    assert _available(client) == [pushed.version]
    np.testing.assert_allclose([[s for _, s in r] for r in good().results], scores, atol=1e-6)
    assert 'Traceback' not in server.log.read_text()


def test_new_version_pushed_under_load_fails_no_request(pushed, server, client):
    rows = pushed.rows[:4]
    _, scores = _expected_scores(pushed, rows)
    served, failures, stop = [], [], threading.Event()

    def load(i):
        with ServingClient(server.target, timeout=20, retries=0) as c:  # no retries: a failure counts
            while not stop.is_set():
                try:
                    answer = c.classify_records(MODEL, rows) if i % 2 else c.predict_records(MODEL, rows)
                    got = np.array([[s for _, s in r] for r in answer.results])
                    if not np.allclose(got, scores, atol=1e-5):
                        failures.append(f'wrong scores from version {answer.version}')
                    served.append((time.monotonic(), answer.version))
                except Exception as e:  # noqa: BLE001 - every failure is recorded
                    failures.append(repr(e))
    clients = [threading.Thread(target=load, args=(i,)) for i in range(8)]
    start = time.monotonic()
    for t in clients:
        t.start()
    time.sleep(5)
    new_version, _ = push_model(pushed.model_dir, pushed.base)
    pushed_at = time.monotonic()
    time.sleep(max(0.0, 20 - (time.monotonic() - start)))
    stop.set()
    for t in clients:
        t.join(60)
    assert not failures, failures[:5]
    assert len(served) > 200, len(served)
    versions = [v for _, v in served]
    assert versions[0] == pushed.version and versions[-1] == new_version
    switched = min(t for t, v in served if v == new_version)
    assert switched > pushed_at
    assert all(v == new_version for t, v in served if t > switched + 1.0)  # after the switch, only the new one
    assert sum(t > switched for t, _ in served) > 50  # and the load went on after it
    states = {s.version: s.state for s in client.status(MODEL)}
    assert states == {new_version: AVAILABLE, pushed.version: END}


def _set_policy(push_dir, policy_text, labels=None):
    def change(config):
        entry = mc.find_model(config, MODEL)
        entry.ClearField('model_version_policy')
        entry.version_labels.clear()
        if policy_text:
            tmp = mc.parse_models_config(f'model_config_list {{ config {{ {policy_text} }} }}')
            entry.model_version_policy.CopyFrom(tmp.model_config_list.config[0].model_version_policy)
        for label, version in (labels or {}).items():
            entry.version_labels[label] = version
    mc.update_models_config(push_dir, change)


def test_rollback_and_version_policies_follow_models_config(pushed, server, client):
    versions = mc.list_versions(pushed.base)
    v3, _ = push_model(pushed.model_dir, pushed.base)
    v1, v2 = versions[0], versions[-1]
    assert _wait_for(lambda: _available(client) == [v3]), client.status(MODEL)
    rows = pushed.rows[:2]

    result = run_cli('serving', 'rollback', '--push_dir', pushed.push_dir, '--to', str(v1))
    assert result.returncode == 0, result.stderr
    assert f'latest 1 -> pinned to version {v1}' in result.stdout
    assert _wait_for(lambda: _available(client) == [v1]), client.status(MODEL)
    assert client.classify_records(MODEL, rows).version == v1

    _set_policy(pushed.push_dir, 'model_version_policy { latest { num_versions: 2 } }')
    assert _wait_for(lambda: _available(client) == [v2, v3]), client.status(MODEL)
    _set_policy(pushed.push_dir, 'model_version_policy { all {} }', labels={'stable': v2})
    assert _wait_for(lambda: _available(client) == [v1, v2, v3]), client.status(MODEL)
    assert client.classify_records(MODEL, rows).version == v3
    assert client.classify_records(MODEL, rows, version=v1).version == v1
    assert client.classify_records(MODEL, rows, version='stable').version == v2

    result = run_cli('serving', 'rollback', '--push_dir', pushed.push_dir, '--to', 'latest')
    assert result.returncode == 0, result.stderr
    assert _wait_for(lambda: _available(client) == [v3]), client.status(MODEL)
    result = run_cli('serving', 'rollback', '--push_dir', pushed.push_dir, '--to', '123')
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert f"no version '123'" in result.stderr and str(v3) in result.stderr
    assert 'Traceback' not in server.log.read_text()


def test_server_stops_cleanly(server):
    server.proc.send_signal(signal.SIGTERM)
    out, _ = server.proc.communicate(timeout=60)
    assert server.proc.returncode == 0
    assert 'Server stopped.' in out
