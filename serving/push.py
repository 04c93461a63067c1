"""Pushing a SavedModel into TF Serving's layout, atomically, and rolling a model back to an earlier version.

A model server polls `<push_dir>/<model>/` and loads any integer-named folder holding a SavedModel, so a
version must appear complete or not at all: the copy goes to a hidden staging folder (not an integer, so
servers ignore it) that is renamed into place, an atomic step on one filesystem. Object stores (gs://, s3://)
cannot rename a folder atomically; there the version is written in place with saved_model.pb last, as TFX's
own Pusher does.
"""
import os
import time
import uuid
from typing import Optional, Tuple

from tfx_tabular.serving import model_config as mc
from tfx_tabular.pipeline.core import storage


class PushError(ValueError):
    """A push that cannot happen; names the path and the fix."""


def is_saved_model(path: str) -> bool:
    return any(storage.isfile(storage.join(path, f)) for f in mc.SAVED_MODEL_FILES)


def next_version(base_path: str) -> int:
    """TFX's version number (Unix time), but always above the versions already there."""
    taken = [int(n) for n in storage.listdir(base_path) if n.isdigit()]
    return max(int(time.time()), max(taken, default=0) + 1)


def push_model(model_dir: str, base_path: str, version: Optional[int] = None) -> Tuple[int, str]:
    """Copies the SavedModel at `model_dir` to `<base_path>/<version>` and lists the model in models.config.

    Returns (version, path). `version` defaults to `next_version`; an explicit version that exists is an error.
    """
    if not is_saved_model(model_dir):
        raise PushError(f'{model_dir} holds no saved_model.pb; pass the folder of an exported SavedModel')
    base_path = storage.absolute(base_path)
    push_dir = os.path.dirname(base_path)
    storage.makedirs(base_path)
    if storage.is_uri(base_path):
        chosen = version if version is not None else next_version(base_path)
        final = storage.join(base_path, str(chosen))
        if storage.exists(final):
            raise PushError(f'{final} exists; versions are never overwritten, push without a version number')
        storage.copy_tree(model_dir, final)
    else:
        staging = os.path.join(base_path, f'.incoming-{uuid.uuid4().hex}')
        try:
            storage.copy_tree(model_dir, staging)
            with mc.locked(push_dir):  # version choice and rename together: concurrent pushes get distinct versions
                chosen = version if version is not None else next_version(base_path)
                final = os.path.join(base_path, str(chosen))
                if os.path.exists(final):
                    raise PushError(f'{final} exists; versions are never overwritten, push without a version number')
                storage.publish_dir(staging, final)  # one rename: the version appears whole
        finally:
            storage.rmtree(staging)
    mc.update_models_config(push_dir)
    return chosen, final


def resolve_model(push_dir: str, model: Optional[str]) -> str:
    """The model to act on: `model` if given, else the only model in the push directory."""
    names = [m.name for m in mc.read_models_config(mc.models_config_path(push_dir)).model_config_list.config]
    names = sorted(set(names) | set(mc.pushed_models(push_dir)))
    if model:
        if model not in names:
            listed = ', '.join(names) or 'none'
            raise mc.ModelConfigError(f'no model {model!r} under {push_dir} (models there: {listed}); fix --model '
                                      'or --push_dir')
        return model
    if len(names) == 1:
        return names[0]
    if not names:
        raise mc.ModelConfigError(f'no pushed model under {push_dir}; run the pipeline first or fix --push_dir')
    raise mc.ModelConfigError(f'{push_dir} holds several models ({", ".join(names)}); choose one with --model')


def rollback(push_dir: str, model: str, to: str) -> str:
    """Pins `model` to version `to` in models.config (or `latest` to unpin); returns a line saying what changed.

    A pin is TF Serving's `specific` version policy: servers polling models.config switch to that version
    (loading it before unloading the others) and stay there across later pushes until unpinned.
    """
    push_dir = storage.absolute(push_dir)
    base_path = storage.join(push_dir, model)
    versions = mc.list_versions(base_path)
    if to != mc.LATEST:
        if not to.isdigit() or int(to) not in versions:
            raise mc.ModelConfigError(
                f'{model} has no version {to!r} in {base_path} (versions: '
                f'{", ".join(map(str, versions)) or "none"}); pass one of them, or --to latest')
    before = {}

    def change(config):
        entry = mc.find_model(config, model)
        if entry is None:
            raise mc.ModelConfigError(f'{model} has no pushed version in {base_path}; nothing to roll back')
        before['policy'] = mc.policy_description(entry)
        if to == mc.LATEST:
            mc.unpin(entry)
        else:
            mc.pin(entry, int(to))
        before['after'] = mc.policy_description(entry)

    mc.update_models_config(push_dir, change)
    return f'{model}: {before["policy"]} -> {before["after"]} in {mc.models_config_path(push_dir)}'
