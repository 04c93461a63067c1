"""ModelSelector's executor: the best blessed model by one overall metric, copied into the output with its
blessing; the comparison recorded on the blessing (see component.py)."""
import json
from typing import Any, Dict, List, Tuple

from tfx import types
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils
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
