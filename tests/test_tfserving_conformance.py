# Copyright 2016 Google Inc. All Rights Reserved.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.
# ==============================================================================
"""TF Serving's own integration tests, run against `tfx-tabular serve`.

A port of github.com/tensorflow/serving at commit 9d981c5c2708d23c5407c7c1e30309e6f9798874:
  - tensorflow_serving/model_servers/tensorflow_model_server_test.py and its base class
    test_util/tensorflow_model_server_test_base.py: every test that applies to a CPU server (left out, as the
    task sets: the TF-Lite, TF-Text and profiler tests); same models, requests, expected values and codes;
  - the version-policy and version-label fixtures of model_servers/get_model_status_impl_test.cc and
    http_rest_api_handler_test.cc (saved_model_half_plus_two_2_versions, policy `specific`, label
    `Version_Label`), their C++ calls made here as real gRPC and HTTP requests.
Changes from upstream: pytest instead of tf.test; the server is `tfx-tabular serve` started as a subprocess on
free ports; waits poll for the condition instead of sleeping a fixed time; the test models are read from
TF Serving's testdata, copied unmodified into tests/tfserving_testdata/. Where an upstream expectation is not what
TF Serving answers (the bad-model test, which upstream never runs), the comment says what its source answers.

The last section (not from upstream) checks the flags and metrics this server implements from TF Serving's
main.cc, server.cc and http_server.cc.
"""
import atexit
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import grpc
import pytest
from tensorflow.core.framework import types_pb2
from tensorflow_serving.apis import (classification_pb2, get_model_metadata_pb2, get_model_status_pb2, inference_pb2,
                                     model_management_pb2, model_service_pb2_grpc, predict_pb2,
                                     prediction_service_pb2_grpc, regression_pb2)
from tensorflow_serving.config import model_server_config_pb2

TESTDATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'tfserving_testdata')  # see its NOTICE.txt

RPC_TIMEOUT = 20.0
HTTP_REST_TIMEOUT_MS = 5000
WAIT_FOR_SERVER_READY_INT_SECS = 120
EXE = os.path.join(os.path.dirname(sys.executable), 'tfx-tabular')
SERVE_DEFAULT = 'serving_default'


# ---- the base class (tensorflow_model_server_test_base.py) ----------------------------------------------------
def pick_unused_port() -> int:
    with socket.socket() as s:
        s.bind(('localhost', 0))
        return s.getsockname()[1]


def wait_until_ready(port, proc):
    """Waits for a server on the localhost to become ready (a missing model answers with 'Servable')."""
    deadline = time.monotonic() + WAIT_FOR_SERVER_READY_INT_SECS
    while time.monotonic() < deadline:
        time.sleep(0.25)
        if proc.poll() is not None:
            with open(proc.log_path) as log:
                pytest.fail(f'the server exited with {proc.returncode}: {log.read()[-2000:]}')
        request = predict_pb2.PredictRequest()
        request.model_spec.name = 'intentionally_missing_model'
        try:
            with grpc.insecure_channel(f'localhost:{port}') as channel:
                prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, 5.0)
        except grpc.RpcError as error:
            if 'Servable' in (error.details() or ''):
                return
    pytest.fail('the server did not become ready')


