"""TF Serving's request handling for Predict, Classify and GetModelMetadata on a loaded servable.

Checks and their status codes follow TF Serving's own (servables/tensorflow/predict_util.cc, classifier.cc,
get_model_metadata_impl.cc): an unknown signature is FAILED_PRECONDITION for Predict and INVALID_ARGUMENT
for Classify; Classify needs a `tensorflow/serving/classify` signature with one `inputs` tensor and one or two
outputs (`classes`, `scores`). Where TF Serving leaves a bad input to the TF runtime (a wrong dtype or rank),
this answers the same INVALID_ARGUMENT before running, naming the input and what the signature expects.
"""
from typing import Dict

import grpc
import numpy as np
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, types_pb2
from tensorflow_serving.apis import classification_pb2, get_model_metadata_pb2, predict_pb2

from serving.errors import (ServingError, failed_precondition, from_tf_error, from_undecodable_tf_error,
                            invalid_argument)
from serving.servable import Servable

DEFAULT_SIGNATURE = 'serving_default'
PREDICT_METHOD = 'tensorflow/serving/predict'
CLASSIFY_METHOD = 'tensorflow/serving/classify'
REGRESS_METHOD = 'tensorflow/serving/regress'
CLASSIFY_INPUTS, CLASSES, SCORES = 'inputs', 'classes', 'scores'
SIGNATURE_DEF_FIELD = 'signature_def'
MAX_TENSOR_ELEMENTS = 1 << 24  # a tensor shape promising more values than this is refused before allocating it

_VALUE_FIELDS = {
    types_pb2.DT_FLOAT: 'float_val', types_pb2.DT_DOUBLE: 'double_val', types_pb2.DT_INT32: 'int_val',
    types_pb2.DT_INT16: 'int_val', types_pb2.DT_INT8: 'int_val', types_pb2.DT_UINT8: 'int_val',
    types_pb2.DT_INT64: 'int64_val', types_pb2.DT_BOOL: 'bool_val', types_pb2.DT_STRING: 'string_val',
    types_pb2.DT_UINT32: 'uint32_val', types_pb2.DT_UINT64: 'uint64_val'}


def dtype_name(dtype: int) -> str:
    return types_pb2.DataType.Name(dtype) if dtype in types_pb2.DataType.values() else str(dtype)


def _shape(info) -> str:
    return 'unknown' if info.tensor_shape.unknown_rank else str([d.size for d in info.tensor_shape.dim])


def tensor_to_array(alias: str, proto: tensor_pb2.TensorProto, info, signature_name: str) -> np.ndarray:
    """A request tensor as numpy, after checking it against the signature's TensorInfo for that input."""
    if proto.dtype != info.dtype:
        expected = tf.dtypes.as_dtype(info.dtype).name
        raise invalid_argument(
            f"input '{alias}' holds {dtype_name(proto.dtype)} values but signature '{signature_name}' expects "
            f'{dtype_name(info.dtype)}: send {expected} values for {alias}')
    if proto.tensor_shape.unknown_rank:
        raise invalid_argument(f"input '{alias}' has no shape; set tensor_shape (tf.make_tensor_proto does)")
    dims = [d.size for d in proto.tensor_shape.dim]
    if any(d < 0 for d in dims):
        raise invalid_argument(f"input '{alias}' has a negative dimension {dims}; send a concrete shape")
    if int(np.prod(dims, dtype=np.float64)) > MAX_TENSOR_ELEMENTS:
        raise invalid_argument(f"input '{alias}' has shape {dims}, over {MAX_TENSOR_ELEMENTS} values; send "
                               'smaller batches')
    if not info.tensor_shape.unknown_rank:
        expected = [d.size for d in info.tensor_shape.dim]
        if len(expected) != len(dims) or any(e not in (-1, d) for e, d in zip(expected, dims)):
            raise invalid_argument(f"input '{alias}' has shape {dims} but signature '{signature_name}' expects "
                                   f'{expected} (-1: any size)')
    try:
        return tf.make_ndarray(proto)
    except Exception as e:  # noqa: BLE001 - any undecodable tensor is the client's
        raise invalid_argument(f"input '{alias}' is not a valid {dtype_name(proto.dtype)} tensor of shape "
                               f'{dims} ({e}); build it with tf.make_tensor_proto') from None


def array_to_tensor(array: np.ndarray, dtype: int) -> tensor_pb2.TensorProto:
    """Like TF Serving's Predict (Tensor::AsProtoField): values in the typed field, e.g. float_val."""
    field = _VALUE_FIELDS.get(dtype)
    if field is None:
        return tf.make_tensor_proto(array)
    proto = tensor_pb2.TensorProto(dtype=dtype)
    for size in array.shape:
        proto.tensor_shape.dim.add(size=size)
    getattr(proto, field).extend(array.ravel().tolist())
    return proto


