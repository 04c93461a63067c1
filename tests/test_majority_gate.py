"""MajorityGate: no model is pushed that always answering the eval split's majority class would beat.

The floor is counted on the eval rows the Evaluator scored (checked against TFMA's own confusion matrix), a tie is
not a win, imbalanced binary labels need AUC above chance too, and a real run whose model learnt nothing (a label
independent of the features, 75/25) ends not blessed and not pushed, with the floor in the summary and the report.
"""
import html
import random

import pytest
import tensorflow as tf
import yaml

from tfx_tabular.components.majority_gate.executor import floor_failures, label_values, majority_floor
from tfx_tabular.pipeline.core.config import LabelConfig
from tfx_tabular.pipeline.results.summary import confusion_matrix
from tests.conftest import run_pipeline_cli, write_csv

SETTINGS = {'accuracy_margin': 0.0, 'auc_margin': 0.05, 'imbalanced_from': 0.6}


def _floor(values, label, classes, settings=SETTINGS):
    floor = majority_floor(values, label, classes)
    floor['accuracy'] = floor['rate'] + settings['accuracy_margin']
    imbalanced = label.type == 'binary' and floor['rate'] >= settings['imbalanced_from']
    floor['auc'] = 0.5 + settings['auc_margin'] if imbalanced else None
    return floor


def test_floor_per_label_type():
    binary = majority_floor(['no'] * 7 + ['yes'] * 3, LabelConfig(column='y', type='binary'), ['no', 'yes'])
    assert (binary['rate'], binary['answer'], binary['examples']) == (0.7, 'no', 10)
    multi = majority_floor(['a', 'b', 'b', 'c', 'b'], LabelConfig(column='y', type='multiclass'), ['a', 'b', 'c'])
    assert (multi['rate'], multi['answer']) == (0.6, 'b')
    # Multi-label: each class answered by its own majority. a in 3 of 4 rows (0.75), b in 1 (0.75 without), c
    # in 2 (0.5), d in none (1.0): mean 0.75.
    label = LabelConfig(column='y', type='multilabel')
    tags = majority_floor(['a|b', 'a', 'a|c', 'c'], label, ['a', 'b', 'c', 'd'])
    assert tags['rate'] == pytest.approx(0.75) and tags['counts'] == {'a': 3, 'b': 1, 'c': 2, 'd': 0}
    with pytest.raises(ValueError, match='no examples'):
        majority_floor([], label, ['a'])


def test_a_tie_with_the_constant_fails_and_imbalanced_labels_need_auc():
    balanced = _floor(['no'] * 55 + ['yes'] * 45, LabelConfig(column='y', type='binary'), ['no', 'yes'])
    assert balanced['auc'] is None
    [tie] = floor_failures({'accuracy': 0.55, 'auc': 0.9}, balanced, SETTINGS)
    assert tie.startswith('accuracy = 0.5500 on overall does not beat the majority-class rate of the eval split '
                          "0.5500 (always answering 'no', 100 rows)")
    assert floor_failures({'accuracy': 0.56, 'auc': 0.5}, balanced, SETTINGS) == []
    margin = {**SETTINGS, 'accuracy_margin': 0.02}
    assert floor_failures({'accuracy': 0.56}, _floor(['no'] * 55 + ['yes'] * 45, LabelConfig(
        column='y', type='binary'), ['no', 'yes'], margin), margin)[0].endswith('+ accuracy_margin 0.02')

    imbalanced = _floor(['no'] * 80 + ['yes'] * 20, LabelConfig(column='y', type='binary'), ['no', 'yes'])
    assert imbalanced['auc'] == pytest.approx(0.55)
    assert floor_failures({'accuracy': 0.85, 'auc': 0.7}, imbalanced, SETTINGS) == []
    [auc] = floor_failures({'accuracy': 0.85, 'auc': 0.52}, imbalanced, SETTINGS)
    assert auc.startswith('auc = 0.5200 on overall is below 0.5500') and 'holds 0.8000' in auc
    missing = floor_failures({'auc': float('nan')}, imbalanced, SETTINGS)
    assert [f.split(' ')[0] for f in missing] == ['accuracy', 'auc'] and 'not computed' in missing[1]
    # Multi-class labels are never held to AUC, however imbalanced.
    multi = _floor(['a'] * 90 + ['b'] * 5 + ['c'] * 5, LabelConfig(column='y', type='multiclass'), ['a', 'b', 'c'])
    assert multi['auc'] is None and floor_failures({'accuracy': 0.91}, multi, SETTINGS) == []


