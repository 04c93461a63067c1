"""FairnessGate: blesses a model only if the Evaluator did and no gap between groups exceeds its bound.

TFMA 0.46 can bound one slice's value (the Evaluator does that, per group), but its cross-slice thresholds
reported every group pair as a missing cross slice when tried here, so the gaps (largest difference of a metric
between any two groups of a sensitive column) are computed here from the Evaluator's own per-slice output.
The output is a ModelBlessing the Pusher checks like the Evaluator's; it records each verdict (the per-group
values, the gap and its two groups, passed) so the summary and the report show the decision without re-making it.
"""
import json
import os
from typing import Dict, List

from tfx import v1 as tfx

from tfx_tabular.components.evaluator.results import group_values
from tfx_tabular.pipeline.core import storage

BLESSED_KEY = 'blessed'
FAILURES_KEY = 'fairness_failures'
VERDICTS_KEY = 'fairness_gates'  # JSON: [gap_verdict(...)], one per gap gate and sensitive column

__all__ = ['FairnessGate', 'gap_verdict', 'gap_verdicts', 'gap_failures', 'group_values']


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


@tfx.dsl.components.component
def FairnessGate(
        evaluation: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ModelEvaluation],
        evaluator_blessing: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ModelBlessing],
        blessing: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.ModelBlessing],
        gap_gates: tfx.dsl.components.Parameter[str],
        sensitive: tfx.dsl.components.Parameter[str]):
    verdicts = gap_verdicts(evaluation.uri, json.loads(gap_gates), json.loads(sensitive))
    failures = [failure_text(v) for v in verdicts if not v['passed']]
    blessed = evaluator_blessing.get_int_custom_property(BLESSED_KEY) == 1 and not failures
    blessing.set_int_custom_property(BLESSED_KEY, int(blessed))
    blessing.set_string_custom_property(FAILURES_KEY, json.dumps(failures))
    blessing.set_string_custom_property(VERDICTS_KEY, json.dumps(verdicts))
    storage.makedirs(blessing.uri)
    storage.write_text(os.path.join(blessing.uri, 'BLESSED' if blessed else 'NOT_BLESSED'), '')
