"""A model server that speaks TF Serving's gRPC API, for machines where tensorflow_model_server cannot run.

PredictionService (Predict, Classify, GetModelMetadata; Regress and MultiInference answer UNIMPLEMENTED) and
ModelService (GetModelStatus, HandleReloadConfigRequest) over the `tensorflow-serving-api` stubs, so clients
written for TF Serving work unchanged. Models come from a ModelServerConfig (or one base path); a poll thread
loads new versions and unloads old ones (manager.py); concurrent requests to a signature are batched
(batching.py). Every handler turns any failure into a status: a bad request never takes the server down.
"""
import concurrent.futures
import dataclasses
import logging
import threading
from typing import Optional

import grpc
from tensorflow_serving.apis import (classification_pb2, get_model_metadata_pb2, get_model_status_pb2,
                                     model_management_pb2, model_service_pb2_grpc, predict_pb2,
                                     prediction_service_pb2_grpc)
from tensorflow_serving.config import model_server_config_pb2

from serving import inference
from serving import model_config as mc
from serving import storage
from serving.batching import BatchingOptions
from serving.errors import ServingError, invalid_argument
from serving.manager import ModelManager

log = logging.getLogger('tfx_tabular.serving')
MB = 1024 * 1024


@dataclasses.dataclass
class ServerOptions:
    host: str = '127.0.0.1'
    port: int = 8500
    rest_api_port: int = 0  # 0: no REST API, as in TF Serving
    file_system_poll_wait_seconds: float = 1.0
    model_config_file_poll_wait_seconds: float = 0.0  # 0: read the config file once, as in TF Serving
    max_message_bytes: int = 64 * MB
    grpc_max_threads: int = 64
    max_concurrent_rpcs: int = 1024
    batching: Optional[BatchingOptions] = dataclasses.field(default_factory=BatchingOptions)


def _answer(context, compute):
    """Runs a handler; any failure becomes the matching status (unexpected ones INTERNAL), logged, never raised."""
    try:
        return compute()
    except ServingError as e:
        error = e
    except Exception as e:  # noqa: BLE001 - the server must outlive any request
        log.exception('request failed')
        error = ServingError(grpc.StatusCode.INTERNAL, f'{type(e).__name__}: {e}')
    context.abort(error.code, error.message)


def _model_spec(request):
    if not request.HasField('model_spec'):
        raise invalid_argument('Missing ModelSpec')
    return request.model_spec


class PredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, manager: ModelManager):
        self._manager = manager

    def Predict(self, request: predict_pb2.PredictRequest, context):
        return _answer(context, lambda: inference.predict(self._manager.servable(_model_spec(request)), request))

    def Classify(self, request: classification_pb2.ClassificationRequest, context):
        return _answer(context, lambda: inference.classify(self._manager.servable(_model_spec(request)), request))

    def GetModelMetadata(self, request: get_model_metadata_pb2.GetModelMetadataRequest, context):
        def compute():
            spec = _model_spec(request)
            inference.validate_metadata_request(request)
            return inference.metadata(self._manager.servable(spec), request)
        return _answer(context, compute)

    def Regress(self, request, context):
        context.abort(grpc.StatusCode.UNIMPLEMENTED, 'Regress is not implemented by this server: the models are '
                                                     'classifiers, use Classify or Predict')

    def MultiInference(self, request, context):
        context.abort(grpc.StatusCode.UNIMPLEMENTED, 'MultiInference is not implemented by this server: send '
                                                     'one Classify or Predict request per signature')


