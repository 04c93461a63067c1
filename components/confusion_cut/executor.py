"""Executor of ConfusionCut: counts the base model's confusion matrix on a held-out split, cuts its graph, and
writes confusion.json, cut.json and confusion_graph.png.

Which split. Confusions must be counted on examples the model did not train on: on 'train' a model that
memorised its data confuses nothing. With `hierarchical.holdout_fraction` (the default) ExampleGen writes a third
split, 'holdout', that no model trains on or is evaluated on: the cut and the hierarchical model's combiner are fit
there, and 'eval' stays unseen until the Evaluator compares base and hierarchical. Without it, the split is
'eval': the Trainer fits weights on 'train' only, and uses 'eval' for per-epoch validation and (with
`early_stopping_patience`) to pick the epoch kept, a choice among at most 10 checkpoints, not a fit; the
partition (one of 2^(n-1)) is then chosen on the split the comparison is made on, a small optimistic bias.

Any model kind works: predictions come from the `serving_default` signature (raw tf.Example -> scores, classes)
and true class ids from `transform_features`, the label exactly as the model was trained on it.
"""
import json
from typing import Any, Dict, List, Tuple

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
from tfx import types
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils
from tfx.utils import path_utils

from tfx_tabular.components.confusion_cut import maxcut
from tfx_tabular.components.confusion_cut import spec as keys
from tfx_tabular.components.confusion_cut.graph import write_outputs
from tfx_tabular.components.embedding_metadata.data import split_files
from tfx_tabular.transforms.preprocessing import label_key, parse_custom_config

BATCH = 512


def require_split(examples, split: str) -> List[str]:
    """The split's files, or one line saying which splits there are and how a 'holdout' split comes about."""
    splits = artifact_utils.decode_split_names(examples.split_names)
    if split not in splits:
        raise ValueError(f'the examples have no {split!r} split (they have {", ".join(splits)}); '
                         "hierarchical.holdout_fraction > 0 needs ExampleGen to write a 'holdout' split "
                         '(pipeline/hierarchical.py example_splits), or set holdout_fraction: 0')
    return split_files(examples, split)


def confusion_matrix(serving_dir: str, files: List[str], label_key_name: str,
                     names: List[str]) -> Tuple[np.ndarray, int]:
    """Rows: true class, columns: predicted class (highest score). Returns the matrix and the number of
    examples skipped because their label is not one of `names` (transform_features gives them id -1)."""
    model = tf.saved_model.load(serving_dir)
    serve, transform = model.signatures['serving_default'], model.signatures['transform_features']
    n = len(names)
    matrix = np.zeros((n, n), dtype=np.int64)
    skipped = 0
    for batch in tf.data.TFRecordDataset(files, compression_type='GZIP').batch(BATCH):
        outputs = serve(inputs=batch)
        served = [c.decode() for c in outputs['classes'][0].numpy()]
        if served != names:
            raise ValueError(f'the model serves classes {served}, the transform graph has {names}: the model was '
                             'not trained on this Transform output')
        predicted = np.argmax(outputs['scores'].numpy(), axis=1)
        truth = transform(examples=batch)[label_key_name].numpy().reshape(-1)
        known = (truth >= 0) & (truth < n)
        skipped += int((~known).sum())
        np.add.at(matrix, (truth[known], predicted[known]), 1)
    return matrix, skipped


def cut_model(serving_dir: str, transform_graph_uri: str, examples, output_uri: str, custom_config: Dict,
              split: str = keys.DEFAULT_SPLIT, exact_up_to: int = maxcut.EXACT_UP_TO, seed: int = 0) -> Dict:
    """Counts, cuts and writes the artifact's files into `output_uri`; returns cut.json's content."""
    from tfx_tabular.components.trainer.data import class_names
    _, label = parse_custom_config(custom_config)
    names = class_names(label, tft.TFTransformOutput(transform_graph_uri))
    if len(names) < 3:
        raise ValueError(f'ConfusionCut needs a multi-class label with at least 3 classes, {label.column!r} has '
                         f'{len(names)} ({", ".join(names)}); remove hierarchical from the config')
    matrix, skipped = confusion_matrix(serving_dir, require_split(examples, split), label_key(label), names)
    if matrix.sum() == 0:
        raise ValueError(f'no {split!r} example has a known class of {label.column!r}; cannot count confusions')
    cut = maxcut.cut_confusion(matrix, exact_up_to=exact_up_to, seed=seed, names=names)
    return write_outputs(output_uri, names, matrix, cut, split, skipped)


class Executor(base_executor.BaseExecutor):

    def Do(self, input_dict: Dict[str, List[types.Artifact]], output_dict: Dict[str, List[types.Artifact]],
           exec_properties: Dict[str, Any]) -> None:
        self._log_startup(input_dict, output_dict, exec_properties)
        model = artifact_utils.get_single_instance(input_dict[keys.MODEL_KEY])
        examples = artifact_utils.get_single_instance(input_dict[keys.EXAMPLES_KEY])
        transform_graph = artifact_utils.get_single_instance(input_dict[keys.TRANSFORM_GRAPH_KEY])
        output = artifact_utils.get_single_instance(output_dict[keys.OUTPUT_KEY])
        exact_up_to, seed = exec_properties.get(keys.EXACT_UP_TO_KEY), exec_properties.get(keys.SEED_KEY)
        result = cut_model(
            path_utils.serving_model_path(model.uri), transform_graph.uri, examples, output.uri,
            json.loads(exec_properties[keys.CUSTOM_CONFIG_KEY]),
            exec_properties.get(keys.SPLIT_KEY) or keys.DEFAULT_SPLIT,
            maxcut.EXACT_UP_TO if exact_up_to is None else int(exact_up_to), int(seed or 0))
        output.set_string_custom_property('split', result['split'])
        output.set_int_custom_property('classes', len(result['classes']))
        output.set_int_custom_property('examples', result['examples'])
        output.set_float_custom_property('accuracy', result['accuracy'])
        output.set_float_custom_property('cut_value', result['value'])
        output.set_float_custom_property('upper_bound', result['upper_bound'])
        output.set_float_custom_property('total_weight', result['total_weight'])
        output.set_int_custom_property('exact', int(result['exact']))
        output.set_string_custom_property('method', result['method'])
        output.set_string_custom_property('side_a', json.dumps(result['sides'][0]))
        output.set_string_custom_property('side_b', json.dumps(result['sides'][1]))
