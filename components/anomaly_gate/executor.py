"""AnomalyGate's executor: reads the ExampleAnomalies of every split and fails the run with one line per anomaly,
each saying what to do."""
import os
from typing import Any, Dict, List

from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx import types
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils
from tfx.utils import io_utils

ANOMALIES_KEY = 'anomalies'
SCHEMA_DIFF_FILE = 'SchemaDiff.pb'


class DataAnomaliesError(RuntimeError):
    """The data broke the schema; `lines` holds one readable line per anomaly."""

    def __init__(self, lines: List[str]):
        self.lines = lines
        super().__init__('ExampleValidator found anomalies:\n' + '\n'.join(lines))


def _advice(column: str, reason: anomalies_pb2.AnomalyInfo.Reason) -> str:
    kind = anomalies_pb2.AnomalyInfo.Type.Name(reason.type)
    if 'STRING_VALUES' in kind or 'OUT_OF_DOMAIN' in kind or 'OUT_OF_RANGE' in kind:
        return ('if these values are legitimate, re-run `tfx-tabular schema freeze` to accept them; '
                'otherwise fix the data')
    if 'COLUMN_DROPPED' in kind or 'MISSING' in kind or 'FEATURE_TYPE_NOT_PRESENT' in kind:
        return f'add column {column!r} back to the CSV, or re-freeze the schema if it was dropped on purpose'
    if 'TYPE' in kind:
        return f'make column {column!r} hold one type again (check for stray text in a numeric column)'
    return 'fix the data, or re-freeze the schema with `tfx-tabular schema freeze` if the change is intended'


def describe(anomalies: anomalies_pb2.Anomalies, split: str) -> List[str]:
    lines = []
    for column, info in sorted(anomalies.anomaly_info.items()):
        for reason in info.reason or [anomalies_pb2.AnomalyInfo.Reason(description=info.description)]:
            lines.append(f'[{split}] column {column!r}: {reason.short_description or info.short_description}: '
                         f'{reason.description} -> {_advice(column, reason)}')
    if anomalies.HasField('dataset_anomaly_info'):
        info = anomalies.dataset_anomaly_info
        lines.append(f'[{split}] dataset: {info.description} -> fix the data')
    return lines


def read_anomalies(artifact) -> List[str]:
    lines = []
    for split in artifact_utils.decode_split_names(artifact.split_names):
        path = os.path.join(artifact_utils.get_split_uri([artifact], split), SCHEMA_DIFF_FILE)
        lines += describe(anomalies_pb2.Anomalies.FromString(io_utils.read_bytes_file(path)), split)
    return lines


class Executor(base_executor.BaseExecutor):

    def Do(self, input_dict: Dict[str, List[types.Artifact]], output_dict: Dict[str, List[types.Artifact]],
           exec_properties: Dict[str, Any]) -> None:
        lines = read_anomalies(artifact_utils.get_single_instance(input_dict[ANOMALIES_KEY]))
        if lines:
            raise DataAnomaliesError(lines)