def call_rest(url, req, method=None):
    """(HTTP status, headers, body) of a REST call; a JSON-able `req` is sent as the body."""
    data = json.dumps(req).encode('utf-8') if req is not None and not isinstance(req, (bytes, str)) else \
        (req.encode() if isinstance(req, str) else req)
    request = urllib.request.Request(url, data=data, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def sorted_object(obj):
    """Returns sorted object (with nested list/dictionaries)."""
    if isinstance(obj, dict):
        return sorted((k, sorted_object(v)) for k, v in obj.items())
    if isinstance(obj, list):
        return sorted(sorted_object(x) for x in obj)
    if isinstance(obj, tuple):
        return list(sorted(sorted_object(x) for x in obj))
    return obj


class Servers:
    """RunServer's cache: one server per set of arguments, reused by the tests that ask for the same one. At most
    `keep` stay alive (each holds TensorFlow: about half a gigabyte)."""

    def __init__(self, log_dir, keep=3):
        self.log_dir, self.keep = log_dir, keep
        self.running = {}

    def run(self, model_name, model_path, model_config_file=None, monitoring_config_file=None,
            batching_parameters_file=None, grpc_channel_arguments='', wait_for_server_ready=True, pipe=None,
            model_config_file_poll_period=None, grpc_socket_path=None, extra=()):
        """Run `tfx-tabular serve` as upstream runs tensorflow_model_server; (Popen, grpc host:port, rest host:port)."""
        key = (model_name, model_path, model_config_file, monitoring_config_file, batching_parameters_file,
               grpc_channel_arguments, wait_for_server_ready, pipe, model_config_file_poll_period, grpc_socket_path,
               tuple(extra))
        if key in self.running and self.running[key][0].poll() is None:
            self.running[key] = self.running.pop(key)  # most recently used last
            return self.running[key]
        while len(self.running) >= self.keep:
            self.stop(next(iter(self.running)))
        port, rest_api_port = pick_unused_port(), pick_unused_port()
        command = [EXE, 'serve', f'--port={port}', f'--rest_api_port={rest_api_port}',
                   f'--rest_api_timeout_in_ms={HTTP_REST_TIMEOUT_MS}']
        if grpc_socket_path:
            command.append(f'--grpc_socket_path={grpc_socket_path}')
        if model_config_file:
            command.append(f'--model_config_file={model_config_file}')
        elif model_path:
            command += [f'--model_name={model_name}', f'--model_base_path={model_path}']
        else:
            raise ValueError('Both model_config_file and model_path cannot be empty!')
        if monitoring_config_file:
            command.append(f'--monitoring_config_file={monitoring_config_file}')
        if model_config_file_poll_period is not None:
            command.append(f'--model_config_file_poll_wait_seconds={model_config_file_poll_period}')
        if batching_parameters_file:
            command += ['--enable_batching', f'--batching_parameters_file={batching_parameters_file}']
        command.append('--grpc_channel_arguments=' + ','.join(a for a in [grpc_channel_arguments,
                                                                            'grpc.so_reuseaddr=1'] if a))
        command += list(extra)
        log = open(os.path.join(self.log_dir, f'server-{port}.log'), 'w')
        proc = subprocess.Popen(command, stdout=log, stderr=pipe or log)
        atexit.register(proc.kill)  # as upstream: no server outlives the tests, whatever stops them
        proc.log_path = log.name
        if wait_for_server_ready:
            wait_until_ready(port, proc)
        self.running[key] = (proc, f'localhost:{port}', f'localhost:{rest_api_port}')
        return self.running[key]

    def stop(self, key):
        proc = self.running.pop(key)[0]
        if proc.poll() is None:
            proc.kill()
        proc.wait(30)

    def stop_all(self):
        for key in list(self.running):
            self.stop(key)


@pytest.fixture(scope='module')
def servers(tmp_path_factory):
    pool = Servers(str(tmp_path_factory.mktemp('servers')))
    yield pool
    pool.stop_all()


@pytest.fixture
def temp_dir(tmp_path):
    return str(tmp_path)


def saved_model_bundle_path():
    return os.path.join(TESTDATA, 'saved_model_half_plus_two_cpu')


def saved_model_half_plus_two_tf2():
    return os.path.join(TESTDATA, 'saved_model_half_plus_two_tf2_cpu')


def saved_model_half_plus_three_path():
    return os.path.join(TESTDATA, 'saved_model_half_plus_three')


def get_model_version(model_path):
    """The version of the SavedModel in `model_path`: its one integer-named folder (`00000123` is 123)."""
    return int(os.listdir(model_path)[0])


def verify_model_spec(actual_model_spec, exp_model_name, exp_signature_name, exp_version):
    assert actual_model_spec.name == exp_model_name
    assert actual_model_spec.signature_name == exp_signature_name
    assert actual_model_spec.version.value == exp_version


def verify_predict_request(model_server_address, expected_output, expected_version, model_name='default',
                           specify_output=True, batch_input=False, signature_name=SERVE_DEFAULT,
                           rpc_timeout=RPC_TIMEOUT, credentials=None):
    """Send PredictionService.Predict request and verify output."""
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature_name
    request.inputs['x'].dtype = types_pb2.DT_FLOAT
    request.inputs['x'].float_val.append(2.0)
    dim = request.inputs['x'].tensor_shape.dim.add()
    dim.size = 1
    if batch_input:
        request.inputs['x'].tensor_shape.dim.add().size = 1
    if specify_output:
        request.output_filter.append('y')
    channel = (grpc.secure_channel(model_server_address, credentials) if credentials else
               grpc.insecure_channel(model_server_address))
    with channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        result = stub.Predict(request, rpc_timeout)
    assert 'y' in result.outputs
    assert result.outputs['y'].dtype == types_pb2.DT_FLOAT
    assert len(result.outputs['y'].float_val) == 1
    assert result.outputs['y'].float_val[0] == expected_output
    verify_model_spec(result.model_spec, request.model_spec.name, signature_name, expected_version)


def _test_predict(servers, model_path, batching_parameters_file=None, signature_name=SERVE_DEFAULT):
    model_server_address = servers.run('default', model_path,
                                       batching_parameters_file=batching_parameters_file)[1]
    expected_version = get_model_version(model_path)
    verify_predict_request(model_server_address, expected_output=3.0, expected_version=expected_version,
                           signature_name=signature_name)
    verify_predict_request(model_server_address, expected_output=3.0, specify_output=False,
                           expected_version=expected_version, signature_name=signature_name)


# ---- tensorflow_model_server_test.py ---------------------------------------------------------------------------
@pytest.fixture
def good_model_config_file(temp_dir):
    """__BuildModelConfigFile: the good_model_config.txt template with the test models' paths."""
    with open(os.path.join(TESTDATA, 'good_model_config.txt')) as template_file:
        config = template_file.read().replace('${TEST_HALF_PLUS_TWO_DIR}', saved_model_bundle_path())
        config = config.replace('${TEST_HALF_PLUS_THREE_DIR}', saved_model_half_plus_three_path())
    path = os.path.join(temp_dir, 'good_model_config.conf')
    with open(path, 'w') as config_file:
        config_file.write(config)
    return path


def test_get_model_status(servers):
    """ModelService.GetModelStatus."""
    model_server_address = servers.run('default', saved_model_bundle_path())[1]
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = 'default'
    with grpc.insecure_channel(model_server_address) as channel:
        result = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(request, RPC_TIMEOUT)
    assert len(result.model_version_status) == 1
    assert result.model_version_status[0].version == 123
    assert result.model_version_status[0].status.error_code == 0  # OK


def test_get_model_metadata(servers):
    """PredictionService.GetModelMetadata."""
    model_path = saved_model_bundle_path()
    model_server_address = servers.run('default', model_path)[1]
    request = get_model_metadata_pb2.GetModelMetadataRequest()
    request.model_spec.name = 'default'
    request.metadata_field.append('signature_def')
    with grpc.insecure_channel(model_server_address) as channel:
        result = prediction_service_pb2_grpc.PredictionServiceStub(channel).GetModelMetadata(request, RPC_TIMEOUT)
    assert result.model_spec.name == 'default'
    assert result.model_spec.version.value == get_model_version(model_path)
    assert len(result.metadata) == 1
    assert 'signature_def' in result.metadata


@pytest.mark.parametrize('model_path', [saved_model_bundle_path(), saved_model_half_plus_two_tf2()],
                         ids=['tf1', 'tf2'])
def test_classify(servers, model_path):
    """PredictionService.Classify (testClassify, testClassifyTf2). The TF2 model's classify_x_to_y has the
    predict method name: TF Serving checks method names only with --enable_signature_method_name_check."""
    model_server_address = servers.run('default', model_path)[1]
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name = 'default'
    request.model_spec.signature_name = 'classify_x_to_y'
    example = request.input.example_list.examples.add()
    example.features.feature['x'].float_list.value.extend([2.0])
    with grpc.insecure_channel(model_server_address) as channel:
        result = prediction_service_pb2_grpc.PredictionServiceStub(channel).Classify(request, RPC_TIMEOUT)
    assert len(result.result.classifications) == 1
    assert len(result.result.classifications[0].classes) == 1
    assert result.result.classifications[0].classes[0].score == 3.0
    verify_model_spec(result.model_spec, request.model_spec.name, request.model_spec.signature_name,
                      get_model_version(model_path))


@pytest.mark.parametrize('model_path', [saved_model_bundle_path(), saved_model_half_plus_two_tf2()],
                         ids=['tf1', 'tf2'])
def test_regress(servers, model_path):
    """PredictionService.Regress (testRegress, testRegressTf2)."""
    model_server_address = servers.run('default', model_path)[1]
    request = regression_pb2.RegressionRequest()
    request.model_spec.name = 'default'
    request.model_spec.signature_name = 'regress_x_to_y'
    example = request.input.example_list.examples.add()
    example.features.feature['x'].float_list.value.extend([2.0])
    with grpc.insecure_channel(model_server_address) as channel:
        result = prediction_service_pb2_grpc.PredictionServiceStub(channel).Regress(request, RPC_TIMEOUT)
    assert len(result.result.regressions) == 1
    assert result.result.regressions[0].value == 3.0
    verify_model_spec(result.model_spec, request.model_spec.name, request.model_spec.signature_name,
                      get_model_version(model_path))


@pytest.mark.parametrize('model_path', [saved_model_bundle_path(), saved_model_half_plus_two_tf2()],
                         ids=['tf1', 'tf2'])
def test_multi_inference(servers, model_path):
    """PredictionService.MultiInference (testMultiInference, testMultiInferenceTf2)."""
    model_server_address = servers.run('default', model_path)[1]
    request = inference_pb2.MultiInferenceRequest()
    request.tasks.add().model_spec.name = 'default'
    request.tasks[0].model_spec.signature_name = 'regress_x_to_y'
    request.tasks[0].method_name = 'tensorflow/serving/regress'
    request.tasks.add().model_spec.name = 'default'
    request.tasks[1].model_spec.signature_name = 'classify_x_to_y'
    request.tasks[1].method_name = 'tensorflow/serving/classify'
    example = request.input.example_list.examples.add()
    example.features.feature['x'].float_list.value.extend([2.0])
    with grpc.insecure_channel(model_server_address) as channel:
        result = prediction_service_pb2_grpc.PredictionServiceStub(channel).MultiInference(request, RPC_TIMEOUT)
    assert len(result.results) == 2
    assert result.results[0].regression_result.regressions[0].value == 3.0
    assert result.results[1].classification_result.classifications[0].classes[0].score == 3.0
    for i in range(2):
        verify_model_spec(result.results[i].model_spec, request.tasks[i].model_spec.name,
                          request.tasks[i].model_spec.signature_name, get_model_version(model_path))


def test_predict_saved_model(servers):
    """PredictionService.Predict with a SavedModel: input x of shape [1] against the signature's [-1, 1]."""
    _test_predict(servers, saved_model_bundle_path())


def test_predict_saved_model_with_batching(servers, temp_dir):
    """The base class's _TestPredict with batching_parameters_file (upstream's testdata/batching_config.txt)."""
    path = os.path.join(temp_dir, 'batching_config.txt')
    with open(path, 'w') as f:
        f.write('max_batch_size { value: 128 }\nbatch_timeout_micros { value: 0 }\n'
                'max_enqueued_batches { value: 1000000 }\nnum_batch_threads { value: 8 }\n')
    _test_predict(servers, saved_model_bundle_path(), batching_parameters_file=path)


def test_bad_model(servers):
    """_TestBadModel, which upstream never runs (its name has no `test` prefix) and whose FAILED_PRECONDITION is
    not what TF Serving answers today. Read at the source: bad_half_plus_two/00000123 is a SessionBundle
    (export.meta), which session_bundle_util.cc refuses (UNIMPLEMENTED: "Session Bundle is deprecated and
    removed."); the load is retried --max_num_load_retries times; ServerCore::Create then fails with
    WaitUntilModelsAvailable's UNKNOWN "1 model(s) did not become available", and main.cc prints
    "Failed to start server" and exits. The gRPC port is only opened after ServerCore::Create, so until then a
    client gets UNAVAILABLE."""
    model_path = os.path.join(TESTDATA, 'bad_half_plus_two')
    proc, model_server_address, _ = servers.run(
        'default', model_path, wait_for_server_ready=False, pipe=subprocess.PIPE,
        extra=('--max_num_load_retries=1', '--load_retry_interval_micros=500000'))
    with pytest.raises(grpc.RpcError) as ectxt:
        verify_predict_request(model_server_address, expected_output=3.0,
                               expected_version=get_model_version(model_path), signature_name='', rpc_timeout=5)
    assert ectxt.value.code() is grpc.StatusCode.UNAVAILABLE
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode != 0
    assert ('Failed to start server. Error: UNKNOWN: 1 model(s) did not become available: {{{name: default version: '
            '123} due to error: UNIMPLEMENTED: Session Bundle is deprecated and removed.}, }') in stderr.decode()


def test_good_model_config(servers, good_model_config_file):
    """Server configuration from file works with valid configuration."""
    model_server_address = servers.run(None, None, model_config_file=good_model_config_file)[1]
    for name, output, path in (('half_plus_two', 3.0, saved_model_bundle_path()),
                               ('half_plus_three', 4.0, saved_model_half_plus_three_path())):
        verify_predict_request(model_server_address, model_name=name, expected_output=output,
                               expected_version=get_model_version(path))
        verify_predict_request(model_server_address, model_name=name, expected_output=output,
                               specify_output=False, expected_version=get_model_version(path))


def test_bad_model_config(servers):
    """Server model configuration from file fails for invalid file."""
    proc = servers.run(None, None, model_config_file=os.path.join(TESTDATA, 'bad_model_config.txt'),
                       pipe=subprocess.PIPE, wait_for_server_ready=False)[0]
    error_message = 'Error parsing text-format tensorflow.serving.ModelServerConfig'.encode('utf-8')
    assert proc.stderr is not None
    assert proc.stderr.read().find(error_message) > -1


BASE_CONFIG_PROTO = """
    model_config_list: {{
      config: {{
        name: "{name}",
        base_path: "{model_path}",
        model_platform: "tensorflow"
      }}
    }}
    """


def test_model_config_reload(servers, temp_dir):
    """Model server polls filesystem for model configuration."""
    config_path = os.path.join(temp_dir, 'model_config.txt')
    with open(config_path, 'w') as f:
        f.write(BASE_CONFIG_PROTO.format(name='half_plus_two', model_path=saved_model_bundle_path()))
    poll_period = 1
    model_server_address = servers.run(None, None, model_config_file=config_path,
                                       model_config_file_poll_period=poll_period)[1]
    verify_predict_request(model_server_address, model_name='half_plus_two', expected_output=3.0,
                           specify_output=False, expected_version=get_model_version(saved_model_bundle_path()))
    with open(config_path, 'w') as f:
        f.write(BASE_CONFIG_PROTO.format(name='half_plus_three', model_path=saved_model_half_plus_three_path()))
    # Upstream gives the server 10 seconds to poll and load the new config; here the same 10 s at most.
    deadline, error = time.monotonic() + 10, None
    while time.monotonic() < deadline:
        try:
            verify_predict_request(model_server_address, model_name='half_plus_three', expected_output=4.0,
                                   specify_output=False,
                                   expected_version=get_model_version(saved_model_half_plus_three_path()))
            break
        except grpc.RpcError as e:
            error = e
            time.sleep(0.5)
    else:
        pytest.fail(f'half_plus_three not served 10 s after the config changed: {error}')


def test_model_config_reload_with_zero_poll_period(servers, temp_dir):
    """Model server does not poll filesystem for model config."""
    config_path = os.path.join(temp_dir, 'model_config.txt')
    with open(config_path, 'w') as f:
        f.write(BASE_CONFIG_PROTO.format(name='half_plus_two', model_path=saved_model_bundle_path()))
    poll_period = 0
    model_server_address = servers.run(None, None, model_config_file=config_path,
                                       model_config_file_poll_period=poll_period)[1]
    verify_predict_request(model_server_address, model_name='half_plus_two', expected_output=3.0,
                           specify_output=False, expected_version=get_model_version(saved_model_bundle_path()))
    with open(config_path, 'w') as f:
        f.write(BASE_CONFIG_PROTO.format(name='half_plus_three', model_path=saved_model_half_plus_three_path()))
    time.sleep(poll_period + 1)  # time to poll and load the new config, should it want to
    verify_predict_request(model_server_address, model_name='half_plus_two', expected_output=3.0,
                           specify_output=False,
                           expected_version=get_model_version(saved_model_half_plus_three_path()))


def test_good_grpc_channel_args(servers):
    """Server starts with grpc_channel_arguments specified."""
    model_server_address = servers.run(
        'default', saved_model_bundle_path(),
        grpc_channel_arguments='grpc.max_connection_age_ms=2000,grpc.lb_policy_name=grpclb')[1]
    verify_predict_request(model_server_address, expected_output=3.0, specify_output=False,
                           expected_version=get_model_version(saved_model_half_plus_three_path()))


def _rest_ok(url, req):
    status, headers, body = call_rest(url, req)
    assert status == 200, body
    return json.loads(body.decode())


def test_classify_rest(servers):
    host, port = servers.run('default', saved_model_bundle_path())[2].split(':')
    url = f'http://{host}:{port}/v1/models/default:classify'
    json_req = {'signature_name': 'classify_x_to_y', 'examples': [{'x': 2.0}]}
    assert _rest_ok(url, json_req) == {'results': [[['', 3.0]]]}


def test_regress_rest(servers):
    host, port = servers.run('default', saved_model_bundle_path())[2].split(':')
    url = f'http://{host}:{port}/v1/models/default:regress'
    json_req = {'signature_name': 'regress_x_to_y', 'examples': [{'x': 2.0}]}
    assert _rest_ok(url, json_req) == {'results': [3.0]}


def test_predict_rest(servers):
    """`instances` [2.0, 3.0, 4.0]: a [3] tensor to the [-1, 1] signature, answered [3] as TensorFlow computes it."""
    host, port = servers.run('default', saved_model_bundle_path())[2].split(':')
    url = f'http://{host}:{port}/v1/models/default:predict'
    assert _rest_ok(url, {'instances': [2.0, 3.0, 4.0]}) == {'predictions': [3.0, 3.5, 4.0]}


def test_predict_columnar_rest(servers):
    host, port = servers.run('default', saved_model_bundle_path())[2].split(':')
    url = f'http://{host}:{port}/v1/models/default:predict'
    assert _rest_ok(url, {'inputs': [2.0, 3.0, 4.0]}) == {'outputs': [3.0, 3.5, 4.0]}


def test_get_status_rest(servers):
    host, port = servers.run('default', saved_model_bundle_path())[2].split(':')
    assert _rest_ok(f'http://{host}:{port}/v1/models/default', None) == {
        'model_version_status': [{'version': '123', 'state': 'AVAILABLE',
                                  'status': {'error_code': 'OK', 'error_message': ''}}]}


def test_get_model_metadata_rest(servers):
    """The metadata JSON, every field TF Serving prints (defaults included), against upstream's file."""
    host, port = servers.run('default', saved_model_bundle_path())[2].split(':')
    got = _rest_ok(f'http://{host}:{port}/v1/models/default/metadata', None)
    with open(os.path.join(TESTDATA, 'half_plus_two_model_metadata.json')) as f:
        expected_metadata = json.load(f)
    assert sorted_object(got) == sorted_object(expected_metadata)


def test_prometheus_endpoint(servers):
    host, port = servers.run('default', saved_model_bundle_path(),
                             monitoring_config_file=os.path.join(TESTDATA, 'monitoring_config.txt'))[2].split(':')
    status, _, body = call_rest(f'http://{host}:{port}/monitoring/prometheus/metrics', None)
    assert status == 200
    assert '# TYPE' in body.decode('utf-8')


def test_predict_uds(servers, temp_dir):
    """Saved model prediction over a Unix domain socket (upstream's fixed /tmp path made unique per run)."""
    socket_path = os.path.join(tempfile.mkdtemp(prefix='tfs-'), 'tf-serving.sock')
    servers.run('default', saved_model_bundle_path(), grpc_socket_path=socket_path)
    verify_predict_request(f'unix:{socket_path}', expected_output=3.0, specify_output=False,
                           expected_version=get_model_version(saved_model_half_plus_three_path()))
    shutil.rmtree(os.path.dirname(socket_path), ignore_errors=True)


def _export_in_subprocess(code: str, export_path: str) -> None:
    """Runs `code` (which saves a model to `export_path`) in a fresh interpreter, whose TensorFlow has not been
    configured by other tests (virtual CPUs must be set before TensorFlow initializes)."""
    script = 'import os, sys\nimport tensorflow.compat.v1 as tf\ntf.enable_eager_execution()\n' \
             f'export_path = {export_path!r}\n' + code
    result = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True, timeout=300,
                            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3'))
    assert result.returncode == 0, result.stderr[-3000:]


def test_tf_saved_model_save(servers, temp_dir):
    base_path = os.path.join(temp_dir, 'tf_saved_model_save')
    _export_in_subprocess(
        "root = tf.train.Checkpoint()\nroot.v1 = tf.Variable(3.)\nroot.v2 = tf.Variable(2.)\n"
        "root.f = tf.function(lambda x: {'y': root.v1 * root.v2 * x})\n"
        "to_save = root.f.get_concrete_function(tf.TensorSpec(None, tf.float32))\n"
        "tf.saved_model.experimental.save(root, export_path, to_save)\n", os.path.join(base_path, '00000123'))
    model_server_address = servers.run('default', base_path)[1]
    verify_predict_request(model_server_address, expected_output=12.0, specify_output=False,
                           expected_version=get_model_version(base_path))


def test_tf_saved_model_save_multiple_signatures(servers, temp_dir):
    base_path = os.path.join(temp_dir, 'tf_saved_model_save')
    _export_in_subprocess(
        "root = tf.train.Checkpoint()\n"
        "root.f = tf.function(lambda x: {'y': 1.}, input_signature=[tf.TensorSpec(None, tf.float32)])\n"
        "root.g = tf.function(lambda x: {'y': 2.}, input_signature=[tf.TensorSpec(None, tf.float32)])\n"
        "tf.saved_model.experimental.save(root, export_path, signatures={'serving_default': root.f, "
        "'custom_signature_key': root.g})\n", os.path.join(base_path, '00000123'))
    model_server_address = servers.run('default', base_path)[1]
    expected_version = get_model_version(base_path)
    verify_predict_request(model_server_address, expected_output=2.0, expected_version=expected_version,
                           signature_name='custom_signature_key')
    verify_predict_request(model_server_address, expected_output=1.0, expected_version=expected_version)


def test_sequential_keras_saved_model_save(servers, temp_dir):
    """A simple SavedModel created with Keras' Sequential API."""
    base_path = os.path.join(temp_dir, 'keras_sequential_saved_model_save')
    _export_in_subprocess(
        "model = tf.keras.models.Sequential()\n"
        "model.add(tf.keras.layers.Input(dtype='float32', shape=(1,), name='x'))\n"
        "model.add(tf.keras.layers.Lambda(lambda x: x, name='y'))\n"
        "tf.saved_model.save(model, export_path)\n", os.path.join(base_path, '00000123'))
    model_server_address = servers.run('default', base_path)[1]
    verify_predict_request(model_server_address, batch_input=True, specify_output=False, expected_output=2.0,
                           expected_version=get_model_version(base_path))


def test_distrat_sequential_keras_saved_model_save(servers, temp_dir):
    """A Keras SavedModel built under tf.distribute.MirroredStrategy on two (virtual) CPUs."""
    base_path = os.path.join(temp_dir, 'keras_sequential_saved_model_save')
    _export_in_subprocess(
        "cpu = tf.config.experimental.list_physical_devices('CPU')[0]\n"
        "tf.config.experimental.set_virtual_device_configuration(cpu, "
        "[tf.config.experimental.VirtualDeviceConfiguration() for _ in range(2)])\n"
        "strategy = tf.distribute.MirroredStrategy(devices=('/cpu:0', '/cpu:1'))\n"
        "with strategy.scope():\n"
        "    model = tf.keras.models.Sequential()\n"
        "    model.add(tf.keras.layers.Input(dtype='float32', shape=(1,), name='x'))\n"
        "    model.add(tf.keras.layers.Dense(1, kernel_initializer='ones', bias_initializer='zeros'))\n"
        "    model.add(tf.keras.layers.Lambda(lambda x: x, name='y'))\n"
        "tf.saved_model.save(model, export_path)\n", os.path.join(base_path, '00000123'))
    model_server_address = servers.run('default', base_path)[1]
    verify_predict_request(model_server_address, batch_input=True, specify_output=False, expected_output=2.0,
                           expected_version=get_model_version(base_path))


# ---- version policies and labels: get_model_status_impl_test.cc, http_rest_api_handler_test.cc ------------------
TWO_VERSIONS = 'saved_model_half_plus_two_2_versions'


def _two_versions_config(versions, labels=None):
    config = model_server_config_pb2.ModelServerConfig()
    model = config.model_config_list.config.add()
    model.name, model.base_path, model.model_platform = TWO_VERSIONS, os.path.join(TESTDATA, TWO_VERSIONS), 'tensorflow'
    model.model_version_policy.specific.versions.extend(versions)
    for label, version in (labels or {}).items():
        model.version_labels[label] = version
    return config


def _config_file(temp_dir, config, name='models.config'):
    from google.protobuf import text_format
    path = os.path.join(temp_dir, name)
    with open(path, 'w') as f:
        f.write(text_format.MessageToString(config))
    return path


@pytest.fixture(scope='module')
def status_server(servers, tmp_path_factory):
    """GetModelStatusImplTest's ServerCore: the two-version model, policy specific {123, 124}."""
    path = _config_file(str(tmp_path_factory.mktemp('status')), _two_versions_config([123, 124]))
    return servers.run(None, None, model_config_file=path)[1]


def _status(address, spec=None):
    request = get_model_status_pb2.GetModelStatusRequest()
    if spec is not None:
        request.model_spec.CopyFrom(spec)
    with grpc.insecure_channel(address) as channel:
        return model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(request, RPC_TIMEOUT)


def test_status_missing_or_empty_model_spec_failure(status_server):
    with pytest.raises(grpc.RpcError) as e:
        _status(status_server)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_status_invalid_model_name_failure(status_server):
    spec = get_model_status_pb2.GetModelStatusRequest().model_spec
    spec.name = 'nonexistent_model'
    with pytest.raises(grpc.RpcError) as e:
        _status(status_server, spec)
    assert e.value.code() == grpc.StatusCode.NOT_FOUND


def test_status_invalid_model_version_failure(status_server):
    spec = get_model_status_pb2.GetModelStatusRequest().model_spec
    spec.name, spec.version.value = TWO_VERSIONS, 125
    with pytest.raises(grpc.RpcError) as e:
        _status(status_server, spec)
    assert e.value.code() == grpc.StatusCode.NOT_FOUND


def test_status_all_versions_success(status_server):
    spec = get_model_status_pb2.GetModelStatusRequest().model_spec
    spec.name = TWO_VERSIONS
    response = _status(status_server, spec)
    assert len(response.model_version_status) == 2
    assert {s.version for s in response.model_version_status} == {123, 124}
    for s in response.model_version_status:
        assert s.status.error_code == 0 and s.status.error_message == ''


def test_status_single_version_success(status_server):
    spec = get_model_status_pb2.GetModelStatusRequest().model_spec
    spec.name, spec.version.value = TWO_VERSIONS, 123
    response = _status(status_server, spec)
    assert len(response.model_version_status) == 1
    assert response.model_version_status[0].version == 123
    assert response.model_version_status[0].status.error_code == 0
    assert response.model_version_status[0].status.error_message == ''


def _reload(address, config):
    request = model_management_pb2.ReloadConfigRequest()
    request.config.CopyFrom(config)
    with grpc.insecure_channel(address) as channel:
        return model_service_pb2_grpc.ModelServiceStub(channel).HandleReloadConfigRequest(request, 60)


@pytest.fixture(scope='module')
def rest_handler(servers, tmp_path_factory):
    """HttpRestApiHandlerTest's ServerCore: specific {123}, then the label Version_Label -> 123 added by reloading
    the config, as there (a label may only point at an AVAILABLE version). Returns the REST base URL."""
    path = _config_file(str(tmp_path_factory.mktemp('rest')), _two_versions_config([123]))
    _, address, rest = servers.run(None, None, model_config_file=path)
    _reload(address, _two_versions_config([123], {'Version_Label': 123}))
    return f'http://{rest}'


def _rest_error(url, body=None, method='POST'):
    status, headers, data = call_rest(url, body if body is not None else b'', method=method)
    return status, headers, json.loads(data.decode()).get('error', '') if data else ''


def test_rest_path_regex(rest_handler):
    """kPathRegex `(?i)/v1/.*`: other paths are not the API's (the HTTP server answers 404)."""
    assert call_rest(f'{rest_handler}/statuspage', None)[0] == 404
    assert call_rest(f'{rest_handler}/index', None)[0] == 404
    assert call_rest(f'{rest_handler}/v1/models', None)[0] == 400  # the API's: "Missing model name"


def test_rest_unsupported_api_calls(rest_handler):
    cases = [('GET', '/v1/foo', 'Malformed request'), ('POST', '/v1/foo', 'Malformed request'),
             ('GET', '/v1/models', 'Missing model name'),
             ('GET', '/v1/models/debug/model_name', 'Malformed request'),
             ('POST', '/v1/models', 'Malformed request'), ('GET', '/v1/models/foo:predict', 'Malformed request'),
             ('GET', '/v1/models/foo/version/50:predict', 'Malformed request'),
             ('POST', '/v1/models/foo/version/50:regress', 'Malformed request'),
             ('POST', '/v1/models/foo/versions/HELLO:regress', 'Malformed request'),
             ('POST', f'/v1/models/foo/versions/{2 ** 64 - 1}:regress', 'Failed to convert version'),
             ('POST', '/v1/models/foo/metadata', 'Malformed request'),
             ('POST', '/v1/models/foo/label/some_label:regress', 'Malformed request'),
             ('POST', '/v1/models/foo/versions/50/labels/some_label:regress', 'Malformed request'),
             ('POST', '/v1/models/foo/versions/some_label:regress', 'Malformed request')]
    for method, path, message in cases:
        status, headers, error = _rest_error(rest_handler + path, method=method)
        assert status == 400, (method, path, status, error)  # INVALID_ARGUMENT
        assert message in error, (method, path, error)
        assert headers['Content-Type'] == 'application/json'


def test_rest_predict_model_name_version_errors(rest_handler):
    for path in ('/v1/models/foo:predict', '/v1/models/foo/versions/50:predict',
                 f'/v1/models/{TWO_VERSIONS}99:predict'):
        assert _rest_error(rest_handler + path, {'instances': [1]})[0] == 404  # NOT_FOUND


def test_rest_predict_request_errors(rest_handler):
    req_path = f'{rest_handler}/v1/models/{TWO_VERSIONS}:predict'
    status, _, error = _rest_error(req_path, b'')
    assert status == 400 and 'JSON Parse error: The document is empty' in error
    status, _, error = _rest_error(req_path, b'instances = [1, 2]')
    assert status == 400 and 'JSON Parse error: Invalid value' in error
    status, _, error = _rest_error(req_path, {'instances': ['x', 'y']})
    assert status == 400 and 'not of expected type: float' in error
    status, _, error = _rest_error(f'{rest_handler}/v1/models/{TWO_VERSIONS}/labels/Version_Nonexistent:predict',
                                   {'instances': ['x', 'y']})
    assert status == 400 and 'Unrecognized servable version label' in error
    status, _, error = _rest_error(req_path, {'signature_name': 100})
    assert status == 400 and "'signature_name' key must be a string value." in error


def test_rest_predict(rest_handler):
    model = f'{rest_handler}/v1/models/{TWO_VERSIONS}'
    cases = [(f'{model}:predict', {'instances': [[1.0, 2.0], [3.0, 4.0]]}, {'predictions': [[2.5, 3.0], [3.5, 4.0]]}),
             (f'{model}/versions/123:predict', {'instances': [1.0, 2.0]}, {'predictions': [2.5, 3.0]}),
             (f'{model}/labels/Version_Label:predict', {'instances': [1.0, 2.0]}, {'predictions': [2.5, 3.0]}),
             (f'{model}/versions/123:predict', {'signature_name': 'serving_default', 'instances': [3.0, 4.0]},
              {'predictions': [3.5, 4.0]}),
             (f'{model}/versions/123:predict', {'signature_name': 'serving_default', 'inputs': [3.0, 4.0]},
              {'outputs': [3.5, 4.0]})]
    for url, body, expected in cases:
        status, headers, data = call_rest(url, body)
        assert status == 200, data
        assert json.loads(data) == expected
        assert headers['Content-Type'] == 'application/json'


def test_rest_regress(rest_handler):
    model = f'{rest_handler}/v1/models/{TWO_VERSIONS}'
    body = {'signature_name': 'regress_x_to_y', 'examples': [{'x': 80.0}]}
    for url in (f'{model}:regress', f'{model}/versions/123:regress', f'{model}/labels/Version_Label:regress'):
        assert _rest_ok(url, body) == {'results': [42]}


def test_rest_classify(rest_handler):
    model = f'{rest_handler}/v1/models/{TWO_VERSIONS}'
    assert _rest_ok(f'{model}:classify', {'signature_name': 'classify_x_to_y', 'examples': [{'x': 20.0}]}) == \
        {'results': [[['', 12]]]}
    assert _rest_ok(f'{model}/labels/Version_Label:classify',
                    {'signature_name': 'classify_x_to_y', 'examples': [{'x': 10.0}]}) == {'results': [[['', 7]]]}


def test_rest_get_status(rest_handler):
    model = f'{rest_handler}/v1/models/{TWO_VERSIONS}'
    expected = {'model_version_status': [{'version': '123', 'state': 'AVAILABLE',
                                          'status': {'error_code': 'OK', 'error_message': ''}}]}
    for url in (model, f'{model}/versions/123', f'{model}/labels/Version_Label'):
        status, headers, data = call_rest(url, None)
        assert status == 200 and json.loads(data) == expected
        assert headers['Content-Type'] == 'application/json'


def test_rest_get_model_metadata(rest_handler):
    got = _rest_ok(f'{rest_handler}/v1/models/{TWO_VERSIONS}/metadata', None)
    with open(os.path.join(TESTDATA, 'saved_model_half_plus_two_2_versions_metadata.json')) as f:
        assert sorted_object(got) == sorted_object(json.load(f))


def test_version_label_must_point_at_an_available_version(servers, tmp_path):
    """ServerCore::UpdateModelVersionLabelMap: FAILED_PRECONDITION for a label on a version that is not AVAILABLE,
    unless --allow_version_labels_for_unavailable_models; the config is then not applied at all."""
    path = _config_file(str(tmp_path), _two_versions_config([123]))
    address = servers.run(None, None, model_config_file=path)[1]
    with pytest.raises(grpc.RpcError) as e:
        _reload(address, _two_versions_config([123, 124], {'stable': 124}))
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert e.value.details() == ('Request to assign label to version 124 of model '
                                 'saved_model_half_plus_two_2_versions, which is not currently available for inference')
    spec = get_model_status_pb2.GetModelStatusRequest().model_spec
    spec.name = TWO_VERSIONS
    assert [s.version for s in _status(address, spec).model_version_status] == [123]  # 124 never loaded

    address = servers.run(None, None, model_config_file=path,
                          extra=('--allow_version_labels_for_unavailable_models',))[1]
    _reload(address, _two_versions_config([123, 124], {'stable': 124}))
    verify_predict_request(address, model_name=TWO_VERSIONS, expected_output=3.0, expected_version=124)
    request = predict_pb2.PredictRequest()
    request.model_spec.name, request.model_spec.version_label = TWO_VERSIONS, 'stable'
    request.inputs['x'].CopyFrom(_float_tensor([[1.0]]))
    with grpc.insecure_channel(address) as channel:
        result = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, RPC_TIMEOUT)
    assert result.model_spec.version.value == 124 and list(result.outputs['y'].float_val) == [2.5]


