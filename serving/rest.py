"""TF Serving's REST API on the same models: `/v1/models/NAME[/versions/V|/labels/L][:predict|:classify|/metadata]`.

JSON in and out as TF Serving documents it (api_rest.md): Predict takes `instances` (row format, answered
with `predictions`) or `inputs` (columnar, answered with `outputs`); binary strings are `{"b64": ...}`.
Classify takes `examples` (+ optional `context`) and answers `result`: [[label, score], ...] per example.
GET gives the model status; `/metadata` the signature_def map. Errors are `{"error": "..."}` with the HTTP
status TF Serving maps each gRPC code to. Requests go through the same checks and batching as gRPC.
"""
import base64
import http.server
import json
import re
import threading
from typing import Dict, List

import grpc
import numpy as np
import tensorflow as tf
from google.protobuf import json_format
from tensorflow_serving.apis import (classification_pb2, get_model_metadata_pb2, get_model_status_pb2,
                                     predict_pb2)

from serving import inference
from serving.errors import ServingError, failed_precondition, invalid_argument

_PATH = re.compile(r'^/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>\d+)|/labels/(?P<label>[^/:]+))?'
                   r'(?P<rest>/metadata|:predict|:classify|:regress)?$')
HTTP_STATUS = {
    grpc.StatusCode.OK: 200, grpc.StatusCode.CANCELLED: 499, grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400, grpc.StatusCode.DEADLINE_EXCEEDED: 504, grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409, grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429, grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.ABORTED: 409, grpc.StatusCode.OUT_OF_RANGE: 400, grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500, grpc.StatusCode.UNAVAILABLE: 503, grpc.StatusCode.DATA_LOSS: 500,
    grpc.StatusCode.UNAUTHENTICATED: 401}


# ---- JSON <-> tensors and examples ---------------------------------------------------------------------------
def _decode_strings(value):
    if isinstance(value, dict):
        if set(value) != {'b64'}:
            raise invalid_argument('a JSON object inside a tensor must be {"b64": "<base64>"}')
        return base64.b64decode(value['b64'])
    if isinstance(value, list):
        return [_decode_strings(v) for v in value]
    return value.encode() if isinstance(value, str) else value


def _to_array(alias: str, value, info) -> np.ndarray:
    dtype = tf.dtypes.as_dtype(info.dtype)
    try:
        if dtype == tf.string:
            return np.array(_decode_strings(value), dtype=object)
        array = np.array(value)
        if array.dtype.kind not in 'biuf':
            raise ValueError(f'values of type {array.dtype}')
        return array.astype(dtype.as_numpy_dtype)
    except (ValueError, TypeError) as e:
        raise invalid_argument(f"input '{alias}': cannot read {dtype.name} values from the JSON ({e})") from None


def _to_json(array: np.ndarray, name: str):
    if array.dtype == object:
        def encode(v):
            if name.endswith('_bytes'):
                return {'b64': base64.b64encode(v).decode()}
            try:
                return v.decode('utf-8')
            except UnicodeDecodeError:
                return {'b64': base64.b64encode(v).decode()}
        return np.vectorize(encode, otypes=[object])(array).tolist() if array.size else array.tolist()
    return array.tolist()


def _feature(name: str, value) -> tf.train.Feature:
    values = value if isinstance(value, list) else [value]
    if all(isinstance(v, bool) or isinstance(v, int) for v in values):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v) for v in values]))
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return tf.train.Feature(float_list=tf.train.FloatList(value=[float(v) for v in values]))
    if all(isinstance(v, (str, dict)) for v in values):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[_decode_strings(v) for v in values]))
    raise invalid_argument(f'feature {name!r}: values must be all numbers or all strings, got {value!r}')


def _example(features: Dict) -> tf.train.Example:
    if not isinstance(features, dict):
        raise invalid_argument('each example must be a JSON object of feature: value')
    return tf.train.Example(features=tf.train.Features(
        feature={k: _feature(k, v) for k, v in features.items()}))


# ---- requests ------------------------------------------------------------------------------------------------
def _spec(spec, match) -> None:
    spec.name = match['name']
    if match['version']:
        spec.version.value = int(match['version'])
    elif match['label']:
        spec.version_label = match['label']


def _predict(manager, match, body: Dict) -> Dict:
    request = predict_pb2.PredictRequest()
    _spec(request.model_spec, match)
    request.model_spec.signature_name = body.get('signature_name', '')
    servable = manager.servable(request.model_spec)
    name = request.model_spec.signature_name or inference.DEFAULT_SIGNATURE
    signature = servable.signature_defs.get(name)
    if signature is None:
        raise failed_precondition(f'Serving signature key "{name}" not found.')
    if ('instances' in body) == ('inputs' in body):
        raise invalid_argument('the JSON body needs exactly one of "instances" (rows) or "inputs" (columns)')
    row_format = 'instances' in body
    aliases = sorted(signature.inputs)
    if row_format:
        rows: List = body['instances']
        if not isinstance(rows, list) or not rows:
            raise invalid_argument('"instances" must be a non-empty list')
        if all(isinstance(r, dict) and set(r) != {'b64'} for r in rows):
            columns = {k: [r.get(k) for r in rows] for k in set().union(*rows)}
            missing = [k for k, v in columns.items() if any(x is None for x in v)]
            if missing:
                raise invalid_argument(f'every instance needs the same named inputs; {missing[0]!r} is missing '
                                       'from some')
        elif len(aliases) == 1:
            columns = {aliases[0]: rows}
        else:
            raise invalid_argument(f'signature {name} has inputs {aliases}: each instance must be an object of them')
    else:
        inputs = body['inputs']
        columns = inputs if isinstance(inputs, dict) and set(inputs) != {'b64'} else {aliases[0]: inputs}
    for alias, value in columns.items():
        info = signature.inputs.get(alias)
        if info is None:  # let predict() name it as TF Serving does
            request.inputs[alias].CopyFrom(tf.make_tensor_proto(np.array([0])))
            continue
        request.inputs[alias].CopyFrom(tf.make_tensor_proto(_to_array(alias, value, info),
                                                            dtype=tf.dtypes.as_dtype(info.dtype)))
    response = inference.predict(servable, request)
    outputs = {k: _to_json(tf.make_ndarray(v), k) for k, v in response.outputs.items()}
    if row_format:
        n = len(next(iter(outputs.values()))) if outputs else 0
        if len(outputs) == 1:
            return {'predictions': next(iter(outputs.values()))}
        return {'predictions': [{k: v[i] for k, v in outputs.items()} for i in range(n)]}
    return {'outputs': next(iter(outputs.values())) if len(outputs) == 1 else outputs}


