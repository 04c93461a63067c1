"""AnomalyGate: stops the pipeline before Transform when ExampleValidator found anomalies.

TFX's ExampleValidator records anomalies but lets the pipeline go on; training on data that broke the schema is
exactly what a user must not ship, so this component fails the run and says, per anomaly, what to do.
"""
from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter

from tfx_tabular.components.anomaly_gate import executor
from tfx_tabular.components.anomaly_gate.executor import ANOMALIES_KEY


class AnomalyGateSpec(types.ComponentSpec):
    PARAMETERS = {}
    INPUTS = {ANOMALIES_KEY: ChannelParameter(type=standard_artifacts.ExampleAnomalies)}
    OUTPUTS = {}


class AnomalyGate(base_component.BaseComponent):
    """Fails the run (executor.DataAnomaliesError) when ExampleValidator found anomalies in any split."""

    SPEC_CLASS = AnomalyGateSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

    def __init__(self, anomalies: types.BaseChannel):
        super().__init__(spec=AnomalyGateSpec(anomalies=anomalies))