class ModelServicer(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, server: 'ModelServer'):
        self._server = server

    def GetModelStatus(self, request: get_model_status_pb2.GetModelStatusRequest, context):
        def compute():
            spec = _model_spec(request)
            version = spec.version.value if spec.HasField('version') else None
            response = get_model_status_pb2.GetModelStatusResponse()
            response.model_version_status.extend(self._server.manager.status(spec.name, version))
            return response
        return _answer(context, compute)

    def HandleReloadConfigRequest(self, request: model_management_pb2.ReloadConfigRequest, context):
        def compute():
            if request.config.WhichOneof('config') != 'model_config_list':
                raise invalid_argument('ServerConfig must contain a model_config_list')
            self._server.reload(request.config)
            return model_management_pb2.ReloadConfigResponse()
        return _answer(context, compute)


class PortInUse(OSError):
    """A port the server cannot listen on."""

    def __init__(self, what: str, cause: Exception):
        super().__init__(f'cannot listen on {what} ({cause})')


class ModelServer:
    """Serves the models of `config`, or of the ModelServerConfig file `config_file` (re-read when polled)."""

    def __init__(self, options: ServerOptions, config: Optional[model_server_config_pb2.ModelServerConfig] = None,
                 config_file: Optional[str] = None):
        if (config is None) == (config_file is None):
            raise ValueError('pass a config or a config file')
        self.options = options
        self.manager = ModelManager(options.batching)
        self._config_file = config_file
        self._config_text = None
        self._config = config
        self._stop = threading.Event()
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
        """Binds the ports (failing fast if taken), loads the models, then serves, as TF Serving does."""
        # grpc logs a traceback for each request it cannot decode; the client gets INTERNAL, the log stays readable.
        logging.getLogger('grpc._common').setLevel(logging.CRITICAL)
        options = [('grpc.max_receive_message_length', self.options.max_message_bytes),
                   ('grpc.max_send_message_length', self.options.max_message_bytes),
                   ('grpc.so_reuseport', 0)]  # a port in use is an error, not silently shared
        self._grpc = grpc.server(
            concurrent.futures.ThreadPoolExecutor(self.options.grpc_max_threads, thread_name_prefix='grpc'),
            options=options, maximum_concurrent_rpcs=self.options.max_concurrent_rpcs)
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(PredictionServicer(self.manager),
                                                                             self._grpc)
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelServicer(self), self._grpc)
        try:
            self.port = self._grpc.add_insecure_port(f'{self.options.host}:{self.options.port}')
        except RuntimeError as e:
            raise PortInUse(f'gRPC port {self.options.host}:{self.options.port}', e) from None
        if self.options.rest_api_port:
            from serving.rest import RestServer
            try:
                self._rest = RestServer(self, self.options.host, self.options.rest_api_port)
            except OSError as e:
                raise PortInUse(f'REST port {self.options.host}:{self.options.rest_api_port}', e) from None
            self.rest_port = self._rest.port
        self.manager.apply_config(self._config if self._config is not None else self._read_config_file())
        self.manager.sync()
        self._grpc.start()
        if self._rest is not None:
            self._rest.start()
        self._poller = threading.Thread(target=self._poll, name='model-poller', daemon=True)
        self._poller.start()
        return self

    def reload(self, config: model_server_config_pb2.ModelServerConfig) -> None:
        """HandleReloadConfigRequest: a new model list, applied before answering."""
        self.manager.apply_config(config)
        self.manager.sync()

    def _poll(self) -> None:
        wait = max(self.options.file_system_poll_wait_seconds, 0.05)
        config_wait = self.options.model_config_file_poll_wait_seconds
        next_config_read = config_wait
        elapsed = 0.0
        while not self._stop.wait(wait):
            elapsed += wait
            changed = False
            if self._config_file and config_wait > 0 and elapsed >= next_config_read:
                next_config_read = elapsed + config_wait
                try:
                    config = self._read_config_file()
                    if config is not None:
                        self.manager.apply_config(config)
                        changed = True
                        log.info('model config %s reloaded', self._config_file)
                except Exception as e:  # noqa: BLE001 - a bad config edit must not stop serving the current one
                    log.error('model config %s not applied, still serving the previous one: %s',
                              self._config_file, e)
            if changed or self.options.file_system_poll_wait_seconds > 0:
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