def _run(servable: Servable, signature_name: str, inputs: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    try:
        return servable.run(signature_name, inputs)
    except tf.errors.OpError as e:
        raise from_tf_error(e) from None
    except UnicodeDecodeError as e:
        raise from_undecodable_tf_error(e) from None
    except (TypeError, ValueError) as e:  # e.g. a tensor TF cannot convert
        raise invalid_argument(f"signature '{signature_name}': {e}") from None


def _response_spec(spec, servable: Servable, signature_name: str) -> None:
    spec.name = servable.name
    spec.version.value = servable.version
    spec.signature_name = signature_name


def predict(servable: Servable, request: predict_pb2.PredictRequest) -> predict_pb2.PredictResponse:
    name = request.model_spec.signature_name or DEFAULT_SIGNATURE
    signature = servable.signature_defs.get(name)
    if signature is None:
        raise failed_precondition(f'Serving signature key "{name}" not found.')
    if signature.method_name not in (PREDICT_METHOD, CLASSIFY_METHOD, REGRESS_METHOD):
        raise ServingError(grpc.StatusCode.INTERNAL,
                           f'Expected prediction signature method_name to be one of {{{PREDICT_METHOD}, '
                           f'{CLASSIFY_METHOD}, {REGRESS_METHOD}}}. Was: {signature.method_name}')
    sent, wanted = set(request.inputs), set(signature.inputs)
    if len(sent) > len(wanted) or (len(sent) < len(wanted) and not signature.defaults):
        raise invalid_argument(
            f'input size does not match signature: {len(sent)}!={len(wanted)} len({{{",".join(sorted(sent))}}}) '
            f'!= len({{{",".join(sorted(wanted))}}}). Sent extra: {{{",".join(sorted(sent - wanted))}}}. '
            f'Missing but required: {{{",".join(sorted(wanted - sent))}}}.')
    for alias in sorted(sent - wanted):
        raise invalid_argument(f'input tensor alias not found in signature: {alias}. Inputs expected to be in the '
                               f'set {{{",".join(sorted(wanted))}}}.')
    outputs = list(request.output_filter) or list(signature.outputs)
    seen = set()
    for alias in request.output_filter:
        if alias not in signature.outputs:
            raise invalid_argument(f'output tensor alias not found in signature: {alias} Outputs expected to be in '
                                   f'the set {{{",".join(sorted(signature.outputs))}}}.')
        if alias in seen:
            raise invalid_argument(f'duplicate output tensor alias: {alias}')
        seen.add(alias)
    arrays = {alias: tensor_to_array(alias, request.inputs[alias], signature.inputs[alias], name)
              for alias in sorted(sent)}
    results = _run(servable, name, arrays)
    response = predict_pb2.PredictResponse()
    _response_spec(response.model_spec, servable, name)
    for alias in outputs:
        response.outputs[alias].CopyFrom(array_to_tensor(results[alias], signature.outputs[alias].dtype))
    return response


def _classification_signature(servable: Servable, name: str):
    signature = servable.signature_defs.get(name)
    if signature is None:
        raise invalid_argument(f'No signature was found with the name: {name}')
    if signature.method_name != CLASSIFY_METHOD:
        raise invalid_argument(f'Expected classification signature method_name to be {CLASSIFY_METHOD}. '
                               f'Was: {signature.method_name}')
    if len(signature.inputs) != 1:
        raise invalid_argument('Expected one input Tensor.')
    if len(signature.outputs) not in (1, 2):
        raise invalid_argument(f'Expected one or two output Tensors, found {len(signature.outputs)}')
    if CLASSIFY_INPUTS not in signature.inputs:
        raise failed_precondition(f"No classification inputs found in SignatureDef '{name}': its input must be "
                                  f"named '{CLASSIFY_INPUTS}'")
    if CLASSES not in signature.outputs and SCORES not in signature.outputs:
        raise failed_precondition(f'Expected classification signature outputs to contain at least one of '
                                  f'"{CLASSES}" or "{SCORES}". Signature was: {name}')
    return signature


def serialized_examples(model_input) -> np.ndarray:
    """Input (ExampleList, or ExampleListWithContext: context bytes then example bytes, so features merge the
    way TF Serving merges them) as the 1-D string tensor a classification signature takes."""
    kind = model_input.WhichOneof('kind')
    if kind == 'example_list':
        values = [e.SerializeToString() for e in model_input.example_list.examples]
    elif kind == 'example_list_with_context':
        context = model_input.example_list_with_context.context.SerializeToString()
        values = [context + e.SerializeToString() for e in model_input.example_list_with_context.examples]
    else:
        values = []
    if not values:
        raise invalid_argument('Input is empty.')
    return np.array(values, dtype=object)


def classify(servable: Servable, request: classification_pb2.ClassificationRequest
             ) -> classification_pb2.ClassificationResponse:
    name = request.model_spec.signature_name or DEFAULT_SIGNATURE
    signature = _classification_signature(servable, name)
    examples = serialized_examples(request.input)
    results = _run(servable, name, {CLASSIFY_INPUTS: examples})
    classes, scores = results.get(CLASSES), results.get(SCORES)
    n = len(examples)
    for key, tensor, kind in ((CLASSES, classes, np.object_), (SCORES, scores, np.floating)):
        if tensor is None:
            continue
        if tensor.ndim != 2:
            raise invalid_argument(f'Expected Tensor shape: [batch_size num_classes] but got {list(tensor.shape)} '
                                   f'for {key}')
        if not np.issubdtype(tensor.dtype, kind):
            raise invalid_argument(f'Expected {key} Tensor of {"DT_STRING" if key == CLASSES else "DT_FLOAT"}. '
                                   f'Got: {tensor.dtype}')
        if tensor.shape[0] != n:
            raise invalid_argument(f'Expected {key} output batch size of {n}. Got: {tensor.shape[0]}')
    if classes is not None and scores is not None and classes.shape[1] != scores.shape[1]:
        raise ServingError(grpc.StatusCode.INTERNAL, 'Tensors class and score should match in dim_size(1). '
                                                     f'Got {classes.shape[1]} vs. {scores.shape[1]}')
    response = classification_pb2.ClassificationResponse()
    _response_spec(response.model_spec, servable, name)
    n_classes = (classes if classes is not None else scores).shape[1]
    labels = [[c.decode('utf-8', 'replace') for c in row] for row in classes] if classes is not None else None
    score_rows = scores.tolist() if scores is not None else None
    for i in range(n):
        classifications = response.result.classifications.add()
        for c in range(n_classes):
            entry = classifications.classes.add()
            if labels is not None:
                entry.label = labels[i][c]
            if score_rows is not None:
                entry.score = score_rows[i][c]
    return response


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
