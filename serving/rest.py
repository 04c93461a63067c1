"""TF Serving's REST API on the same models, ported from model_servers/http_rest_api_handler.cc,
http_rest_api_util.cc, http_server.cc and util/json_tensor.cc.

Paths (case-insensitive, as there): POST `/v1/models/NAME[/versions/V|/labels/L]:predict|:classify|:regress`,
GET `/v1/models/NAME[/versions/V|/labels/L][/metadata]`. JSON in and out as TF Serving reads and writes it:
`instances` (rows, answered as `predictions`) or `inputs` (columns, answered as `outputs`) with each input typed
by its SignatureDef, `{"b64": ...}` for bytes, `examples` (+ `context`) for Classify and Regress (answered as
`results`), floats written with the fewest digits that read back to the same float32. Errors are
`{"error": "..."}` with TF Serving's message and the HTTP status it maps each code to. With
`--monitoring_config_file`, the Prometheus page is served here too. Requests run through the same handlers,
batching and metrics as gRPC; `--rest_api_timeout_in_ms` bounds each model run.
"""
import base64
import binascii
import concurrent.futures
import http.server
import json
import math
import re
import socketserver
import threading
import time
import urllib.parse
from typing import Dict, List, Optional, Tuple

import grpc
import numpy as np
import tensorflow as tf
from google.protobuf import json_format
from tensorflow_serving.apis import (classification_pb2, get_model_metadata_pb2, get_model_status_pb2, model_pb2,
                                     regression_pb2)

from tfx_tabular.serving import inference
from tfx_tabular.serving.errors import ServingError, failed_precondition, invalid_argument
from tfx_tabular.serving.metrics import REGISTRY

_PREDICTION_PATH = re.compile(
    r'/v1/models/([^/:]+)(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?:(classify|regress|predict)', re.I)
_STATUS_PATH = re.compile(
    r'/v1/models(?:/([^/:]+))?(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?(?:/(metadata))?', re.I)
_HANDLED_PATH = re.compile(r'/v1/.*', re.I)
HTTP_STATUS = {
    grpc.StatusCode.OK: 200, grpc.StatusCode.CANCELLED: 499, grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400, grpc.StatusCode.DEADLINE_EXCEEDED: 504, grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409, grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429, grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.ABORTED: 409, grpc.StatusCode.OUT_OF_RANGE: 400, grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500, grpc.StatusCode.UNAVAILABLE: 503, grpc.StatusCode.DATA_LOSS: 500,
    grpc.StatusCode.UNAUTHENTICATED: 401}
_TF_TYPE_NAMES = {'float32': 'float', 'float64': 'double', 'float16': 'half', 'string': 'string'}  # DataTypeString
_INT32, _INT64, _UINT32, _UINT64 = (-2 ** 31, 2 ** 31 - 1), (-2 ** 63, 2 ** 63 - 1), (0, 2 ** 32 - 1), (0, 2 ** 64 - 1)
_JSON_ERRORS = (  # Python's json messages -> rapidjson's GetParseError_En
    ('Expecting property name', 'Missing a name for object member.'),
    ("Expecting ':' delimiter", 'Missing a colon after a name of object member.'),
    ('Unterminated string', 'Missing a closing quotation mark in string.'),
    ('Invalid control character', 'Invalid encoding in string.'),
    ('Invalid \\escape', 'Invalid escape character in string.'))


def type_string(dtype: int) -> str:
    """TensorFlow's DataTypeString: `float`, `double`, `int64`, `string`..."""
    name = tf.dtypes.as_dtype(dtype).name
    return _TF_TYPE_NAMES.get(name, name)


# ---- reading JSON ---------------------------------------------------------------------------------------------
def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _is_int(v, bounds) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and bounds[0] <= v <= bounds[1]


def _json_type(v) -> str:
    if v is None:
        return 'Null'
    if isinstance(v, bool):
        return 'True' if v else 'False'
    return {dict: 'Object', list: 'Array', str: 'String'}.get(type(v), 'Number')


def debug_string(value) -> str:
    """JsonValueToDebugString: the value as compact JSON, cut at 256 bytes."""
    text = json.dumps(value, separators=(',', ':'), ensure_ascii=False)
    return text.encode()[:256].decode('utf-8', 'ignore')


