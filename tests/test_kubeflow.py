"""Kubeflow Pipelines 2.x: the compiled package is the local pipeline, parses strictly, and runs on open-source KFP.

Also: Beam profiles parse with Beam's own PipelineOptions, the Kubernetes manifests parse into the kubernetes
client's models, `submit` drives kfp's real Client against a fake KFP API on 127.0.0.1, and the image's s3:// hook.
The streaming CsvExampleGen against TFX's: test_csv_example_gen.py.
"""
import glob
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading

import pytest
import yaml

from tfx_tabular.pipeline.core.beam import IN_PROCESS_MAX_BYTES, resolve_running_mode
from tfx_tabular.kubeflow.compile import OBJECT_STORAGE_ENV, CompileError, check_spec, compile_pipeline, label_class_count
from tfx_tabular.pipeline.core.config import ConfigError, load_config
from tests.conftest import DATA, ROOT, run_cli, write_csv

IMAGE = 'registry.example.com/team/tfx-tabular:0.1.0'
KUBEFLOW = os.path.join(ROOT, 'kubeflow')
SECRET_MANIFEST = os.path.join(KUBEFLOW, 'manifests', 'object-storage-secret.yaml')


def _docs(path):
    with open(path, encoding='utf-8') as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def _strict_spec(doc):
    """The YAML parsed into kfp's PipelineSpec with protobuf's json_format: an unknown field fails."""
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2
    return json_format.ParseDict(doc, pipeline_spec_pb2.PipelineSpec(), ignore_unknown_fields=False)


def _param(task, name):
    """A constant string parameter of a task (schema 2.1.0: `constant`, the form open-source KFP resolves)."""
    runtime = task.inputs.parameters[name].runtime_value
    assert runtime.HasField('constant'), f'{name} is not a constant'
    return runtime.constant.string_value


@pytest.fixture(scope='module')
def compiled(tmp_path_factory):
    """Each shipped config compiled once: {name: (config, path of the package)}; `compare` is the attrition
    config training three models side by side (per-model nodes and a ModelSelector)."""
    out = tmp_path_factory.mktemp('kfp')
    result = {}
    for name, path in (('attrition', 'attrition/config.yaml'), ('penguins', 'penguins/config.yaml'),
                       ('compare', 'attrition/compare.yaml')):
        config = load_config(os.path.join(DATA, path))
        package = compile_pipeline(config, IMAGE, str(out / f'{name}.yaml'), secret='tfx-tabular-object-storage')
        result[name] = (config, package)
    return result


@pytest.mark.parametrize('name', ['attrition', 'penguins', 'compare'])
def test_package_parses_strictly_and_kfp_client_accepts_it(compiled, name):
    from kfp.client.client import _extract_pipeline_yaml
    config, package = compiled[name]
    spec_doc, platform_doc = _docs(package.path)
    spec = _strict_spec(spec_doc)
    assert spec.pipeline_info.name == config.name and spec.schema_version == '2.1.0'
    doc = _extract_pipeline_yaml(package.path)  # what create_run_from_pipeline_package reads
    assert doc.pipeline_spec == spec
    assert set(doc.platform_spec.platforms) == {'kubernetes'}
    assert not os.path.exists(package.path + '.tmp')


