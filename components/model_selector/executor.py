"""ModelSelector's executor: the best blessed model by one overall metric, copied into the output with its
blessing; the comparison recorded on the blessing (see component.py)."""
import json
import math
from typing import Any, Dict, List, Optional, Tuple

from tfx import types
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils
from tfx.utils import io_utils, path_utils

from tfx_tabular.components.evaluator.results import overall_metrics

MODELS_KEY = 'models'
METRIC_KEY = 'metric'
DIRECTION_KEY = 'direction'
COMPLEXITY_KEY = 'complexity'  # {model name: rank}, lower is simpler; empty: the best value alone decides
MODEL_KEY = 'model'
BLESSING_KEY = 'blessing'
SELECTED = 'selected_model'
COMPARISON = 'comparison'


def choose(candidates: List[Tuple[str, bool, Dict[str, float]]], metric: str, direction: str,
           complexity: Optional[Dict[str, int]] = None) -> Tuple[str, str]:
    """The best blessed model ('' when none is blessed) and how it was chosen. candidates: (name, blessed, metrics),
    in the config's order (ties: the first). With `complexity` and accuracy to maximize, the one-standard-error rule
    (Breiman et al., 1984): the simplest model whose accuracy is within sqrt(p(1-p)/n) of the best accuracy p on the
    n eval rows. On bench/quality.py's datasets the model with the best eval accuracy was often not the best on
    rows the run never saw, and the simpler one within that margin was."""
    sign = 1 if direction == 'maximize' else -1
    blessed = [(name, metrics) for name, ok, metrics in candidates if ok and metric in metrics]
    rule = f'{metric} ({direction})'
    if not blessed:
        return '', rule
    best, top = max(blessed, key=lambda c: sign * c[1][metric])  # max keeps the first of equals
    if not complexity or metric != 'accuracy' or direction != 'maximize' or not top.get('example_count'):
        return best, rule
    p = top[metric]
    margin = math.sqrt(p * (1 - p) / top['example_count'])
    close = [name for name, metrics in blessed if p - metrics[metric] <= margin + 1e-12]
    simplest = min(close, key=complexity.__getitem__)  # min keeps the first of equals
    return simplest, (f'{rule}; the simplest within one standard error ({margin:.3f}) of the best, '
                      f'{best} {p:.4f}')


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
        selected, rule = choose(comparison, metric, direction, json.loads(exec_properties.get(COMPLEXITY_KEY) or '{}'))
        model_out = artifact_utils.get_single_instance(output_dict[MODEL_KEY])
        blessing_out = artifact_utils.get_single_instance(output_dict[BLESSING_KEY])
        if selected:
            chosen = artifact_utils.get_single_instance(input_dict[f'{MODEL_KEY}_{selected}'])
            io_utils.copy_dir(path_utils.serving_model_path(chosen.uri), path_utils.serving_model_path(model_out.uri))
            model_out.set_string_custom_property('source_model_uri', chosen.uri)
        model_out.set_string_custom_property(SELECTED, selected)
        blessing_out.set_int_custom_property('blessed', 1 if selected else 0)
        blessing_out.set_string_custom_property(SELECTED, selected)
        blessing_out.set_string_custom_property(METRIC_KEY, rule)
        blessing_out.set_string_custom_property(COMPARISON, json.dumps(
            [{'model': n, 'blessed': b, 'metrics': {k: round(v, 4) for k, v in m.items()}}
             for n, b, m in comparison]))
