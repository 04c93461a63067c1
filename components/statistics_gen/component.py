"""InProcessStatisticsGen: TFX's StatisticsGen with the executor of executor.py; id, outputs and output format are
TFX's."""
from tfx import v1 as tfx
from tfx.dsl.components.base import executor_spec

from tfx_tabular.components.statistics_gen import executor


class InProcessStatisticsGen(tfx.components.StatisticsGen):
    """TFX's StatisticsGen, in-process for small data; keeps the id StatisticsGen (task names, MLMD, summaries)."""

    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.with_id('StatisticsGen')
