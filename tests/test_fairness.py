"""Fairness gates: per-group bounds (TFMA per-slice thresholds) and gaps between groups (FairnessGate)."""
import csv

import yaml

from tfx_tabular.components.evaluator.results import group_values
from tfx_tabular.components.fairness_gate.executor import gap_failures, gap_verdict
from tfx_tabular.pipeline.core.config import load_config
from tests.conftest import prepare_config, run_pipeline_cli


def test_clean_data_passes_the_shipped_gates_and_is_pushed(attrition_run):
    config_path, result, summary = attrition_run
    assert [c['component'] for c in summary['components']].index('FairnessGate') > 0
    assert summary['blessed'] and summary['pushed'], summary['validation_failures']
    for group in ('Gender=Female', 'Gender=Male', 'MaritalStatus=Single'):
        assert 'false_positive_rate' in summary['metrics'][group]
        assert any(k.startswith('fairness_indicators_metrics/false_negative_rate@')
                   for k in summary['metrics'][group])
    # Each gate's verdict, as its gate recorded it: the Evaluator's per-group bounds, FairnessGate's gaps.
    config = load_config(config_path)
    recorded = {(v['metric'], v['column'], v['max_gap'] is None): v for v in summary['fairness_gates']}
    for gate in config.fairness.gates:
        for column in config.fairness.sensitive:
            verdict = recorded[(gate.metric, column, gate.max_gap is None)]
            assert verdict['passed'] and set(verdict['values']) == {
                s.split('=', 1)[1] for s in summary['metrics'] if s.startswith(f'{column}=')}


def test_gap_gate_fails_when_it_should(attrition_run):
    _, _, summary = attrition_run
    uri = summary['evaluation_uri']
    fpr = group_values(uri, 'fpr', 'Gender')
    assert set(fpr) == {'Female', 'Male'}
    gap = abs(fpr['Female'] - fpr['Male'])
    assert gap_failures(uri, [{'metric': 'false_positive_rate', 'max_gap': gap + 1e-6}], ['Gender']) == []
    [failure] = gap_failures(uri, [{'metric': 'false_positive_rate', 'max_gap': gap / 2 or 1e-9}], ['Gender'])
    assert failure.startswith('false_positive_rate gap between Gender=') and f'= {gap:.4f} exceeds' in failure


def test_a_gap_ignores_groups_without_a_value():
    verdict = gap_verdict('false_positive_rate', 0.1, 'Gender', {'A': 0.1, 'B': float('nan'), 'C': 0.3})
    assert (verdict['high'], verdict['low'], verdict['passed']) == ('C', 'A', False)
    assert abs(verdict['gap'] - 0.2) < 1e-12
    assert gap_verdict('fpr', 0.1, 'Gender', {'A': float('nan'), 'B': 0.5})['passed']


def test_corrupted_group_fails_the_gate_and_nothing_is_pushed(tmp_path):
    config_path = prepare_config(tmp_path, 'attrition', train_steps=200)
    config = load_config(config_path)
    with open(config.csv_files[0], newline='') as f:
        rows = list(csv.DictReader(f))
    women = 0
    for row in rows:
        if row['Gender'] == 'Female':  # labels unrelated to anything, for one group only
            row['Attrition'] = 'Yes' if women % 2 == 0 else 'No'
            women += 1
    with open(config.csv_files[0], 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    raw = yaml.safe_load(open(config_path))
    raw['evaluation'] = {'thresholds': {'accuracy': 0.5}}
    raw['fairness'] = {'sensitive': ['Gender'], 'gates': [{'metric': 'false_positive_rate', 'max_gap': 0.1},
                                                          {'metric': 'false_negative_rate', 'max_gap': 0.3}]}
    with open(config_path, 'w') as f:
        yaml.safe_dump(raw, f)

    result, summary = run_pipeline_cli(config_path)
    assert result.returncode == 3, result.stdout[-2000:] + result.stderr[-2000:]
    assert summary['blessed'] is False and summary['pushed'] is False
    gaps = [f for f in summary['validation_failures'] if ' gap between Gender=' in f]
    assert gaps, summary['validation_failures']
    assert all(f'  - {f}' in result.stdout for f in gaps)
    assert not (tmp_path / 'serving').exists() or not any((tmp_path / 'serving').rglob('saved_model.pb'))