def _format_error(doc, *parts) -> ServingError:
    return invalid_argument(f'JSON Value: {debug_string(doc)} ' + ''.join(parts))


def _comma_error(text: str, pos: int) -> str:
    """Which bracket a missing comma belongs to, found by scanning to `pos` (strings skipped)."""
    stack, in_string, escaped = [], False, False
    for char in text[:pos]:
        if in_string:
            escaped, in_string = (not escaped and char == '\\'), in_string and (escaped or char != '"')
        elif char == '"':
            in_string = True
        elif char in '[{':
            stack.append(char)
        elif char in ']}' and stack:
            stack.pop()
    if stack and stack[-1] == '[':
        return "Missing a comma or ']' after an array element."
    return "Missing a comma or '}' after an object member."


def parse_json(body: bytes) -> dict:
    """ParseJson: rapidjson's reading (NaN and Infinity allowed, anything after the first value ignored) and its
    error messages."""
    if not body:
        raise invalid_argument('JSON Parse error: The document is empty')
    try:
        text = body.decode('utf-8')
    except UnicodeDecodeError as e:
        raise invalid_argument(f'JSON Parse error: Invalid encoding in string. at offset: {e.start}') from None
    start = len(text) - len(text.lstrip(' \t\n\r'))
    if start == len(text):
        raise invalid_argument('JSON Parse error: The document is empty')
    try:
        doc, _ = json.JSONDecoder().raw_decode(text, start)
    except json.JSONDecodeError as e:
        message = next((ours for theirs, ours in _JSON_ERRORS if e.msg.startswith(theirs)), 'Invalid value.')
        if e.msg.startswith("Expecting ',' delimiter"):
            message = _comma_error(text, e.pos)
        raise invalid_argument(f'JSON Parse error: {message} at offset: {e.pos}') from None
    except RecursionError:
        raise invalid_argument('JSON Parse error: Invalid value. at offset: 0') from None
    if not isinstance(doc, dict):
        raise _format_error(doc, 'Is not object')
    return doc


def _signature_name(doc: dict) -> str:
    name = doc.get('signature_name', '')
    if not isinstance(name, str):
        raise _format_error(doc, "not formatted correctly. 'signature_name' key must be a string value.")
    return name


def _is_b64(v) -> bool:
    return isinstance(v, dict) and len(v) == 1 and isinstance(v.get('b64'), str)


def _b64(v) -> bytes:
    if not _is_b64(v):
        raise invalid_argument(f'JSON Value: {debug_string(v)} not formatted correctly for base64 data')
    try:
        return base64.b64decode(v['b64'], validate=True)
    except (binascii.Error, ValueError):
        raise invalid_argument('Unable to base64 decode') from None


def _tensor_value(v, dtype: int):
    """AddValueToTensor: one JSON value as a value of `dtype`, or TF Serving's type error."""
    name = tf.dtypes.as_dtype(dtype).name
    if name in ('float32', 'float64'):
        ok = _is_number(v)
    elif name in ('int32', 'int16', 'int8', 'uint8'):
        ok = _is_int(v, _INT32)
    elif name == 'string':
        ok = isinstance(v, str)
    elif name == 'int64':
        ok = _is_int(v, _INT64)
    elif name == 'bool':
        ok = isinstance(v, bool)
    elif name == 'uint32':
        ok = _is_int(v, _UINT32)
    elif name == 'uint64':
        ok = _is_int(v, _UINT64)
    else:
        raise ServingError(grpc.StatusCode.UNIMPLEMENTED,
                           f'Conversion of JSON Value: {debug_string(v)} to type: {type_string(dtype)}')
    if not ok:
        raise invalid_argument(f'JSON Value: {debug_string(v)} Type: {_json_type(v)} is not of expected type: '
                               f'{type_string(dtype)}')
    return v.encode() if isinstance(v, str) else v


def _dense_shape(v) -> List[int]:
    shape = []
    while isinstance(v, list):
        shape.append(len(v))
        if not v:
            break
        v = v[0]
    return shape


