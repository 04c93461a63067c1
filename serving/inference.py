"""TF Serving's request handling on a loaded servable: Predict, Classify, Regress, MultiInference, GetModelMetadata.

Ported from tensorflow_serving/servables/tensorflow/ (predict_util.cc, classifier.cc, regressor.cc,
multi_inference.cc, get_model_metadata_impl.cc, util.cc): the same checks in the same order, with the same
status codes and messages. As there, the method name of a SignatureDef is only checked with
`--enable_signature_method_name_check`, and the tensors go to the model as they come: their shapes are
TensorFlow's business. One check is added: an input whose dtype differs from its SignatureDef's is refused
before the run (TensorFlow would refuse it too, with INVALID_ARGUMENT), naming the input and the expected type.
"""
import time
from typing import Dict, List, Sequence, Tuple

import grpc
import numpy as np
import tensorflow as tf
from google.protobuf import text_format
from tensorflow.core.framework import tensor_pb2, types_pb2
from tensorflow_serving.apis import (classification_pb2, get_model_metadata_pb2, inference_pb2, predict_pb2,
                                     prediction_log_pb2, regression_pb2)

from tfx_tabular.serving.errors import ServingError, failed_precondition, from_tf_error, from_undecodable_tf_error, \
    invalid_argument
from tfx_tabular.serving.metrics import REGISTRY
from tfx_tabular.serving.servable import Servable

DEFAULT_SIGNATURE = 'serving_default'
PREDICT_METHOD = 'tensorflow/serving/predict'
CLASSIFY_METHOD = 'tensorflow/serving/classify'
REGRESS_METHOD = 'tensorflow/serving/regress'
CLASSIFY_INPUTS, CLASSES, SCORES = 'inputs', 'classes', 'scores'
REGRESS_INPUTS, REGRESS_OUTPUTS = 'inputs', 'outputs'
SIGNATURE_DEF_FIELD = 'signature_def'
WARMUP_FILE = 'assets.extra/tf_serving_warmup_requests'
MAX_WARMUP_RECORDS = 1000
MAX_TENSOR_ELEMENTS = 1 << 28  # a tensor shape promising more values than this is refused before allocating it

_method_name_check = False  # --enable_signature_method_name_check: process-wide, as in TF Serving

_VALUE_FIELDS = {
    types_pb2.DT_FLOAT: 'float_val', types_pb2.DT_DOUBLE: 'double_val', types_pb2.DT_INT32: 'int_val',
    types_pb2.DT_INT16: 'int_val', types_pb2.DT_INT8: 'int_val', types_pb2.DT_UINT8: 'int_val',
    types_pb2.DT_UINT16: 'int_val', types_pb2.DT_INT64: 'int64_val', types_pb2.DT_BOOL: 'bool_val',
    types_pb2.DT_STRING: 'string_val', types_pb2.DT_UINT32: 'uint32_val', types_pb2.DT_UINT64: 'uint64_val'}


def set_method_name_check(enabled: bool) -> None:
    global _method_name_check
    _method_name_check = enabled


def dtype_name(dtype: int) -> str:
    return types_pb2.DataType.Name(dtype) if dtype in types_pb2.DataType.values() else str(dtype)


def shape_string(shape) -> str:
    """TensorShape::DebugString: `[2,3]`."""
    return '[' + ','.join(str(d) for d in shape) + ']'


def _one_line(signature) -> str:
    return text_format.MessageToString(signature, as_one_line=True)


def _response_spec(spec, request_spec, servable: Servable, signature_name: str) -> None:
    """TF Serving's MakeModelSpec: the requested name, the version served, the signature used."""
    spec.name = request_spec.name
    spec.version.value = servable.version
    spec.signature_name = signature_name


