"""Which versions of which models are loaded, following TF Serving's ModelServerConfig and version policies.

As TF Serving's ServerCore, FileSystemStoragePathSource and AspiredVersionsManager do it:
- a version is any child of the base path whose name parses as a number (`00000123` is version 123, loaded from
  that folder); the version policy (latest N, all, specific) picks the wanted ones;
- a load that fails is retried `--max_num_load_retries` times, `--load_retry_interval_micros` apart, then the
  version stays END with the error, and is not tried again while it stays wanted;
- wanted versions are loaded before unwanted ones are unloaded (AvailabilityPreservingPolicy): a request always
  finds a version, and one already holding a version finishes on it;
- version labels may only point at AVAILABLE versions (unless `--allow_version_labels_for_unavailable_models`),
  checked when a config is applied, before anything loads;
- a ModelSpec resolves to its version, its label's version, or the latest AVAILABLE one; otherwise NOT_FOUND.
States per version (START, LOADING, AVAILABLE, UNLOADING, END) and each version's last error are what
GetModelStatus reports.
"""
import concurrent.futures
import dataclasses
import logging
import threading
import time
from typing import Callable, Dict, List, Optional, Tuple

import grpc
from tensorflow_serving.apis import get_model_status_pb2
from tensorflow_serving.config import model_server_config_pb2

from tfx_tabular.serving import inference
from tfx_tabular.serving import model_config as mc
from tfx_tabular.pipeline.core import storage
from tfx_tabular.serving.errors import ServingError, as_serving_error, failed_precondition, invalid_argument, not_found
from tfx_tabular.serving.metrics import REGISTRY
from tfx_tabular.serving.servable import Servable, ServableOptions

log = logging.getLogger('tfx_tabular.serving')
State = get_model_status_pb2.ModelVersionStatus.State
PLATFORM = 'tensorflow'


@dataclasses.dataclass
class ManagerOptions:
    servable: ServableOptions = dataclasses.field(default_factory=ServableOptions)
    max_num_load_retries: int = 5
    load_retry_interval_seconds: float = 60.0
    num_load_threads: int = 0  # 0: versions load one after the other
    allow_version_labels_for_unavailable_models: bool = False


@dataclasses.dataclass
class VersionState:
    state: int = State.START
    error: Optional[ServingError] = None
    servable: Optional[Servable] = None
    failed: bool = False  # gave up after the retries; not tried again while wanted


@dataclasses.dataclass
class _Model:
    config: model_server_config_pb2.ModelConfig
    versions: Dict[int, VersionState] = dataclasses.field(default_factory=dict)
    removed: bool = False
    base_path_error: str = ''


def check_config(config: model_server_config_pb2.ModelServerConfig) -> None:
    """ServerCore's ValidateModelConfigList and platform checks, with its messages."""
    names = set()
    for model in config.model_config_list.config:
        if not model.name:
            raise invalid_argument('Every model in the config needs a name')
        if model.name in names:
            raise invalid_argument(f'Illegal to list model {model.name} multiple times in config list')
        names.add(model.name)
        if not (storage.is_uri(model.base_path) or model.base_path.startswith('/')):
            raise invalid_argument(f'Expected model {model.name} to have an absolute path or URI; got '
                                   f'base_path()={model.base_path}')
        if not model.model_platform:
            raise invalid_argument('Illegal setting neither ModelServerConfig::model_type (deprecated) nor '
                                   f'ModelServerConfig::model_platform, model name is {model.name}')
        if model.model_platform != PLATFORM:
            raise invalid_argument(f'Model {model.name} requests unsupported platform {model.model_platform}')


