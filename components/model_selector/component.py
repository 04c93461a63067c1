"""ModelSelector: when a run trains several models, picks the one the Pusher gets.

Each model has its own Evaluator (same eval split, slices, metrics and gates) and, with fairness gates, its own
FairnessGate. Among the blessed models the selector takes the best value of `evaluation.select.metric` on the
overall slice (ties: the first listed; for accuracy, with `prefer_simpler`, the simplest model within one standard
error of the best: see executor.choose), copies it into its `model` output and blesses that; with no blessed model
its blessing is 0 and the Pusher pushes nothing. The comparison (every model's overall metrics and blessing) is
recorded on the blessing artifact, so the summary reads the choice from MLMD.

The spec has one input key per model (`model_<name>`, `evaluation_<name>`, `blessing_<name>`), built for the
configured model names: plain Channels, which every orchestrator (Kubeflow V2 included) supports.
"""
import json
from typing import Dict, List, Optional, Tuple

from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ExecutionParameter

from tfx_tabular.components.model_selector import executor
from tfx_tabular.components.model_selector.executor import (BLESSING_KEY, COMPLEXITY_KEY, DIRECTION_KEY, METRIC_KEY,
                                                             MODEL_KEY, MODELS_KEY)


def _spec_class(names: List[str]) -> type:
    inputs = {}
    for name in names:
        inputs[f'{MODEL_KEY}_{name}'] = ChannelParameter(type=standard_artifacts.Model)
        inputs[f'evaluation_{name}'] = ChannelParameter(type=standard_artifacts.ModelEvaluation)
        inputs[f'{BLESSING_KEY}_{name}'] = ChannelParameter(type=standard_artifacts.ModelBlessing)
    return type('ModelSelectorSpec', (types.ComponentSpec,), {
        'PARAMETERS': {MODELS_KEY: ExecutionParameter(type=str), METRIC_KEY: ExecutionParameter(type=str),
                       DIRECTION_KEY: ExecutionParameter(type=str), COMPLEXITY_KEY: ExecutionParameter(type=str)},
        'INPUTS': inputs,
        'OUTPUTS': {MODEL_KEY: ChannelParameter(type=standard_artifacts.Model),
                    BLESSING_KEY: ChannelParameter(type=standard_artifacts.ModelBlessing)},
    })


class ModelSelector(base_component.BaseComponent):
    """Pushes the best blessed of several models (see the module docstring)."""

    SPEC_CLASS = types.ComponentSpec  # replaced per instance: the input keys depend on the model names
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

    def __init__(self, candidates: Dict[str, Tuple[types.BaseChannel, types.BaseChannel, types.BaseChannel]],
                 metric: str, direction: str, complexity: Optional[Dict[str, int]] = None):
        """candidates: {model name: (model, evaluation, blessing) channels}, in the config's order; complexity:
        {model name: rank}, lower is simpler (None: the best value alone decides)."""
        spec_class = _spec_class(list(candidates))
        channels = {}
        for name, (model, evaluation, blessing) in candidates.items():
            channels.update({f'{MODEL_KEY}_{name}': model, f'evaluation_{name}': evaluation,
                             f'{BLESSING_KEY}_{name}': blessing})
        super().__init__(spec=spec_class(
            models=json.dumps(list(candidates)), metric=metric, direction=direction,
            complexity=json.dumps(complexity or {}),
            model=types.Channel(type=standard_artifacts.Model),
            blessing=types.Channel(type=standard_artifacts.ModelBlessing), **channels))
