"""A model server that speaks TF Serving's gRPC API, for machines where tensorflow_model_server cannot run.

PredictionService (Predict, Classify, Regress, MultiInference, GetModelMetadata) and ModelService
(GetModelStatus, HandleReloadConfigRequest), registered under TF Serving's service names so clients written for
it (the tensorflow-serving-api stubs) work unchanged; optionally gRPC's health service and, on the REST port,
the REST API and the Prometheus page (rest.py). Start-up follows tensorflow_model_server's: read the config,
load every model (a model whose versions all fail to load stops the server, with ServerCore's message), and only
then listen, so a client never reaches a server that cannot answer yet. A poll thread follows new versions and
config file edits (manager.py). Every handler turns any failure into a status: a bad request never takes the
server down.

Classify, Regress and MultiInference requests are decoded with their tf.Examples left as bytes (protos.py), and
Classify answers with bytes written directly (inference.py): the two steps that cost the most per request.
"""
import concurrent.futures
import dataclasses
import logging
import os
import socket
import threading
import time
from typing import List, Optional, Tuple

import grpc
from tensorflow_serving.apis import (get_model_metadata_pb2, get_model_status_pb2, model_management_pb2, model_pb2,
                                     predict_pb2)
from tensorflow_serving.config import model_server_config_pb2

from tfx_tabular.pipeline.core import storage
from tfx_tabular.serving import inference, protos
from tfx_tabular.serving import model_config as mc
from tfx_tabular.serving.errors import ServingError, as_serving_error, invalid_argument
from tfx_tabular.serving.manager import ManagerOptions, ModelManager
from tfx_tabular.serving.metrics import REGISTRY

log = logging.getLogger('tfx_tabular.serving')
MB = 1024 * 1024
PREDICTION_SERVICE = 'tensorflow.serving.PredictionService'
MODEL_SERVICE = 'tensorflow.serving.ModelService'
HEALTH_SERVICE = 'grpc.health.v1.Health'
HEALTH_NAMES = ('', 'ModelService', 'PredictionService')  # what TF Serving marks SERVING


@dataclasses.dataclass
class ServerOptions:
    host: str = '127.0.0.1'
    port: int = 8500  # 0: no gRPC TCP port (then grpc_socket_path is needed), as in TF Serving
    grpc_socket_path: str = ''
    rest_api_port: int = 0  # 0: no REST API
    rest_api_num_threads: int = 4 * (os.cpu_count() or 1)
    rest_api_timeout_in_ms: int = 30000
    rest_api_enable_cors_support: bool = False
    file_system_poll_wait_seconds: float = 1.0  # 0 or less: look once, at start-up
    model_config_file_poll_wait_seconds: float = 0.0  # 0: read the config file once
    max_message_bytes: int = 64 * MB
    grpc_max_threads: int = 4 * (os.cpu_count() or 1)
    grpc_channel_arguments: List[Tuple[str, object]] = dataclasses.field(default_factory=list)
    ssl_config: Optional[object] = None  # protos.SSLConfig
    enable_grpc_healthcheck_service: bool = False
    prometheus_path: Optional[str] = None  # from --monitoring_config_file, on the REST port
    enable_serialization_as_tensor_content: bool = False
    enable_signature_method_name_check: bool = False
    manager: ManagerOptions = dataclasses.field(default_factory=ManagerOptions)


def parse_channel_arguments(text: str) -> List[Tuple[str, object]]:
    """`--grpc_channel_arguments`: comma-separated key=value, each value an int when it parses as one."""
    arguments = []
    for item in filter(None, text.split(',')):
        key, sep, value = item.partition('=')
        if not sep or not key:
            raise ValueError(f'--grpc_channel_arguments: {item!r} is not key=value')
        try:
            arguments.append((key, int(value) if -2 ** 31 <= int(value) < 2 ** 31 else value))
        except ValueError:
            arguments.append((key, value))
    return arguments