class ModelManager:
    def __init__(self, options: Optional[ManagerOptions] = None, load: Callable[..., Servable] = Servable,
                 stop: Optional[threading.Event] = None):
        self.options = options or ManagerOptions()
        self._load = load
        self._stop = stop or threading.Event()
        self._lock = threading.Lock()
        self._sync_lock = threading.Lock()  # one sync at a time (the poll thread, or a config reload)
        self._models: Dict[str, _Model] = {}
        self._labels: Dict[str, Dict[str, int]] = {}
        self._kept = set()  # (model, version) kept past its policy, warned about once
        self._pool = (concurrent.futures.ThreadPoolExecutor(self.options.num_load_threads, 'load')
                      if self.options.num_load_threads > 0 else None)
        REGISTRY.watch_states(self)

    # ---- configuration and disk -------------------------------------------------------------------------
    def apply_config(self, config: model_server_config_pb2.ModelServerConfig) -> List[str]:
        """Takes a new model list (the labels checked first, as ServerCore::ReloadConfig does); models no longer
        listed are unloaded by the next `sync`. Returns the names of models new to this server."""
        if config.WhichOneof('config') is None:
            return []  # TF Serving: "Taking no action for empty config."
        check_config(config)
        wanted = {m.name: m for m in config.model_config_list.config}
        labels = self._checked_labels(wanted)
        with self._lock:
            added = [name for name in wanted if name not in self._models or self._models[name].removed]
            for name, model in self._models.items():
                model.removed = name not in wanted
            for name, model_config in wanted.items():
                if name in self._models:
                    self._models[name].config = model_config
                else:
                    self._models[name] = _Model(model_config)
            self._labels = labels
        return added

    def _checked_labels(self, wanted: Dict[str, model_server_config_pb2.ModelConfig]) -> Dict[str, Dict[str, int]]:
        labels = {}
        with self._lock:
            for name, model_config in wanted.items():
                model = self._models.get(name)
                for label, version in model_config.version_labels.items():
                    existing = self._labels.get(name, {}).get(label)
                    allowed = (self.options.allow_version_labels_for_unavailable_models and
                               existing in (None, version))
                    state = model.versions.get(version) if model else None
                    if not allowed and (state is None or state.state != State.AVAILABLE):
                        raise failed_precondition(f'Request to assign label to version {version} of model {name}, '
                                                  'which is not currently available for inference')
                    labels.setdefault(name, {})[label] = version
        return labels

    def sync(self) -> None:
        """Brings loaded versions in line with the disk and the policies (loads first, then unloads)."""
        with self._sync_lock:
            with self._lock:
                models = list(self._models.items())
            for name, model in models:
                if model.removed:
                    wanted, folders = [], {}
                elif not storage.isdir(model.config.base_path):
                    message = (f'Could not find base path {model.config.base_path} for servable {name}; still '
                               'serving the versions loaded')
                    if message != model.base_path_error:
                        log.error(message)
                    model.base_path_error = message
                    continue
                else:
                    model.base_path_error = ''
                    folders = mc.version_folders(model.config.base_path)
                    wanted = mc.wanted_versions(model.config, list(folders))
                    if not folders:
                        log.debug('No versions of servable %s found under base path %s', name,
                                  model.config.base_path)
                self._load_versions(name, model, {v: folders[v] for v in wanted})
                self._unload_unwanted(name, model, wanted)
            with self._lock:
                for name in [n for n, m in self._models.items()
                             if m.removed and not any(s.servable for s in m.versions.values())]:
                    del self._models[name]

    def _load_versions(self, name: str, model: _Model, folders: Dict[int, str]) -> None:
        with self._lock:
            for version, state in model.versions.items():
                if version not in folders and state.failed:
                    state.failed = False  # no longer wanted: if it comes back, it gets a fresh try
        versions = sorted(folders, reverse=True)
        if self._pool is None:
            for version in versions:
                self._ensure_loaded(name, model, version, folders[version])
        else:
            list(self._pool.map(lambda v: self._ensure_loaded(name, model, v, folders[v]), versions))

    def _unload_unwanted(self, name: str, model: _Model, wanted: List[int]) -> None:
        with self._lock:
            serving_wanted = [v for v in wanted if model.versions.get(v, VersionState()).state == State.AVAILABLE]
            unwanted = sorted(v for v, s in model.versions.items() if s.servable is not None and v not in wanted)
        # AvailabilityPreservingPolicy: keep one unwanted version while no wanted version is AVAILABLE.
        if wanted and not serving_wanted and unwanted:
            if (name, unwanted[-1]) not in self._kept:
                self._kept.add((name, unwanted[-1]))
                log.warning('%s: keeping version %d until a wanted version loads', name, unwanted[-1])
            unwanted = unwanted[:-1]
        for version in unwanted:
            self._unload(name, model, version)

    def _ensure_loaded(self, name: str, model: _Model, version: int, folder: str) -> None:
        with self._lock:
            state = model.versions.setdefault(version, VersionState())
            if state.servable is not None or state.failed:
                return
            state.state = State.LOADING
        path = storage.join(model.config.base_path, folder)
        attempts = self.options.max_num_load_retries + 1
        for attempt in range(1, attempts + 1):
            start = time.monotonic()
            try:
                servable = self._load(name, version, path, self.options.servable)
                if self.options.servable.warmup:
                    inference.warm_up(servable, self.options.servable.warmup_iterations)
            except Exception as e:  # noqa: BLE001 - a bad version must not stop the server
                error = as_serving_error(e)
                REGISTRY.load_attempt(path, False, 0)
                log.error('%s version %d failed to load (attempt %d of %d): %s', name, version, attempt, attempts,
                          error)
                if attempt < attempts and not self._stop.wait(self.options.load_retry_interval_seconds):
                    continue
                with self._lock:
                    state.state, state.error, state.failed = State.END, error, True
                return
            micros = (time.monotonic() - start) * 1e6
            REGISTRY.load_attempt(path, True, micros)
            with self._lock:
                state.servable, state.state, state.error = servable, State.AVAILABLE, None
            log.info('%s version %d loaded in %.1fs from %s', name, version, micros / 1e6, path)
            return

    def _unload(self, name: str, model: _Model, version: int) -> None:
        with self._lock:
            state = model.versions[version]
            servable, state.servable, state.state = state.servable, None, State.UNLOADING
        servable.close()  # queued requests finish; requests already holding it run without batching
        with self._lock:
            state.state = State.END
        log.info('%s version %d unloaded', name, version)

    def unavailable_models(self, names: List[str]) -> Optional[ServingError]:
        """ServerCore::WaitUntilModelsAvailable, once loading is done: UNKNOWN naming each model of `names` whose
        versions all failed to load, or None. (A model without any version yet is left to wait for one.)"""
        failures = []
        with self._lock:
            for name in names:
                model = self._models.get(name)
                states = model.versions if model else {}
                if states and not any(s.state == State.AVAILABLE for s in states.values()):
                    version = max(v for v, s in states.items() if s.state == State.END) if any(
                        s.state == State.END for s in states.values()) else max(states)
                    error = states[version].error
                    reason = f' due to error: {error.code.name}: {error.message}' if error else ''
                    failures.append(f'{{{{name: {name} version: {version}}}{reason}}}, ')
        if not failures:
            return None
        return ServingError(grpc.StatusCode.UNKNOWN,
                            f'{len(failures)} model(s) did not become available: {{{"".join(failures)}}}')

    def close(self) -> None:
        with self._lock:
            servables = [s.servable for m in self._models.values() for s in m.versions.values() if s.servable]
        for servable in servables:
            servable.close()
        if self._pool is not None:
            self._pool.shutdown(wait=False)

    # ---- lookups for requests ---------------------------------------------------------------------------
    def servable(self, spec) -> Servable:
        """The servable a ModelSpec asks for: its version, its version label's, or else the latest available."""
        if not spec.name:
            raise invalid_argument('ModelSpec has no name specified.')
        with self._lock:
            model = self._models.get(spec.name)
            if model is not None and model.removed:
                model = None
            choice = spec.WhichOneof('version_choice')
            if choice == 'version':
                version, request = spec.version.value, f'Specific({spec.name}, {spec.version.value})'
            elif choice == 'version_label':
                version = self._labels.get(spec.name, {}).get(spec.version_label)
                if version is None:
                    raise invalid_argument(f'Unrecognized servable version label: {spec.version_label}')
                request = f'Specific({spec.name}, {version})'
            else:
                version, request = None, f'Latest({spec.name})'
            loaded = {v: s.servable for v, s in (model.versions.items() if model else []) if s.servable}
            if version is None and loaded:
                version = max(loaded)
            servable = loaded.get(version)
        if servable is None:
            raise not_found(f'Servable not found for request: {request}')
        return servable

    def status(self, name: str, version: Optional[int] = None) -> List[get_model_status_pb2.ModelVersionStatus]:
        """GetModelStatus: every version the server has seen (newest first), or one version."""
        with self._lock:
            model = self._models.get(name)
            states = dict(model.versions) if model else {}
        if version is not None:
            if version not in states:
                raise not_found(f'Could not find version {version} of model {name}')
            states = {version: states[version]}
        if not states:
            raise not_found(f'Could not find any versions of model {name}')
        statuses = []
        for v in sorted(states, reverse=True):
            s = states[v]
            status = get_model_status_pb2.ModelVersionStatus(version=v, state=s.state)
            status.status.SetInParent()  # always present, OK included, as TF Serving sets it
            if s.error is not None:
                status.status.error_code = s.error.code.value[0]
                status.status.error_message = s.error.message
            statuses.append(status)
        return statuses

    def version_states(self) -> List[Tuple[str, str, str]]:
        """(model, version, state name) of every version, for the metrics page."""
        with self._lock:
            return [(name, str(v), State.Name(s.state)) for name, m in self._models.items()
                    for v, s in m.versions.items()]

    def loaded_versions(self, name: str) -> List[int]:
        with self._lock:
            model = self._models.get(name)
            return sorted(v for v, s in model.versions.items() if s.servable) if model else []

    def model_names(self) -> List[str]:
        with self._lock:
            return sorted(n for n, m in self._models.items() if not m.removed)
