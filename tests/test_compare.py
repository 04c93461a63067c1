"""Several models in one run (data/attrition/compare.yaml): a Keras wide-and-deep, a DNNClassifier and a
LinearClassifier train on one Transform output, each is evaluated on the same split and slices, and only the best
blessed one (by the config's metric and direction) is pushed."""
import pytest
import tensorflow as tf

from tfx_tabular.pipeline.core.config import load_config
from tests.conftest import run_pipeline_cli, shipped_config


@pytest.fixture(scope='module')
def compare_run(tmp_path_factory):
    def shorter(raw):
        for m in raw['models']:
            m.update(train_steps=150, epochs=3)
        raw['embeddings'] = {'examples': 50}
    path = shipped_config(tmp_path_factory.mktemp('compare'), 'attrition', 'compare.yaml', shorter)
    result, summary = run_pipeline_cli(path)
    assert result.returncode in (0, 3), result.stdout[-3000:] + result.stderr[-3000:]
    return path, result, summary


def test_each_model_has_its_nodes_and_the_selector_runs_last(compare_run):
    _, result, summary = compare_run
    names = [c['component'] for c in summary['components']]
    for model in ('wide_deep', 'dnn', 'linear'):
        for node in ('Trainer', 'ServedModel', 'Evaluator', 'FairnessGate'):
            assert f'{node}_{model}' in names, names
    # the linear model has no hidden layer for the projector; both DNNs get embedding metadata
    assert 'EmbeddingMetadataGen_dnn' in names and 'EmbeddingMetadataGen_wide_deep' in names
    assert 'EmbeddingMetadataGen_linear' not in names
    assert names.index('ModelSelector') < names.index('Pusher')
    assert all(c['state'] == 'ran' for c in summary['components'])


def test_summary_compares_models_and_pushes_the_best_blessed(compare_run):
    config_path, result, summary = compare_run
    config = load_config(config_path)
    models = {m['model']: m for m in summary['models']}
    assert set(models) == {'wide_deep', 'dnn', 'linear'}
    metric = config.evaluation.select.metric
    for m in models.values():
        assert 0.5 < m['metrics']['auc'] <= 1 and 0.5 < m['metrics']['accuracy'] <= 1, m
    blessed = {n: m['metrics'][metric] for n, m in models.items() if m['blessed']}
    assert summary['selected_model'] == (max(blessed, key=blessed.get) if blessed else '')
    # The table is printed, one line per model.
    for name in models:
        assert any(line.strip().startswith(name) for line in result.stdout.splitlines()), name
    if blessed:
        assert summary['pushed']
        pushed = tf.saved_model.load(summary['pushed_to'])
        assert hasattr(pushed, 'estimator') == (summary['selected_model'] in ('dnn', 'linear'))
    else:
        assert not summary.get('pushed')


def test_embeddings_command_names_each_dnn_model(compare_run):
    from tests.conftest import run_cli
    config_path, _, _ = compare_run
    result = run_cli('embeddings', '--config', config_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().split('\n')
    commands = [line for line in lines if line.startswith('tensorboard --logdir ')]
    assert len(commands) == 2 and any('EmbeddingMetadataGen_dnn' in c for c in commands), lines
    assert any('explore model wide_deep: feature_values (' in line for line in lines), lines


def test_report_compares_the_models_side_by_side(compare_run):
    _, _, summary = compare_run
    page = open(summary['report'], encoding='utf-8').read()
    selected = summary['selected_model']
    assert all(part in page for part in (
        'id="model-comparison"', 'Accuracy per slice, side by side', 'Fairness per group, side by side',
        'Confusion matrices, eval split', *(f'<td>{m}' for m in ('wide_deep', 'dnn', 'linear')),
        f'<tr class=selected><td>{selected} ' if selected else 'No model is blessed')) \
        and page.index('id="model-comparison"') < page.index('<h2>Overall</h2>'), page[:3000]
