"""FairnessGate: blesses a model only if the Evaluator did and no gap between groups exceeds its bound.

TFMA 0.46 can bound one slice's value (the Evaluator does that, per group), but its cross-slice thresholds
reported every group pair as a missing cross slice when tried here, so the gaps (largest difference of a metric
between any two groups of a sensitive column) are computed here from the Evaluator's own per-slice output.
The output is a ModelBlessing the Pusher checks like the Evaluator's.
"""
import json
import os
from typing import Dict, List

from tfx import v1 as tfx

from tfx_tabular.pipeline.core.names import BINARY_METRIC_KEYS
from tfx_tabular.components.evaluator.results import is_candidate, slice_items

BLESSED_KEY = 'blessed'
FAILURES_KEY = 'fairness_failures'


def group_values(evaluation_uri: str, metric_key: str, column: str) -> Dict[str, float]:
    """{group: value} of one TFMA metric of the candidate model (not the baseline's) over the slices of one column."""
    import tensorflow_model_analysis as tfma
    values = {}
    for per_slice in tfma.load_metrics(evaluation_uri):
        items = slice_items(per_slice.slice_key)
        if len(items) != 1 or items[0][0] != column:
            continue
        group = items[0][1]
        for kv in per_slice.metric_keys_and_values:
            if (kv.key.name == metric_key and is_candidate(kv.key) and not kv.key.HasField('sub_key')
                    and kv.value.HasField('double_value')):
                values[group] = kv.value.double_value.value
    return values


def gap_failures(evaluation_uri: str, gates: List[Dict], columns: List[str]) -> List[str]:
    failures = []
    for gate in gates:
        metric_key = BINARY_METRIC_KEYS[gate['metric']]
        for column in columns:
            values = group_values(evaluation_uri, metric_key, column)
            if len(values) < 2:
                continue
            low, high = min(values, key=values.get), max(values, key=values.get)
            gap = values[high] - values[low]
            if gap > gate['max_gap']:
                failures.append(f'{gate["metric"]} gap between {column}={high} ({values[high]:.4f}) and '
                                f'{column}={low} ({values[low]:.4f}) = {gap:.4f} exceeds max_gap {gate["max_gap"]}')
    return failures


@tfx.dsl.components.component
def FairnessGate(
        evaluation: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ModelEvaluation],
        evaluator_blessing: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ModelBlessing],
        blessing: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.ModelBlessing],
        gap_gates: tfx.dsl.components.Parameter[str],
        sensitive: tfx.dsl.components.Parameter[str]):
    failures = gap_failures(evaluation.uri, json.loads(gap_gates), json.loads(sensitive))
    blessed = evaluator_blessing.get_int_custom_property(BLESSED_KEY) == 1 and not failures
    blessing.set_int_custom_property(BLESSED_KEY, int(blessed))
    blessing.set_string_custom_property(FAILURES_KEY, json.dumps(failures))
    os.makedirs(blessing.uri, exist_ok=True)
    with open(os.path.join(blessing.uri, 'BLESSED' if blessed else 'NOT_BLESSED'), 'w'):
        pass
