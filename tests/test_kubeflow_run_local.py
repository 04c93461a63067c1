"""The slow Kubeflow tests: shipped configs compiled for Kubeflow Pipelines and executed by `tfx-tabular kubeflow
run-local` (kfp's own local orchestration, every task the real executor in a subprocess of this virtualenv).

Marked `kubeflow_e2e` (deselect with `-m "not kubeflow_e2e"`). One pipeline runs once, shared by a module-scoped
fixture: attrition's compare config cut to two models, a Keras and an estimator one, with few training steps and
Beam in this process (every task in dependency order, the ModelSelector's choice blessed, pushed to the config's
push directory and answering Classify on `tfx-tabular serve`). Each task is a new Python process, as a container
is on the cluster, so a run costs about 5 s per task before any work: one run serves every assertion about it.
Two short runs show failures: a task that fails is named with its log's last lines, and the spec TFX writes for
Vertex AI stops at the first task that takes an input artifact, as it would on open-source KFP 2. The hierarchical
run is in test_kubeflow_run_local_hierarchical.py, so the two can run on two workers.
"""
import csv
import json
import os
import re
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import yaml

from tfx_tabular.pipeline.core.config import load_config
from tests.conftest import ROOT, free_port, read_line, run_cli, shipped_config

pytestmark = pytest.mark.kubeflow_e2e

IMAGE = 'registry.example.com/team/tfx-tabular:0.1.0'
PROGRESS = re.compile(r'^\[\s*(\d+)/(\d+)\] (\S+)\s+(ok|FAILED)', re.M)


def _tfx_tabular(*args, timeout=3600):
    exe = os.path.join(os.path.dirname(sys.executable), 'tfx-tabular')
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=timeout)


def _small(**model):
    """A config edit: few training steps for every model, Beam in this process (the data is small)."""
    def edit(raw):
        for m in raw.get('models') or [raw['model']]:
            m.update(model)
        raw['beam'] = {'args': ['--direct_running_mode=in_memory']}
    return edit


def _docs(path):
    with open(path, encoding='utf-8') as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def _write_package(path, spec):
    with open(path, 'w', encoding='utf-8') as f:
        yaml.safe_dump(spec, f)
    return str(path)


def _run_local(package, root, *flags):
    """`run-local` on `package`; the result, the tasks in the order they ran ({name: ok}) and the run folder."""
    result = _tfx_tabular('kubeflow', 'run-local', '--package', package, '--pipeline-root', str(root), *flags)
    progress = {name: status == 'ok' for _, _, name, status in PROGRESS.findall(result.stdout)}
    runs = os.listdir(root) if os.path.isdir(root) else []
    return SimpleNamespace(result=result, tasks=progress, run_dir=os.path.join(root, runs[0]) if len(runs) == 1
                           else None, spec=_docs(package)[0], package=package)


def _outputs(run, task):
    """A task's executor_output.json, as its executor wrote it and kfp read it."""
    with open(os.path.join(run.run_dir, task, 'executor_output.json'), encoding='utf-8') as f:
        return json.load(f).get('artifacts', {})


def _artifact(run, task, key):
    (artifact,) = _outputs(run, task)[key]['artifacts']
    return artifact


def _compile_and_run(tmp_path, name, config_file, edit):
    config_path = shipped_config(tmp_path, name, config_file, edit)
    package = str(tmp_path / f'{name}_kubeflow.yaml')
    compiled = run_cli('kubeflow', 'compile', '--config', config_path, '--image', IMAGE, '-o', package)
    assert compiled.returncode == 0, compiled.stderr
    run = _run_local(package, tmp_path / 'kfp_root')
    run.config = load_config(config_path)
    return run


SEVERAL_MODELS = ('wide_deep', 'dnn')  # from data/attrition/compare.yaml: a Keras and an estimator kind


@pytest.fixture(scope='module')
def several(tmp_path_factory):
    def edit(raw):
        raw['models'] = [m for m in raw['models'] if m['name'] in SEVERAL_MODELS]
        _small(train_steps=200)(raw)
    return _compile_and_run(tmp_path_factory.mktemp('kfp-several'), 'attrition', 'compare.yaml', edit)


def _assert_every_task_ran_in_dependency_order(run):
    assert run.result.returncode == 0, run.result.stdout[-3000:] + run.result.stderr[-3000:]
    tasks = run.spec['root']['dag']['tasks']
    assert set(run.tasks) == set(tasks) and all(run.tasks.values()), run.result.stdout
    order = list(run.tasks)
    for name, task in tasks.items():
        assert all(order.index(dep) < order.index(name) for dep in task.get('dependentTasks', [])), name
    assert f'All {len(tasks)} tasks succeeded' in run.result.stdout


