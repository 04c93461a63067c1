"""ServedModel: the model TF Serving serves now, as a Model artifact the Evaluator compares the candidate with.

TFX finds a baseline with a Resolver node (latest blessed model), which open-source Kubeflow Pipelines cannot run.
This component reads the push directory itself: at run time it takes the version TF Serving serves under the
model base path (`<push_dir>/<model_name>`: the pinned one if `models.config` pins one, as `serving rollback`
does, else the newest integer version) and copies it into its output's `Format-Serving/`, where
`tfx.utils.path_utils.serving_model_path` (and so the Evaluator) looks. Custom properties: `found` (1/0),
`base_path`, and when found `version` and `source` (the version folder). With nothing served it writes no model
and sets found=0; the baseline Evaluator (components/evaluator/) then evaluates the candidate alone (a first run).

Caching. The node takes the candidate model as an input (`candidate`) and reads nothing from it: the input is
there so that TFX's cache key changes exactly when the candidate does, so a new candidate always meets the
model served at that moment, and a rerun with nothing new is fully cached. Keying on the served version (read
when the pipeline is built) cannot do both: the run that pushes a model changes the served version, so the
next identical run would re-evaluate the same candidate against its own copy and push it again, every run.
A cached ServedModel output can still be older than the served version when the Evaluator reruns for another
reason (a changed eval config, or a candidate from the cache): its executor reads the served
version again and uses the current one. What stays cached: an unchanged candidate with an unchanged eval
config is not re-evaluated when someone else pushes a version; change the config or data to re-evaluate.

Wiring (one node per candidate; with several models, `.with_id(f'ServedModel_{name}')`):

    served = ServedModel(model_base_path=model_push_dir(config), candidate=trainer.outputs['model'])
    evaluator = BaselineEvaluator(examples=..., model=trainer.outputs['model'],
                                  baseline_model=served.outputs['model'], eval_config=...)
    # components/evaluator/component.py: TFX's Evaluator with the baseline executor, node id 'Evaluator'
"""
from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ExecutionParameter

from tfx_tabular.components.served_model import executor
from tfx_tabular.components.served_model.executor import BASE_PATH_KEY, CANDIDATE_KEY, MODEL_KEY


class ServedModelSpec(types.ComponentSpec):
    PARAMETERS = {BASE_PATH_KEY: ExecutionParameter(type=str)}
    INPUTS = {CANDIDATE_KEY: ChannelParameter(type=standard_artifacts.Model)}
    OUTPUTS = {MODEL_KEY: ChannelParameter(type=standard_artifacts.Model)}


class ServedModel(base_component.BaseComponent):
    """The served model as a Model artifact (found=0 and no files when nothing is served yet)."""

    SPEC_CLASS = ServedModelSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

    def __init__(self, model_base_path: str, candidate: types.BaseChannel):
        """`model_base_path`: TF Serving's `<push_dir>/<model_name>`; `candidate`: the Trainer's model (cache key)."""
        super().__init__(spec=ServedModelSpec(**{BASE_PATH_KEY: model_base_path, CANDIDATE_KEY: candidate,
                                                 MODEL_KEY: types.Channel(type=standard_artifacts.Model)}))
