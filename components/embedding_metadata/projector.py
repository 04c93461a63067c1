"""The Embedding Projector log dir: `projector_config.pbtxt`, a float TSV and a metadata TSV per tensor.

Everything is written to a staging folder next to the artifact and published in one step (storage.staged_dir:
one rename locally, else file by file with the config last), so a TensorBoard already watching the folder never
reads a config that names missing files.
"""
import re
from dataclasses import dataclass
from typing import List

import numpy as np
from google.protobuf import text_format
from tensorboard.plugins.projector.projector_config_pb2 import ProjectorConfig

from tfx_tabular.components.embedding_metadata.locate import CONFIG_FILE
from tfx_tabular.pipeline.core import storage


@dataclass
class ProjectorTensor:
    name: str
    values: np.ndarray      # [rows, dimensions]
    header: List[str]       # metadata columns; the first is the label
    rows: List[List[str]]   # one per tensor row, in tensor row order

    def __post_init__(self):
        if len(self.rows) != self.values.shape[0]:
            raise ValueError(f'{self.name}: {len(self.rows)} labels for {self.values.shape[0]} rows')

    @property
    def file_stem(self) -> str:
        return re.sub(r'[^A-Za-z0-9_.-]+', '_', self.name)


def _cell(value) -> str:
    """TSV-safe text (a tab or newline inside a label would shift every later column or row)."""
    return re.sub(r'[\t\r\n]+', ' ', str(value)) or ' '


def _write(path: str, text: str) -> None:
    with storage.open_write(path) as f:  # inside the staging folder: nobody reads it yet
        f.write(text)


def write_logdir(uri: str, tensors: List[ProjectorTensor]) -> None:
    config = ProjectorConfig()
    with storage.staged_dir(uri.rstrip('/'), last=[CONFIG_FILE]) as staging:
        for tensor in tensors:
            values_file, metadata_file = f'{tensor.file_stem}.tsv', f'{tensor.file_stem}.metadata.tsv'
            # 9 significant digits round-trip float32 exactly: the TSV is the model's matrix, not an approximation.
            _write(storage.join(staging, values_file),
                   ''.join('\t'.join(f'{v:.9g}' for v in row) + '\n' for row in tensor.values.astype(np.float32)))
            lines = [tensor.header] + tensor.rows
            _write(storage.join(staging, metadata_file), ''.join('\t'.join(_cell(c) for c in line) + '\n'
                                                                 for line in lines))
            embedding = config.embeddings.add(tensor_name=tensor.name, tensor_path=values_file,
                                              metadata_path=metadata_file)
            embedding.tensor_shape.extend(tensor.values.shape)
        _write(storage.join(staging, CONFIG_FILE), text_format.MessageToString(config))