def _float_tensor(rows):
    import tensorflow as tf
    return tf.make_tensor_proto(rows, dtype=tf.float32)


# ---- beyond upstream: flags, metrics, failures (TF Serving's main.cc, server.cc, http_server.cc) ---------------
# Every flag of tensorflow_model_server at that commit (model_servers/main.cc).
MAIN_CC_FLAGS = (
    'port grpc_socket_path rest_api_port rest_api_num_threads rest_api_timeout_in_ms rest_api_enable_cors_support '
    'enable_batching allow_version_labels_for_unavailable_models batching_parameters_file '
    'enable_per_model_batching_parameters model_config_file model_config_file_poll_wait_seconds model_name '
    'model_base_path num_load_threads num_unload_threads max_num_load_retries load_retry_interval_micros '
    'file_system_poll_wait_seconds flush_filesystem_caches tensorflow_session_parallelism '
    'tensorflow_session_config_file tensorflow_intra_op_parallelism tensorflow_inter_op_parallelism '
    'use_alts_credentials ssl_config_file platform_config_file per_process_gpu_memory_fraction saved_model_tags '
    'grpc_channel_arguments grpc_max_threads enable_model_warmup num_request_iterations_for_warmup version '
    'monitoring_config_file remove_unused_fields_from_bundle_metagraph prefer_tflite_model num_tflite_pools '
    'num_tflite_interpreters_per_pool enable_signature_method_name_check xla_cpu_compilation_enabled '
    'xla_gpu_compilation_enabled enable_profiler thread_pool_factory_config_file mixed_precision '
    'skip_initialize_tpu enable_grpc_healthcheck_service enable_serialization_as_tensor_content').split()


