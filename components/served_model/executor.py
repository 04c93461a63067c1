"""ServedModel's executor: copies the version TF Serving serves now into the output Model artifact, and the reads
of that artifact the baseline Evaluator (components/evaluator/executor.py) makes again when it runs."""
import os
from typing import Any, Dict, List, Optional

from tfx import types
from tfx.dsl.components.base import base_executor
from tfx.dsl.io import fileio
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import path_utils

from tfx_tabular.pipeline.core import storage
from tfx_tabular.serving import model_config as mc

MODEL_KEY = 'model'
CANDIDATE_KEY = 'candidate'
BASE_PATH_KEY = 'model_base_path'
FOUND = 'found'
VERSION = 'version'
SOURCE = 'source'
BASE_PATH = 'base_path'
# Set on the Evaluator's evaluation artifact: the served version it compared with (0: none), and its folder.
BASELINE_VERSION = 'baseline_version'
BASELINE_SOURCE = 'baseline_source'


def served_version(model_base_path: str) -> Optional[int]:
    """The version TF Serving serves under `model_base_path` (local or gs://...), None if there is none.

    TF Serving serves the newest version unless `<push_dir>/models.config` gives the model another policy:
    a pin (`serving rollback --to N`) serves N. Of several versions served at once, the newest is taken.
    """
    base = storage.absolute(model_base_path)
    versions = mc.list_versions(base)
    if not versions:
        return None
    push_dir, name = base.rstrip('/').rsplit('/', 1) if storage.is_uri(base) else os.path.split(base)
    entry = mc.find_model(mc.read_models_config(mc.models_config_path(push_dir)), name)
    wanted = mc.wanted_versions(entry, versions) if entry is not None else versions[-1:]
    return max(wanted) if wanted else None


class Executor(base_executor.BaseExecutor):
    """Copies the served version into the output Model artifact (see component.py)."""

    def Do(self, input_dict: Dict[str, List[types.Artifact]], output_dict: Dict[str, List[types.Artifact]],
           exec_properties: Dict[str, Any]) -> None:
        base = storage.absolute(exec_properties[BASE_PATH_KEY])
        model = artifact_utils.get_single_instance(output_dict[MODEL_KEY])
        model.set_string_custom_property(BASE_PATH, base)
        version = served_version(base)
        if version is None:
            model.set_int_custom_property(FOUND, 0)
            return
        source = storage.join(base, str(version))
        target = path_utils.serving_model_dir(model.uri)
        with storage.staged_dir(target) as staging:  # saved_model.pb appears last, or all at once locally
            storage.copy_tree(source, staging)
        model.set_int_custom_property(FOUND, 1)
        model.set_int_custom_property(VERSION, version)
        model.set_string_custom_property(SOURCE, source)


def custom_property(artifact: types.Artifact, key: str):
    """A custom property whatever type it came back as (Kubeflow returns numbers as floats)."""
    return artifact.get_custom_property(key) if artifact.has_custom_property(key) else None


def _has_model(artifact: types.Artifact) -> bool:
    model_dir = path_utils.serving_model_path(artifact.uri, path_utils.is_old_model_artifact(artifact))
    return any(fileio.exists(os.path.join(model_dir, f)) for f in mc.SAVED_MODEL_FILES)


def baseline_found(input_dict: Dict[str, List[types.Artifact]]) -> bool:
    """Whether the Evaluator got a baseline holding a model (a ServedModel with found=1, or any other Model).

    The files decide, where the Evaluator will look for them."""
    artifacts = input_dict.get(standard_component_specs.BASELINE_MODEL_KEY) or []
    if not artifacts:
        return False
    if custom_property(artifacts[0], FOUND) is not None and not custom_property(artifacts[0], FOUND):
        return False
    return _has_model(artifacts[0])