@pytest.mark.parametrize('name', ['attrition', 'penguins', 'compare'])
def test_every_component_has_its_image_arguments_and_dependencies(compiled, name):
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2
    from tfx_tabular.kubeflow.compile import ENTRYPOINT_COMMAND
    from tfx_tabular.pipeline.core.names import model_push_dir, node_id
    from tfx_tabular.pipeline.pipeline import create_pipeline
    config, package = compiled[name]
    spec = _strict_spec(_docs(package.path)[0])
    local = create_pipeline(config, label_class_count(config))  # the pipeline `tfx-tabular run` runs
    tasks = spec.root.dag.tasks
    assert set(tasks) == {c.id for c in local.components}
    executors = json_format.MessageToDict(spec.deployment_spec)['executors']
    for component in local.components:
        task = tasks[component.id]
        assert set(task.dependent_tasks) == {n.id for n in component.upstream_nodes}, component.id
        for key, channel in component.inputs.items():
            producer = task.inputs.artifacts[key].task_output_artifact
            assert (producer.producer_task, producer.output_artifact_key) == (channel.producer_component_id,
                                                                             channel.output_key)
        assert task.component_ref.name == f'comp-{component.id}'
        component_spec = spec.components[task.component_ref.name]
        executor = executors[component_spec.executor_label]
        assert set(executor) == {'container'}, f'{component.id} is not a plain container (resolver/importer)'
        container = executor['container']
        assert container['image'] == IMAGE
        assert container['command'] == ENTRYPOINT_COMMAND
        assert 'lifecycle' not in container  # open-source KFP runs no lifecycle hook
        executor_class = component.executor_spec.executor_class
        assert container['args'][:2] == ['--executor_class_path',
                                         f'{executor_class.__module__}.{executor_class.__name__}']
        # The declared input types, which the entrypoint restores on the input artifacts.
        at = container['args'].index('--json_serialized_inputs_spec_args')
        declared = json_format.Parse(container['args'][at + 1], pipeline_spec_pb2.ComponentInputsSpec())
        assert declared == component_spec.input_definitions
        beam_args = list(local.beam_pipeline_args)  # the config's, `direct_running_mode: auto` decided
        assert container['args'][-len(beam_args):] == beam_args
        assert task.caching_options.enable_cache is (component.id != 'CsvExampleGen')
    assert _param(tasks['CsvExampleGen'], 'input_base') == os.path.dirname(config.csv_pattern)
    assert _param(tasks['Transform'], 'preprocessing_fn') == 'tfx_tabular.transforms.preprocessing.preprocessing_fn'
    for model in config.models:
        trainer = tasks[node_id(config, 'Trainer', model.name)]
        assert _param(trainer, 'run_fn') == 'tfx_tabular.components.trainer.run_fn'
        assert json.loads(_param(trainer, 'train_args'))['num_steps'] == model.train_steps
    push = json.loads(_param(tasks['Pusher'], 'push_destination'))
    assert push['filesystem']['base_directory'] == model_push_dir(config)


def test_object_storage_secret_reaches_every_executor(compiled):
    from kubernetes import client
    config, package = compiled['attrition']
    spec_doc, platform_doc = _docs(package.path)
    executors = platform_doc['platforms']['kubernetes']['deploymentSpec']['executors']
    assert set(executors) == set(spec_doc['deploymentSpec']['executors'])
    secret = client.ApiClient().deserialize(_Response(_docs(SECRET_MANIFEST)[0]), 'V1Secret')
    for config_ in executors.values():
        (as_env,) = config_['secretAsEnv']
        assert as_env['secretName'] == secret.metadata.name
        assert [(m['secretKey'], m['envVar']) for m in as_env['keyToEnv']] == [(k, k) for k in OBJECT_STORAGE_ENV]
    assert set(secret.string_data) == set(OBJECT_STORAGE_ENV)


def _ram_config(small_config, tmp_path, **changes):
    """The small config with its data in TensorFlow's in-memory ram:// filesystem, read only via tf.io.gfile."""
    import tensorflow as tf
    write, raw = small_config
    local = write_csv(tmp_path / 'copy.csv', ['age', 'city', 'income', 'y'],
                      [(20 + i, 'abc'[i % 3], 1000 + i, ['lo', 'mid', 'hi'][i % 3]) for i in range(30)])
    bucket = f'ram://{tmp_path.name}'
    tf.io.gfile.makedirs(f'{bucket}/data')
    tf.io.gfile.copy(str(local), f'{bucket}/data/part-0.csv', overwrite=True)
    data = {**raw, 'data': {'csv': f'{bucket}/data/part-*.csv'}, 'label': {'column': 'y', 'type': 'multiclass'},
            'run_dir': 'gs://tfx-tabular-test/runs/small', 'serving': {'model_name': 'small', 'push_dir':
                                                                           's3://tfx-tabular-test/serving/'}}
    data.update(changes)
    return load_config(write(data), check_csv=False)


def test_object_storage_paths_compile_and_labels_stream_through_gfile(small_config, tmp_path):
    config = _ram_config(small_config, tmp_path)
    assert config.csv_files == [f'ram://{tmp_path.name}/data/part-0.csv']
    assert label_class_count(config) == 3  # no label.classes: read through tf.io.gfile
    package = compile_pipeline(config, IMAGE, str(tmp_path / 'p.yaml'))
    assert package.warnings == []
    (spec_doc,) = _docs(package.path)
    spec = _strict_spec(spec_doc)
    assert spec.default_pipeline_root == package.pipeline_root == 'gs://tfx-tabular-test/runs/small/pipeline_root'
    tasks = spec.root.dag.tasks
    assert _param(tasks['CsvExampleGen'], 'input_base') == f'ram://{tmp_path.name}/data'
    push = json.loads(_param(tasks['Pusher'], 'push_destination'))
    assert push['filesystem']['base_directory'] == 's3://tfx-tabular-test/serving/small'


