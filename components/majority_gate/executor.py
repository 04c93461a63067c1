"""Executor of MajorityGate: counts the label on the eval split, derives the floor a constant predictor sets, and
checks the candidate's overall metrics (as the Evaluator computed them) against it.

The floor, per label type, is what always giving one answer scores on the very rows the Evaluator scored:
- binary and multi-class: the most frequent class's share of the eval rows (accuracy);
- multi-label: accuracy counts every (row, class) decision, so the best constant answers each class by its own
  majority: the mean over classes of max(share with the class, share without).
Accuracy must exceed that floor by more than `accuracy_margin` (a tie is not a win). A binary label whose
majority class holds at least `imbalanced_from` of the rows also needs AUC >= 0.5 + `auc_margin`: there a
model can match the floor's accuracy by answering the majority class, and only a balanced metric shows whether
it learnt anything; a constant's AUC is 0.5.

The output blessing carries `blessed` (1 only if the upstream gate blessed too, or gave no verdict), `floor_failures` (JSON, one
line per failed bound, as the summary prints them) and `floor` (JSON: the counts and bounds, for the summary and
the report).
"""
import json
import os
from collections import Counter
from typing import Any, Dict, List

import tensorflow as tf
import tensorflow_transform as tft
from tfx import types
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils
from tfx.utils import io_utils

from tfx_tabular.components.embedding_metadata.data import split_files
from tfx_tabular.components.fairness_gate.executor import BLESSED_KEY
from tfx_tabular.components.evaluator.results import overall_metrics
from tfx_tabular.transforms.preprocessing import parse_custom_config

EVALUATION_KEY = 'evaluation'
UPSTREAM_BLESSING_KEY = 'upstream_blessing'
EXAMPLES_KEY = 'examples'
TRANSFORM_GRAPH_KEY = 'transform_graph'
BLESSING_KEY = 'blessing'
CUSTOM_CONFIG_KEY = 'custom_config'
FLOOR_KEY = 'floor'
FAILURES_PROPERTY = 'floor_failures'
FLOOR_PROPERTY = 'floor'
EVAL_SPLIT = 'eval'  # the Evaluator's default split, the one it scores
BATCH = 1024
TOLERANCE = 1e-9  # TFMA sums weights in floating point: a constant predictor's accuracy may differ by rounding


def label_values(files: List[str], column: str, spec) -> List[str]:
    """The raw label of every example in `files` (gzipped tf.Examples), as text; '' when missing."""
    values = []
    for batch in tf.data.TFRecordDataset(files, compression_type='GZIP').batch(BATCH):
        parsed = tf.io.parse_example(batch, {column: spec})[column]
        if isinstance(parsed, tf.SparseTensor):
            rows = tf.RaggedTensor.from_sparse(parsed).to_list()
        else:
            rows = parsed.numpy().reshape(len(batch), -1).tolist()
        values += [_text(row[0]) if row else '' for row in rows]
    return values


def _text(value) -> str:
    if isinstance(value, bytes):
        return value.decode('utf-8', errors='replace')
    return str(int(value)) if float(value).is_integer() else str(value)


def majority_floor(values: List[str], label, classes: List[str]) -> Dict[str, Any]:
    """The constant predictor's accuracy on these labels, and what it answers (see the module docstring)."""
    n = len(values)
    if not n:
        raise ValueError(f'the {EVAL_SPLIT!r} split has no examples, so no model can be shown to beat a constant')
    if label.type == 'multilabel':
        present = Counter(c for v in values for c in {p.strip() for p in v.split(label.delimiter)} if c)
        shares = {c: max(present[c], n - present[c]) / n for c in classes}
        return {'rate': sum(shares.values()) / len(shares), 'examples': n,
                'answer': 'each class by its own majority', 'counts': {c: present[c] for c in classes}}
    counts = Counter(values)
    answer, top = counts.most_common(1)[0]
    return {'rate': top / n, 'examples': n, 'answer': answer, 'counts': dict(counts.most_common())}