def _fill(v, level: int, shape: List[int], dtype: int, out: list) -> None:
    """FillTensorProto: the leaves of a nested list, checked against the shape its first elements gave."""
    if not isinstance(v, list):
        if level != len(shape):
            raise invalid_argument(f'JSON Value: {debug_string(v)} found at incorrect level: {level + 1} in the JSON '
                                   f'DOM. Expected at level: {len(shape)}')
        if isinstance(v, dict):
            if tf.dtypes.as_dtype(dtype) != tf.string:
                raise invalid_argument(f'JSON Value: {debug_string(v)} Type: Object is not of expected type: '
                                       f'{type_string(dtype)}')
            out.append(_b64(v))
        else:
            out.append(_tensor_value(v, dtype))
        return
    if level >= len(shape):
        raise invalid_argument(f'Encountered list at unexpected level: {level} expected < {len(shape)}')
    if len(v) != shape[level]:
        raise invalid_argument(f'Encountered list at unexpected size: {len(v)} at level: {level} expected size: '
                               f'{shape[level]}')
    for item in v:
        _fill(item, level + 1, shape, dtype, out)


def _array(values: list, shape: List[int], dtype: int) -> np.ndarray:
    tf_dtype = tf.dtypes.as_dtype(dtype)
    array = np.empty(len(values), dtype=object) if tf_dtype == tf.string else None
    if array is not None:
        array[:] = values
    else:
        array = np.array(values, dtype=tf_dtype.as_numpy_dtype)
    return array.reshape(shape)


def _stringify(error: ServingError) -> str:
    return f'{error.code.name}: {error.message}'


def _is_element_object(v) -> bool:
    return isinstance(v, dict) and not _is_b64(v)


def _from_instances(doc: dict, inputs) -> Dict[str, np.ndarray]:
    """FillTensorMapFromInstancesList: rows of one value (one input) or of objects naming every input."""
    items = doc['instances']
    if not isinstance(items, list):
        raise _format_error(doc, "Expecting 'instances' to be an list/array")
    if not items:
        raise _format_error(doc, "No values in 'instances' array")
    if not isinstance(items[0], dict) and len(inputs) > 1:
        raise invalid_argument('instances is a plain list, but expecting list of objects as multiple input tensors '
                               'required as per tensorinfo_map')
    objects = _is_element_object(items[0])
    names = sorted(inputs)
    values: Dict[str, list] = {}
    shapes: Dict[str, Tuple[List[int], int]] = {}

    def add(item, name: str) -> None:
        if name not in inputs:
            raise invalid_argument(f'JSON object: does not have named input: {name}')
        shape, leaves = _dense_shape(item), []
        _fill(item, 0, shape, inputs[name].dtype, leaves)
        if name not in shapes:
            shapes[name] = (shape, len(leaves))
        elif shapes[name][1] != len(leaves):
            raise invalid_argument(f'Expecting tensor size: {shapes[name][1]} but got: {len(leaves)}')
        elif shapes[name][0] != shape:
            raise invalid_argument(f'Expecting shape [{",".join(map(str, shapes[name][0]))}] but got: '
                                   f'[{",".join(map(str, shape))}]')
        values.setdefault(name, []).extend(leaves)

    for count, item in enumerate(items):
        if objects:
            if not _is_element_object(item):
                raise invalid_argument(f'Expecting object but got list at item {count} of input list')
            for name, value in item.items():
                try:
                    add(value, name)
                except ServingError as e:
                    raise invalid_argument(f"Failed to process element: {count} key: {name} of 'instances' list. "
                                           f'Error: {_stringify(e)}') from None
            if set(item) != set(names):
                raise invalid_argument(f"Failed to process element: {count} of 'instances' list. JSON object: "
                                       f'{debug_string(item)} keys must be equal to: {",".join(names)}')
        else:
            if _is_element_object(item):
                raise invalid_argument(f'Expecting value/list but got object at item {count} of input list')
            try:
                add(item, names[0])
            except ServingError as e:
                raise invalid_argument(f"Failed to process element: {count} of 'instances' list. Error: "
                                       f'{_stringify(e)}') from None
    return {name: _array(values[name], [len(items)] + shapes[name][0], inputs[name].dtype) for name in values}