def _serve(*args, timeout=120):
    return subprocess.run([EXE, 'serve', *args], capture_output=True, text=True, timeout=timeout)


def test_help_lists_every_tf_serving_flag():
    result = _serve('--help')
    assert result.returncode == 0
    listed = set(re.findall(r'--([a-z0-9_]+)', result.stdout))
    assert set(MAIN_CC_FLAGS) <= listed, sorted(set(MAIN_CC_FLAGS) - listed)
    assert len(MAIN_CC_FLAGS) == 48


@pytest.mark.parametrize('flag, words', [
    ('--use_alts_credentials', 'ALTS'), ('--prefer_tflite_model=true', 'TF-Lite'),
    ('--platform_config_file=/x.pbtxt', 'platform'), ('--enable_profiler=true', 'profiler'),
    ('--thread_pool_factory_config_file=/x', 'thread pool'), ('--mixed_precision=float16', 'bfloat16'),
    ('--grpc_channel_arguments=grpc.max_connection_age_ms', 'key=value'),
    ('--batching_parameters_file=/nonexistent', 'without setting --enable_batching'),
])
def test_unsupported_or_wrong_flags_are_refused_with_one_line(flag, words):
    result = _serve('--model_base_path', saved_model_bundle_path(), flag)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0] and flag.split('=')[0] in lines[0], lines


