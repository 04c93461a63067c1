"""ModelSelector: when a run trains several models, picks the one the Pusher gets.

Each model has its own Evaluator (same eval split, slices, metrics and gates) and, with fairness gates, its own
FairnessGate. Among the blessed models the selector takes the best value of `evaluation.select.metric` on the
overall slice (ties: the first listed), copies it into its `model` output and blesses that; with no blessed model
its blessing is 0 and the Pusher pushes nothing. The comparison (every model's overall metrics and blessing) is
recorded on the blessing artifact, so the summary reads the choice from MLMD.

The spec has one input key per model (`model_<name>`, `evaluation_<name>`, `blessing_<name>`), built for the
configured model names: plain Channels, which every orchestrator (Kubeflow V2 included) supports.
"""
import json
from typing import Any, Dict, List, Tuple

from tfx import types
from tfx.dsl.components.base import base_component, base_executor, executor_spec
from tfx.types import artifact_utils, standard_artifacts
from tfx.types.component_spec import ChannelParameter, ExecutionParameter
from tfx.utils import io_utils, path_utils

from tfx_tabular.components.evaluator.results import overall_metrics

MODELS_KEY = 'models'
METRIC_KEY = 'metric'
DIRECTION_KEY = 'direction'
MODEL_KEY = 'model'
BLESSING_KEY = 'blessing'
SELECTED = 'selected_model'
COMPARISON = 'comparison'


def choose(candidates: List[Tuple[str, bool, Dict[str, float]]], metric: str, direction: str) -> str:
    """The name of the best blessed model, '' when none is blessed. candidates: (name, blessed, metrics)."""
    sign = 1 if direction == 'maximize' else -1
    best, best_value = '', None
    for name, blessed, metrics in candidates:
        if not blessed or metric not in metrics:
            continue
        if best_value is None or sign * metrics[metric] > sign * best_value:
            best, best_value = name, metrics[metric]
    return best


class Executor(base_executor.BaseExecutor):

    def Do(self, input_dict: Dict[str, List[types.Artifact]], output_dict: Dict[str, List[types.Artifact]],
           exec_properties: Dict[str, Any]) -> None:
        self._log_startup(input_dict, output_dict, exec_properties)
        metric, direction = exec_properties[METRIC_KEY], exec_properties[DIRECTION_KEY]
        comparison = []
        for name in json.loads(exec_properties[MODELS_KEY]):
            blessing = artifact_utils.get_single_instance(input_dict[f'{BLESSING_KEY}_{name}'])
            evaluation = artifact_utils.get_single_instance(input_dict[f'evaluation_{name}'])
            comparison.append((name, blessing.get_int_custom_property('blessed') == 1,
                               overall_metrics(evaluation.uri)))
        selected = choose(comparison, metric, direction)
        model_out = artifact_utils.get_single_instance(output_dict[MODEL_KEY])
        blessing_out = artifact_utils.get_single_instance(output_dict[BLESSING_KEY])
        if selected:
            chosen = artifact_utils.get_single_instance(input_dict[f'{MODEL_KEY}_{selected}'])
            io_utils.copy_dir(path_utils.serving_model_path(chosen.uri), path_utils.serving_model_path(model_out.uri))
            model_out.set_string_custom_property('source_model_uri', chosen.uri)
        model_out.set_string_custom_property(SELECTED, selected)
        blessing_out.set_int_custom_property('blessed', 1 if selected else 0)
        blessing_out.set_string_custom_property(SELECTED, selected)
        blessing_out.set_string_custom_property(METRIC_KEY, f'{metric} ({direction})')
        blessing_out.set_string_custom_property(COMPARISON, json.dumps(
            [{'model': n, 'blessed': b, 'metrics': {k: round(v, 4) for k, v in m.items()}}
             for n, b, m in comparison]))


def _spec_class(names: List[str]) -> type:
    inputs = {}
    for name in names:
        inputs[f'{MODEL_KEY}_{name}'] = ChannelParameter(type=standard_artifacts.Model)
        inputs[f'evaluation_{name}'] = ChannelParameter(type=standard_artifacts.ModelEvaluation)
        inputs[f'{BLESSING_KEY}_{name}'] = ChannelParameter(type=standard_artifacts.ModelBlessing)
    return type('ModelSelectorSpec', (types.ComponentSpec,), {
        'PARAMETERS': {MODELS_KEY: ExecutionParameter(type=str), METRIC_KEY: ExecutionParameter(type=str),
                       DIRECTION_KEY: ExecutionParameter(type=str)},
        'INPUTS': inputs,
        'OUTPUTS': {MODEL_KEY: ChannelParameter(type=standard_artifacts.Model),
                    BLESSING_KEY: ChannelParameter(type=standard_artifacts.ModelBlessing)},
    })


class ModelSelector(base_component.BaseComponent):
    """Pushes the best blessed of several models (see the module docstring)."""

    SPEC_CLASS = types.ComponentSpec  # replaced per instance: the input keys depend on the model names
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

    def __init__(self, candidates: Dict[str, Tuple[types.BaseChannel, types.BaseChannel, types.BaseChannel]],
                 metric: str, direction: str):
        """candidates: {model name: (model, evaluation, blessing) channels}, in the config's order."""
        spec_class = _spec_class(list(candidates))
        channels = {}
        for name, (model, evaluation, blessing) in candidates.items():
            channels.update({f'{MODEL_KEY}_{name}': model, f'evaluation_{name}': evaluation,
                             f'{BLESSING_KEY}_{name}': blessing})
        super().__init__(spec=spec_class(
            models=json.dumps(list(candidates)), metric=metric, direction=direction,
            model=types.Channel(type=standard_artifacts.Model),
            blessing=types.Channel(type=standard_artifacts.ModelBlessing), **channels))
