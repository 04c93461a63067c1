"""The run report when several models are evaluated: the model comparison (table, grouped bars, accuracy per slice
and fairness per group side by side) and, for a hierarchical run, the max cut (graph, numbers, sides) with the
base and hierarchical confusion matrices.

Built from summaries shaped like real ones (trimmed from `tfx-tabular run` on data/attrition/compare.yaml and on
data/digits/config.yaml) and a confusion_cut folder written by components.confusion_cut's own writer. The
confusion matrices and the gates' verdicts are put in the summary as the reader would (the verdicts as the
Evaluator and FairnessGate decide them), and the one-model detail below the comparison is left out:
tests/test_compare.py and tests/test_digits.py check the real page."""
import base64
import copy
import os
import re

import numpy as np
import pytest

from tfx_tabular.pipeline.results import report
from tfx_tabular.pipeline.results.summary import read_confusion_cut
from tfx_tabular.pipeline.core.config import load_config
from tests.conftest import DATA


def _slice(examples, accuracy, auc, precision, recall, fpr):
    return {'example_count': examples, 'accuracy': accuracy, 'auc': auc, 'precision': precision, 'recall': recall,
            'false_positive_rate': fpr}


def _attrition_model(name, kind, slices):
    return {'model': name, 'kind': kind, 'blessed': True, 'validation_failures': [],
            'evaluation_uri': f'/tmp/cmp/runs/attrition-compare/pipeline_root/Evaluator_{name}/evaluation/1',
            'metrics': dict(slices['overall']), 'slices': slices}


# summary.json of a three-model run of data/attrition/compare.yaml, per-slice metrics trimmed to the table's
ATTRITION = {
    'name': 'attrition-compare', 'run_dir': '/tmp/cmp/runs/attrition-compare',
    'label': {'column': 'Attrition', 'type': 'binary', 'classes': ['No', 'Yes'], 'counts': {'Yes': 237, 'No': 1233},
              'majority_class_rate': 0.8388},
    'served': {'found': False, 'version': None, 'source': None,
               'base_path': '/tmp/cmp/serving_models/attrition_compare', 'state': 'ran'},
    'baseline': None, 'validation_failures': [], 'blessed': True,
    'evaluation_uri': '/tmp/cmp/runs/attrition-compare/pipeline_root/Evaluator_wide_deep/evaluation/1',
    'models': [
        _attrition_model('wide_deep', 'keras_wide_deep', {
            'overall': _slice(313.0, 0.8786, 0.8602, 0.8421, 0.3137, 0.0115),
            'Gender=Female': _slice(134.0, 0.8507, 0.8969, 0.8889, 0.2963, 0.0093),
            'Gender=Male': _slice(179.0, 0.8994, 0.8353, 0.8, 0.3333, 0.0129),
            'MaritalStatus=Divorced': _slice(78.0, 0.9231, 0.9356, 1.0, 0.1429, 0.0),
            'MaritalStatus=Married': _slice(133.0, 0.8346, 0.8194, 1.0, 0.12, 0.0),
            'MaritalStatus=Single': _slice(102.0, 0.902, 0.8935, 0.8, 0.6316, 0.0361)}),
        _attrition_model('dnn', 'estimator_dnn', {
            'overall': _slice(313.0, 0.8786, 0.8328, 0.76, 0.3725, 0.0229),
            'Gender=Female': _slice(134.0, 0.8507, 0.8789, 0.8889, 0.2963, 0.0093),
            'Gender=Male': _slice(179.0, 0.8994, 0.7984, 0.6875, 0.4583, 0.0323),
            'MaritalStatus=Divorced': _slice(78.0, 0.9487, 0.8531, 1.0, 0.4286, 0.0),
            'MaritalStatus=Married': _slice(133.0, 0.8571, 0.7965, 0.875, 0.28, 0.0093),
            'MaritalStatus=Single': _slice(102.0, 0.8529, 0.8633, 0.6429, 0.4737, 0.0602)}),
        _attrition_model('linear', 'estimator_linear', {
            'overall': _slice(313.0, 0.8658, 0.8494, 0.7368, 0.2745, 0.0191),
            'Gender=Female': _slice(134.0, 0.8209, 0.8709, 0.7143, 0.1852, 0.0187),
            'Gender=Male': _slice(179.0, 0.8994, 0.828, 0.75, 0.375, 0.0194),
            'MaritalStatus=Divorced': _slice(78.0, 0.9231, 0.9074, 1.0, 0.1429, 0.0),
            'MaritalStatus=Married': _slice(133.0, 0.8421, 0.8156, 1.0, 0.16, 0.0),
            'MaritalStatus=Single': _slice(102.0, 0.8529, 0.9036, 0.6429, 0.4737, 0.0602)}),
    ],
    'selected_model': 'wide_deep', 'selection': 'auc (maximize)', 'max_drop': {}, 'pushed': True,
    'pushed_to': '/tmp/cmp/serving_models/attrition_compare/1795277970',
}