def test_listed_classes_compile_without_touching_the_data(small_config, tmp_path):
    config = _ram_config(small_config, tmp_path, data={'csv': 'ram://no-such-bucket/none-*.csv'},
                         label={'column': 'y', 'type': 'multiclass', 'classes': ['lo', 'mid', 'hi']})
    from tfx_tabular.pipeline.pipeline import create_pipeline
    package = compile_pipeline(config, IMAGE, str(tmp_path / 'p.yaml'))
    assert set(package.tasks) == {c.id for c in create_pipeline(config, 3, local_metadata=False).components}
    config.label.classes = None
    with pytest.raises(CompileError, match=r'data.csv: no file matches .* list label.classes'):
        label_class_count(config)


def test_local_paths_compile_with_one_warning_each(compiled):
    config, package = compiled['penguins']
    assert package.pipeline_root is None
    assert [w.split(':')[0] for w in package.warnings] == ['data.csv', 'run_dir', 'serving.push_dir']


@pytest.mark.parametrize('change, option, message', [
    ({'name': 'My_Model'}, {}, "name: 'My_Model' is not a Kubeflow pipeline name .* e.g. 'my-model'"),
    ({}, {'image': 'Not An Image'}, "--image 'Not An Image' is not a container image reference"),
    ({}, {'output': 'pipeline.json'}, 'Kubeflow Pipelines packages are .yaml files'),
    ({}, {'secret': 'Bad_Secret'}, 'not a Kubernetes Secret name'),
])
def test_bad_input_is_one_clear_error(small_config, tmp_path, change, option, message):
    write, raw = small_config
    config = load_config(write({**raw, **change}))
    args = {'image': IMAGE, 'output': str(tmp_path / 'p.yaml'), **option}
    with pytest.raises(CompileError, match=message):
        compile_pipeline(config, **args)
    assert not os.path.exists(tmp_path / 'p.yaml')


def test_a_resolver_is_refused(tmp_path):
    """TFX's own compile of a Resolver node; open-source KFP 2 cannot run it, so the spec check must refuse it."""
    from tfx import v1 as tfx
    from tfx.orchestration.kubeflow.v2 import kubeflow_v2_dag_runner as v2
    example_gen = tfx.components.CsvExampleGen(input_base=str(tmp_path))
    latest = tfx.dsl.Resolver(strategy_class=tfx.dsl.experimental.LatestArtifactStrategy,
                              examples=example_gen.outputs['examples']).with_id('latest_examples')
    pipeline = tfx.dsl.Pipeline(pipeline_name='with-resolver', pipeline_root=str(tmp_path),
                                components=[example_gen, latest])
    job = v2.KubeflowV2DagRunner(v2.KubeflowV2DagRunnerConfig(default_image=IMAGE)).run(pipeline, write_out=False)
    with pytest.raises(CompileError, match='is a resolver, which open-source Kubeflow Pipelines 2 cannot run'):
        check_spec(job['pipelineSpec'])


def test_open_source_kfp_gets_no_lifecycle_hook_and_example_gen_no_stale_cache(small_config):
    """TFX's spec for Vertex AI (preCacheCheck on CsvExampleGen) against what `compile` writes for open-source KFP."""
    from tfx.orchestration.kubeflow.v2 import kubeflow_v2_dag_runner as v2
    from tfx_tabular.kubeflow.compile import for_open_source_kfp, kubeflow_pipeline
    write, _ = small_config
    runner = v2.KubeflowV2DagRunner(v2.KubeflowV2DagRunnerConfig(default_image=IMAGE, use_pipeline_spec_2_1=True))
    vertex = runner.run(kubeflow_pipeline(load_config(write())), write_out=False)['pipelineSpec']
    hook = vertex['deploymentSpec']['executors']['CsvExampleGen_executor']['container']['lifecycle']['preCacheCheck']
    assert hook['command'][-1] == 'tfx.orchestration.kubeflow.v2.file_based_example_gen.driver'
    spec = for_open_source_kfp(vertex)
    assert 'lifecycle' in vertex['deploymentSpec']['executors']['CsvExampleGen_executor']['container']  # a copy
    assert not any('lifecycle' in e['container'] for e in spec['deploymentSpec']['executors'].values())
    tasks = spec['root']['dag']['tasks']
    assert {name for name, task in tasks.items() if not task['cachingOptions']['enableCache']} == {'CsvExampleGen'}
    assert set(spec['components']) == {f'comp-{name}' for name in vertex['components']}
    assert all(task['componentRef']['name'] == f'comp-{name}' for name, task in tasks.items())
    _strict_spec(spec)