def _from_inputs(doc: dict, inputs) -> Dict[str, np.ndarray]:
    """FillTensorMapFromInputsMap: one value or list (one input), or an object naming every input."""
    value = doc['inputs']
    if not isinstance(value, dict) or _is_b64(value):
        if len(inputs) > 1:
            raise invalid_argument('inputs is a plain value/list, but expecting an object as multiple input tensors '
                                   'required as per tensorinfo_map')
        named = {sorted(inputs)[0]: value}
    else:
        named = {}
        for name in sorted(inputs):
            if name not in value:
                raise invalid_argument(f"Missing named input: {name} in 'inputs' object.")
            named[name] = value[name]
    arrays = {}
    for name, item in named.items():
        shape, leaves = _dense_shape(item), []
        _fill(item, 0, shape, inputs[name].dtype, leaves)
        arrays[name] = _array(leaves, shape, inputs[name].dtype)
    return arrays


def _feature_kind(feature) -> str:
    return {'bytes_list': 'bytes', 'float_list': 'float', 'int64_list': 'int64'}.get(feature.WhichOneof('kind'),
                                                                                      'UNKNOWN')


def _add_to_feature(v, name: str, feature) -> None:
    """AddValueToFeature: JSON numbers with a fraction or exponent are floats, other numbers and booleans int64,
    strings and {"b64": ...} bytes; one kind per feature."""
    def into(kind: str):
        if feature.WhichOneof('kind') not in (None, kind):
            raise invalid_argument(f'Unexpected element type in feature: {name} expecting type: '
                                   f'{_feature_kind(feature)}')
        return getattr(feature, kind).value
    if v is None or isinstance(v, list) or (isinstance(v, dict) and not _is_b64(v)):
        raise invalid_argument(f'Feature: {name} has element with unexpected JSON type: {_json_type(v)}')
    if isinstance(v, bool):
        into('int64_list').append(int(v))
    elif isinstance(v, dict):
        into('bytes_list').append(_b64(v))
    elif isinstance(v, str):
        into('bytes_list').append(v.encode())
    elif isinstance(v, float) or v > _UINT64[1]:
        into('float_list').append(float(v))
    else:
        if v > _INT64[1]:
            raise invalid_argument(f'Feature: {name} has uint64_t element. Only int64_t is supported.')
        into('int64_list').append(v)


def _example(v) -> tf.train.Example:
    if not isinstance(v, dict):
        raise invalid_argument(f'Example must be JSON object but got JSON {_json_type(v)}')
    example = tf.train.Example()
    for name, content in v.items():
        feature = example.features.feature[name]
        for item in content if isinstance(content, list) else [content]:
            _add_to_feature(item, name, feature)
    return example


def _fill_examples(doc: dict, request) -> None:
    """FillClassifyRegressRequestFromJson (its messages say `classify` for Regress too, as there)."""
    request.model_spec.signature_name = _signature_name(doc)
    target = request.input.example_list
    if 'context' in doc:
        target = request.input.example_list_with_context
        target.context.CopyFrom(_example(doc['context']))
    examples = doc.get('examples')
    if 'examples' not in doc:
        raise _format_error(doc, "When method is classify, key 'examples' is expected and was not found")
    if not isinstance(examples, list):
        raise _format_error(doc, "Expecting 'examples' value to be an list/array")
    if not examples:
        raise _format_error(doc, "'examples' value is an empty array")
    target.examples.extend(_example(e) for e in examples)


# ---- writing JSON ---------------------------------------------------------------------------------------------
def decimal(value: float, single: bool = True) -> str:
    """WriteDecimal: six significant digits if they read back to the same float32 (float64 with
    `single=False`), else full precision; `.0` on whole numbers; NaN and Infinity as rapidjson writes them."""
    if math.isnan(value):
        return 'NaN'
    if math.isinf(value):
        return '-Infinity' if value < 0 else 'Infinity'
    text = f'{value:g}'
    back = float(text)
    if (np.float32(back) != np.float32(value)) if single else (back != value):
        text = f'{value:.9g}' if single else f'{value:.17g}'
    if '.' not in text and 'e' not in text:
        text += '.0'
    return text