def test_flags_at_their_defaults_are_accepted(servers):
    """A deployment's command line, written out in full, with TF Serving's syntax (`--flag=value`, bare booleans)."""
    address = servers.run('default', saved_model_bundle_path(), extra=(
        '--enable_profiler=false', '--flush_filesystem_caches',
        '--num_unload_threads=2', '--num_load_threads=2', '--tensorflow_intra_op_parallelism=1',
        '--tensorflow_inter_op_parallelism=1', '--saved_model_tags=serve', '--enable_model_warmup=true',
        '--xla_cpu_compilation_enabled=false', '--skip_initialize_tpu=false', '--prefer_tflite_model=false',
        '--remove_unused_fields_from_bundle_metagraph', '--per_process_gpu_memory_fraction=0.5',
        '--enable_serialization_as_tensor_content=true'))[1]
    request = predict_pb2.PredictRequest()
    request.model_spec.name = 'default'
    request.inputs['x'].CopyFrom(_float_tensor([[1.0], [2.0]]))
    with grpc.insecure_channel(address) as channel:
        result = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, RPC_TIMEOUT)
    y = result.outputs['y']
    assert y.tensor_content and not y.float_val  # --enable_serialization_as_tensor_content
    import tensorflow as tf
    assert tf.make_ndarray(y).tolist() == [[2.5], [3.0]]