def run(servable: Servable, signature_name: str, inputs: Dict[str, np.ndarray], outputs: Sequence[str],
        timeout_ms: int = 0, api: str = 'Predict') -> Dict[str, np.ndarray]:
    """A session run with TensorFlow's failures turned into TF Serving's statuses; its time is the runtime_latency
    metric of `api`."""
    start = time.perf_counter()
    try:
        results = servable.run(signature_name, inputs, outputs, timeout_ms)
        REGISTRY.runtime(servable.name, api, (time.perf_counter() - start) * 1e6)
        return results
    except tf.errors.OpError as e:
        raise from_tf_error(e) from None
    except UnicodeDecodeError as e:
        raise from_undecodable_tf_error(e) from None
    except (TypeError, ValueError) as e:  # e.g. values numpy cannot turn into the fed type
        raise invalid_argument(f"signature '{signature_name}': {e}") from None


# ---- Predict --------------------------------------------------------------------------------------------------
def tensor_to_array(alias: str, proto: tensor_pb2.TensorProto, info, signature_name: str) -> np.ndarray:
    """A request tensor as numpy (TensorFlow's Tensor::FromProto: missing trailing values repeat the last one)."""
    if proto.dtype != info.dtype:
        raise invalid_argument(
            f"input '{alias}' holds {dtype_name(proto.dtype)} values but signature '{signature_name}' expects "
            f'{dtype_name(info.dtype)}: send {tf.dtypes.as_dtype(info.dtype).name} values for {alias}')
    dims = [d.size for d in proto.tensor_shape.dim]
    if proto.tensor_shape.unknown_rank or any(d < 0 for d in dims) or \
            int(np.prod(dims, dtype=np.float64)) > MAX_TENSOR_ELEMENTS:
        raise invalid_argument(f'tensor parsing error: {alias} (shape {dims}: send a concrete shape of at most '
                               f'{MAX_TENSOR_ELEMENTS} values)')
    try:
        return tf.make_ndarray(proto)
    except Exception:  # noqa: BLE001 - any undecodable tensor is the client's
        raise invalid_argument(f'tensor parsing error: {alias}') from None


def array_to_tensor(array: np.ndarray, dtype: int, as_content: bool = False) -> tensor_pb2.TensorProto:
    """Tensor::AsProtoField (values in the typed field, e.g. float_val), or with
    `--enable_serialization_as_tensor_content` AsProtoTensorContent (numbers as raw bytes)."""
    field = _VALUE_FIELDS.get(dtype)
    if field is None or (as_content and dtype != types_pb2.DT_STRING):
        return tf.make_tensor_proto(array, dtype=tf.dtypes.as_dtype(dtype))
    proto = tensor_pb2.TensorProto(dtype=dtype)
    for size in array.shape:
        proto.tensor_shape.dim.add(size=size)
    getattr(proto, field).extend(array.ravel().tolist())
    return proto


def _check_predict_signature(signature, sent: Sequence[str]) -> None:
    if _method_name_check and signature.method_name not in (PREDICT_METHOD, CLASSIFY_METHOD, REGRESS_METHOD):
        raise ServingError(grpc.StatusCode.INTERNAL,
                           f'Expected prediction signature method_name to be one of {{{PREDICT_METHOD}, '
                           f'{CLASSIFY_METHOD}, {REGRESS_METHOD}}}. Was: {signature.method_name}')
    sent, wanted = set(sent), set(signature.inputs)
    if len(sent) > len(wanted) or (len(sent) < len(wanted) and not signature.defaults):
        raise invalid_argument(
            f'input size does not match signature: {len(sent)}!={len(wanted)} len({{{",".join(sorted(sent))}}}) '
            f'!= len({{{",".join(sorted(wanted))}}}). Sent extra: {{{",".join(sorted(sent - wanted))}}}. '
            f'Missing but required: {{{",".join(sorted(wanted - sent))}}}.')
    for alias in sorted(sent - wanted):
        raise invalid_argument(f'input tensor alias not found in signature: {alias}. Inputs expected to be in the '
                               f'set {{{",".join(sorted(wanted))}}}.')


def _output_aliases(signature, output_filter: Sequence[str]) -> List[str]:
    seen = set()
    for alias in output_filter:
        if alias not in signature.outputs:
            raise invalid_argument(f'output tensor alias not found in signature: {alias} Outputs expected to be in '
                                   f'the set {{{",".join(sorted(signature.outputs))}}}.')
        if alias in seen:
            raise invalid_argument(f'duplicate output tensor alias: {alias}')
        seen.add(alias)
    return list(output_filter) or list(signature.outputs)


