"""FairnessGate: blesses a model only if the Evaluator did and no gap between groups exceeds its bound.

TFMA 0.46 can bound one slice's value (the Evaluator does that, per group), but its cross-slice thresholds
reported every group pair as a missing cross slice when tried here, so the gaps (largest difference of a metric
between any two groups of a sensitive column) are computed here from the Evaluator's own per-slice output.
The output is a ModelBlessing the Pusher checks like the Evaluator's; it records each verdict (the per-group
values, the gap and its two groups, passed) so the summary and the report show the decision without re-making it.
"""
import json
from typing import Dict, List

from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ExecutionParameter

from tfx_tabular.components.fairness_gate import executor
from tfx_tabular.components.fairness_gate.executor import (BLESSING_KEY, EVALUATION_KEY, EVALUATOR_BLESSING_KEY,
                                                           GAP_GATES_KEY, SENSITIVE_KEY)


class FairnessGateSpec(types.ComponentSpec):
    PARAMETERS = {GAP_GATES_KEY: ExecutionParameter(type=str), SENSITIVE_KEY: ExecutionParameter(type=str)}
    INPUTS = {EVALUATION_KEY: ChannelParameter(type=standard_artifacts.ModelEvaluation),
              EVALUATOR_BLESSING_KEY: ChannelParameter(type=standard_artifacts.ModelBlessing)}
    OUTPUTS = {BLESSING_KEY: ChannelParameter(type=standard_artifacts.ModelBlessing)}


class FairnessGate(base_component.BaseComponent):
    """Blesses a model only if the Evaluator did and every gap gate passes."""

    SPEC_CLASS = FairnessGateSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

    def __init__(self, evaluation: types.BaseChannel, evaluator_blessing: types.BaseChannel, gap_gates: List[Dict],
                 sensitive: List[str]):
        super().__init__(spec=FairnessGateSpec(
            evaluation=evaluation, evaluator_blessing=evaluator_blessing, gap_gates=json.dumps(gap_gates),
            sensitive=json.dumps(sensitive), blessing=types.Channel(type=standard_artifacts.ModelBlessing)))
