"""The shipped 10-class digits config end to end through `tfx-tabular run`: the base model and the hierarchical
(max-cut auxiliary) model are both trained, evaluated on the same eval split, compared in the summary, and the
hierarchical SavedModel answers TF Serving's Classify like any other model.

To keep the run short it reads 24 of the 61 pixel columns (the centre of the image) with fewer steps."""
import json
import os

import numpy as np
import pytest
from tensorflow_serving.apis import classification_pb2

from tfx_tabular.pipeline.core.config import load_config
from tfx_tabular.serving.examples import raw_feature_dtypes, serialize
from tfx_tabular.serving.inference import classify
from tfx_tabular.serving.servable import Servable
from tests.conftest import run_pipeline_cli, shipped_config

CENTRE = [f'pixel_{r}_{c}' for r in range(1, 7) for c in range(2, 6)]


@pytest.fixture(scope='module')
def digits_run(tmp_path_factory):
    def shorter(raw):
        raw['features'] = {name: spec for name, spec in raw['features'].items() if name in CENTRE}
        raw['model'].update(train_steps=250, epochs=5)
        raw['hierarchical'].update(aux_train_steps=150, combiner_train_steps=150)
        raw['evaluation']['thresholds'] = {'accuracy': 0.7}
    path = shipped_config(tmp_path_factory.mktemp('digits'), 'digits', edit=shorter)
    result, summary = run_pipeline_cli(path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return path, result, summary


def test_base_and_hierarchical_are_compared_and_the_better_blessed_is_pushed(digits_run):
    _, result, summary = digits_run
    names = [c['component'] for c in summary['components']]
    assert {'ConfusionCut', 'HierarchicalTrainer', 'Evaluator_keras_dnn', 'Evaluator_hierarchical',
            'ModelSelector', 'Pusher'} <= set(names)
    models = {m['model']: m for m in summary['models']}
    assert set(models) == {'keras_dnn', 'hierarchical'}
    for m in models.values():
        assert m['metrics']['accuracy'] > 0.7 and m['metrics']['example_count'] == \
            models['keras_dnn']['metrics']['example_count'], m  # the same eval rows
    # The hierarchical model, the most complex candidate, is pushed when its accuracy beats the base model's by
    # more than one standard error (ModelSelector's rule, tests/test_model_selector.py).
    from tfx_tabular.components.model_selector.executor import choose
    candidates = [(n, m['blessed'], m['metrics']) for n, m in models.items()]
    assert summary['selected_model'] == choose(candidates, 'accuracy', 'maximize',
                                               {'keras_dnn': 2, 'hierarchical': 3})[0]
    assert summary['pushed'] and 'hierarchical' in result.stdout


def test_the_cut_is_a_maximum_cut_of_the_eval_confusions(digits_run):
    """The recorded cut is consistent with the recorded confusion matrix, and is at least half of all
    confusions (which every maximum cut is)."""
    _, _, summary = digits_run
    cut_uri = next(c['outputs']['confusion_cut']['uri'] for c in summary['components']
                   if c['component'] == 'ConfusionCut')
    with open(os.path.join(cut_uri, 'cut.json')) as f:
        cut = json.load(f)
    with open(os.path.join(cut_uri, 'confusion.json')) as f:
        confusion = json.load(f)
    assert cut['classes'] == confusion['classes'] == summary['label']['classes']
    weights = np.array(confusion['matrix'], dtype=float)
    weights = weights + weights.T
    np.fill_diagonal(weights, 0)
    side = np.array(cut['side_of'])
    crossing = weights[side[:, None] != side[None, :]].sum() / 2
    assert crossing == pytest.approx(cut['value'])
    assert cut['value'] >= weights.sum() / 4 and cut['value'] <= cut['upper_bound'] + 1e-9 and cut['exact']
    assert os.path.exists(os.path.join(cut_uri, 'confusion_graph.png'))


def test_hierarchical_model_answers_classify(digits_run):
    config_path, _, summary = digits_run
    config = load_config(config_path)
    model_uri = next(c['outputs']['model']['uri'] for c in summary['components']
                     if c['component'] == 'HierarchicalTrainer')
    path = os.path.join(model_uri, 'Format-Serving')
    servable = Servable('digits', 1, path)
    try:
        import tensorflow as tf
        rows = list(__import__('csv').DictReader(open(config.csv_files[0])))[:20]
        request = classification_pb2.ClassificationRequest()
        for serialized in serialize(rows, raw_feature_dtypes(path)):
            request.input.example_list.examples.add().ParseFromString(serialized)
        response = classify(servable, request)
    finally:
        servable.close()
    correct = 0
    for row, c in zip(rows, response.result.classifications):
        names = [cl.label for cl in c.classes]
        scores = np.array([cl.score for cl in c.classes])
        assert names == summary['label']['classes'] and abs(scores.sum() - 1) < 1e-4
        correct += names[int(scores.argmax())] == row['digit']
    assert correct >= 14, correct


def test_report_shows_the_cut_and_both_confusion_matrices(digits_run):
    _, _, summary = digits_run
    page = open(summary['report'], encoding='utf-8').read()
    assert all(part in page for part in (
        'id="model-comparison"', '<td>keras_dnn', '<td>hierarchical', 'Recall per class, side by side',
        'id="max-cut"', 'exact maximum cut', 'alt="confusion graph with the cut"',
        'Confusion matrices on the eval split: base and hierarchical', 'across the cut')) \
        and page.index('id="model-comparison"') < page.index('id="max-cut"') < page.index('<h2>Overall</h2>'), \
        page[:3000]