def predict_signature(servable: Servable, signature_name: str):
    signature = servable.signature_defs.get(signature_name or DEFAULT_SIGNATURE)
    if signature is None:
        raise failed_precondition(f'Serving signature key "{signature_name or DEFAULT_SIGNATURE}" not found.')
    return signature


def predict_arrays(servable: Servable, signature_name: str, arrays: Dict[str, np.ndarray],
                   output_filter: Sequence[str] = (), timeout_ms: int = 0) -> Dict[str, np.ndarray]:
    """Predict on numpy inputs already typed as the signature says (the REST path)."""
    name = signature_name or DEFAULT_SIGNATURE
    signature = predict_signature(servable, name)
    _check_predict_signature(signature, list(arrays))
    for alias, default in signature.defaults.items():
        if alias not in arrays:
            arrays[alias] = tf.make_ndarray(default)
    return run(servable, name, arrays, _output_aliases(signature, output_filter), timeout_ms, 'Predict')


def predict(servable: Servable, request: predict_pb2.PredictRequest, timeout_ms: int = 0,
            tensor_content: bool = False) -> predict_pb2.PredictResponse:
    name = request.model_spec.signature_name or DEFAULT_SIGNATURE
    signature = predict_signature(servable, name)
    _check_predict_signature(signature, list(request.inputs))
    arrays = {alias: tensor_to_array(alias, request.inputs[alias], signature.inputs[alias], name)
              for alias in sorted(request.inputs)}
    for alias, default in signature.defaults.items():
        if alias not in arrays:
            arrays[alias] = tf.make_ndarray(default)
    outputs = _output_aliases(signature, request.output_filter)
    results = run(servable, name, arrays, outputs, timeout_ms, 'Predict')
    response = predict_pb2.PredictResponse()
    _response_spec(response.model_spec, request.model_spec, servable, name)
    for alias in outputs:
        response.outputs[alias].CopyFrom(array_to_tensor(results[alias], signature.outputs[alias].dtype,
                                                         tensor_content))
    return response


# ---- Classify and Regress: tf.Examples in --------------------------------------------------------------------
def serialized_examples(model_input) -> np.ndarray:
    """TF Serving's InputToSerializedExampleTensor: the Input as the 1-D string tensor the signature is fed, with
    ExampleListWithContext's context bytes before each example's (so features merge as they do there). Takes an
    Input, or serving/protos.py's lazy view whose examples are bytes already."""
    kind = model_input.WhichOneof('kind')
    if kind == 'example_list':
        values = list(model_input.example_list.examples)
    elif kind == 'example_list_with_context':
        context = model_input.example_list_with_context.context
        context = context if isinstance(context, bytes) else context.SerializeToString()
        values = [context + (e if isinstance(e, bytes) else e.SerializeToString())
                  for e in model_input.example_list_with_context.examples]
    else:
        values = []
    if not values:
        raise invalid_argument('Input is empty.')
    if not isinstance(values[0], bytes):
        values = [e.SerializeToString() for e in values]
    return np.array(values, dtype=object)


def _signature_for(servable: Servable, spec, method: str, kind: str):
    name = spec.signature_name or DEFAULT_SIGNATURE
    signature = servable.signature_defs.get(name)
    if signature is None:
        raise invalid_argument(f'No signature was found with the name: {name}')
    if _method_name_check and signature.method_name != method:
        raise invalid_argument(f'Expected {kind} signature method_name to be {method}. Was: '
                               f'{signature.method_name}')
    return name, signature


def classification_outputs(signature) -> List[str]:
    """PreProcessClassification: the checks, then the outputs to fetch."""
    if len(signature.inputs) != 1:
        raise invalid_argument('Expected one input Tensor.')
    if len(signature.outputs) not in (1, 2):
        raise invalid_argument(f'Expected one or two output Tensors, found {len(signature.outputs)}')
    if CLASSIFY_INPUTS not in signature.inputs:
        raise invalid_argument(f'No classification inputs found in SignatureDef: {_one_line(signature)}')
    outputs = [k for k in (CLASSES, SCORES) if k in signature.outputs]
    if not outputs:
        raise invalid_argument(f'Expected classification signature outputs to contain at least one of '
                               f'"{CLASSES}" or "{SCORES}". Signature was: {_one_line(signature)}')
    return outputs