def test_signature_method_name_check(servers):
    """--enable_signature_method_name_check: the TF2 model's classify_x_to_y has the predict method name."""
    address = servers.run('default', saved_model_half_plus_two_tf2(),
                          extra=('--enable_signature_method_name_check',))[1]
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name, request.model_spec.signature_name = 'default', 'classify_x_to_y'
    request.input.example_list.examples.add().features.feature['x'].float_list.value.append(2.0)
    with grpc.insecure_channel(address) as channel:
        with pytest.raises(grpc.RpcError) as e:
            prediction_service_pb2_grpc.PredictionServiceStub(channel).Classify(request, RPC_TIMEOUT)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert e.value.details() == ('Expected classification signature method_name to be tensorflow/serving/classify. '
                                 'Was: tensorflow/serving/predict')


def test_prometheus_metrics_count_requests_latency_and_loads(servers):
    proc, address, rest = servers.run('default', saved_model_bundle_path(),
                                      monitoring_config_file=os.path.join(TESTDATA, 'monitoring_config.txt'))
    url = f'http://{rest}/monitoring/prometheus/metrics'

    def page():
        status, headers, body = call_rest(url, None)
        assert status == 200 and headers['Content-Type'].startswith('text/plain')
        return body.decode()

    def value(text, line_start):
        return sum(float(line.rsplit(' ', 1)[1]) for line in text.splitlines() if line.startswith(line_start))
    before = page()
    for _ in range(3):
        verify_predict_request(address, expected_output=3.0, expected_version=123)
    with pytest.raises(grpc.RpcError):
        verify_predict_request(address, expected_output=3.0, expected_version=123, model_name='nope')
    assert _rest_ok(f'http://{rest}/v1/models/default:predict', {'instances': [2.0]}) == {'predictions': [3.0]}
    after = page()
    ok = ':tensorflow:serving:request_count{model_name="default",status="OK"}'
    assert value(after, ok) - value(before, ok) == 4  # 3 gRPC + 1 REST
    missing = ':tensorflow:serving:request_count{model_name="nope",status="NOT_FOUND"}'
    assert value(after, missing) - value(before, missing) == 1
    grpc_count = ':tensorflow:serving:request_latency_count{model_name="default",API="Predict",entrypoint="GRPC"}'
    assert value(after, grpc_count) - value(before, grpc_count) == 3
    assert ':tensorflow:serving:request_latency_bucket{model_name="default",API="predict",entrypoint="REST",' \
           'le="+Inf"}' in after
    assert '# TYPE :tensorflow:serving:request_latency histogram' in after
    assert value(after, ':tensorflow:serving:runtime_latency_count{model_name="default",API="Predict"') >= 4
    assert value(after, ':tensorflow:cc:saved_model:load_attempt_count{model_path="'
                        f'{saved_model_bundle_path()}/00000123",status="success"}}') == 1
    assert ':tfx_tabular:serving:model_version_state{model_name="default",version="123",state="AVAILABLE"} 1' in after