DIGITS = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine']


def _digits_model(name, overall, recalls):
    metrics = {**overall, **{f'recall/{c}': r for c, r in zip(DIGITS, recalls)}}
    return {'model': name, 'kind': name, 'blessed': True, 'validation_failures': [],
            'evaluation_uri': f'/tmp/dig/runs/digits/pipeline_root/Evaluator_{name}/evaluation/1',
            'metrics': metrics, 'slices': {'overall': metrics}}


# summary.json of data/digits/config.yaml (base keras_dnn + hierarchical), per-class metrics trimmed to recall
HIERARCHICAL_RUN = {
    'name': 'digits', 'run_dir': '/tmp/dig/runs/digits',
    'label': {'column': 'digit', 'type': 'multiclass', 'classes': DIGITS, 'counts': {c: 180 for c in DIGITS},
              'majority_class_rate': 0.1018},
    'blessed': True, 'validation_failures': [],
    'models': [
        _digits_model('keras_dnn', {'accuracy': 0.9701, 'example_count': 368.0, 'auc': 0.999, 'precision': 0.9753,
                                    'recall': 0.9678},
                      [1.0, 0.9474, 0.9722, 0.8649, 0.9688, 1.0, 1.0, 1.0, 0.9487, 0.9756]),
        _digits_model('hierarchical', {'accuracy': 0.9728, 'example_count': 368.0, 'auc': 0.9958, 'precision': 0.973,
                                       'recall': 0.9732},
                      [1.0, 0.9474, 0.9722, 0.9189, 0.9688, 1.0, 1.0, 1.0, 0.9487, 0.9756]),
    ],
    'selected_model': 'hierarchical', 'selection': 'accuracy (maximize)', 'pushed': True,
    'pushed_to': '/tmp/dig/serving_models/digits/1795279174',
    'confusion_cut': {'uri': '/tmp/dig/runs/digits/pipeline_root/ConfusionCut/confusion_cut/8',
                      'base_model': 'keras_dnn'},
}


@pytest.fixture(scope='module')
def attrition_config():
    return load_config(os.path.join(DATA, 'attrition', 'compare.yaml'))


@pytest.fixture(scope='module')
def digits_config():
    return load_config(os.path.join(DATA, 'digits', 'config.yaml'))


def _with_evaluations(summary, tmp_path, matrices):
    """The summary with each model's evaluation_uri an existing folder, its confusion matrix `matrices[model]`,
    and without the one-model detail."""
    summary = copy.deepcopy(summary)
    for model in summary['models']:
        model['evaluation_uri'] = str(tmp_path / 'evaluation' / model['model'])
        os.makedirs(model['evaluation_uri'])
        matrix = matrices.get(model['model'])
        model['confusion_matrix'] = None if matrix is None else np.asarray(matrix).tolist()
    summary.pop('metrics', None)
    return summary