def floor_failures(metrics: Dict[str, float], floor: Dict[str, Any], settings: Dict[str, Any]) -> List[str]:
    """One line per bound of the floor the candidate's overall metrics miss."""
    failures = []
    accuracy, bound = metrics.get('accuracy'), floor['accuracy']
    what = (f'the majority-class rate of the {EVAL_SPLIT} split {floor["rate"]:.4f} (always answering '
            f'{floor["answer"]!r}, {floor["examples"]} rows)')
    margin = f' + accuracy_margin {settings["accuracy_margin"]:g}' if settings['accuracy_margin'] else ''
    if accuracy is None or accuracy != accuracy:
        failures.append(f'accuracy was not computed on overall, so it cannot be shown to beat {what}')
    elif accuracy <= bound + TOLERANCE:
        failures.append(f'accuracy = {accuracy:.4f} on overall does not beat {what}{margin}')
    if floor.get('auc') is not None:
        auc = metrics.get('auc')
        if auc is None or auc != auc or auc < floor['auc'] - TOLERANCE:
            shown = 'was not computed' if auc is None or auc != auc else f'= {auc:.4f}'
            failures.append(f'auc {shown} on overall is below {floor["auc"]:.4f} (a constant scores 0.5, + '
                            f'auc_margin {settings["auc_margin"]:g}): the label is imbalanced, the majority class '
                            f'holds {floor["rate"]:.4f} of the {EVAL_SPLIT} rows')
    return failures


def check(evaluation_uri: str, examples, transform_graph_uri: str, custom_config: Dict,
          settings: Dict[str, Any]) -> Dict[str, Any]:
    """{'floor': counts and bounds, 'failures': [...]} for the candidate evaluated at `evaluation_uri`."""
    from tfx_tabular.components.trainer.data import class_names
    _, label = parse_custom_config(custom_config)
    tft_output = tft.TFTransformOutput(transform_graph_uri)
    values = label_values(split_files(examples, EVAL_SPLIT), label.column,
                          tft_output.raw_feature_spec()[label.column])
    floor = majority_floor(values, label, class_names(label, tft_output))
    floor['accuracy'] = floor['rate'] + settings['accuracy_margin']
    imbalanced = label.type == 'binary' and floor['rate'] >= settings['imbalanced_from']
    floor['auc'] = 0.5 + settings['auc_margin'] if imbalanced else None
    return {'floor': floor, 'failures': floor_failures(overall_metrics(evaluation_uri), floor, settings)}


class Executor(base_executor.BaseExecutor):

    def Do(self, input_dict: Dict[str, List[types.Artifact]], output_dict: Dict[str, List[types.Artifact]],
           exec_properties: Dict[str, Any]) -> None:
        self._log_startup(input_dict, output_dict, exec_properties)
        evaluation = artifact_utils.get_single_instance(input_dict[EVALUATION_KEY])
        upstream = artifact_utils.get_single_instance(input_dict[UPSTREAM_BLESSING_KEY])
        result = check(evaluation.uri, artifact_utils.get_single_instance(input_dict[EXAMPLES_KEY]),
                       artifact_utils.get_single_instance(input_dict[TRANSFORM_GRAPH_KEY]).uri,
                       json.loads(exec_properties[CUSTOM_CONFIG_KEY]), json.loads(exec_properties[FLOOR_KEY]))
        # TFX's Evaluator leaves its blessing without a verdict when it had no threshold to check (no
        # evaluation.thresholds, max_drop or fairness bound): the floor is then the model's only bound.
        upstream_ok = (upstream.get_int_custom_property(BLESSED_KEY) == 1
                       if upstream.has_custom_property(BLESSED_KEY) else True)
        blessed = upstream_ok and not result['failures']
        blessing = artifact_utils.get_single_instance(output_dict[BLESSING_KEY])
        blessing.set_int_custom_property(BLESSED_KEY, int(blessed))
        blessing.set_string_custom_property(FAILURES_PROPERTY, json.dumps(result['failures']))
        blessing.set_string_custom_property(FLOOR_PROPERTY, json.dumps(result['floor']))
        io_utils.write_string_file(os.path.join(blessing.uri, 'BLESSED' if blessed else 'NOT_BLESSED'), '')