def _classify(manager, match, body: Dict) -> Dict:
    request = classification_pb2.ClassificationRequest()
    _spec(request.model_spec, match)
    request.model_spec.signature_name = body.get('signature_name', '')
    examples = body.get('examples')
    if not isinstance(examples, list):
        raise invalid_argument('the JSON body needs "examples": a list of objects of feature: value')
    if 'context' in body:
        target = request.input.example_list_with_context
        target.context.CopyFrom(_example(body['context']))
    else:
        target = request.input.example_list
    target.examples.extend(_example(e) for e in examples)
    response = inference.classify(manager.servable(request.model_spec), request)
    return {'result': [[[c.label, c.score] for c in item.classes]
                       for item in response.result.classifications]}


def _status(manager, match) -> Dict:
    version = int(match['version']) if match['version'] else None
    response = get_model_status_pb2.GetModelStatusResponse()
    response.model_version_status.extend(manager.status(match['name'], version))
    return json_format.MessageToDict(response, preserving_proto_field_name=True,
                                     including_default_value_fields=True)


def _metadata(manager, match) -> Dict:
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=[inference.SIGNATURE_DEF_FIELD])
    _spec(request.model_spec, match)
    response = inference.metadata(manager.servable(request.model_spec), request)
    signatures = get_model_metadata_pb2.SignatureDefMap()
    response.metadata[inference.SIGNATURE_DEF_FIELD].Unpack(signatures)
    return {'model_spec': {'name': response.model_spec.name, 'signature_name': '',
                           'version': str(response.model_spec.version.value)},
            'metadata': {'signature_def': json_format.MessageToDict(signatures, preserving_proto_field_name=True)}}


# ---- HTTP ----------------------------------------------------------------------------------------------------
class _Handler(http.server.BaseHTTPRequestHandler):
    server_version = 'tfx-tabular-serving'
    protocol_version = 'HTTP/1.1'

    def log_message(self, *args):  # requests are not logged, as TF Serving does not log them
        pass

    def _send(self, status: int, payload: Dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self, method: str) -> None:
        model_server = self.server.model_server
        try:
            match = _PATH.match(self.path.split('?', 1)[0])
            if match is None:
                raise ServingError(grpc.StatusCode.NOT_FOUND, f'Malformed request: {method} {self.path}')
            rest = match['rest']
            if method == 'GET' and rest in (None, '/metadata'):
                result = _metadata(model_server.manager, match) if rest else _status(model_server.manager, match)
            elif method == 'POST' and rest in (':predict', ':classify', ':regress'):
                length = int(self.headers.get('Content-Length') or 0)
                if length > model_server.options.max_message_bytes:
                    limit = model_server.options.max_message_bytes
                    raise ServingError(grpc.StatusCode.RESOURCE_EXHAUSTED,
                                       f'request body of {length} bytes is over the {limit} byte limit; send smaller '
                                       'batches')
                try:
                    body = json.loads(self.rfile.read(length) or b'{}')
                except (json.JSONDecodeError, UnicodeDecodeError) as e:
                    raise invalid_argument(f'JSON Parse error: {e}') from None
                if not isinstance(body, dict):
                    raise invalid_argument('the JSON body must be an object')
                if rest == ':regress':
                    raise ServingError(grpc.StatusCode.UNIMPLEMENTED, 'Regress is not implemented by this server')
                handler = _predict if rest == ':predict' else _classify
                result = handler(model_server.manager, match, body)
            else:
                raise ServingError(grpc.StatusCode.NOT_FOUND, f'Malformed request: {method} {self.path}')
            self._send(200, result)
        except ServingError as e:
            self._send(HTTP_STATUS.get(e.code, 500), {'error': e.message})
        except Exception as e:  # noqa: BLE001 - the server must outlive any request
            self._send(500, {'error': f'{type(e).__name__}: {e}'})

    def do_GET(self):
        self._handle('GET')

    def do_POST(self):
        self._handle('POST')


class RestServer:
    def __init__(self, model_server, host: str, port: int):
        self._http = http.server.ThreadingHTTPServer((host, port), _Handler)
        self._http.daemon_threads = True
        self._http.model_server = model_server
        self.port = self._http.server_address[1]
        self._thread = threading.Thread(target=self._http.serve_forever, name='rest', daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():
            self._http.shutdown()
        self._http.server_close()