def _assert_outputs_are_kfp_artifacts(run):
    """Every output lies where KFP put it, <run>/<task>/<key> (ServedModel's may stay empty). Its metadata reaches
    the next task as written here; on open-source KFP it goes through MLMD, which keeps strings and numbers but
    hands a struct or list on wrapped ({"struct": ...}, metadata/converter.go). The only one is ExampleValidator's
    per-split `blessed`, which no component reads (AnomalyGate reads the anomalies file); a new one would reach
    its readers wrapped on the cluster."""
    structured = set()
    for task in run.spec['root']['dag']['tasks']:
        for key, artifacts in _outputs(run, task).items():
            for artifact in artifacts['artifacts']:
                assert artifact['uri'] == os.path.join(run.run_dir, task, key), (task, key)
                structured |= {(task, key, k) for k, v in artifact.get('metadata', {}).items()
                               if not isinstance(v, (str, float, int))}
    assert structured == {('ExampleValidator', 'anomalies', 'blessed')}


# ---- several models: every task, the selected model blessed, pushed and served -----------------------

def _selected(run) -> str:
    """The model the ModelSelector picked ('' when none was blessed)."""
    return _artifact(run, 'ModelSelector', 'blessing')['metadata']['selected_model']


def test_every_task_succeeds_in_dependency_order(several):
    _assert_every_task_ran_in_dependency_order(several)
    assert {f'Trainer_{n}' for n in SEVERAL_MODELS} <= set(several.tasks)


def test_outputs_are_kfp_artifacts_passed_downstream(several):
    _assert_outputs_are_kfp_artifacts(several)
    selection = _artifact(several, 'ModelSelector', 'blessing')['metadata']
    assert [c['model'] for c in json.loads(selection['comparison'])] == [m.name for m in several.config.models]
    # The Pusher got the selected Trainer's model through kfp's output passing: the same SavedModel went out.
    trained = os.path.join(_artifact(several, f'Trainer_{selection["selected_model"]}', 'model')['uri'],
                           'Format-Serving', 'saved_model.pb')
    archived = os.path.join(_artifact(several, 'Pusher', 'pushed_model')['uri'], 'saved_model.pb')
    with open(trained, 'rb') as a, open(archived, 'rb') as b:
        assert a.read() == b.read()
    examples = _artifact(several, 'CsvExampleGen', 'examples')
    assert json.loads(examples['metadata']['split_names']) == ['train', 'eval']


def test_selected_model_is_blessed_and_pushed_to_the_configs_push_dir(several):
    selected = _selected(several)
    assert selected in SEVERAL_MODELS, several.result.stdout
    assert _artifact(several, f'Evaluator_{selected}', 'blessing')['metadata']['blessed'] == 1
    assert _artifact(several, f'FairnessGate_{selected}', 'blessing')['metadata']['blessed'] == 1
    pushed = _artifact(several, 'Pusher', 'pushed_model')['metadata']
    base = os.path.join(several.config.push_path, several.config.serving.model_name)
    assert pushed['pushed'] == 1 and os.path.dirname(pushed['pushed_destination']) == base
    assert os.listdir(base) and os.path.exists(os.path.join(pushed['pushed_destination'], 'saved_model.pb'))
    assert f'Model pushed to {pushed["pushed_destination"]}.' in several.result.stdout


