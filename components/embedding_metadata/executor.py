"""Executor of EmbeddingMetadataGen: reads the trained model, the transform graph and the raw examples, and
writes the projector log dir (see rows.py for the tensors and projector.py for the files)."""
import json
from typing import Any, Dict, List

import tensorflow_transform as tft
from tfx import types
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils
from tfx.utils import path_utils

from tfx_tabular.components.embedding_metadata import spec as keys
from tfx_tabular.components.embedding_metadata.data import read_split, split_files
from tfx_tabular.components.embedding_metadata.network import layout, load_network
from tfx_tabular.components.embedding_metadata.projector import ProjectorTensor, write_logdir
from tfx_tabular.components.embedding_metadata.rows import projector_tensors
from tfx_tabular.components.embedding_metadata.values import ValueCatalog
from tfx_tabular.transforms.preprocessing import parse_custom_config

MAX_TRAIN_EXAMPLES = 100_000  # enough for frequencies and hash-bucket members; bounds memory on big data
MULTI_LABEL_TYPES = ('multilabel', 'multi_label')


def generate(serving_dir: str, transform_graph_uri: str, examples, output_uri: str, custom_config: Dict,
             slicing: List[str], max_examples: int = keys.DEFAULT_MAX_EXAMPLES) -> Dict[str, ProjectorTensor]:
    """Writes the log dir for one trained model into `output_uri`; returns the tensors written."""
    from tfx_tabular.components.trainer.data import class_names
    from tfx_tabular.transforms.feature_columns import feature_columns

    features, label = parse_custom_config(custom_config)
    multi_label = label.type in MULTI_LABEL_TYPES
    tft_output = tft.TFTransformOutput(transform_graph_uri)
    train = read_split(split_files(examples, 'train'), tft_output, MAX_TRAIN_EXAMPLES)
    evaluation = read_split(split_files(examples, 'eval'), tft_output, max_examples)
    network = load_network(serving_dir, lambda: feature_columns(features, tft_output), multi_label)
    segments = layout(network, {k: v[:64] for k, v in train.transformed.items()})
    catalog = ValueCatalog(features, tft_output, train)
    tensors = projector_tensors(network, segments, catalog, train, evaluation, label.column,
                                class_names(label, tft_output), slicing, multi_label)
    write_logdir(output_uri, list(tensors.values()))
    return tensors


class Executor(base_executor.BaseExecutor):

    def Do(self, input_dict: Dict[str, List[types.Artifact]], output_dict: Dict[str, List[types.Artifact]],
           exec_properties: Dict[str, Any]) -> None:
        self._log_startup(input_dict, output_dict, exec_properties)
        model = artifact_utils.get_single_instance(input_dict[keys.MODEL_KEY])
        transform_graph = artifact_utils.get_single_instance(input_dict[keys.TRANSFORM_GRAPH_KEY])
        examples = artifact_utils.get_single_instance(input_dict[keys.EXAMPLES_KEY])
        output = artifact_utils.get_single_instance(output_dict[keys.OUTPUT_KEY])
        max_examples = exec_properties.get(keys.MAX_EXAMPLES_KEY)
        tensors = generate(
            path_utils.serving_model_path(model.uri), transform_graph.uri, examples, output.uri,
            json.loads(exec_properties[keys.CUSTOM_CONFIG_KEY]),
            json.loads(exec_properties.get(keys.SLICING_KEY) or '[]'),
            keys.DEFAULT_MAX_EXAMPLES if max_examples is None else int(max_examples))
        output.set_string_custom_property(
            'tensors', json.dumps({name: list(t.values.shape) for name, t in tensors.items()}))
        output.set_int_custom_property('input_rows', int(tensors['feature_values'].values.shape[0]))
        output.set_int_custom_property('examples', int(tensors['examples'].values.shape[0])
                                       if 'examples' in tensors else 0)
