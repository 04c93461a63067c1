"""The slow Kubeflow test of a custom artifact type: the hierarchical digits config compiled for Kubeflow
Pipelines and executed by `tfx-tabular kubeflow run-local`, its ConfusionCut artifact passed between tasks.

A module of its own (see test_kubeflow_run_local.py for the helpers and the other run) so that `make test`'s two
workers run the two pipelines side by side.
"""
import json

import pytest
import yaml

from tests.test_kubeflow_run_local import (_artifact, _assert_every_task_ran_in_dependency_order,
                                           _assert_outputs_are_kfp_artifacts, _compile_and_run, _small)

pytestmark = pytest.mark.kubeflow_e2e


@pytest.fixture(scope='module')
def digits(tmp_path_factory):
    def edit(raw):
        _small(train_steps=150)(raw)
        raw['hierarchical'].update(aux_train_steps=60, combiner_train_steps=60)
    return _compile_and_run(tmp_path_factory.mktemp('kfp-digits'), 'digits', 'config.yaml', edit)


def test_hierarchical_every_task_runs(digits):
    _assert_every_task_ran_in_dependency_order(digits)
    _assert_outputs_are_kfp_artifacts(digits)
    components = digits.spec['components']
    (cut_task,) = [t for t in digits.tasks if t.startswith('ConfusionCut')]
    output_type = components[f'comp-{cut_task}']['outputDefinitions']['artifacts']['confusion_cut']['artifactType']
    assert yaml.safe_load(output_type['instanceSchema'])['title'] == 'tfx_tabular.ConfusionCut'
    cut = _artifact(digits, cut_task, 'confusion_cut')['metadata']
    assert cut['classes'] == 10 and len(json.loads(cut['side_a'])) + len(json.loads(cut['side_b'])) == 10
    # The custom-typed artifact reached its consumer: HierarchicalTrainer read it and trained on its cut.
    consumers = [name for name, task in digits.spec['root']['dag']['tasks'].items()
                 if any(a.get('taskOutputArtifact', {}).get('producerTask') == cut_task
                        for a in task.get('inputs', {}).get('artifacts', {}).values())]
    assert consumers and all(digits.tasks[c] for c in consumers)