def regression_outputs(signature) -> List[str]:
    """PreProcessRegression: the checks, then the output to fetch."""
    if len(signature.inputs) != 1:
        raise invalid_argument('Expected one input Tensor.')
    if len(signature.outputs) != 1:
        raise invalid_argument('Expected one output Tensor.')
    if REGRESS_INPUTS not in signature.inputs:
        raise invalid_argument(f'No regression inputs found in SignatureDef: {_one_line(signature)}')
    if REGRESS_OUTPUTS not in signature.outputs:
        raise invalid_argument(f'No regression outputs found in SignatureDef: {_one_line(signature)}')
    return [REGRESS_OUTPUTS]


def _check_classification(results: Dict[str, np.ndarray], n: int):
    """PostProcessClassificationResult's checks; returns (classes or None, scores or None, number of classes)."""
    classes, scores = results.get(CLASSES), results.get(SCORES)
    for key, tensor, dtype, kind in ((CLASSES, classes, 'DT_STRING', np.object_),
                                     (SCORES, scores, 'DT_FLOAT', np.float32)):
        if tensor is None:
            continue
        if tensor.ndim != 2:
            raise invalid_argument(f'Expected Tensor shape: [batch_size num_classes] but got '
                                   f'{shape_string(tensor.shape)}')
        if tensor.dtype != kind:
            raise invalid_argument(f'Expected {key} Tensor of {dtype}. Got: '
                                   f'{dtype_name(tf.dtypes.as_dtype(tensor.dtype).as_datatype_enum)}')
        if tensor.shape[0] != n:
            raise invalid_argument(f'Expected {key} output batch size of {n}. Got: {tensor.shape[0]}')
    if classes is not None and scores is not None and classes.shape[1] != scores.shape[1]:
        raise invalid_argument(f'Tensors class and score should match in dim_size(1). Got {classes.shape[1]} vs. '
                               f'{scores.shape[1]}')
    return classes, scores, (classes if classes is not None else scores).shape[1]