def _gate_verdicts(slices, fairness):
    """What the gates record for these slices: the Evaluator's failed per-group bounds, FairnessGate's gaps."""
    from tfx_tabular.components.fairness_gate.executor import gap_verdict
    verdicts = []
    for gate in fairness.gates:
        for column in fairness.sensitive:
            values = {name.split('=', 1)[1]: m[gate.metric] for name, m in slices.items()
                      if name.startswith(f'{column}=') and gate.metric in m}
            if gate.max_gap is not None:
                verdicts.append(gap_verdict(gate.metric, gate.max_gap, column, values))
            if gate.min is not None or gate.max is not None:
                failing = {g: v for g, v in values.items()
                           if not ((gate.min is None or v >= gate.min) and (gate.max is None or v <= gate.max))}
                verdicts.append({'metric': gate.metric, 'column': column, 'min': gate.min, 'max': gate.max,
                                 'max_gap': None, 'values': values, 'failing': failing, 'passed': not failing})
    return verdicts


def _write(summary, config, tmp_path) -> str:
    if config.fairness:
        for model in summary.get('models', []):
            model.setdefault('fairness_gates', _gate_verdicts(model['slices'], config.fairness))
    path = report.write_report(summary, config, str(tmp_path / 'report.html'))
    with open(path, encoding='utf-8') as f:
        return f.read()


def _images(page):
    """Every picture is an embedded PNG (the page opens without network)."""
    sources = re.findall(r'<img[^>]*src="([^"]*)"', page)
    for src in sources:
        assert src.startswith('data:image/png;base64,'), src[:60]
        assert base64.b64decode(src.split(',', 1)[1])[:8] == b'\x89PNG\r\n\x1a\n'
    assert 'http://' not in page and 'https://' not in page
    return sources


def _section(page, heading_id):
    """The page from the <h2> with this id to the next <h2>."""
    start = page.index(f'<h2 id="{heading_id}">')
    end = page.find('<h2', start + 1)
    return page[start:end if end > 0 else len(page)]


def test_comparison_table_marks_the_pushed_model_and_shows_the_rule(attrition_config, tmp_path):
    matrices = {'wide_deep': np.array([[259, 3], [35, 16]]), 'dnn': np.array([[256, 6], [32, 19]]),
                'linear': np.array([[257, 5], [37, 14]])}
    page = _write(_with_evaluations(ATTRITION, tmp_path, matrices), attrition_config, tmp_path)
    comparison = _section(page, 'model-comparison')
    # near the top: before the pushed model's own sections
    assert page.index('id="model-comparison"') < page.index('id="model-detail"')
    assert 'The wide_deep model in detail (the pushed model)' in page
    table = comparison[comparison.index('<table class="models">'):comparison.index('</table>')]
    rows = re.findall(r'<tr[^>]*>.*?</tr>', table)
    assert [re.search(r'<td>(\w+)', r).group(1) for r in rows[1:]] == ['wide_deep', 'dnn', 'linear']
    for header in ('accuracy', 'auc', 'precision', 'recall', 'fpr', 'blessed', 'failures'):
        assert f'>{header}</th>' in rows[0], header
    assert 'fnr' not in rows[0]  # absent from the metrics: no empty column
    selected = [r for r in rows if report.PUSHED_MARK in r]
    assert len(selected) == 1 and selected[0].startswith('<tr class=selected><td>wide_deep')
    assert '<b>0.8602</b>' in selected[0]  # the best auc in bold
    assert all('<td class="good">yes</td>' in r for r in rows[1:])
    assert 'selected by <b>auc (maximize)</b>' in comparison and '1795277970' in comparison
    for title in ('Accuracy per slice, side by side', 'Fairness per group, side by side', '<h4>Gender</h4>',
                  '<h4>MaritalStatus</h4>', 'Confusion matrices, eval split'):
        assert title in comparison, title
    # each gate's verdict per model, in a row per gate
    verdicts = comparison[comparison.index('<table class="verdicts">'):]
    assert 'accuracy min 0.7' in verdicts and 'false_positive_rate max_gap 0.15' in verdicts
    assert verdicts.count('met by every group') >= 3 and 'within max_gap' in verdicts
    # overall bars, accuracy per slice, fairness for two columns, the three confusion matrices
    assert len(_images(comparison)) == 5
    assert 'Hierarchical model' not in page


