"""The Embedding Projector log dir: `projector_config.pbtxt`, a float TSV and a metadata TSV per tensor.

Everything is written to a temporary folder next to the artifact and moved in file by file, the config last,
so a TensorBoard already watching the folder never reads a config that names missing files.
"""
import os
import re
import uuid
from dataclasses import dataclass
from typing import List

import numpy as np
import tensorflow as tf
from google.protobuf import text_format
from tensorboard.plugins.projector.projector_config_pb2 import ProjectorConfig

from tfx_tabular.components.embedding_metadata.locate import CONFIG_FILE


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
    with tf.io.gfile.GFile(path, 'w') as f:
        f.write(text)


def write_logdir(uri: str, tensors: List[ProjectorTensor]) -> None:
    config = ProjectorConfig()
    staging = os.path.join(os.path.dirname(uri.rstrip('/')), f'.{os.path.basename(uri.rstrip("/"))}.{uuid.uuid4().hex}')
    tf.io.gfile.makedirs(staging)
    names = []
    for tensor in tensors:
        values_file, metadata_file = f'{tensor.file_stem}.tsv', f'{tensor.file_stem}.metadata.tsv'
        # 9 significant digits round-trip float32 exactly: the TSV is the model's matrix, not an approximation.
        _write(os.path.join(staging, values_file),
               ''.join('\t'.join(f'{v:.9g}' for v in row) + '\n' for row in tensor.values.astype(np.float32)))
        lines = [tensor.header] + tensor.rows
        _write(os.path.join(staging, metadata_file), ''.join('\t'.join(_cell(c) for c in line) + '\n'
                                                             for line in lines))
        embedding = config.embeddings.add(tensor_name=tensor.name, tensor_path=values_file,
                                          metadata_path=metadata_file)
        embedding.tensor_shape.extend(tensor.values.shape)
        names += [values_file, metadata_file]
    _write(os.path.join(staging, CONFIG_FILE), text_format.MessageToString(config))
    tf.io.gfile.makedirs(uri)
    for name in names + [CONFIG_FILE]:
        tf.io.gfile.rename(os.path.join(staging, name), os.path.join(uri, name), overwrite=True)
    tf.io.gfile.rmtree(staging)