def _varint(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _label_field(label: bytes) -> bytes:
    """Class.label (field 1, a string: invalid UTF-8 replaced); empty labels are left out, as protobuf does."""
    text = label.decode('utf-8', 'replace').encode('utf-8')
    return b'\x0a' + _varint(len(text)) + text if text else b''


def _classifications(labels: Sequence[bytes], with_scores: bool) -> Tuple[bytes, List[int]]:
    """One Classifications message with zero scores, and where each score's 4 bytes sit in it."""
    entries, offsets, at = [], [], 0
    for label in labels:
        entry = _label_field(label) + (b'\x15\x00\x00\x00\x00' if with_scores else b'')
        head = b'\x0a' + _varint(len(entry))
        if with_scores:
            offsets.append(at + len(head) + len(entry) - 4)
        entries.append(head + entry)
        at += len(head) + len(entry)
    row = b''.join(entries)
    head = b'\x0a' + _varint(len(row))
    return head + row, [len(head) + o for o in offsets]


def encode_classification_result(classes, scores, n: int, n_classes: int) -> bytes:
    """A ClassificationResult in protobuf's wire format, written directly. Built through the protobuf API (one
    message per class per example) it cost more than the model run of a 64-example batch; here, when every
    example has the same class labels (a classifier's `classes` output), one example's bytes are laid out once,
    repeated n times, and the scores' bytes written into their places with numpy."""
    if classes is not None and n > 1 and not (classes == classes[0]).all():
        return b''.join(encode_classification_result(classes[i:i + 1], None if scores is None else scores[i:i + 1],
                                                      1, n_classes) for i in range(n))
    labels = classes[0].tolist() if classes is not None else [b''] * n_classes
    template, offsets = _classifications(labels, scores is not None)
    rows = np.tile(np.frombuffer(template, np.uint8), (n, 1))
    if scores is not None:
        packed = scores.astype('<f4', copy=False).reshape(n, n_classes).view(np.uint8).reshape(n, n_classes, 4)
        for c, at in enumerate(offsets):
            rows[:, at:at + 4] = packed[:, c]
    return rows.tobytes()


def classify(servable: Servable, request, timeout_ms: int = 0) -> classification_pb2.ClassificationResponse:
    """Classify; `request` is a ClassificationRequest or its lazy view (serving/protos.py)."""
    response = classification_pb2.ClassificationResponse()
    response.ParseFromString(classify_bytes(servable, request, timeout_ms))
    return response


def classify_bytes(servable: Servable, request, timeout_ms: int = 0) -> bytes:
    """Classify, answered as a serialized ClassificationResponse (what gRPC sends)."""
    name, signature = _signature_for(servable, request.model_spec, CLASSIFY_METHOD, 'classification')
    outputs = classification_outputs(signature)
    examples = serialized_examples(request.input)
    REGISTRY.examples(request.model_spec.name, len(examples))
    results = run(servable, name, {CLASSIFY_INPUTS: examples}, outputs, timeout_ms, 'Classify')
    classes, scores, n_classes = _check_classification(results, len(examples))
    spec = classification_pb2.ClassificationResponse()
    _response_spec(spec.model_spec, request.model_spec, servable, name)
    result = encode_classification_result(classes, scores, len(examples), n_classes)
    return b'\x0a' + _varint(len(result)) + result + spec.SerializeToString()


def _regression_values(results: Dict[str, np.ndarray], n: int) -> np.ndarray:
    """PostProcessRegressionResult's checks; returns the n values."""
    output = results[REGRESS_OUTPUTS]
    if not (output.ndim == 1 or (output.ndim == 2 and output.shape[1] == 1)):
        raise invalid_argument('Expected output Tensor shape to be either [batch_size] or [batch_size, 1] but got '
                               f'{shape_string(output.shape)}')
    if output.shape[0] != n:
        raise invalid_argument(f'Input batch size did not match output batch size: {n} vs. {output.shape[0]}')
    if output.dtype != np.float32:
        raise invalid_argument('Expected output Tensor of DT_FLOAT.  Got: '
                               f'{dtype_name(tf.dtypes.as_dtype(output.dtype).as_datatype_enum)}')
    if output.size != n:
        raise invalid_argument(f'Expected output batch size to be {n}.  Got: {output.size}')
    return output.reshape(-1)


def regress(servable: Servable, request, timeout_ms: int = 0) -> regression_pb2.RegressionResponse:
    """Regress; `request` is a RegressionRequest or its lazy view (serving/protos.py)."""
    name, signature = _signature_for(servable, request.model_spec, REGRESS_METHOD, 'regression')
    outputs = regression_outputs(signature)
    examples = serialized_examples(request.input)
    REGISTRY.examples(request.model_spec.name, len(examples))
    values = _regression_values(run(servable, name, {REGRESS_INPUTS: examples}, outputs, timeout_ms, 'Regress'),
                                len(examples))
    response = regression_pb2.RegressionResponse()
    _response_spec(response.model_spec, request.model_spec, servable, name)
    response.result.regressions.extend(regression_pb2.Regression(value=v) for v in values.tolist())
    return response


def multi_inference(servable: Servable, request, timeout_ms: int = 0) -> inference_pb2.MultiInferenceResponse:
    """MultiInference (TensorFlowMultiInferenceRunner::Infer): every task on one model, one run for all of them."""
    model_name, names, tasks = '', set(), []
    for task in request.tasks:
        if not task.model_spec.name:
            raise invalid_argument('Found ModelSpec with an empty model name.')
        if model_name and model_name != task.model_spec.name:
            raise invalid_argument('All ModelSpecs in a MultiInferenceRequest must access the same model name.')
        model_name = task.model_spec.name
        name = task.model_spec.signature_name or DEFAULT_SIGNATURE
        if name in names:
            raise invalid_argument(f'Duplicate evaluation of signature: {name}')
        names.add(name)
        signature = servable.signature_defs.get(name)
        if signature is None:
            raise invalid_argument(f'Requested signature not found in model graph: {name}')
        if task.method_name == CLASSIFY_METHOD:
            if _method_name_check and signature.method_name != CLASSIFY_METHOD:
                raise invalid_argument(f'Expected classification signature method_name to be {CLASSIFY_METHOD}. '
                                       f'Was: {signature.method_name}')
            outputs = classification_outputs(signature)
        elif task.method_name == REGRESS_METHOD:
            if _method_name_check and signature.method_name != REGRESS_METHOD:
                raise invalid_argument(f'Expected regression signature method_name to be {REGRESS_METHOD}. '
                                       f'Was: {signature.method_name}')
            outputs = regression_outputs(signature)
        else:
            raise ServingError(grpc.StatusCode.UNIMPLEMENTED,
                               f'Unsupported signature method_name: {task.method_name}')
        tasks.append((task, name, signature, outputs))
    examples = serialized_examples(request.input)
    REGISTRY.examples(model_name, len(examples))
    response = inference_pb2.MultiInferenceResponse()
    # One run in TF Serving (every task's input tensor fed the same examples); here one run per signature, on the
    # same examples, which gives the same values.
    for task, name, signature, outputs in tasks:
        results = run(servable, name, {CLASSIFY_INPUTS: examples}, outputs, timeout_ms, 'MultiInference')
        result = response.results.add()
        if task.method_name == CLASSIFY_METHOD:
            classes, scores, n_classes = _check_classification(results, len(examples))
            result.classification_result.ParseFromString(
                encode_classification_result(classes, scores, len(examples), n_classes))
        else:
            values = _regression_values(results, len(examples))
            result.regression_result.regressions.extend(regression_pb2.Regression(value=v) for v in values.tolist())
        _response_spec(result.model_spec, task.model_spec, servable, name)
    return response


# ---- GetModelMetadata -----------------------------------------------------------------------------------------
def validate_metadata_request(request: get_model_metadata_pb2.GetModelMetadataRequest) -> None:
    if not request.metadata_field:
        raise invalid_argument('GetModelMetadataRequest must specify at least one metadata_field')
    for field in request.metadata_field:
        if field != SIGNATURE_DEF_FIELD:
            raise invalid_argument(f'Metadata field {field} is not supported')


def metadata(servable: Servable, request: get_model_metadata_pb2.GetModelMetadataRequest
             ) -> get_model_metadata_pb2.GetModelMetadataResponse:
    validate_metadata_request(request)
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    for key, signature in servable.signature_defs.items():
        signature_map.signature_def[key].CopyFrom(signature)
    response = get_model_metadata_pb2.GetModelMetadataResponse()
    response.model_spec.name = servable.name
    response.model_spec.version.value = servable.version
    response.metadata[SIGNATURE_DEF_FIELD].Pack(signature_map)
    return response


# ---- warm-up --------------------------------------------------------------------------------------------------
def warm_up(servable: Servable, iterations: int = 1) -> int:
    """Replays `assets.extra/tf_serving_warmup_requests` (PredictionLog records) as TF Serving's model warm-up
    does; a failing record fails the load. Returns how many records were read (0 without the file)."""
    from tfx_tabular.pipeline.core import storage
    path = storage.join(servable.path, *WARMUP_FILE.split('/'))
    if not storage.exists(path):
        return 0
    records = [r.numpy() for r in tf.data.TFRecordDataset(path)]
    if len(records) > MAX_WARMUP_RECORDS:
        raise invalid_argument(f'Number of warmup records exceeds the maximum ({MAX_WARMUP_RECORDS}) at {path}')
    for record in records:
        log = prediction_log_pb2.PredictionLog.FromString(record)
        kind = log.WhichOneof('log_type')
        for _ in range(max(1, iterations)):
            if kind == 'predict_log':
                predict(servable, log.predict_log.request)
            elif kind == 'classify_log':
                classify(servable, log.classify_log.request)
            elif kind == 'regress_log':
                regress(servable, log.regress_log.request)
            elif kind == 'multi_inference_log':
                multi_inference(servable, log.multi_inference_log.request)
            else:
                raise ServingError(grpc.StatusCode.UNIMPLEMENTED, f'Unsupported log_type for warmup: {kind}')
    return len(records)