def test_no_blessed_model_is_said_and_each_failure_listed(attrition_config, tmp_path):
    summary = copy.deepcopy(ATTRITION)
    for model in summary['models']:
        model['blessed'] = False
        model['validation_failures'] = [f'accuracy = 0.6 on Gender=Male fails lower bound 0.7 ({model["model"]})']
    summary.update(selected_model='', blessed=False, pushed=False, pushed_to=None)
    page = _write(_with_evaluations(summary, tmp_path, {}), attrition_config, tmp_path)
    comparison = _section(page, 'model-comparison')
    assert 'No model is blessed, so none is pushed (selection: auc (maximize))' in comparison
    assert report.PUSHED_MARK not in comparison and 'class=selected' not in comparison
    assert comparison.count('<td class="bad">no</td>') == 3
    for name in ('wide_deep', 'dnn', 'linear'):
        assert f'fails lower bound 0.7 ({name})</li>' in comparison
    assert 'The wide_deep model in detail (no model was pushed; the first one)' in page
    assert 'Confusion matrices, eval split' not in comparison  # no TFMA plots: nothing to draw, no error


def test_gate_outside_its_bound_fails_in_the_verdicts(attrition_config, tmp_path):
    summary = copy.deepcopy(ATTRITION)
    summary['models'][2]['slices']['MaritalStatus=Married']['accuracy'] = 0.61
    summary['models'][1]['slices']['MaritalStatus=Single']['false_positive_rate'] = 0.3
    page = _write(_with_evaluations(summary, tmp_path, {}), attrition_config, tmp_path)
    marital = page[page.index('<h4>MaritalStatus</h4>'):]
    verdicts = marital[marital.index('<table class="verdicts">'):marital.index('</table>')]
    assert '<td class="left bad">fails for Married (0.6100)</td>' in verdicts
    assert 'exceeds max_gap' in verdicts and verdicts.count(' bad"') == 2



def test_the_report_draws_the_recorded_verdict_and_decides_none(attrition_config, tmp_path):
    """The values pass every gate, but a gate recorded a failure (and an undefined value fails TFMA's bound): the
    report shows what was recorded; a gate that recorded nothing is said to have no verdict."""
    summary = _with_evaluations(ATTRITION, tmp_path, {})
    linear = summary['models'][2]
    linear['fairness_gates'] = _gate_verdicts(linear['slices'], attrition_config.fairness)
    for verdict in linear['fairness_gates']:
        if verdict['metric'] == 'accuracy' and verdict['column'] == 'MaritalStatus':
            verdict.update(failing={'Married': float('nan')}, passed=False)
    summary['models'][1]['fairness_gates'] = []
    page = _write(summary, attrition_config, tmp_path)
    marital = page[page.index('<h4>MaritalStatus</h4>'):]
    verdicts = marital[marital.index('<table class="verdicts">'):marital.index('</table>')]
    assert '<td class="left bad">fails for Married (nan)</td>' in verdicts and verdicts.count(' bad"') == 1
    assert 'no verdict recorded' in verdicts

def _cut_folder(path, exact_up_to=20):
    """A ConfusionCut artifact folder, by the component's own writer, from a made-up 10-class confusion matrix:
    three/eight and four/nine are confused most."""
    from tfx_tabular.components.confusion_cut import maxcut
    from tfx_tabular.components.confusion_cut.graph import write_outputs
    matrix = np.diag([27.0] * 10)
    for a, b, n in ((3, 8, 4), (8, 3, 2), (4, 9, 3), (1, 7, 2), (2, 3, 1), (5, 6, 1)):
        matrix[a, b] = n
    cut = maxcut.cut_confusion(matrix, exact_up_to=exact_up_to, names=DIGITS)
    return write_outputs(str(path), DIGITS, matrix, cut, 'holdout')