def _string(value: bytes, as_bytes: bool) -> str:
    if not as_bytes:
        try:
            return json.dumps(value.decode('utf-8'), ensure_ascii=False)
        except UnicodeDecodeError:
            pass  # not text: written as base64, where TF Serving would write bytes that are not valid JSON
    return '{"b64": "' + base64.b64encode(value).decode() + '"}'


def _leaf_writer(array: np.ndarray, name: str):
    kind = array.dtype
    if kind == np.float32 or kind == np.float64:
        single = kind == np.float32
        return lambda v: decimal(v, single)
    if kind == np.bool_:
        return lambda v: 'true' if v else 'false'
    if kind.kind in 'iu':
        return str
    if kind == object:
        as_bytes = name.endswith('_bytes')
        return lambda v: _string(v if isinstance(v, bytes) else str(v).encode(), as_bytes)
    raise invalid_argument(f'Failed to write JSON value for tensor type: '
                           f'{type_string(tf.dtypes.as_dtype(kind).as_datatype_enum)}')


def _nested(values, write) -> str:
    if isinstance(values, list):
        return '[' + ', '.join(_nested(v, write) for v in values) + ']'
    return write(values)


def tensors_json(outputs: Dict[str, np.ndarray], rows: bool) -> str:
    """MakeJsonFromTensors: `predictions` (one entry per row; objects when there are several outputs) or
    `outputs` (each tensor whole)."""
    if not outputs:
        raise invalid_argument('Cannot convert empty tensor map to JSON')
    writers = {name: _leaf_writer(array, name) for name, array in outputs.items()}
    if not rows:
        if len(outputs) == 1:
            (name, array), = outputs.items()
            return '{"outputs": ' + _nested(array.tolist(), writers[name]) + '}'
        return '{"outputs": {' + ', '.join(json.dumps(name) + ': ' + _nested(array.tolist(), writers[name])
                                           for name, array in outputs.items()) + '}}'
    size = None
    for name, array in outputs.items():
        if array.ndim == 0:
            raise invalid_argument(f'Tensor name: {name} has no shape information ')
        if size is not None and len(array) != size:
            raise invalid_argument(f'Tensor name: {name} has inconsistent batch size: {len(array)} expecting: '
                                   f'{size}')
        size = len(array)
    lists = {name: array.tolist() for name, array in outputs.items()}
    if len(outputs) == 1:
        (name, values), = lists.items()
        items = [_nested(v, writers[name]) for v in values]
    else:
        items = ['{' + ', '.join(json.dumps(name) + ': ' + _nested(values[i], writers[name])
                                 for name, values in lists.items()) + '}' for i in range(size)]
    return '{"predictions": [' + ', '.join(items) + ']}'


def classification_json(response: classification_pb2.ClassificationResponse) -> str:
    rows = ['[' + ', '.join(f'[{json.dumps(c.label, ensure_ascii=False)}, {decimal(c.score)}]' for c in item.classes)
            + ']' for item in response.result.classifications]
    return '{"results": [' + ', '.join(rows) + ']}'


def regression_json(response: regression_pb2.RegressionResponse) -> str:
    return '{"results": [' + ', '.join(decimal(r.value) for r in response.result.regressions) + ']}'


# ---- requests -------------------------------------------------------------------------------------------------
class _Route:
    """What ParseModelInfo reads from a path: model, version or label, method, sub-resource."""

    def __init__(self, http_method: str, path: str):
        self.name, self.version, self.label, self.method, self.resource, self.parsed = '', None, None, '', '', False
        match = None
        if http_method == 'POST':
            match = _PREDICTION_PATH.fullmatch(path)
        elif http_method == 'GET':
            match = _STATUS_PATH.fullmatch(path)
        if match is None:
            return
        self.parsed = True
        name, version, label, last = match.groups()
        self.name = urllib.parse.unquote(name or '')
        if http_method == 'POST':
            self.method = last
        else:
            self.resource = last or ''
        if version:
            self.version = int(version)
            if self.version > _INT64[1]:
                raise invalid_argument(f'Failed to convert version: {version} to numeric.')
        if label:
            self.label = urllib.parse.unquote(label)

    def spec(self, spec) -> None:
        spec.name = self.name
        if self.version is not None:
            spec.version.value = self.version
        elif self.label is not None:
            spec.version_label = self.label