# ---- the container entrypoint, on executor inputs shaped as open-source KFP 2 builds them ----------------------

def _inputs_spec_arg(spec_doc, task):
    """The `--json_serialized_inputs_spec_args` value compiled into a task's container."""
    component = spec_doc['components'][f'comp-{task}']
    args = spec_doc['deploymentSpec']['executors'][component['executorLabel']]['container']['args']
    return component, args[args.index('--json_serialized_inputs_spec_args') + 1]


TASK_MODULE = """
import os, sys
print('task', __name__, os.getcwd(), sys.argv[1:], sys.stdin.read() == '')
if sys.argv[1] == 'raise':
    raise RuntimeError('boom in the task')
sys.exit(sys.argv[1] if not sys.argv[1].isdigit() else int(sys.argv[1]))
"""


@pytest.mark.pipeline  # the warm interpreter imports TensorFlow and TFX first (seconds)
def test_warm_interpreter_runs_each_task_as_python_m_would(tmp_path, monkeypatch):
    """run-local's warm interpreter (kubeflow/warm_interpreter.py): each task a forked child running its module
    as __main__ with its own arguments, working directory, log and exit code; a failing task leaves it serving."""
    from tfx_tabular.kubeflow.run_local import _WarmInterpreter, python_module_command
    (tmp_path / 'task_module.py').write_text(TASK_MODULE)
    monkeypatch.setenv('PYTHONPATH', str(tmp_path))
    warm = _WarmInterpreter(str(tmp_path / 'warm.log'))
    try:
        logs = {}
        for i, (arg, code) in enumerate([('0', 0), ('3', 3), ('raise', 1), ('bad input: says why', 1), ('0', 0)]):
            (tmp_path / f'task{i}').mkdir()
            logs[arg] = str(tmp_path / f'task{i}' / 'task.log')
            module, args = python_module_command([sys.executable, '-m', 'task_module', arg])
            assert warm.run(module, args, cwd=str(tmp_path / f'task{i}'), log=logs[arg]) == code, arg
            with open(logs[arg]) as f:
                log = f.read()
            assert f"task __main__ {tmp_path / f'task{i}'} ['{arg}'] True" in log, log
        assert 'RuntimeError: boom in the task' in open(logs['raise']).read()
        assert open(logs['bad input: says why']).read().endswith('bad input: says why\n')
    finally:
        warm.close()
    assert python_module_command(['/usr/bin/env', 'python', '-m', 'x']) is None


def test_entrypoint_restores_the_input_types_open_source_kfp_leaves_out(compiled):
    """The driver reads an upstream output back from MLMD: name = its MLMD id, metadata = what the producer wrote
    plus display_name and store_session_info, type = `instanceSchema: ""` (metadata/client.go at 2.5.0)."""
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2
    from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_entrypoint_utils as tfx_utils
    from tfx.types import standard_artifacts
    from tfx_tabular.kubeflow.entrypoint import EntrypointError, with_declared_input_types
    component, inputs_spec = _inputs_spec_arg(_docs(compiled['attrition'][1].path)[0], 'StatisticsGen')
    uri = 's3://bucket/root/attrition/4f1c/CsvExampleGen/9e2d/examples'
    oss_input = {
        'inputs': {'artifacts': {'examples': {'artifacts': [{
            'name': '17', 'type': {'instanceSchema': ''}, 'uri': uri,
            'metadata': {'split_names': '["train", "eval"]', 'span': 0.0, 'tfx_version': '1.15.1',
                         'display_name': 'examples', 'store_session_info': '{"Provider": "s3"}'}}]}},
                   'parameterValues': {'exclude_splits': '[]'}},
        'outputs': {'artifacts': {'statistics': {'artifacts': [{
            'type': component['outputDefinitions']['artifacts']['statistics']['artifactType'],
            'uri': 's3://bucket/root/attrition/4f1c/StatisticsGen/77aa/statistics'}]}},
            'outputFile': '/tmp/kfp_outputs/output_metadata.json'}}
    as_sent = json_format.ParseDict(oss_input, pipeline_spec_pb2.ExecutorInput())
    with pytest.raises(AttributeError):  # TFX's own entrypoint: yaml.safe_load('') is None (tensorflow/tfx#7768)
        tfx_utils.parse_raw_artifact_dict(as_sent.inputs.artifacts)
    fixed = json_format.Parse(with_declared_input_types(json.dumps(oss_input), inputs_spec),
                              pipeline_spec_pb2.ExecutorInput())
    (examples,) = tfx_utils.parse_raw_artifact_dict(fixed.inputs.artifacts)['examples']
    assert type(examples) is standard_artifacts.Examples
    assert (examples.uri, examples.split_names, examples.span) == (uri, '["train", "eval"]', 0)
    assert fixed.inputs.parameter_values == as_sent.inputs.parameter_values and fixed.outputs == as_sent.outputs
    with pytest.raises(EntrypointError, match="input artifact 'examples' is not declared"):
        with_declared_input_types(json.dumps(oss_input), '{}')