class PortInUse(OSError):
    """A port the server cannot listen on."""

    def __init__(self, what: str, cause: Exception):
        super().__init__(f'cannot listen on {what} ({cause})')


def _check_port_free(host: str, port: int, what: str) -> None:
    with socket.socket(socket.AF_INET6 if ':' in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as e:
            raise PortInUse(f'{what} {host}:{port}', e) from None


class ModelServer:
    """Serves the models of `config`, or of the ModelServerConfig file `config_file` (re-read when polled)."""

    def __init__(self, options: ServerOptions, config: Optional[model_server_config_pb2.ModelServerConfig] = None,
                 config_file: Optional[str] = None):
        if (config is None) == (config_file is None):
            raise ValueError('pass a config or a config file')
        self.options = options
        self._stop = threading.Event()
        self.manager = ModelManager(options.manager, stop=self._stop)
        self._config_file = config_file
        self._config_text = None
        self._config = config
        self._poller: Optional[threading.Thread] = None
        self._grpc: Optional[grpc.Server] = None
        self._rest = None
        self.port: Optional[int] = None
        self.rest_port: Optional[int] = None

    def _read_config_file(self) -> Optional[model_server_config_pb2.ModelServerConfig]:
        """The config file's model list if it changed since last read (None if it did not)."""
        text = storage.read_bytes(self._config_file).decode('utf-8')
        if text == self._config_text:
            return None
        self._config_text = text  # a bad file is reported once, not at every poll
        return mc.parse_models_config(text, self._config_file)

    def start(self) -> 'ModelServer':
        """Loads the models, then listens, as tensorflow_model_server does. Raises ServingError (a config that
        cannot be served, a model that cannot load), ModelConfigError or PortInUse."""
        options = self.options
        if not options.port and not options.grpc_socket_path:
            raise invalid_argument('At least one of --port or --grpc_socket_path must be set')
        if options.port:  # fail before the minutes loading can take, not after
            _check_port_free(options.host, options.port, 'gRPC port')
        if options.rest_api_port:
            _check_port_free(options.host, options.rest_api_port, 'REST port')
        inference.set_method_name_check(options.enable_signature_method_name_check)
        config = self._config if self._config is not None else self._read_config_file()
        self.manager.apply_config(config)
        self.manager.sync()
        error = self.manager.unavailable_models(self.manager.model_names())
        if error is not None:
            raise error
        self._start_grpc()
        if options.rest_api_port:
            from tfx_tabular.serving.rest import RestServer
            try:
                self._rest = RestServer(self, options.host, options.rest_api_port)
            except OSError as e:
                raise PortInUse(f'REST port {options.host}:{options.rest_api_port}', e) from None
            self.rest_port = self._rest.port
            self._rest.start()
        self._poller = threading.Thread(target=self._poll, name='model-poller', daemon=True)
        self._poller.start()
        return self

    def _start_grpc(self) -> None:
        options = self.options
        # grpc logs a traceback for each request it cannot decode; the client gets INTERNAL, the log stays readable.
        logging.getLogger('grpc._common').setLevel(logging.CRITICAL)
        grpc_options = [('grpc.max_receive_message_length', options.max_message_bytes),
                        ('grpc.max_send_message_length', options.max_message_bytes),
                        ('grpc.so_reuseport', 0)]  # a port in use is an error, not silently shared
        self._grpc = grpc.server(
            concurrent.futures.ThreadPoolExecutor(options.grpc_max_threads, thread_name_prefix='grpc'),
            handlers=self._handlers(), options=grpc_options + list(options.grpc_channel_arguments))
        credentials = None
        if options.ssl_config is not None:
            ssl = options.ssl_config
            credentials = grpc.ssl_server_credentials(
                [(ssl.server_key.encode(), ssl.server_cert.encode())],
                root_certificates=ssl.custom_ca.encode() or None, require_client_auth=ssl.client_verify)
        for address in ([f'{options.host}:{options.port}'] if options.port else []) + \
                ([f'unix:{options.grpc_socket_path}'] if options.grpc_socket_path else []):
            try:
                port = (self._grpc.add_secure_port(address, credentials) if credentials else
                        self._grpc.add_insecure_port(address))
            except RuntimeError as e:
                raise PortInUse(f'gRPC address {address}', e) from None
            if not address.startswith('unix:'):
                self.port = port
        self._grpc.start()

    # ---- gRPC handlers ----------------------------------------------------------------------------------
    def _handlers(self):
        def unary(method, request_class, response_serializer=None):
            return grpc.unary_unary_rpc_method_handler(
                method, request_deserializer=request_class.FromString,
                response_serializer=response_serializer or (lambda message: message.SerializeToString()))
        prediction = {
            'Predict': unary(self.Predict, predict_pb2.PredictRequest),
            'Classify': unary(self.Classify, protos.SerializedClassificationRequest, bytes),
            'Regress': unary(self.Regress, protos.SerializedRegressionRequest),
            'MultiInference': unary(self.MultiInference, protos.SerializedMultiInferenceRequest),
            'GetModelMetadata': unary(self.GetModelMetadata, get_model_metadata_pb2.GetModelMetadataRequest)}
        models = {
            'GetModelStatus': unary(self.GetModelStatus, get_model_status_pb2.GetModelStatusRequest),
            'HandleReloadConfigRequest': unary(self.HandleReloadConfigRequest,
                                               model_management_pb2.ReloadConfigRequest)}
        handlers = [grpc.method_handlers_generic_handler(PREDICTION_SERVICE, prediction),
                    grpc.method_handlers_generic_handler(MODEL_SERVICE, models)]
        if self.options.enable_grpc_healthcheck_service:
            handlers.append(grpc.method_handlers_generic_handler(HEALTH_SERVICE, {
                'Check': unary(self.HealthCheck, protos.HealthCheckRequest),
                'Watch': grpc.unary_stream_rpc_method_handler(
                    self.HealthWatch, request_deserializer=protos.HealthCheckRequest.FromString,
                    response_serializer=lambda message: message.SerializeToString())}))
        return handlers

    def _answer(self, context, request, api: Optional[str], compute):
        """Runs a handler: any failure becomes its status (unexpected ones logged), never an exception; Predict,
        Classify and Regress are counted in the request metrics, as TF Serving counts them."""
        start = time.perf_counter()
        try:
            response, error = compute(), None
        except Exception as e:  # noqa: BLE001 - the server must outlive any request
            error = as_serving_error(e)
            if not isinstance(e, ServingError) and not hasattr(e, 'error_code'):
                log.exception('request failed')
        if api is not None:
            REGISTRY.request(request.model_spec.name, api, 'GRPC', error.code.name if error else 'OK',
                             (time.perf_counter() - start) * 1e6)
        if error is not None:
            context.abort(error.code, error.message)
        return response

    def _servable(self, request):
        if not request.HasField('model_spec'):
            raise invalid_argument('Missing ModelSpec')
        return self.manager.servable(request.model_spec)

    def Predict(self, request, context):
        return self._answer(context, request, 'Predict', lambda: inference.predict(
            self._servable(request), request,
            tensor_content=self.options.enable_serialization_as_tensor_content))

    def Classify(self, request, context):
        return self._answer(context, request, 'Classify',
                            lambda: inference.classify_bytes(self._servable(request), request))

    def Regress(self, request, context):
        return self._answer(context, request, 'Regress', lambda: inference.regress(self._servable(request), request))

    def MultiInference(self, request, context):
        def compute():
            spec = request.tasks[0].model_spec if request.tasks else model_pb2.ModelSpec()
            return inference.multi_inference(self.manager.servable(spec), request)
        return self._answer(context, request, None, compute)

    def GetModelMetadata(self, request, context):
        def compute():
            servable = self._servable(request)
            return inference.metadata(servable, request)
        return self._answer(context, request, None, compute)

    def GetModelStatus(self, request, context):
        def compute():
            if not request.HasField('model_spec'):
                raise invalid_argument('Missing ModelSpec')
            spec = request.model_spec
            response = get_model_status_pb2.GetModelStatusResponse()
            response.model_version_status.extend(
                self.manager.status(spec.name, spec.version.value if spec.HasField('version') else None))
            return response
        return self._answer(context, request, None, compute)

    def HandleReloadConfigRequest(self, request, context):
        """ModelService.HandleReloadConfigRequest: a new model list, applied before answering; the response
        carries the status and the increase of each metric named in `metric_names`."""
        def compute():
            before = {name: REGISTRY.value(name) for name in request.metric_names}
            if request.config.WhichOneof('config') != 'model_config_list':
                raise invalid_argument('ServerModelConfig type not supported by HandleReloadConfigRequest. Only '
                                       'ModelConfigList is currently supported')
            self.reload(request.config)
            response = model_management_pb2.ReloadConfigResponse()
            for name, value in before.items():
                metric = response.metric.add(name=name)
                metric.int64_value_increase = REGISTRY.value(name) - value
            return response
        return self._answer(context, request, None, compute)

    def HealthCheck(self, request, context):
        if request.service not in HEALTH_NAMES:
            context.abort(grpc.StatusCode.NOT_FOUND, 'service name unknown')
        return protos.HealthCheckResponse(status=protos.SERVING)

    def HealthWatch(self, request, context):
        status = protos.SERVING if request.service in HEALTH_NAMES else protos.SERVICE_UNKNOWN
        yield protos.HealthCheckResponse(status=status)
        while context.is_active() and not self._stop.wait(1.0):
            pass

    # ---- models -----------------------------------------------------------------------------------------
    def reload(self, config: model_server_config_pb2.ModelServerConfig) -> None:
        """HandleReloadConfigRequest: a new model list, applied before answering; models new to the server must
        load, as ServerCore::ReloadConfig waits for them."""
        added = self.manager.apply_config(config)
        self.manager.sync()
        error = self.manager.unavailable_models(added)
        if error is not None:
            raise error

    def _poll(self) -> None:
        fs_wait = self.options.file_system_poll_wait_seconds
        config_wait = self.options.model_config_file_poll_wait_seconds if self._config_file else 0
        waits = [w for w in (fs_wait, config_wait) if w > 0]
        if not waits:
            return
        tick = max(min(waits), 0.05)
        next_fs, next_config = fs_wait, config_wait
        elapsed = 0.0
        while not self._stop.wait(tick):
            elapsed += tick
            changed = False
            if config_wait > 0 and elapsed >= next_config:
                next_config = elapsed + config_wait
                try:
                    config = self._read_config_file()
                    if config is not None:
                        self.manager.apply_config(config)
                        changed = True
                        log.info('model config %s reloaded', self._config_file)
                except Exception as e:  # noqa: BLE001 - a bad config edit must not stop serving the current one
                    log.error('Failed to read ModelServerConfig file %s, still serving the previous one: %s',
                              self._config_file, getattr(e, 'message', e))
            if changed or (fs_wait > 0 and elapsed >= next_fs):
                next_fs = elapsed + fs_wait
                try:
                    self.manager.sync()
                except Exception as e:  # noqa: BLE001 - e.g. an unreadable base path; try again next poll
                    log.error('looking for model versions failed, still serving the loaded ones: %s', e)

    def stop(self, grace: float = 2.0) -> None:
        self._stop.set()
        if self._rest is not None:
            self._rest.stop()
        if self._grpc is not None:
            self._grpc.stop(grace).wait(grace + 5)
        if self._poller is not None:
            self._poller.join(timeout=30)
        self.manager.close()

    def wait(self) -> None:
        self._grpc.wait_for_termination()