class RestApi:
    """HttpRestApiHandler::ProcessRequest on this server's models."""

    def __init__(self, model_server):
        self._server = model_server

    @property
    def _timeout_ms(self) -> int:
        return max(self._server.options.rest_api_timeout_in_ms, 0)

    def process(self, http_method: str, path: str, body: bytes) -> Tuple[Optional[ServingError], str, _Route]:
        """(error or None, JSON text, route) for one request."""
        route = _Route('', '')
        try:
            route = _Route(http_method, path)
            if not route.parsed:
                raise invalid_argument(f'Malformed request: {http_method} {path}')
            if http_method == 'POST':
                handler = {'classify': self._classify, 'regress': self._regress, 'predict': self._predict}.get(
                    route.method)
                if handler is None:  # e.g. :PREDICT, which the path pattern takes but the dispatch does not
                    raise invalid_argument(f'Malformed request: {http_method} {path}')
                return None, handler(route, body), route
            if route.resource == 'metadata':  # case-sensitive here, as there: `/METADATA` asks for the status
                return None, self._metadata(route), route
            return None, self._status(route), route
        except ServingError as e:
            return e, json.dumps({'error': e.message}, ensure_ascii=False), route

    def _predict(self, route: _Route, body: bytes) -> str:
        doc = parse_json(body)
        signature_name = _signature_name(doc)
        request_spec = model_pb2.ModelSpec()
        route.spec(request_spec)
        servable = self._server.manager.servable(request_spec)
        name = signature_name or inference.DEFAULT_SIGNATURE
        signature = servable.signature_defs.get(name)
        if signature is None:
            raise invalid_argument(f'Serving signature name: "{name}" not found in signature def')
        if not signature.inputs:
            raise invalid_argument(f'Failed to get input map for signature: {signature_name or "DEFAULT"}')
        if 'instances' in doc and 'inputs' in doc:
            raise _format_error(doc, "Not formatted correctly expecting only one of 'inputs' or 'instances' keys "
                                     'to exist ')
        if 'instances' in doc:
            arrays, rows = _from_instances(doc, signature.inputs), True
        elif 'inputs' in doc:
            arrays, rows = _from_inputs(doc, signature.inputs), False
        else:
            raise invalid_argument("Missing 'inputs' or 'instances' key")
        outputs = inference.predict_arrays(servable, signature_name, arrays, timeout_ms=self._timeout_ms)
        return tensors_json(outputs, rows)

    def _classify(self, route: _Route, body: bytes) -> str:
        request = classification_pb2.ClassificationRequest()
        route.spec(request.model_spec)
        _fill_examples(parse_json(body), request)
        response = inference.classify(self._server.manager.servable(request.model_spec), request, self._timeout_ms)
        return classification_json(response)

    def _regress(self, route: _Route, body: bytes) -> str:
        request = regression_pb2.RegressionRequest()
        route.spec(request.model_spec)
        _fill_examples(parse_json(body), request)
        response = inference.regress(self._server.manager.servable(request.model_spec), request, self._timeout_ms)
        return regression_json(response)

    def _status(self, route: _Route) -> str:
        if not route.name:
            raise invalid_argument('Missing model name in request.')
        response = get_model_status_pb2.GetModelStatusResponse()
        response.model_version_status.extend(self._server.manager.status(route.name, route.version))
        return json_format.MessageToJson(response, including_default_value_fields=True,
                                         preserving_proto_field_name=True)

    def _metadata(self, route: _Route) -> str:
        if not route.name:
            raise invalid_argument('Missing model name in request.')
        request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=[inference.SIGNATURE_DEF_FIELD])
        route.spec(request.model_spec)
        response = inference.metadata(self._server.manager.servable(request.model_spec), request)
        signatures = get_model_metadata_pb2.SignatureDefMap()
        response.metadata[inference.SIGNATURE_DEF_FIELD].Unpack(signatures)
        spec = json_format.MessageToDict(response.model_spec, including_default_value_fields=True,
                                         preserving_proto_field_name=True)
        signature_map = json_format.MessageToDict(signatures, including_default_value_fields=True,
                                                  preserving_proto_field_name=True)
        return json.dumps({'model_spec': spec, 'metadata': {'signature_def': signature_map}}, indent=1)