def test_entrypoint_maps_this_packages_artifact_type_names_to_their_classes(monkeypatch):
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2
    from tfx.orchestration.kubeflow.v2 import compiler_utils
    from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_entrypoint_utils as tfx_utils
    from tfx_tabular.components.confusion_cut.spec import ARTIFACT_TYPE, ConfusionCutArtifact
    from tfx_tabular.kubeflow.entrypoint import EntrypointError, register_custom_types
    monkeypatch.setattr(compiler_utils, 'TITLE_TO_CLASS_PATH', dict(compiler_utils.TITLE_TO_CLASS_PATH))

    def executor_input(schema):
        return json.dumps({'outputs': {'artifacts': {'confusion_cut': {'artifacts': [
            {'type': {'instanceSchema': schema}, 'uri': '/root/ConfusionCut/confusion_cut'}]}}}})

    schema = compiler_utils.get_artifact_schema(ConfusionCutArtifact)
    with pytest.raises(ImportError, match=f"Could not import {ARTIFACT_TYPE}"):  # TFX imports the title as a path
        tfx_utils.parse_raw_artifact_dict(
            json_format.Parse(executor_input(schema), pipeline_spec_pb2.ExecutorInput()).outputs.artifacts)
    executor = 'tfx_tabular.components.confusion_cut.executor.Executor'
    assert register_custom_types(executor_input(schema), executor) == {
        ARTIFACT_TYPE: 'tfx_tabular.components.confusion_cut.spec.ConfusionCutArtifact'}
    parsed = json_format.Parse(executor_input(schema), pipeline_spec_pb2.ExecutorInput())
    (cut,) = tfx_utils.parse_raw_artifact_dict(parsed.outputs.artifacts)['confusion_cut']
    assert type(cut) is ConfusionCutArtifact
    with pytest.raises(EntrypointError, match="artifact type 'tfx_tabular.Nowhere': no artifact class with that "
                                              "TYPE_NAME is imported by tfx_tabular.components.confusion_cut.executor"):
        register_custom_types(executor_input(schema.replace(ARTIFACT_TYPE, 'tfx_tabular.Nowhere')), executor)


# ---- Beam profiles ------------------------------------------------------------------------------------------

PROFILE_CASES = {
    'direct': {},
    'dataflow': {'project': 'my-project', 'region': 'europe-west1', 'temp_location': 'gs://my-bucket/tmp',
                 'sdk_container_image': IMAGE, 'max_num_workers': 20},
    'portable': {'job_endpoint': 'flink-jobserver.flink:8099', 'environment_config': IMAGE},
}


def _options(args):
    from apache_beam.options.pipeline_options import PipelineOptions
    options = PipelineOptions(args)
    known = options.get_all_options(drop_default=True)
    with_unknown = options.get_all_options(drop_default=True, retain_unknown_options=True)
    assert set(with_unknown) == set(known), f'flags Beam does not know: {set(with_unknown) - set(known)}'
    return options


