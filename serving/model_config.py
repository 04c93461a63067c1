"""The push directory as TF Serving reads it: `<push_dir>/<model>/<integer version>/saved_model.pb`, and
`<push_dir>/models.config`, a ModelServerConfig in text format listing every pushed model.

Also TF Serving's version policy (ServableVersionPolicy: latest N, all, specific), shared by the push/rollback
code that writes the policy and the local server that applies it. The push directory is a local folder or an
object-store URI (storage.py).
"""
import re
from typing import Callable, Dict, List, Optional

from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from tfx_tabular.pipeline.core import storage
from tfx_tabular.serving.protos import ProtoTextError, parse_text

MODELS_CONFIG = 'models.config'
SAVED_MODEL_FILES = ('saved_model.pb', 'saved_model.pbtxt')
LATEST = 'latest'


class ModelConfigError(ValueError):
    """A models.config that cannot be read, or a request it cannot satisfy; names the file and the fix."""


def models_config_path(push_dir: str) -> str:
    return storage.join(push_dir, MODELS_CONFIG)


def is_version_dir(base_path: str, name: str) -> bool:
    """TF Serving serves a child of the base path only if its name is an integer and it holds a SavedModel."""
    return name.isdigit() and any(storage.isfile(storage.join(base_path, name, f)) for f in SAVED_MODEL_FILES)


def list_versions(base_path: str) -> List[int]:
    """The complete pushed versions under a model's base path, ascending (empty if the path does not exist)."""
    return sorted(int(n) for n in storage.listdir(base_path) if is_version_dir(base_path, n))


# absl::SimpleAtoi, which TF Serving applies to folder names: ASCII spaces around, an optional sign, decimal digits.
_VERSION_NAME = re.compile(r'[ \t\n\v\f\r]*([+-]?[0-9]+)[ \t\n\v\f\r]*')
_INT64 = (-2 ** 63, 2 ** 63 - 1)


def parse_version(name: str) -> Optional[int]:
    """The version a folder named `name` holds for TF Serving (`00000123` is 123), or None if it is not one."""
    match = _VERSION_NAME.fullmatch(name)
    if match is None:
        return None
    version = int(match[1])
    return version if _INT64[0] <= version <= _INT64[1] else None


def version_folders(base_path: str) -> Dict[int, str]:
    """{version: folder name} as TF Serving's file-system source sees a base path: every child whose name parses
    as a number, whatever it holds (a folder that is no SavedModel fails to load). Of two folders with one number,
    the later name in sorted order wins, as there."""
    folders = {}
    for name in sorted(storage.listdir(base_path)):
        version = parse_version(name)
        if version is not None:
            folders[version] = name
    return folders


def parse_models_config(text: str, path: str = MODELS_CONFIG) -> model_server_config_pb2.ModelServerConfig:
    """The ModelServerConfig in `text`; a parse error reads as TF Serving's (line, column, what is wrong, the file)."""
    try:
        return parse_text(text, model_server_config_pb2.ModelServerConfig, path)
    except ProtoTextError as e:
        raise ModelConfigError(str(e)) from None


def read_models_config(path: str) -> model_server_config_pb2.ModelServerConfig:
    """The config at `path`, or an empty one if there is no file yet."""
    if not storage.exists(path):
        return model_server_config_pb2.ModelServerConfig()
    return parse_models_config(storage.read_bytes(path).decode('utf-8'), path)


def format_models_config(config: model_server_config_pb2.ModelServerConfig) -> str:
    return text_format.MessageToString(config)


def write_models_config(path: str, config: model_server_config_pb2.ModelServerConfig) -> None:
    """Replaces the file in one step, so a polling server never reads half a config."""
    storage.write_text(path, format_models_config(config))


def pushed_models(push_dir: str) -> List[str]:
    """Model folders under the push directory that hold at least one servable version."""
    return [n for n in sorted(storage.listdir(push_dir)) if list_versions(storage.join(push_dir, n))]


def locked(push_dir: str):
    """An exclusive lock on the push directory's models.config, for read-modify-write across processes."""
    return storage.locked(push_dir, f'.{MODELS_CONFIG}.lock')


def find_model(config, name: str):
    for model in config.model_config_list.config:
        if model.name == name:
            return model
    return None


def update_models_config(push_dir: str, change: Optional[Callable] = None) -> model_server_config_pb2.ModelServerConfig:
    """Under the lock: reads models.config, adds every pushed model it lacks, applies `change`, writes it back.

    Existing entries keep their policy and labels (a pin set by `serving rollback` survives later pushes).
    """
    push_dir = storage.absolute(push_dir)
    path = models_config_path(push_dir)
    with locked(push_dir):
        config = read_models_config(path)
        for name in pushed_models(push_dir):
            if find_model(config, name) is None:
                entry = config.model_config_list.config.add()
                entry.name = name
                entry.base_path = storage.join(push_dir, name)
                entry.model_platform = 'tensorflow'
        if change is not None:
            change(config)
        write_models_config(path, config)
    return config


def single_model_config(base_path: str, name: str) -> model_server_config_pb2.ModelServerConfig:
    """TF Serving's --model_name/--model_base_path: one model, latest version."""
    config = model_server_config_pb2.ModelServerConfig()
    entry = config.model_config_list.config.add()
    entry.name, entry.base_path, entry.model_platform = name, storage.absolute(base_path), 'tensorflow'
    return config


def rerooted(config, base_path_root: str) -> model_server_config_pb2.ModelServerConfig:
    """A copy whose base paths are `<base_path_root>/<model name>`: the same models as another machine mounts them."""
    copy = model_server_config_pb2.ModelServerConfig()
    copy.CopyFrom(config)
    for model in copy.model_config_list.config:
        model.base_path = base_path_root.rstrip('/') + '/' + model.name
    return copy


# ---- version policy ------------------------------------------------------------------------------------------
def policy_description(model_config) -> str:
    policy = model_config.model_version_policy
    kind = policy.WhichOneof('policy_choice')
    if kind == 'all':
        return 'all versions'
    if kind == 'specific':
        return 'pinned to version ' + ', '.join(str(v) for v in policy.specific.versions)
    return f'latest {policy.latest.num_versions or 1}'


def wanted_versions(model_config, available: List[int]) -> List[int]:
    """The versions TF Serving's ServableVersionPolicy asks for, among those on disk (default: the latest one)."""
    policy = model_config.model_version_policy
    kind = policy.WhichOneof('policy_choice')
    if kind == 'all':
        return sorted(available)
    if kind == 'specific':
        return sorted(set(policy.specific.versions) & set(available))
    n = policy.latest.num_versions or 1
    return sorted(available)[-n:]


def pin(model_config, version: int) -> None:
    model_config.model_version_policy.specific.Clear()
    model_config.model_version_policy.specific.versions.append(version)


def unpin(model_config) -> None:
    """Back to TF Serving's default policy: the latest version."""
    model_config.ClearField('model_version_policy')