# ---- HTTP -----------------------------------------------------------------------------------------------------
class _Handler(http.server.BaseHTTPRequestHandler):
    server_version = 'tfx-tabular-serving'
    protocol_version = 'HTTP/1.1'

    def log_message(self, *args):  # requests are not logged, as TF Serving does not log them
        pass

    def _send(self, status: int, text: str, content_type: str = 'application/json') -> None:
        data = text.encode()
        self.send_response(status)
        self.send_header('Content-Type', content_type)
        if self.server.cors:
            self.send_header('Access-Control-Allow-Origin', '*')
            self.send_header('Access-Control-Allow-Methods', 'POST, GET')
            self.send_header('Access-Control-Allow-Headers', 'Content-Type')
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self, method: str) -> None:
        start = time.perf_counter()
        model_server = self.server.model_server
        path = urllib.parse.urlsplit(self.path).path
        length = int(self.headers.get('Content-Length') or 0)
        if length > model_server.options.max_message_bytes:
            self.rfile.read(length)
            limit = model_server.options.max_message_bytes
            self._send(429, json.dumps({'error': f'request body of {length} bytes is over the {limit} byte limit; '
                                                 'send smaller batches'}))
            return
        body = self.rfile.read(length) if length else b''
        if self.server.prometheus_path and path == self.server.prometheus_path:
            self._send(200, REGISTRY.render(), 'text/plain')
            return
        if method == 'OPTIONS':
            origin = self.headers.get('Origin') or ''
            ok = re.search(r'https?://', origin) is not None
            self._send(200 if ok else 400, '' if ok else json.dumps(
                {'error': failed_precondition('Origin header is missing in CORS preflight').message}))
            return
        if not _HANDLED_PATH.fullmatch(path):
            self._send(404, '<html><head><title>404 Not Found</title></head><body>Not Found</body></html>',
                       'text/html')
            return
        try:
            error, text, route = self.server.api.process(method, path, body)
        except Exception as e:  # noqa: BLE001 - the server must outlive any request
            error, text, route = ServingError(grpc.StatusCode.INTERNAL, f'{type(e).__name__}: {e}'), '', _Route('', '')
            text = json.dumps({'error': error.message})
        status = error.code.name if error else 'OK'
        REGISTRY.request(route.name, route.method, 'REST', status, (time.perf_counter() - start) * 1e6)
        self._send(HTTP_STATUS.get(error.code, 500) if error else 200, text)

    def do_GET(self):
        self._handle('GET')

    def do_POST(self):
        self._handle('POST')

    def do_PUT(self):
        self._handle('PUT')

    def do_DELETE(self):
        self._handle('DELETE')

    def do_OPTIONS(self):
        self._handle('OPTIONS')


class _PooledHTTPServer(socketserver.TCPServer):
    """An HTTP server whose connections are handled by `--rest_api_num_threads` threads."""
    allow_reuse_address = True
    daemon_threads = True

    def __init__(self, address, handler, threads: int):
        super().__init__(address, handler)
        self._pool = concurrent.futures.ThreadPoolExecutor(max(1, threads), thread_name_prefix='rest')

    def process_request(self, request, client_address):
        self._pool.submit(self._process, request, client_address)

    def _process(self, request, client_address):
        try:
            self.finish_request(request, client_address)
        except Exception:  # noqa: BLE001 - a broken connection is the client's
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)

    def handle_error(self, request, client_address):
        pass

    def server_close(self):
        super().server_close()
        self._pool.shutdown(wait=False, cancel_futures=True)


class RestServer:
    def __init__(self, model_server, host: str, port: int):
        options = model_server.options
        self._http = _PooledHTTPServer((host, port), _Handler, options.rest_api_num_threads)
        self._http.model_server = model_server
        self._http.api = RestApi(model_server)
        self._http.cors = options.rest_api_enable_cors_support
        self._http.prometheus_path = options.prometheus_path
        self.port = self._http.server_address[1]
        self._thread = threading.Thread(target=self._http.serve_forever, name='rest', daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():
            self._http.shutdown()
        self._http.server_close()
