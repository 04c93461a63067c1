"""ServedModel: the model TF Serving serves now, as a Model artifact the Evaluator compares the candidate with.

TFX finds a baseline with a Resolver node (latest blessed model), which open-source Kubeflow Pipelines cannot run.
This component reads the push directory itself: at run time it takes the version TF Serving serves under the
model base path (`<push_dir>/<model_name>`: the pinned one if `models.config` pins one, as `serving rollback`
does, else the newest integer version) and copies it into its output's `Format-Serving/`, where
`tfx.utils.path_utils.serving_model_path` (and so the Evaluator) looks. Custom properties: `found` (1/0),
`base_path`, and when found `version` and `source` (the version folder). With nothing served it writes no model
and sets found=0; the Evaluator executor below then evaluates the candidate alone (a first run).

Caching. The node takes the candidate model as an input (`candidate`) and reads nothing from it: the input is
there so that TFX's cache key changes exactly when the candidate does, so a new candidate always meets the
model served at that moment, and a rerun with nothing new is fully cached. Keying on the served version (read
when the pipeline is built) cannot do both: the run that pushes a model changes the served version, so the
next identical run would re-evaluate the same candidate against its own copy and push it again, every run.
A cached ServedModel output can still be older than the served version when the Evaluator reruns for another
reason (a changed eval config, or a candidate from the cache): BaselineEvaluatorExecutor reads the served
version again and uses the current one. What stays cached: an unchanged candidate with an unchanged eval
config is not re-evaluated when someone else pushes a version; change the config or data to re-evaluate.

Wiring (one node per candidate; with several models, `.with_id(f'ServedModel_{name}')`):

    served = ServedModel(model_base_path=model_push_dir(config), candidate=trainer.outputs['model'])
    evaluator = BaselineEvaluator(examples=..., model=trainer.outputs['model'],
                                  baseline_model=served.outputs['model'], eval_config=...)
    # TFX's Evaluator with BASELINE_EVALUATOR_EXECUTOR, node id 'Evaluator' (tfx.components.Evaluator takes
    # no custom_executor_spec; `evaluator.executor_spec = BASELINE_EVALUATOR_EXECUTOR.copy()` also works)
"""
import os
import tempfile
from typing import Any, Dict, List, Optional

from absl import logging
from tfx import types
from tfx.components.evaluator import executor as evaluator_executor
from tfx.components.evaluator.component import Evaluator
from tfx.dsl.components.base import base_component, base_executor, executor_spec
from tfx.dsl.io import fileio
from tfx.types import artifact_utils, standard_artifacts, standard_component_specs
from tfx.types.component_spec import ChannelParameter, ExecutionParameter
from tfx.utils import path_utils

from tfx_tabular.serving import model_config as mc
from tfx_tabular.pipeline.core import storage

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


class ServedModelSpec(types.ComponentSpec):
    PARAMETERS = {BASE_PATH_KEY: ExecutionParameter(type=str)}
    INPUTS = {CANDIDATE_KEY: ChannelParameter(type=standard_artifacts.Model)}
    OUTPUTS = {MODEL_KEY: ChannelParameter(type=standard_artifacts.Model)}


class ServedModelExecutor(base_executor.BaseExecutor):
    """Copies the served version into the output Model artifact (see the module docstring)."""

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
        if storage.is_uri(target):  # object stores: no folder rename; saved_model.pb is written last
            storage.copy_tree(source, target)
        else:
            staging = f'{target}.incoming'
            storage.rmtree(staging)
            storage.copy_tree(source, staging)
            os.rename(staging, target)
        model.set_int_custom_property(FOUND, 1)
        model.set_int_custom_property(VERSION, version)
        model.set_string_custom_property(SOURCE, source)


class ServedModel(base_component.BaseComponent):
    """The served model as a Model artifact (found=0 and no files when nothing is served yet)."""

    SPEC_CLASS = ServedModelSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(ServedModelExecutor)

    def __init__(self, model_base_path: str, candidate: types.BaseChannel):
        """`model_base_path`: TF Serving's `<push_dir>/<model_name>`; `candidate`: the Trainer's model (cache key)."""
        super().__init__(spec=ServedModelSpec(**{BASE_PATH_KEY: model_base_path, CANDIDATE_KEY: candidate,
                                                 MODEL_KEY: types.Channel(type=standard_artifacts.Model)}))


def _property(artifact: types.Artifact, key: str):
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
    if _property(artifacts[0], FOUND) is not None and not _property(artifacts[0], FOUND):
        return False
    return _has_model(artifacts[0])


