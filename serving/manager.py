"""Which versions of which models are loaded, following TF Serving's ModelServerConfig and version policies.

Each `sync` lists every model's base path, asks the model's ServableVersionPolicy which versions it wants,
loads the missing ones, and only then unloads the ones no longer wanted (TF Serving's availability-preserving
policy): a request always finds a version, and a request that already holds a version finishes on it.
States per version are TF Serving's (START, LOADING, AVAILABLE, UNLOADING, END), for GetModelStatus.
"""
import dataclasses
import logging
import threading
import time
from typing import Callable, Dict, List, Optional

import grpc
from tensorflow_serving.apis import get_model_status_pb2
from tensorflow_serving.config import model_server_config_pb2

from serving import model_config as mc
from serving.batching import BatchingOptions
from serving.errors import invalid_argument, not_found
from serving.servable import Servable

log = logging.getLogger('tfx_tabular.serving')
State = get_model_status_pb2.ModelVersionStatus.State
MAX_LOAD_ATTEMPTS = 5  # per version, as TF Serving's max_num_load_retries; then it stays END with the error


@dataclasses.dataclass
class VersionState:
    state: int = State.START
    error_code: grpc.StatusCode = grpc.StatusCode.OK
    error_message: str = ''
    servable: Optional[Servable] = None
    attempts: int = 0


@dataclasses.dataclass
class _Model:
    config: model_server_config_pb2.ModelConfig
    versions: Dict[int, VersionState] = dataclasses.field(default_factory=dict)
    removed: bool = False


def check_config(config: model_server_config_pb2.ModelServerConfig) -> None:
    names = set()
    for model in config.model_config_list.config:
        if not model.name or not model.base_path:
            raise invalid_argument(f'model config {model.name or "(unnamed)"}: needs both name and base_path')
        if model.name in names:
            raise invalid_argument(f'model {model.name} is listed twice in the config; keep one entry')
        if model.model_platform not in ('', 'tensorflow'):
            raise invalid_argument(f'model {model.name}: platform {model.model_platform!r} is not supported; '
                                   'use tensorflow')
        names.add(model.name)


class ModelManager:
    def __init__(self, batching: Optional[BatchingOptions] = None,
                 load: Callable[..., Servable] = Servable, warm_up: bool = True):
        self._batching = batching
        self._load = load
        self._warm_up = warm_up
        self._lock = threading.Lock()
        self._sync_lock = threading.Lock()  # one sync at a time (the poll thread, or a config reload)
        self._models: Dict[str, _Model] = {}

    # ---- configuration and disk -------------------------------------------------------------------------
    def apply_config(self, config: model_server_config_pb2.ModelServerConfig) -> None:
        """Takes a new model list; models no longer listed are unloaded by the next `sync`."""
        check_config(config)
        wanted = {m.name: m for m in config.model_config_list.config}
        with self._lock:
            for name, model in self._models.items():
                model.removed = name not in wanted
            for name, model_config in wanted.items():
                if name in self._models:
                    self._models[name].config = model_config
                else:
                    self._models[name] = _Model(model_config)

    def sync(self) -> None:
        """Brings loaded versions in line with the disk and the policies (loads first, then unloads)."""
        with self._sync_lock:
            with self._lock:
                models = list(self._models.items())
            for name, model in models:
                available = [] if model.removed else mc.list_versions(model.config.base_path)
                wanted = mc.wanted_versions(model.config, available)
                for version in sorted(wanted, reverse=True):
                    self._ensure_loaded(name, model, version)
                with self._lock:
                    loaded_wanted = [v for v in wanted
                                     if model.versions.get(v, VersionState()).state == State.AVAILABLE]
                    to_unload = [v for v, s in model.versions.items()
                                 if s.servable is not None and v not in wanted]
                if to_unload and not loaded_wanted and wanted:
                    log.warning('%s: keeping version(s) %s until a wanted version loads', name, to_unload)
                    continue
                for version in to_unload:
                    self._unload(name, model, version)
            with self._lock:
                for name in [n for n, m in self._models.items()
                             if m.removed and not any(s.servable for s in m.versions.values())]:
                    del self._models[name]

    def _ensure_loaded(self, name: str, model: _Model, version: int) -> None:
        with self._lock:
            state = model.versions.setdefault(version, VersionState())
            if state.servable is not None or state.attempts >= MAX_LOAD_ATTEMPTS:
                return
            state.state, state.attempts = State.LOADING, state.attempts + 1
        path = f'{model.config.base_path.rstrip("/")}/{version}'
        start = time.monotonic()
        try:
            servable = self._load(name, version, path, self._batching)
            if self._warm_up:
                servable.warm_up()
        except Exception as e:  # noqa: BLE001 - a bad version must not stop the server
            message = f'{type(e).__name__}: {e}'.splitlines()[0]
            with self._lock:
                state.state, state.error_code, state.error_message = State.END, grpc.StatusCode.UNKNOWN, message
            log.error('%s version %d failed to load (attempt %d of %d): %s', name, version, state.attempts,
                      MAX_LOAD_ATTEMPTS, message)
            return
        with self._lock:
            state.servable, state.state = servable, State.AVAILABLE
            state.error_code, state.error_message = grpc.StatusCode.OK, ''
        log.info('%s version %d loaded in %.1fs from %s', name, version, time.monotonic() - start, path)

    def _unload(self, name: str, model: _Model, version: int) -> None:
        with self._lock:
            state = model.versions[version]
            servable, state.servable, state.state = state.servable, None, State.UNLOADING
        servable.close()  # queued requests finish; requests already holding it run without batching
        with self._lock:
            state.state, state.attempts = State.END, 0
        log.info('%s version %d unloaded', name, version)

    def close(self) -> None:
        with self._lock:
            servables = [s.servable for m in self._models.values() for s in m.versions.values() if s.servable]
        for servable in servables:
            servable.close()

    # ---- lookups for requests ---------------------------------------------------------------------------
    def servable(self, spec) -> Servable:
        """The servable a ModelSpec asks for: its version, its version label, or else the latest available."""
        with self._lock:
            model = self._models.get(spec.name)
            if model is not None and model.removed:
                model = None
            if spec.HasField('version'):
                version, request = spec.version.value, f'Specific({spec.name}, {spec.version.value})'
            elif spec.version_label:
                if model is None or spec.version_label not in model.config.version_labels:
                    raise invalid_argument(f'Unrecognized servable version label: {spec.version_label}')
                version = model.config.version_labels[spec.version_label]
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
            status.status.error_code = s.error_code.value[0]
            status.status.error_message = s.error_message
            statuses.append(status)
        return statuses

    def loaded_versions(self, name: str) -> List[int]:
        with self._lock:
            model = self._models.get(name)
            return sorted(v for v, s in model.versions.items() if s.servable) if model else []

    def model_names(self) -> List[str]:
        with self._lock:
            return sorted(n for n, m in self._models.items() if not m.removed)