def test_label_values_read_gzipped_examples_of_any_label_type(tmp_path):
    path = str(tmp_path / 'data.gz')
    with tf.io.TFRecordWriter(path, 'GZIP') as writer:
        for value, text in [(1, 'yes'), (0, 'no'), (1, 'a|b')]:
            example = tf.train.Example(features=tf.train.Features(feature={
                'n': tf.train.Feature(int64_list=tf.train.Int64List(value=[value])),
                's': tf.train.Feature(bytes_list=tf.train.BytesList(value=[text.encode()]))}))
            writer.write(example.SerializeToString())
    assert label_values([path], 'n', tf.io.FixedLenFeature([], tf.int64)) == ['1', '0', '1']
    assert label_values([path], 's', tf.io.VarLenFeature(tf.string)) == ['yes', 'no', 'a|b']


@pytest.fixture(scope='module')
def noise_run(tmp_path_factory):
    """A label independent of the features, 3 to 1, and a DNN trained 2 steps: the constant predictor wins."""
    tmp = tmp_path_factory.mktemp('noise')
    rng = random.Random(3)
    write_csv(tmp / 'noise.csv', ['x1', 'x2', 'colour', 'y'],
              [(round(rng.gauss(0, 1), 3), round(rng.gauss(0, 1), 3), rng.choice('rgb'),
                'common' if rng.random() < 0.75 else 'rare') for _ in range(600)])
    raw = {'name': 'noise', 'data': {'csv': 'noise.csv', 'eval_fraction': 0.25},
           'label': {'column': 'y', 'type': 'binary'},
           'features': {'x1': {'kind': 'numeric'}, 'x2': {'kind': 'numeric'}, 'colour': {'kind': 'categorical'}},
           'model': {'hidden_units': [8], 'train_steps': 2, 'epochs': 1, 'eval_steps': 2, 'learning_rate': 0.001},
           'evaluation': {'thresholds': {}}, 'embeddings': {'examples': 20},
           'serving': {'model_name': 'noise', 'push_dir': str(tmp / 'serving')}, 'run_dir': str(tmp / 'run')}
    path = tmp / 'noise.yaml'
    path.write_text(yaml.safe_dump(raw))
    result, summary = run_pipeline_cli(str(path))
    return tmp, result, summary


def test_a_model_the_constant_beats_is_not_pushed(noise_run):
    tmp, result, summary = noise_run
    assert result.returncode == 3, result.stdout[-3000:] + result.stderr[-3000:]
    names = [c['component'] for c in summary['components']]
    assert names.index('Evaluator') < names.index('MajorityGate') < names.index('Pusher')
    assert summary['blessed'] is False and summary['pushed'] is False
    assert not any((tmp / 'serving').rglob('saved_model.pb'))
    floor = summary['floor']
    # The floor is the eval split's, counted as TFMA counted it: its confusion matrix's rows are the true classes.
    matrix = confusion_matrix(summary['evaluation_uri'], 2)
    assert floor['examples'] == matrix.sum() == summary['metrics']['overall']['example_count']
    assert floor['rate'] == pytest.approx(matrix.sum(axis=1).max() / matrix.sum())
    assert floor['answer'] == 'common' and floor['auc'] == pytest.approx(0.55)
    failures = [f for f in summary['validation_failures'] if 'majority-class rate of the eval split' in f]
    assert failures and all(f'  - {f}' in result.stdout for f in failures)
    assert summary['metrics']['overall']['accuracy'] <= floor['rate'] + 1e-9
    assert 'majority-class floor on the eval split: accuracy above' in result.stdout
    report = open(summary['report'], encoding='utf-8').read()
    assert 'Majority-class floor' in report and html.escape(failures[0]) in report