def test_a_version_that_fails_to_load_beside_a_good_one(servers, tmp_path):
    """TF Serving's answers for a broken version while another serves (servable_state_monitor, ServerCore): the
    server starts, the broken version is END with its load error, and asking for it by number is NOT_FOUND."""
    base = tmp_path / 'model'
    base.mkdir()
    os.symlink(os.path.join(saved_model_bundle_path(), '00000123'), base / '00000123')
    os.symlink(os.path.join(TESTDATA, 'bad_half_plus_two', '00000123'), base / '124')
    config = model_server_config_pb2.ModelServerConfig()
    model = config.model_config_list.config.add(name='default', base_path=str(base), model_platform='tensorflow')
    model.model_version_policy.all.SetInParent()
    address = servers.run(None, None, model_config_file=_config_file(str(tmp_path), config),
                          extra=('--max_num_load_retries=0',))[1]
    spec = get_model_status_pb2.GetModelStatusRequest().model_spec
    spec.name = 'default'
    statuses = {s.version: s for s in _status(address, spec).model_version_status}
    states = get_model_status_pb2.ModelVersionStatus.State
    assert statuses[123].state == states.AVAILABLE
    assert statuses[124].state == states.END
    assert statuses[124].status.error_code == grpc.StatusCode.UNIMPLEMENTED.value[0]
    assert statuses[124].status.error_message == 'Session Bundle is deprecated and removed.'
    verify_predict_request(address, expected_output=3.0, expected_version=123)
    request = predict_pb2.PredictRequest()
    request.model_spec.name, request.model_spec.version.value = 'default', 124
    request.inputs['x'].CopyFrom(_float_tensor([[1.0]]))
    with grpc.insecure_channel(address) as channel:
        with pytest.raises(grpc.RpcError) as e:
            prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, RPC_TIMEOUT)
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    assert e.value.details() == 'Servable not found for request: Specific(default, 124)'


