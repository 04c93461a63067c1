"""A Python client for TF Serving's gRPC API: Classify, Predict, GetModelMetadata, GetModelStatus.

It uses only the `tensorflow-serving-api` stubs and TF Serving's request shapes, so the same code talks to
`tfx-tabular serve` locally and to tensorflow_model_server in production. Raw records (CSV rows, JSON objects)
are typed from the model's own `serving_raw` signature, read from the server's metadata. Every call has a
deadline; UNAVAILABLE (server starting, restarting, overloaded) is retried with exponential backoff; any other
failure raises ServingError with the server's status code and message.
"""
import dataclasses
import random
import time
from typing import Dict, List, Optional, Sequence, Tuple, Union

import grpc
import numpy as np
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2
from tensorflow_serving.apis import (classification_pb2, get_model_metadata_pb2, get_model_status_pb2,
                                     model_service_pb2_grpc, predict_pb2, prediction_service_pb2_grpc)

from tfx_tabular.serving.errors import ServingError
from tfx_tabular.serving.examples import RAW_SIGNATURE, RecordError, dtypes_from_signature, serialize, to_columns

Version = Union[int, str, None]  # a version number, a version label, or None for the latest
MB = 1024 * 1024


@dataclasses.dataclass
class Classifications:
    """Classify's answer: per example, (label, score) for every class, in the model's class order."""
    model: str
    version: int
    signature: str
    results: List[List[Tuple[str, float]]]

    def top(self) -> List[Tuple[str, float]]:
        return [max(classes, key=lambda c: c[1]) for classes in self.results]


@dataclasses.dataclass
class Prediction:
    """Predict's answer: each output tensor as numpy."""
    model: str
    version: int
    signature: str
    outputs: Dict[str, np.ndarray]


def _model_spec(spec, model: str, version: Version, signature: Optional[str] = None) -> None:
    spec.name = model
    if isinstance(version, int) or (isinstance(version, str) and version.isdigit()):
        spec.version.value = int(version)
    elif version:
        spec.version_label = version
    if signature:
        spec.signature_name = signature


class ServingClient:
    """Talks to one server (`host:port`). `timeout`: seconds per call; `retries`: extra tries on UNAVAILABLE."""

    def __init__(self, target: str, timeout: float = 10.0, retries: int = 3, backoff: float = 0.1,
                 max_message_bytes: int = 64 * MB):
        self.target = target
        self.timeout, self.retries, self.backoff = timeout, retries, backoff
        self._channel = grpc.insecure_channel(target, options=[
            ('grpc.max_receive_message_length', max_message_bytes),
            ('grpc.max_send_message_length', max_message_bytes)])
        self._predictions = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)
        self._models = model_service_pb2_grpc.ModelServiceStub(self._channel)
        self._dtypes: Dict[Tuple[str, Version], Dict[str, tf.DType]] = {}

    def close(self) -> None:
        self._channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def call(self, method, request):
        """One RPC with a deadline, retried on UNAVAILABLE; raises ServingError."""
        for attempt in range(self.retries + 1):
            try:
                return method(request, timeout=self.timeout)
            except grpc.RpcError as e:
                code = e.code()
                if code == grpc.StatusCode.UNAVAILABLE and attempt < self.retries:
                    time.sleep(self.backoff * 2 ** attempt * (0.5 + random.random()))
                    continue
                raise ServingError(code, e.details() or code.name) from None

    # ---- the four APIs ----------------------------------------------------------------------------------
    def status(self, model: str, version: Version = None) -> List[get_model_status_pb2.ModelVersionStatus]:
        request = get_model_status_pb2.GetModelStatusRequest()
        _model_spec(request.model_spec, model, version)
        return list(self.call(self._models.GetModelStatus, request).model_version_status)

    def metadata(self, model: str, version: Version = None):
        """(version, {signature name: SignatureDef}) from GetModelMetadata."""
        request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=['signature_def'])
        _model_spec(request.model_spec, model, version)
        response = self.call(self._predictions.GetModelMetadata, request)
        signatures = get_model_metadata_pb2.SignatureDefMap()
        response.metadata['signature_def'].Unpack(signatures)
        return response.model_spec.version.value, dict(signatures.signature_def)

    def classify(self, model: str, examples: Sequence[Union[bytes, tf.train.Example]], version: Version = None,
                 signature: Optional[str] = None, context: Optional[tf.train.Example] = None) -> Classifications:
        """Classify tf.Examples (protos or serialized); `context` features are shared by every example."""
        request = classification_pb2.ClassificationRequest()
        _model_spec(request.model_spec, model, version, signature)
        target = (request.input.example_list_with_context if context is not None
                  else request.input.example_list)
        if context is not None:
            target.context.CopyFrom(context)
        for example in examples:
            if isinstance(example, bytes):
                target.examples.add().ParseFromString(example)
            else:
                target.examples.add().CopyFrom(example)
        response = self.call(self._predictions.Classify, request)
        results = [[(c.label, c.score) for c in item.classes] for item in response.result.classifications]
        return Classifications(response.model_spec.name, response.model_spec.version.value,
                               response.model_spec.signature_name, results)

    def predict(self, model: str, inputs: Dict[str, object], version: Version = None,
                signature: Optional[str] = None, output_filter: Sequence[str] = ()) -> Prediction:
        """Predict; each input is a TensorProto or anything tf.make_tensor_proto takes (numpy, lists)."""
        request = predict_pb2.PredictRequest()
        _model_spec(request.model_spec, model, version, signature)
        for name, value in inputs.items():
            request.inputs[name].CopyFrom(value if isinstance(value, tensor_pb2.TensorProto)
                                          else tf.make_tensor_proto(value))
        request.output_filter.extend(output_filter)
        response = self.call(self._predictions.Predict, request)
        return Prediction(response.model_spec.name, response.model_spec.version.value,
                          response.model_spec.signature_name,
                          {k: tf.make_ndarray(v) for k, v in response.outputs.items()})

    # ---- raw records ------------------------------------------------------------------------------------
    def raw_dtypes(self, model: str, version: Version = None) -> Dict[str, tf.DType]:
        """The raw columns the model reads and their types, from its `serving_raw` signature (cached)."""
        key = (model, version)
        if key not in self._dtypes:
            _, signatures = self.metadata(model, version)
            if RAW_SIGNATURE not in signatures:
                raise RecordError(f'model {model} has no {RAW_SIGNATURE!r} signature to type raw records with; '
                                  'send tf.Examples with classify() instead')
            self._dtypes[key] = dtypes_from_signature(signatures[RAW_SIGNATURE])
        return self._dtypes[key]

    def classify_records(self, model: str, records: List[Dict[str, object]], version: Version = None,
                         signature: Optional[str] = None) -> Classifications:
        """Classify raw records (column: value), sent as tf.Examples."""
        return self.classify(model, serialize(records, self.raw_dtypes(model, version)), version, signature)

    def predict_records(self, model: str, records: List[Dict[str, object]], version: Version = None
                        ) -> Classifications:
        """Predict on `serving_raw` (one tensor per raw column), answered in Classify's shape."""
        columns = to_columns(records, self.raw_dtypes(model, version))
        prediction = self.predict(model, columns, version, RAW_SIGNATURE, output_filter=['classes', 'scores'])
        classes, scores = prediction.outputs['classes'], prediction.outputs['scores']
        results = [[(c.decode(), float(s)) for c, s in zip(row_classes, row_scores)]
                   for row_classes, row_scores in zip(classes, scores)]
        return Classifications(prediction.model, prediction.version, prediction.signature, results)