@pytest.mark.parametrize('profile', PROFILE_CASES)
def test_each_beam_profile_parses_into_the_intended_options(small_config, profile):
    from apache_beam.options import pipeline_options as po
    write, raw = small_config
    config = load_config(write({**raw, 'beam': {'profile': profile, 'settings': PROFILE_CASES[profile]}}))
    # direct_running_mode auto is decided per run by the CSV's size (object storage: unknown, counts as large).
    assert resolve_running_mode(config.beam.args, 1000)[1] == ('in_memory' if profile == 'direct' else None)
    assert resolve_running_mode(config.beam.args, None)[1] == ('multi_processing' if profile == 'direct' else None)
    resolved = resolve_running_mode(config.beam.args, IN_PROCESS_MAX_BYTES + 1)[0]
    options = _options(resolved)
    runner = options.view_as(po.StandardOptions).runner
    if profile == 'direct':
        direct = options.view_as(po.DirectOptions)
        assert runner is None  # Beam's default: the DirectRunner
        assert (direct.direct_running_mode, direct.direct_num_workers) == ('multi_processing', 0)
        # TFX builds no sdist of itself for workers that run this Python.
        from tfx.utils.dependency_utils import make_beam_dependency_flags
        assert make_beam_dependency_flags(resolved) == resolved
    elif profile == 'dataflow':
        gcp = options.view_as(po.GoogleCloudOptions)
        worker = options.view_as(po.WorkerOptions)
        assert runner == 'DataflowRunner'
        assert (gcp.project, gcp.region, gcp.temp_location) == ('my-project', 'europe-west1', 'gs://my-bucket/tmp')
        assert (worker.sdk_container_image, worker.max_num_workers) == (IMAGE, 20)
        assert options.view_as(po.SetupOptions).sdk_location == 'container'
    else:
        portable = options.view_as(po.PortableOptions)
        assert runner == 'PortableRunner'
        assert portable.job_endpoint == 'flink-jobserver.flink:8099'
        assert (portable.environment_type, portable.environment_config) == ('DOCKER', IMAGE)


def test_extra_beam_args_replace_the_profiles_flag_and_reach_the_kubeflow_spec(small_config, tmp_path):
    from apache_beam.options import pipeline_options as po
    write, raw = small_config
    config = load_config(write({**raw, 'beam': {'profile': 'dataflow', 'settings': PROFILE_CASES['dataflow'],
                                                'args': ['--max_num_workers=5', '--machine_type=n2-highmem-4']}}))
    assert sum(a.startswith('--max_num_workers') for a in config.beam.args) == 1
    worker = _options(config.beam.args).view_as(po.WorkerOptions)
    assert (worker.max_num_workers, worker.machine_type) == (5, 'n2-highmem-4')
    assert load_config(write({**raw, 'beam': config.beam.model_dump()})).beam.args == config.beam.args
    spec = _strict_spec(_docs(compile_pipeline(config, IMAGE, str(tmp_path / 'p.yaml')).path)[0])
    args = spec.deployment_spec['executors']['Transform_executor']['container']['args']
    assert list(args)[-len(config.beam.args):] == config.beam.args


@pytest.mark.parametrize('beam, message', [
    ({'profile': 'dataflow', 'settings': {'project': 'p'}}, 'beam: settings.region: required by profile dataflow'),
    ({'profile': 'dataflow', 'settings': {**PROFILE_CASES['dataflow'], 'temp_location': '/tmp'}},
     "beam: settings.temp_location: Dataflow needs a gs:// folder, got '/tmp'"),
    ({'profile': 'portable', 'settings': {**PROFILE_CASES['portable'], 'environment_type': 'K8S'}},
     'beam: settings.environment_type: must be one of DOCKER, EXTERNAL, PROCESS'),
    ({'profile': 'direct', 'settings': {'num_workers': 4}}, 'beam: settings.num_workers: not a setting of profile'),
    ({'profile': 'spark'}, "beam: profile: unknown profile 'spark'; use one of direct, dataflow, portable"),
])
def test_bad_beam_profile_is_one_clear_config_error(small_config, beam, message):
    write, raw = small_config
    with pytest.raises(ConfigError) as info:
        load_config(write({**raw, 'beam': beam}))
    assert len(info.value.problems) == 1 and info.value.problems[0].startswith(message), info.value.problems


# ---- Kubernetes manifests -----------------------------------------------------------------------------------

class _Response:
    """What kubernetes.client.ApiClient.deserialize reads: a body in `.data`."""

    def __init__(self, obj):
        self.data = json.dumps(obj)


def _camel_case_keys(value):
    """Drops empty values so a model's serialization compares with the manifest as written."""
    if isinstance(value, dict):
        return {k: _camel_case_keys(v) for k, v in value.items() if v not in (None, {}, [])}
    if isinstance(value, list):
        return [_camel_case_keys(v) for v in value]
    return value


