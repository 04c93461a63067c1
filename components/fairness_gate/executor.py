"""FairnessGate's executor: each gap gate's verdict from the Evaluator's per-slice output, the blessing they and the
Evaluator's blessing give, and the verdicts recorded on it (see component.py)."""
import json
import os
from typing import Any, Dict, List

from tfx import types
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils

from tfx_tabular.components.evaluator.results import group_values
from tfx_tabular.pipeline.core import storage

EVALUATION_KEY = 'evaluation'
EVALUATOR_BLESSING_KEY = 'evaluator_blessing'
BLESSING_KEY = 'blessing'
GAP_GATES_KEY = 'gap_gates'  # JSON: [{'metric', 'max_gap'}]
SENSITIVE_KEY = 'sensitive'  # JSON: the sensitive columns
BLESSED_KEY = 'blessed'
FAILURES_KEY = 'fairness_failures'
VERDICTS_KEY = 'fairness_gates'  # JSON: [gap_verdict(...)], one per gap gate and sensitive column


def gap_verdict(metric: str, max_gap: float, column: str, values: Dict[str, float]) -> Dict:
    """One gap gate on one column: groups with an undefined value (NaN) take no part; fewer than two defined
    groups have no gap and pass."""
    finite = {g: v for g, v in values.items() if v == v}
    verdict = {'metric': metric, 'column': column, 'max_gap': max_gap, 'values': values,
               'high': None, 'low': None, 'gap': None, 'passed': True}
    if len(finite) >= 2:
        high, low = max(finite, key=finite.get), min(finite, key=finite.get)
        gap = finite[high] - finite[low]
        verdict.update(high=high, low=low, gap=gap, passed=not gap > max_gap)
    return verdict


def failure_text(verdict: Dict) -> str:
    column, values, high, low = verdict['column'], verdict['values'], verdict['high'], verdict['low']
    return (f'{verdict["metric"]} gap between {column}={high} ({values[high]:.4f}) and {column}={low} '
            f'({values[low]:.4f}) = {verdict["gap"]:.4f} exceeds max_gap {verdict["max_gap"]}')


def gap_verdicts(evaluation_uri: str, gates: List[Dict], columns: List[str]) -> List[Dict]:
    """The verdict of every gap gate ({'metric', 'max_gap'}) on every column, from the candidate's values."""
    return [gap_verdict(gate['metric'], gate['max_gap'], column, group_values(evaluation_uri, gate['metric'], column))
            for gate in gates for column in columns]


def gap_failures(evaluation_uri: str, gates: List[Dict], columns: List[str]) -> List[str]:
    return [failure_text(v) for v in gap_verdicts(evaluation_uri, gates, columns) if not v['passed']]


class Executor(base_executor.BaseExecutor):

    def Do(self, input_dict: Dict[str, List[types.Artifact]], output_dict: Dict[str, List[types.Artifact]],
           exec_properties: Dict[str, Any]) -> None:
        evaluation = artifact_utils.get_single_instance(input_dict[EVALUATION_KEY])
        evaluator_blessing = artifact_utils.get_single_instance(input_dict[EVALUATOR_BLESSING_KEY])
        blessing = artifact_utils.get_single_instance(output_dict[BLESSING_KEY])
        verdicts = gap_verdicts(evaluation.uri, json.loads(exec_properties[GAP_GATES_KEY]),
                                json.loads(exec_properties[SENSITIVE_KEY]))
        failures = [failure_text(v) for v in verdicts if not v['passed']]
        blessed = int(evaluator_blessing.get_custom_property(BLESSED_KEY) or 0) == 1 and not failures
        blessing.set_int_custom_property(BLESSED_KEY, int(blessed))
        blessing.set_string_custom_property(FAILURES_KEY, json.dumps(failures))
        blessing.set_string_custom_property(VERDICTS_KEY, json.dumps(verdicts))
        storage.makedirs(blessing.uri)
        storage.write_text(os.path.join(blessing.uri, 'BLESSED' if blessed else 'NOT_BLESSED'), '')
