"""Protocol buffers TF Serving reads that the tensorflow-serving-api package does not ship, and lazy request views.

Config files: MonitoringConfig and SSLConfig (tensorflow_serving/config/*.proto) and BatchingParameters
(servables/tensorflow/session_bundle_config.proto), rebuilt here from those definitions with the same names and
field numbers, in a private descriptor pool, so their text files parse as TF Serving parses them. Also gRPC's
health-checking messages, for `--enable_grpc_healthcheck_service`.

Requests: Classify, Regress and MultiInference requests decoded with every tf.Example left as bytes, as TF
Serving's own SerializedInput does. The model parses the examples; decoding them into Python objects only to
serialize them again would cost more than the model call for a batch of 64.
"""
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format, wrappers_pb2
from tensorflow_serving.apis import model_pb2

_F = descriptor_pb2.FieldDescriptorProto
_POOL = descriptor_pool.DescriptorPool()
_POOL.AddSerializedFile(wrappers_pb2.DESCRIPTOR.serialized_pb)


def _message(file, name, fields, oneof=None):
    """Adds message `name` to `file`; fields are (name, number, type, repeated, type_name or None)."""
    message = file.message_type.add(name=name)
    if oneof:
        message.oneof_decl.add(name=oneof)
    for field_name, number, kind, repeated, type_name in fields:
        field = message.field.add(name=field_name, number=number, type=kind,
                                  label=_F.LABEL_REPEATED if repeated else _F.LABEL_OPTIONAL)
        if type_name:
            field.type_name = type_name
        if oneof:
            field.oneof_index = 0


def _classes(pool, file):
    pool.Add(file)
    return {m.name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f'{file.package}.{m.name}'))
            for m in file.message_type}


def _config_protos():
    file = descriptor_pb2.FileDescriptorProto(name='tfx_tabular/serving_configs.proto', package='tensorflow.serving',
                                              syntax='proto3', dependency=['google/protobuf/wrappers.proto'])
    _message(file, 'PrometheusConfig', [('enable', 1, _F.TYPE_BOOL, False, None),
                                        ('path', 2, _F.TYPE_STRING, False, None)])
    _message(file, 'MonitoringConfig', [('prometheus_config', 1, _F.TYPE_MESSAGE, False,
                                         '.tensorflow.serving.PrometheusConfig')])
    _message(file, 'SSLConfig', [('server_key', 1, _F.TYPE_STRING, False, None),
                                 ('server_cert', 2, _F.TYPE_STRING, False, None),
                                 ('custom_ca', 3, _F.TYPE_STRING, False, None),
                                 ('client_verify', 4, _F.TYPE_BOOL, False, None)])
    int64, text, flag = '.google.protobuf.Int64Value', '.google.protobuf.StringValue', '.google.protobuf.BoolValue'
    _message(file, 'BatchingParameters', [
        ('max_batch_size', 1, _F.TYPE_MESSAGE, False, int64),
        ('batch_timeout_micros', 2, _F.TYPE_MESSAGE, False, int64),
        ('max_enqueued_batches', 3, _F.TYPE_MESSAGE, False, int64),
        ('num_batch_threads', 4, _F.TYPE_MESSAGE, False, int64),
        ('thread_pool_name', 5, _F.TYPE_MESSAGE, False, text),
        ('allowed_batch_sizes', 6, _F.TYPE_INT64, True, None),
        ('pad_variable_length_inputs', 7, _F.TYPE_BOOL, False, None),
        ('enable_large_batch_splitting', 8, _F.TYPE_MESSAGE, False, flag),
        ('max_execution_batch_size', 9, _F.TYPE_MESSAGE, False, int64)])
    return _classes(_POOL, file)


def _lazy_protos():
    file = descriptor_pb2.FileDescriptorProto(name='tfx_tabular/serving_lazy_requests.proto',
                                              package='tfx_tabular.serving', syntax='proto3',
                                              dependency=[model_pb2.DESCRIPTOR.name])
    spec = '.tensorflow.serving.ModelSpec'
    _message(file, 'SerializedExampleList', [('examples', 1, _F.TYPE_BYTES, True, None)])
    _message(file, 'SerializedExampleListWithContext', [('examples', 1, _F.TYPE_BYTES, True, None),
                                                        ('context', 2, _F.TYPE_BYTES, False, None)])
    _message(file, 'SerializedInput', [
        ('example_list', 1, _F.TYPE_MESSAGE, False, '.tfx_tabular.serving.SerializedExampleList'),
        ('example_list_with_context', 2, _F.TYPE_MESSAGE, False,
         '.tfx_tabular.serving.SerializedExampleListWithContext')], oneof='kind')
    for name in ('SerializedClassificationRequest', 'SerializedRegressionRequest'):
        _message(file, name, [('model_spec', 1, _F.TYPE_MESSAGE, False, spec),
                              ('input', 2, _F.TYPE_MESSAGE, False, '.tfx_tabular.serving.SerializedInput')])
    _message(file, 'SerializedInferenceTask', [('model_spec', 1, _F.TYPE_MESSAGE, False, spec),
                                               ('method_name', 2, _F.TYPE_STRING, False, None)])
    _message(file, 'SerializedMultiInferenceRequest', [
        ('tasks', 1, _F.TYPE_MESSAGE, True, '.tfx_tabular.serving.SerializedInferenceTask'),
        ('input', 2, _F.TYPE_MESSAGE, False, '.tfx_tabular.serving.SerializedInput')])
    return _classes(descriptor_pool.Default(), file)


def _health_protos():
    """grpc.health.v1's messages (the grpcio-health-checking package is not in the lock). `status` is the
    ServingStatus enum on the wire; an int32 field encodes it identically."""
    file = descriptor_pb2.FileDescriptorProto(name='tfx_tabular/health.proto', package='grpc.health.v1',
                                              syntax='proto3')
    _message(file, 'HealthCheckRequest', [('service', 1, _F.TYPE_STRING, False, None)])
    _message(file, 'HealthCheckResponse', [('status', 1, _F.TYPE_INT32, False, None)])
    return _classes(_POOL, file)


_CONFIGS = _config_protos()
MonitoringConfig = _CONFIGS['MonitoringConfig']
SSLConfig = _CONFIGS['SSLConfig']
BatchingParameters = _CONFIGS['BatchingParameters']

_HEALTH = _health_protos()
HealthCheckRequest = _HEALTH['HealthCheckRequest']
HealthCheckResponse = _HEALTH['HealthCheckResponse']
SERVING, SERVICE_UNKNOWN = 1, 3  # HealthCheckResponse.ServingStatus

_LAZY = _lazy_protos()
SerializedClassificationRequest = _LAZY['SerializedClassificationRequest']
SerializedRegressionRequest = _LAZY['SerializedRegressionRequest']
SerializedMultiInferenceRequest = _LAZY['SerializedMultiInferenceRequest']


class ProtoTextError(ValueError):
    """A text-format file that does not parse; the message is TF Serving's."""


def parse_text(text: str, message_class, path: str):
    """Parses a text-format file as TF Serving's ParseProtoTextFile does; the error names the line and column."""
    message = message_class()
    try:
        text_format.Parse(text, message)
    except text_format.ParseError as e:
        where = f'{e.GetLine()}:{e.GetColumn()}: ' if e.GetLine() else ''
        detail = str(e).split(' : ', 1)[-1] if ' : ' in str(e) else str(e)
        raise ProtoTextError(f'Error parsing text-format {message.DESCRIPTOR.full_name}: {where}{detail} '
                             f"(Invalid protobuf file: '{path}')") from None
    return message
