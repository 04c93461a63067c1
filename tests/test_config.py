"""Config validation: good configs load, every kind of mistake is one clear line with exit code 2."""
import copy
import os

import pytest

from tfx_tabular.pipeline.core.config import ConfigError, load_config
from tests.conftest import DATA, run_cli


@pytest.mark.parametrize('name', ['attrition', 'penguins'])
def test_shipped_configs_are_valid(name):
    config = load_config(os.path.join(DATA, name, 'config.yaml'))
    assert config.csv_files and os.path.isfile(config.csv_files[0])
    assert config.label.column not in config.features


def test_small_config_loads_with_defaults(small_config):
    write, _ = small_config
    config = load_config(write())
    assert config.features['income'].scaling == 'log'
    assert config.models[0].hidden_units == [64, 32]
    assert config.data.eval_fraction == 0.2
    assert config.raw_columns == ['age', 'city', 'income']


def _problems(write, raw, mutate):
    data = copy.deepcopy(raw)
    mutate(data)
    with pytest.raises(ConfigError) as info:
        load_config(write(data))
    return info.value.problems


CASES = [
    ('unknown top-level key', lambda d: d.update(modle={}), 'modle: unknown key'),
    ('unknown feature key', lambda d: d['features']['city'].update(topk=3), 'features.city.topk: unknown key'),
    ('unknown kind', lambda d: d['features']['city'].update(kind='cat'), "features.city: unknown kind 'cat'"),
    ('missing kind', lambda d: d['features']['city'].pop('kind'), 'features.city: no kind given'),
    ('missing label', lambda d: d.pop('label'), 'label: required key is missing'),
    ('bad scaling', lambda d: d['features']['income'].update(scaling='zscore'),
     "features.income.scaling: must be 'z_score', 'min_max', 'log' or 'raw'"),
    ('one bucket', lambda d: d['features']['age'].update(buckets=1), 'features.age.buckets:'),
    ('eval fraction 1', lambda d: d['data'].update(eval_fraction=1.0), 'data.eval_fraction:'),
    ('bad label type', lambda d: d['label'].update(type='regression'), 'label.type:'),
    ('binary with 3 classes', lambda d: d['label'].update(classes=['a', 'b', 'c']),
     'a binary label has exactly 2 classes'),
    ('label TODO', lambda d: d['label'].update(column='TODO'), 'label column is still TODO'),
    ('cross of numeric', lambda d: d['features'].update(x={'kind': 'crossed', 'columns': ['city', 'income'],
                                                           'hash_buckets': 10}),
     "crossed column 'income' must name a categorical, bucketized or hashed feature"),
    ('missing CSV column', lambda d: d['features'].update(salary={'kind': 'numeric'}),
     'features.salary: not a CSV column'),
    ('label not in CSV', lambda d: d['label'].update(column='target'), "label.column: 'target' is not a CSV column"),
    ('label as feature', lambda d: d['features'].update(y={'kind': 'categorical'}), 'features.y: is the label'),
    ('slice not in CSV', lambda d: d.update(slicing=['gender']), "slicing: 'gender' is not a CSV column"),
    ('no CSV file', lambda d: d['data'].update(csv='nope/*.csv'), 'data.csv: no file matches'),
    ('threshold above 1', lambda d: d.update(evaluation={'thresholds': {'accuracy': 1.5}}),
     'evaluation.thresholds.accuracy:'),
    ('unknown metric', lambda d: d.update(evaluation={'thresholds': {'f1': 0.5}}), 'evaluation.thresholds'),
    ('bad model name', lambda d: d['serving'].update(model_name='my model'), 'serving.model_name:'),
    ('unknown model kind', lambda d: d.update(model={'kind': 'xgboost'}), "model.kind: must be 'keras_dnn'"),
    ('embedding on numeric', lambda d: d['features']['income'].update(embedding_dim=4),
     'features.income.embedding_dim: unknown key'),
    ('zero embedding', lambda d: d['features']['city'].update(embedding_dim=0), 'features.city.embedding_dim:'),
    ('unknown optimizer', lambda d: d.update(model={'optimizer': 'lbfgs'}), 'model.optimizer:'),
    ('sensitive not in CSV', lambda d: d.update(fairness={'sensitive': ['gender']}),
     "fairness.sensitive: 'gender' is not a CSV column"),
    ('gate without bound', lambda d: d.update(fairness={'sensitive': ['city'],
                                                         'gates': [{'metric': 'false_positive_rate'}]}),
     'gate on false_positive_rate has no bound: add min, max or max_gap'),
    ('gate on unknown metric', lambda d: d.update(fairness={'sensitive': ['city'],
                                                             'gates': [{'metric': 'fpr', 'max': 0.1}]}),
     'fairness.gates.0.metric:'),
    ('negative embedding examples', lambda d: d.update(embeddings={'examples': -1}), 'embeddings.examples:'),
    ('model and models', lambda d: d.update(model={}, models=[{'kind': 'estimator_dnn'}]),
     'give either model (one model) or models (a list), not both'),
    ('same model name twice', lambda d: d.update(models=[{'kind': 'keras_dnn'}, {'kind': 'keras_dnn'}]),
     "models: the name 'keras_dnn' is used twice"),
    ('bad model name in list', lambda d: d.update(models=[{'name': 'My Model'}]), 'models.0.name:'),
    ('linear on embedding-only features', lambda d: (
        d['features'].pop('income'), d['features']['age'].update(embedding_dim=2),
        d['features']['city'].update(embedding_dim=2), d.update(models=[{'kind': 'estimator_linear'}])),
     'models[0] (estimator_linear): a linear model cannot learn embeddings'),
    ('multilabel with a binary head', lambda d: (
        d['label'].update(type='multilabel'), d.update(model={'kind': 'estimator_dnn', 'head': 'binary'})),
     'models[0] (estimator_dnn): head binary cannot train a multilabel label (one sigmoid per class)'),
    ('delimiter on a binary label', lambda d: d['label'].update(delimiter=';'),
     'delimiter applies to type: multilabel only'),
    ('select on unknown metric', lambda d: d.update(evaluation={'select': {'metric': 'f1'}}),
     'evaluation.select.metric:'),
    ('gates on multiclass', lambda d: (d['label'].update(type='multiclass'), d.update(
        fairness={'sensitive': ['city'], 'gates': [{'metric': 'recall', 'min': 0.5}]})),
     'gates are supported for binary labels only'),
]