def without_baseline(eval_config_json: str) -> str:
    """The eval config (TFX's JSON) minus the baseline ModelSpec and every change threshold.

    TFMA's own `update_eval_config_with_defaults(has_baseline=False)` does the removal, the same call TFX's
    executor makes when no baseline artifact comes in.
    """
    import tensorflow_model_analysis as tfma
    from tfx.utils import proto_utils
    config = tfma.EvalConfig()
    proto_utils.json_to_proto(eval_config_json, config)
    config = tfma.utils.update_eval_config_with_defaults(config, has_baseline=False, rubber_stamp=True)
    return proto_utils.proto_to_json(config)


def _served_copy(base: str, version: int, folder: str) -> types.Artifact:
    """A Model artifact in `folder` holding a copy of `<base>/<version>`, as ServedModel would have written it."""
    model = standard_artifacts.Model()
    model.uri = folder
    source = storage.join(base, str(version))
    storage.copy_tree(source, path_utils.serving_model_dir(folder))
    model.set_int_custom_property(FOUND, 1)
    model.set_int_custom_property(VERSION, version)
    model.set_string_custom_property(SOURCE, source)
    model.set_string_custom_property(BASE_PATH, base)
    return model


class BaselineEvaluatorExecutor(evaluator_executor.Executor):
    """TFX's Evaluator executor, comparing the candidate with the model served when it runs, or with none.

    ServedModel's output can be older than this execution: it is cached with the candidate, and the Evaluator
    also reruns for other reasons (a changed eval config). So the served version is read again here: if it
    changed, that version is copied to a temp folder and evaluated instead; if nothing is served, the baseline
    input, its ModelSpec and the change thresholds are dropped (a first run). The evaluation artifact records
    what was used: custom properties `baseline_version` (0: none) and `baseline_source`.
    """

    def Do(self, input_dict: Dict[str, List[types.Artifact]], output_dict: Dict[str, List[types.Artifact]],
           exec_properties: Dict[str, Any]) -> None:
        key = standard_component_specs.BASELINE_MODEL_KEY
        baseline = (input_dict.get(key) or [None])[0]
        version, temp = None, None
        if baseline is not None:
            base = _property(baseline, BASE_PATH)
            recorded = int(_property(baseline, VERSION) or 0) if _property(baseline, FOUND) else None
            if base:  # a ServedModel output: what is served now decides
                version = served_version(base)
                if version != recorded:
                    logging.info('The served version under %s is now %s (ServedModel recorded %s): using it.',
                                 base, version, recorded)
                    if version is not None:
                        temp = tempfile.mkdtemp(prefix='served-model-')
                        copy = _served_copy(base, version, temp)
                        copy.id = baseline.id  # Kubeflow's entrypoint looks inputs up by id afterwards
                        baseline = copy
                if version is None:
                    baseline = None
            elif not baseline_found({key: [baseline]}):  # another Model artifact: its files decide
                baseline = None
        try:
            input_dict = {k: v for k, v in input_dict.items() if k != key}
            exec_properties = dict(exec_properties)
            if baseline is None:
                config_key = standard_component_specs.EVAL_CONFIG_KEY
                if exec_properties.get(config_key):
                    exec_properties[config_key] = without_baseline(exec_properties[config_key])
            else:
                input_dict[key] = [baseline]
            evaluation = artifact_utils.get_single_instance(output_dict[standard_component_specs.EVALUATION_KEY])
            evaluation.set_int_custom_property(BASELINE_VERSION, version or 0)
            evaluation.set_string_custom_property(BASELINE_SOURCE, '' if baseline is None else (
                _property(baseline, SOURCE) or baseline.uri))
            super().Do(input_dict, output_dict, exec_properties)
        finally:
            if temp:
                storage.rmtree(temp)


# A BeamExecutorSpec (an ExecutorClassSpec), so the pipeline's Beam arguments still reach the Evaluator.
BASELINE_EVALUATOR_EXECUTOR = executor_spec.BeamExecutorSpec(BaselineEvaluatorExecutor)


class BaselineEvaluator(Evaluator):
    """TFX's Evaluator running BaselineEvaluatorExecutor (tfx.components.Evaluator takes no custom executor)."""
    EXECUTOR_SPEC = BASELINE_EVALUATOR_EXECUTOR

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._id = self._id or 'Evaluator'  # the node id of TFX's Evaluator, unless .with_id() gives another
