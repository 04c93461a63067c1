"""Transform: TFX's Transform with the executor of executor.py; id, inputs, outputs and output format are TFX's."""
from tfx import v1 as tfx
from tfx.dsl.components.base import executor_spec

from tfx_tabular.components.transform import executor


class Transform(tfx.components.Transform):
    """TFX's Transform; only the executor differs (analyzer fingerprints in linear time)."""

    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)