def test_pushed_model_answers_classify_on_serve(several, tmp_path):
    import tensorflow as tf
    from tfx_tabular.serving.client import ServingClient
    from tfx_tabular.serving.examples import raw_feature_dtypes, serialize
    config = several.config
    model = config.serving.model_name
    model_dir = _artifact(several, 'Pusher', 'pushed_model')['metadata']['pushed_destination']
    with open(config.csv_files[0], newline='') as f:
        rows = list(csv.DictReader(f))[::50]
    expected = tf.saved_model.load(model_dir).signatures['serving_default'](
        inputs=tf.constant(serialize(rows, raw_feature_dtypes(model_dir))))['scores'].numpy()
    exe = os.path.join(os.path.dirname(sys.executable), 'tfx-tabular')
    # The push directory, as a user serves it: the models.config the Pusher wrote there names the model.
    with open(tmp_path / 'serve.log', 'w') as log:
        server = subprocess.Popen([exe, 'serve', '--model_base_path', config.push_path, '--port', str(free_port())],
                                  stdout=subprocess.PIPE, stderr=log, text=True)
    try:
        line = read_line(server.stdout, 180)
        match = re.search(rf'Serving gRPC on (127\.0\.0\.1:\d+).*models: {model}', line)
        assert match, (line, (tmp_path / 'serve.log').read_text()[-3000:])
        with ServingClient(match[1], timeout=30, retries=0) as client:
            answer = client.classify_records(model, rows)
    finally:
        server.kill()
        server.wait(30)
    assert answer.version == int(os.path.basename(model_dir)) and answer.signature == 'serving_default'
    assert all(sorted(label for label, _ in r) == sorted(config.label.classes) for r in answer.results)
    scores = np.array([[s for _, s in r] for r in answer.results])
    np.testing.assert_allclose(scores, expected, atol=1e-6)
    np.testing.assert_allclose(scores.sum(axis=1), 1, atol=1e-5)


# ---- failures: named, with the log's last lines ------------------------------------------------------------

def test_a_failing_task_is_named_with_its_last_log_lines(several, tmp_path):
    """Run with a new interpreter per task, as a container starts (the other runs fork from a warm one)."""
    spec = _docs(several.package)[0]
    (tmp_path / 'empty').mkdir()
    spec['root']['dag']['tasks']['CsvExampleGen']['inputs']['parameters']['input_base'] = {
        'runtimeValue': {'constant': str(tmp_path / 'empty')}}
    run = _run_local(_write_package(tmp_path / 'no_data.yaml', spec), tmp_path / 'root', '--fresh-interpreters')
    assert run.result.returncode == 1
    first, *tail = run.result.stderr.splitlines()
    log = os.path.join(run.run_dir, 'CsvExampleGen', 'task.log')
    assert first == (f'tfx-tabular kubeflow run-local: task CsvExampleGen failed (exit code 1); its log: {log}; '
                     'last lines:')
    assert 0 < len(tail) <= 20 and any('does not match any files' in line for line in tail), tail
    assert run.tasks == {'CsvExampleGen': False}  # nothing ran after it


def test_the_spec_tfx_writes_for_vertex_fails_at_the_first_input_artifact(several, tmp_path):
    """TFX's own entrypoint gets no usable input type from KFP (kfp.local: system.Artifact; the open-source
    driver: an empty instanceSchema), so the first task with an input artifact fails."""
    from tfx.orchestration.kubeflow.v2.kubeflow_v2_dag_runner import KUBEFLOW_TFX_CMD
    spec = _docs(several.package)[0]
    for executor in spec['deploymentSpec']['executors'].values():
        executor['container']['command'] = list(KUBEFLOW_TFX_CMD)
    run = _run_local(_write_package(tmp_path / 'tfx_command.yaml', spec), tmp_path / 'root')
    assert run.result.returncode == 1 and run.tasks == {'CsvExampleGen': True, 'StatisticsGen': False}
    assert 'task StatisticsGen failed' in run.result.stderr.splitlines()[0]
    assert 'Could not import system.Artifact' in run.result.stderr


def test_a_package_it_cannot_run_is_one_line(tmp_path):
    from tfx import v1 as tfx
    from tfx.orchestration.kubeflow.v2 import kubeflow_v2_dag_runner as v2
    pipeline = tfx.dsl.Pipeline(pipeline_name='schema-2-0', pipeline_root=str(tmp_path),
                                components=[tfx.components.CsvExampleGen(input_base=str(tmp_path))])
    runner = v2.KubeflowV2DagRunner(v2.KubeflowV2DagRunnerConfig(default_image=IMAGE))  # TFX's default: 2.0.0
    legacy = _write_package(tmp_path / 'legacy.yaml', runner.run(pipeline, write_out=False)['pipelineSpec'])
    root = str(tmp_path / 'root')
    for package, root, message in (
            (legacy, root, "kfp's local orchestration cannot run this package: Expected constant."),
            (os.path.join(ROOT, 'setup.py'), root, 'should end with one of'),
            (legacy, 'gs://bucket/root', 'run-local writes to a local folder')):
        result = _tfx_tabular('kubeflow', 'run-local', '--package', package, '--pipeline-root', root)
        errors = result.stderr.strip().splitlines()
        assert result.returncode == 2 and len(errors) == 1 and message in errors[0], result.stderr