def test_rest_api_timeout(servers, tmp_path):
    """--rest_api_timeout_in_ms bounds the model run: DEADLINE_EXCEEDED, HTTP 504."""
    base_path = str(tmp_path / 'slow')
    _export_in_subprocess(
        "class Slow(tf.Module):\n"
        "    @tf.function(input_signature=[tf.TensorSpec([None], tf.int64)])\n"
        "    def serve(self, n):\n"
        "        i = tf.constant(0, tf.int64)\n"
        "        i = tf.while_loop(lambda i: i < n[0], lambda i: i + 1, [i])\n"
        "        return {'y': tf.fill(tf.shape(n), i)}\n"
        "m = Slow()\n"
        "tf.saved_model.save(m, export_path, signatures={'serving_default': m.serve})\n",
        os.path.join(base_path, '1'))
    rest = servers.run('default', base_path, extra=('--rest_api_timeout_in_ms=300',))[2]
    url = f'http://{rest}/v1/models/default:predict'
    assert _rest_ok(url, {'instances': [1000]}) == {'predictions': [1000]}
    start = time.monotonic()
    status, _, error = _rest_error(url, {'instances': [10 ** 12]})
    assert status == 504 and time.monotonic() - start < 20, error


def test_ssl_config_file(servers, tmp_path):
    """--ssl_config_file (SSLConfig: server_key, server_cert): TLS on the gRPC port, as TF Serving sets it up."""
    key, cert = tmp_path / 'key.pem', tmp_path / 'cert.pem'
    subprocess.run(['openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', str(key), '-out',
                    str(cert), '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost'],
                   check=True, capture_output=True)
    config = tmp_path / 'ssl.config'
    config.write_text(f'server_key: {json.dumps(key.read_text())}\nserver_cert: {json.dumps(cert.read_text())}\n')
    proc, address, _ = servers.run('default', saved_model_bundle_path(), wait_for_server_ready=False,
                                   extra=(f'--ssl_config_file={config}',))
    credentials = grpc.ssl_channel_credentials(root_certificates=cert.read_bytes())
    deadline = time.monotonic() + WAIT_FOR_SERVER_READY_INT_SECS
    while True:
        try:
            verify_predict_request(address, expected_output=3.0, expected_version=123, credentials=credentials)
            break
        except grpc.RpcError:
            assert proc.poll() is None and time.monotonic() < deadline, 'the TLS server did not answer'
            time.sleep(0.5)
    with pytest.raises(grpc.RpcError) as e:  # plain text is refused
        verify_predict_request(address, expected_output=3.0, expected_version=123, rpc_timeout=3)
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE


def test_grpc_health_check_service(servers):
    """--enable_grpc_healthcheck_service: grpc.health.v1.Health answers SERVING for the server and TF Serving's
    two service names, NOT_FOUND for others."""
    from tfx_tabular.serving import protos
    address = servers.run('default', saved_model_bundle_path(), extra=('--enable_grpc_healthcheck_service',))[1]
    with grpc.insecure_channel(address) as channel:
        check = channel.unary_unary('/grpc.health.v1.Health/Check',
                                    request_serializer=protos.HealthCheckRequest.SerializeToString,
                                    response_deserializer=protos.HealthCheckResponse.FromString)
        for service in ('', 'ModelService', 'PredictionService'):
            assert check(protos.HealthCheckRequest(service=service), timeout=10).status == protos.SERVING
        with pytest.raises(grpc.RpcError) as e:
            check(protos.HealthCheckRequest(service='Nope'), timeout=10)
    assert e.value.code() == grpc.StatusCode.NOT_FOUND


def test_model_warmup_replays_the_warmup_file(servers, tmp_path):
    """--enable_model_warmup (default true): assets.extra/tf_serving_warmup_requests is replayed at load; a record
    that fails fails the load, and so the start."""
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    def model_with_warmup(name, inputs):
        version = tmp_path / name / '00000123'
        shutil.copytree(os.path.join(saved_model_bundle_path(), '00000123'), version)
        (version / 'assets.extra').mkdir()
        log = prediction_log_pb2.PredictionLog()
        log.predict_log.request.model_spec.name = 'default'
        for key, value in inputs.items():
            log.predict_log.request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
        with tf.io.TFRecordWriter(str(version / 'assets.extra' / 'tf_serving_warmup_requests')) as writer:
            for _ in range(2):
                writer.write(log.SerializeToString())
        return str(tmp_path / name)
    good = model_with_warmup('good', {'x': [[1.0]]})
    monitoring = os.path.join(TESTDATA, 'monitoring_config.txt')
    rest = servers.run('default', good, monitoring_config_file=monitoring,
                       extra=('--num_request_iterations_for_warmup=3',))[2]
    page = call_rest(f'http://{rest}/monitoring/prometheus/metrics', None)[2].decode()
    assert ':tensorflow:serving:runtime_latency_count{model_name="default",API="Predict",runtime="TF1"} 6' in page

    result = _serve('--model_name=default', f'--model_base_path={model_with_warmup("bad", {"z": [[1.0]]})}',
                    f'--port={pick_unused_port()}', '--max_num_load_retries=0')
    assert result.returncode == 1
    assert 'did not become available' in result.stderr and 'input tensor alias not found in signature: z' in \
        result.stderr, result.stderr[-2000:]