@pytest.mark.parametrize('path', sorted(glob.glob(os.path.join(KUBEFLOW, 'manifests', '*.yaml'))),
                         ids=os.path.basename)
def test_manifests_parse_into_kubernetes_models(path):
    from kubernetes import client
    api = client.ApiClient()
    docs = _docs(path)
    assert docs
    for doc in docs:
        model = f'V1{doc["kind"]}'
        assert doc['apiVersion'] in ('v1', 'rbac.authorization.k8s.io/v1') and hasattr(client, model)
        obj = api.deserialize(_Response(doc), model)
        # The model keeps only fields it knows: a misspelt or misplaced key would be missing from the round trip.
        assert _camel_case_keys(api.sanitize_for_serialization(obj)) == _camel_case_keys(doc)
        assert obj.metadata.name and obj.metadata.namespace == 'kubeflow'


def test_launcher_configmap_uses_the_object_storage_secret():
    (configmap,) = _docs(os.path.join(KUBEFLOW, 'manifests', 'kfp-launcher-configmap.yaml'))
    (secret,) = _docs(SECRET_MANIFEST)
    s3 = yaml.safe_load(configmap['data']['providers'])['s3']['default']
    ref = s3['credentials']['secretRef']
    assert ref['secretName'] == secret['metadata']['name']
    assert {ref['accessKeyKey'], ref['secretKeyKey']} <= set(secret['stringData'])
    assert configmap['data']['defaultPipelineRoot'].startswith(('s3://', 'gs://'))


# ---- submit -------------------------------------------------------------------------------------------------

class _FakeKfp(http.server.BaseHTTPRequestHandler):
    """The few KFP v2beta1 API calls kfp's Client makes to start a run; records each request."""
    requests = []
    refuse_runs = False

    def _answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):  # noqa: N802 - http.server's naming
        self.requests.append(('GET', self.path, None))
        if self.path.startswith('/apis/v2beta1/healthz'):
            return self._answer(200, {'multi_user': False})
        if self.path.startswith('/apis/v2beta1/experiments'):
            return self._answer(200, {'experiments': [], 'total_size': 0})
        self._answer(404, {'error': 'not found'})

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers['Content-Length'])))
        self.requests.append(('POST', self.path, body))
        if self.path == '/apis/v2beta1/experiments':
            return self._answer(200, {'experiment_id': 'exp-123', 'display_name': body['display_name']})
        if self.path == '/apis/v2beta1/runs':
            if self.refuse_runs:
                return self._answer(400, {'error': 'bad pipeline spec', 'message': 'bad pipeline spec: no root'})
            return self._answer(200, {'run_id': 'run-456', 'display_name': body['display_name'],
                                      'experiment_id': body['experiment_id']})
        self._answer(404, {'error': 'not found'})

    def log_message(self, *args):
        pass


@pytest.fixture
def fake_kfp():
    _FakeKfp.requests, _FakeKfp.refuse_runs = [], False
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), _FakeKfp)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f'http://127.0.0.1:{server.server_address[1]}', _FakeKfp
    server.shutdown()
    server.server_close()


def test_submit_starts_a_run_through_the_kfp_client(compiled, fake_kfp, monkeypatch, tmp_path):
    from kfp.client.client import _extract_pipeline_yaml
    from tfx_tabular.kubeflow.submit import submit
    monkeypatch.setenv('HOME', str(tmp_path))  # no ~/.config/kfp/context.json from this machine
    host, server = fake_kfp
    config, package = compiled['attrition']
    done = submit(package.path, host, experiment='nightly', run_name='attrition test',
                  pipeline_root='s3://bucket/root', service_account='tfx-tabular-runner')
    assert done.run_id == 'run-456'
    posts = {path: body for method, path, body in server.requests if method == 'POST'}
    assert posts['/apis/v2beta1/experiments']['display_name'] == 'nightly'
    run = posts['/apis/v2beta1/runs']
    assert (run['experiment_id'], run['display_name'], run['service_account']) == (
        'exp-123', 'attrition test', 'tfx-tabular-runner')
    assert run['runtime_config']['pipeline_root'] == 's3://bucket/root'
    assert run['pipeline_spec'] == _extract_pipeline_yaml(package.path).to_dict()
    assert run['pipeline_spec']['pipeline_spec']['pipelineInfo']['name'] == 'attrition'