@pytest.mark.parametrize('case, mutate, expected', CASES, ids=[c[0] for c in CASES])
def test_bad_config_names_key_and_fix(small_config, case, mutate, expected):
    write, raw = small_config
    problems = _problems(write, raw, mutate)
    assert any(expected in p for p in problems), problems
    assert all('\n' not in p for p in problems)


def test_several_problems_reported_together(small_config):
    write, raw = small_config

    def mutate(d):
        d.update(extra=1)
        d['features']['city'].update(kind='nope')
    assert len(_problems(write, raw, mutate)) == 2


def test_not_yaml(tmp_path):
    path = tmp_path / 'c.yaml'
    path.write_text('name: [unclosed\n')
    with pytest.raises(ConfigError) as info:
        load_config(str(path))
    assert 'not valid YAML' in info.value.problems[0]


def test_cli_bad_config_exits_2_with_one_line_per_problem(small_config):
    write, raw = small_config
    data = copy.deepcopy(raw)
    data['features']['city']['kind'] = 'cat'
    data['features']['salary'] = {'kind': 'numeric'}
    result = run_cli('validate', '--config', write(data))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "features.city: unknown kind 'cat'" in lines[0], result.stderr
    assert 'Traceback' not in result.stderr
    data['features']['city']['kind'] = 'categorical'
    result = run_cli('run', '--config', write(data))
    assert result.returncode == 2 and 'features.salary: not a CSV column' in result.stderr
    assert 'Traceback' not in result.stderr


def test_cli_help_on_every_subcommand():
    for args in (['--help'], ['run', '--help'], ['init', '--help'], ['validate', '--help'],
                 ['schema', '--help'], ['schema', 'freeze', '--help']):
        result = run_cli(*args)
        assert result.returncode == 0 and 'usage: tfx-tabular' in result.stdout, args
