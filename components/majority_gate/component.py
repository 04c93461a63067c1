"""MajorityGate: the Evaluator's (or FairnessGate's) blessing, kept only if the model beats the majority-class
floor of the eval split it was evaluated on (see the package docstring and executor.py)."""
from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ExecutionParameter
from tfx.utils import json_utils

from tfx_tabular.components.majority_gate import executor
from tfx_tabular.components.majority_gate.executor import (BLESSING_KEY, CUSTOM_CONFIG_KEY, EVALUATION_KEY, EXAMPLES_KEY,
                                               FLOOR_KEY, TRANSFORM_GRAPH_KEY, UPSTREAM_BLESSING_KEY)


class MajorityGateSpec(types.ComponentSpec):
    PARAMETERS = {
        # JSON: the config's features and label (preprocessing.custom_config): the label column and type.
        CUSTOM_CONFIG_KEY: ExecutionParameter(type=str),
        # JSON: evaluation.floor (config.FloorConfig).
        FLOOR_KEY: ExecutionParameter(type=str),
    }
    INPUTS = {
        EVALUATION_KEY: ChannelParameter(type=standard_artifacts.ModelEvaluation),
        UPSTREAM_BLESSING_KEY: ChannelParameter(type=standard_artifacts.ModelBlessing),
        # The raw ExampleGen examples: the floor is counted on the split the Evaluator evaluated.
        EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples),
        # For the raw label's type and the class names (multi-label: the classes the model scores).
        TRANSFORM_GRAPH_KEY: ChannelParameter(type=standard_artifacts.TransformGraph),
    }
    OUTPUTS = {
        BLESSING_KEY: ChannelParameter(type=standard_artifacts.ModelBlessing),
    }


class MajorityGate(base_component.BaseComponent):
    """Blesses a model only if the upstream gate did and the model beats the majority-class floor."""

    SPEC_CLASS = MajorityGateSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

    def __init__(self, evaluation: types.BaseChannel, upstream_blessing: types.BaseChannel,
                 examples: types.BaseChannel, transform_graph: types.BaseChannel, custom_config: dict, floor: dict):
        super().__init__(spec=MajorityGateSpec(
            evaluation=evaluation, upstream_blessing=upstream_blessing, examples=examples,
            transform_graph=transform_graph, custom_config=json_utils.dumps(custom_config),
            floor=json_utils.dumps(floor), blessing=types.Channel(type=standard_artifacts.ModelBlessing)))