def test_submit_reports_a_refused_run_and_an_unreachable_host(compiled, fake_kfp, monkeypatch, tmp_path):
    from tfx_tabular.kubeflow.submit import SubmitFailed, submit
    monkeypatch.setenv('HOME', str(tmp_path))
    host, server = fake_kfp
    server.refuse_runs = True
    _, package = compiled['penguins']
    with pytest.raises(SubmitFailed, match='refused the run: HTTP 400 .*bad pipeline spec: no root'):
        submit(package.path, host)
    with pytest.raises(SubmitFailed, match=r'cannot reach Kubeflow Pipelines at http://127.0.0.1:9 '):
        submit(package.path, 'http://127.0.0.1:9')


def test_cli_compile_then_dry_run_submit(tmp_path):
    package = str(tmp_path / 'attrition.yaml')
    result = run_cli('kubeflow', 'compile', '--config', os.path.join(DATA, 'attrition', 'config.yaml'),
                     '--image', IMAGE, '--output', package)
    assert result.returncode == 0, result.stderr
    tasks = len(_strict_spec(_docs(package)[0]).root.dag.tasks)
    assert f'Wrote {package}: {tasks} components' in result.stdout
    assert [line.split(':')[0] for line in result.stderr.splitlines()] == ['warning'] * 3  # one per local path
    dry = run_cli('kubeflow', 'submit', '--package', package, '--dry-run', '--experiment', 'e1')
    assert dry.returncode == 0, dry.stderr
    assert f"{tasks} components of pipeline 'attrition'" in dry.stdout and "experiment 'e1'" in dry.stdout
    assert dry.stderr == ''


@pytest.mark.parametrize('args, code, message', [
    (['submit', '--package', 'missing.yaml', '--dry-run'], 2, '--package missing.yaml: file not found'),
    (['submit', '--package', 'setup.py', '--dry-run'], 2, 'should end with one of'),
    (['submit', '--package', 'x.yaml'], 2, '--host is required'),
    (['submit', '--package', 'x.yaml', '--host', 'localhost:8080', '--dry-run'], 2, 'is not a URL'),
    (['submit', '--config', 'data/attrition/config.yaml', '--dry-run'], 2, '--config needs --image'),
    (['compile', '--config', 'data/attrition/config.yaml', '--image', 'UPPER/case'], 2, 'not a container image'),
])
def test_cli_errors_are_one_line(args, code, message):
    result = run_cli('kubeflow', *args, cwd=ROOT)
    assert result.returncode == code
    assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr, result.stderr


@pytest.mark.parametrize('command, option, words', [
    ('compile', '--config', 'Kubeflow Pipelines 2.x'), ('submit', '--config', 'Kubeflow Pipelines 2.x'),
    ('run-local', '--package', "kfp's own local orchestration"),
])
def test_cli_help(command, option, words):
    result = run_cli('kubeflow', command, '--help')
    assert result.returncode == 0 and option in result.stdout and words in result.stdout


# ---- the image's s3:// hook -------------------------------------------------------------------------------------

def test_image_pth_hook_imports_the_filesystem_plugin_right_after_tensorflow(tmp_path):
    """The .pth the Dockerfile installs, loaded as Python loads site-packages, with a stand-in tensorflow_io."""
    (tmp_path / 'tensorflow_io.py').write_text(
        'import tensorflow\nassert tensorflow.io.gfile.exists\nLOADED_AFTER_TENSORFLOW = True\n')
    site_packages = tmp_path / 'site-packages'
    site_packages.mkdir()
    shutil.copy(os.path.join(KUBEFLOW, 'tfx_tabular_filesystems.pth'), site_packages)
    dockerfile = open(os.path.join(KUBEFLOW, 'Dockerfile')).read()
    assert 'FROM gcr.io/tfx-oss-public/tfx:1.15.1' in dockerfile
    assert 'kubeflow/tfx_tabular_filesystems.pth' in dockerfile
    code = ('import site, sys; site.addsitedir(sys.argv[1]); '
            'before = "tensorflow_io" in sys.modules; import tensorflow; '
            'print(before, sys.modules["tensorflow_io"].LOADED_AFTER_TENSORFLOW)')
    env = {**os.environ, 'PYTHONPATH': f'{ROOT}{os.pathsep}{tmp_path}', 'TF_CPP_MIN_LOG_LEVEL': '3'}
    result = subprocess.run([sys.executable, '-c', code, str(site_packages)], capture_output=True, text=True, env=env,
                            timeout=300)
    assert result.stdout.split() == ['False', 'True'], result.stderr[-2000:]