def test_hierarchical_run_shows_the_cut_and_both_confusion_matrices(digits_config, tmp_path):
    cut = _cut_folder(tmp_path / 'confusion_cut')
    base = np.diag([36.0] * 10)
    base[3, 8], base[8, 3], base[4, 9] = 3, 1, 2
    hierarchical = base.copy()
    hierarchical[3, 8] = 1
    summary = _with_evaluations(HIERARCHICAL_RUN, tmp_path,
                                {'keras_dnn': base, 'hierarchical': hierarchical})
    summary['confusion_cut'] = read_confusion_cut(str(tmp_path / 'confusion_cut'), 'keras_dnn')
    page = _write(summary, digits_config, tmp_path)
    comparison, section = _section(page, 'model-comparison'), _section(page, 'max-cut')
    assert page.index('id="model-comparison"') < page.index('id="max-cut"') < page.index('id="model-detail"')
    assert '<tr class=selected><td>hierarchical' in comparison and 'keras_dnn' in comparison
    assert 'Recall per class, side by side' in comparison  # per class: the digits run has no slices
    assert 'Accuracy per slice' not in comparison and 'Fairness per group' not in comparison
    assert 'Confusion matrices, eval split' not in comparison  # drawn in the cut section
    assert 'Base model <b>keras_dnn</b>' in section and '<code>holdout</code>' in section
    assert f'{cut["value"]:.0f} of {cut["total_weight"]:.0f}' in section and 'exact maximum cut' in section
    for side, name in zip(cut['sides'], ('side A', 'side B')):
        assert f'<th>{name}</th><td class="left">{", ".join(side)}</td>' in section
    # the most-confused pairs are cut apart, and listed as cut edges
    assert ('three' in cut['sides'][0]) != ('eight' in cut['sides'][0])
    assert 'three\u2013eight 6' in section or 'eight\u2013three 6' in section
    with open(tmp_path / 'confusion_cut' / 'confusion_graph.png', 'rb') as f:
        assert base64.b64encode(f.read()).decode() in section  # the component's own picture
    assert 'Confusion matrices on the eval split: base and hierarchical' in section
    assert 'keras_dnn: 6 across the cut, 0 within a side; hierarchical: 4 across the cut' in section
    assert len(_images(section)) == 2  # the graph, the two matrices in one figure
    assert len(_images(page)) == 4


def test_heuristic_cut_reports_its_bound(digits_config, tmp_path):
    cut = _cut_folder(tmp_path / 'confusion_cut', exact_up_to=4)
    assert not cut['exact']
    summary = _with_evaluations(HIERARCHICAL_RUN, tmp_path, {})
    summary['confusion_cut'] = read_confusion_cut(str(tmp_path / 'confusion_cut'), 'keras_dnn')
    section = _section(_write(summary, digits_config, tmp_path), 'max-cut')
    assert 'heuristic cut' in section and f'upper bound on the maximum {cut["upper_bound"]:.1f}' in section
    assert 'Confusion matrices on the eval split' not in section  # no TFMA plots


def test_missing_cut_folder_is_one_line_not_a_crash(digits_config, tmp_path):
    summary = _with_evaluations(HIERARCHICAL_RUN, tmp_path, {})
    summary['confusion_cut'] = read_confusion_cut(str(tmp_path / 'gone'), 'keras_dnn')
    section = _section(_write(summary, digits_config, tmp_path), 'max-cut')
    assert 'could not be read' in section and str(tmp_path / 'gone') in section


def test_one_model_report_has_no_comparison(attrition_config, tmp_path):
    summary = _with_evaluations(ATTRITION, tmp_path, {})
    for key in ('models', 'selected_model', 'selection'):
        summary.pop(key)
    page = _write(summary, attrition_config, tmp_path)
    assert 'Model comparison' not in page and 'in detail' not in page and report.PUSHED_MARK not in page
    assert '<b>Blessed</b>: every threshold met.' in page


def test_hierarchical_model_not_pushed_is_said(digits_config, tmp_path):
    """hierarchical.push_if_better: false: no ModelSelector, the base model is the only candidate."""
    summary = _with_evaluations(HIERARCHICAL_RUN, tmp_path, {})
    summary.update(selected_model='keras_dnn', selection='the only candidate for the push')
    summary['confusion_cut'] = read_confusion_cut(str(tmp_path / 'gone'), 'keras_dnn')
    comparison = _section(_write(summary, digits_config, tmp_path), 'model-comparison')
    assert 'the only candidate for the push: the hierarchical model is evaluated and reported, never pushed' \
        in comparison
    assert '<tr class=selected><td>keras_dnn' in comparison
