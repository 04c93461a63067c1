"""StreamingCsvExampleGen: TFX's CsvExampleGen with the streaming executor of executor.py (flat memory as the CSV
grows); id, outputs and output format are TFX's."""
from tfx import v1 as tfx
from tfx.dsl.components.base import executor_spec

from tfx_tabular.components.csv_example_gen import executor


class StreamingCsvExampleGen(tfx.components.CsvExampleGen):
    """TFX's CsvExampleGen with the streaming executor; keeps the id CsvExampleGen (task names, MLMD, summaries)."""

    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.with_id('CsvExampleGen')
