"""Compiles the pipeline that runs locally into a Kubeflow Pipelines 2.x package (a PipelineSpec YAML).

The pipeline is the one `tfx-tabular run` runs, from the same `create_pipeline(config)`; TFX's KubeflowV2DagRunner
turns it into KFP's PipelineSpec. What differs on a cluster: Kubeflow keeps the metadata (no SQLite file), every
component runs in `--image`, and the pipeline root is the config's run_dir when that is an object-storage URI.
The spec is checked before it is written: it must parse strictly into kfp's PipelineSpec and hold no node that
open-source KFP 2 cannot run (TFX Resolver, InfraValidator).

TFX writes the spec for Vertex AI; open-source KFP 2 runs it differently (`for_open_source_kfp`). What the
backend does was read in kubeflow/pipelines, backend/src/v2 (driver/driver.go, component/launcher_v2.go,
metadata/client.go, at 2.5.0 and at head); `tfx-tabular kubeflow run-local` executes the result.
"""
import copy
import csv
import os
import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Set

import yaml

from tfx_tabular.pipeline.core import storage
from tfx_tabular.pipeline.core.storage import is_uri

# Keys of the object-storage Secret (manifests/object-storage-secret.yaml) passed to every component as env vars:
# tensorflow-io's s3:// filesystem and boto3 (Beam's s3 IO) read them.
OBJECT_STORAGE_ENV = ('AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_REGION', 'S3_ENDPOINT')

# The container command of every component (kubeflow/entrypoint.py: TFX's entrypoint given the artifact types).
ENTRYPOINT_COMMAND = ['python', '-m', 'tfx_tabular.kubeflow.entrypoint']

# kfp's compiler names every ComponentSpec so; kfp.local strips the prefix to name a task's output folder.
KFP_COMPONENT_PREFIX = 'comp-'

# TFX's KubeflowV2 builder accepts these pipeline names only.
_KFP_NAME = re.compile(r'[a-z0-9][a-z0-9-]{0,127}')
# A container image reference: [registry[:port]/]path[:tag][@sha256:digest], the registry holding a dot or a port.
_REGISTRY = r'(?:(?:localhost|[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)(?::[0-9]+)?|[A-Za-z0-9-]+:[0-9]+)/'
_PATH_PART = r'[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*'
_IMAGE = re.compile(f'(?:{_REGISTRY})?{_PATH_PART}(?:/{_PATH_PART})*'
                    r'(?::[\w][\w.-]{0,127})?(?:@sha256:[0-9a-f]{64})?')


class CompileError(Exception):
    """The pipeline cannot be compiled for Kubeflow; the message names the key or option and the fix."""


@dataclass
class Compiled:
    path: str
    tasks: List[str]
    pipeline_root: Optional[str]  # None: the cluster's default pipeline root
    warnings: List[str] = field(default_factory=list)


def check_image(image: str) -> None:
    if not image or not _IMAGE.fullmatch(image):
        raise CompileError(f'--image {image!r} is not a container image reference; pass one like '
                           'registry.example.com/team/tfx-tabular:0.1.0 (built from kubeflow/Dockerfile)')


def check_name(config) -> None:
    if not _KFP_NAME.fullmatch(config.name):
        suggestion = re.sub(r'[^a-z0-9-]', '-', config.name.lower()).strip('-') or 'my-pipeline'
        raise CompileError(f'name: {config.name!r} is not a Kubeflow pipeline name (lowercase letters, digits and '
                           f'-, starting with a letter or digit); rename it, e.g. {suggestion!r}')


def _read_label_classes(config) -> Set[str]:
    """Streams the label column of every CSV through tf.io.gfile (object storage): no file is held in memory."""
    import tensorflow as tf
    pattern = config.csv_pattern
    try:
        files = config.csv_files
        if not files:
            raise CompileError(f'data.csv: no file matches {pattern}; fix the URI, or list label.classes in the '
                               'config to compile without reading the data')
        classes: Set[str] = set()
        for path in files:
            with storage.open_text(path, newline='') as f:
                reader = csv.reader(f)
                header = [c.lstrip('\ufeff') for c in next(reader, [])]
                missing = [c for c in [config.label.column] + config.raw_columns if c not in header]
                if missing:
                    raise CompileError(f'{path}: column {missing[0]!r} named in the config is not in the CSV '
                                       f'header ({", ".join(header[:8])}...); fix the config or the file')
                at = header.index(config.label.column)
                for row in reader:
                    if len(row) > at:
                        classes.add(row[at])
    except (tf.errors.OpError, storage.StorageError) as e:
        reason = e.reason if isinstance(e, storage.StorageError) else e.message.splitlines()[0]
        raise CompileError(f'data.csv: cannot read {pattern} from here ({reason}); give this machine read access, '
                           'or list label.classes in the config to compile without reading the data') from None
    classes.discard('')
    return classes


def label_class_count(config) -> int:
    """`label.classes` when the config lists them, else the distinct labels read from the CSV."""
    if config.label.classes:
        return len(config.label.classes)
    if is_uri(config.csv_pattern):
        classes = _read_label_classes(config)
        if len(classes) < 2:
            raise CompileError(f'label column {config.label.column!r} has {len(classes)} class(es) in '
                               f'{config.csv_pattern}; a classifier needs at least two')
        return len(classes)
    from tfx_tabular.pipeline.core.csv_checks import check_csv_files
    return len(check_csv_files(config.csv_files, config.label.column, config.label.type, config.label.delimiter))


def local_path_warnings(config) -> List[str]:
    """One line per path a pod cannot reach: it exists on this machine only."""
    warnings = []
    if not is_uri(config.csv_pattern):
        warnings.append(f'data.csv: {config.csv_pattern} is on this machine and pods cannot read it; copy the data '
                        'to object storage and set data.csv to its gs:// or s3:// URI')
    if not is_uri(config.run_path):
        warnings.append('run_dir: not an object-storage URI, so runs use the cluster\'s default pipeline root, which '
                        'TFX cannot read when it is minio:// (KFP\'s default); set run_dir to a gs:// or s3:// URI')
    if not is_uri(config.push_path):
        warnings.append(f'serving.push_dir: {config.push_path} is on this machine; Pusher would write inside its pod '
                        'and the model would be lost; set serving.push_dir to a gs:// or s3:// URI')
    if not is_uri(config.frozen_schema_path) and os.path.exists(config.frozen_schema_path):
        warnings.append(f'frozen_schema: {config.frozen_schema_path} is on this machine and ImportSchemaGen\'s pod '
                        'cannot read it; upload it and set frozen_schema to its gs:// or s3:// URI')
    return warnings


def kubeflow_pipeline(config):
    """`create_pipeline(config)` without the local-only metadata store (Kubeflow keeps the metadata)."""
    from tfx import v1 as tfx
    from tfx_tabular.pipeline.pipeline import create_pipeline
    pipeline = create_pipeline(config, label_class_count(config), local_metadata=False)
    for node in pipeline.components:
        if isinstance(node, tfx.dsl.Resolver) or isinstance(node, tfx.components.InfraValidator):
            raise CompileError(f'component {node.id} is a TFX {type(node).__name__}, which open-source Kubeflow '
                               'Pipelines 2 cannot run; replace it with a plain component')
    return pipeline


def _platform_spec(executors: List[str], secret: str) -> Dict:
    """kfp-kubernetes' `secretAsEnv` on every executor: the Secret's object-storage keys become env vars."""
    def config():  # one object per executor: YAML would write shared ones as anchors and aliases
        return {'secretAsEnv': [{'secretName': secret,
                                 'keyToEnv': [{'secretKey': k, 'envVar': k} for k in OBJECT_STORAGE_ENV]}]}
    return {'platforms': {'kubernetes': {'deploymentSpec': {'executors': {e: config() for e in executors}}}}}


def for_open_source_kfp(spec: Dict) -> Dict:
    """TFX's spec (schema 2.1, written for Vertex AI) changed to what open-source KFP 2 runs as intended.

    - Lifecycle hooks go: no backend code reads `lifecycle` (driver, launcher and Argo compiler alike), so
      CsvExampleGen's `preCacheCheck` (TFX's file-based ExampleGen driver) never runs there. The executor does
      not need it; it only computed span, version and the input fingerprint.
    - Without that fingerprint KFP's cache key for ExampleGen is its parameters only: a changed CSV at the same
      path would be a cache hit and the run would train on the old data. Those tasks run every time instead.
    - Components are named `comp-<task>` as kfp's own compiler names them (KFP keys outputs by task name;
      kfp's local runner derives its task folders from the component name and expects that prefix).
    """
    spec = copy.deepcopy(spec)
    executors = spec['deploymentSpec']['executors']
    fingerprinted = set()
    for label, executor in executors.items():
        if executor.get('container', {}).pop('lifecycle', None):
            fingerprinted.add(label)
    renamed = {name: f'{KFP_COMPONENT_PREFIX}{name}' for name in spec['components']}
    spec['components'] = {renamed[name]: component for name, component in spec['components'].items()}
    for task in spec['root']['dag']['tasks'].values():
        task['componentRef']['name'] = renamed[task['componentRef']['name']]
        if spec['components'][task['componentRef']['name']].get('executorLabel') in fingerprinted:
            task['cachingOptions'] = {'enableCache': False}
    return spec


def check_spec(spec: Dict, platform: Optional[Dict] = None) -> List[str]:
    """Parses the spec strictly into kfp's protos and checks it runs on open-source KFP 2; returns the task names."""
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2
    try:
        parsed = json_format.ParseDict(spec, pipeline_spec_pb2.PipelineSpec())
        if platform:
            json_format.ParseDict(platform, pipeline_spec_pb2.PlatformSpec())
    except json_format.ParseError as e:
        raise CompileError(f'the compiled spec does not parse as a kfp PipelineSpec ({e}); this is a bug in '
                           'tfx-tabular, please report it') from None
    executors = parsed.deployment_spec.fields['executors'].struct_value.fields
    for label, executor in executors.items():
        kinds = set(executor.struct_value.fields)
        if 'resolver' in kinds:
            raise CompileError(f'executor {label} is a resolver, which open-source Kubeflow Pipelines 2 cannot run; '
                               'replace the Resolver with a plain component')
        if 'container' in kinds and not executor.struct_value.fields['container'].struct_value.fields.get('image'):
            raise CompileError(f'executor {label} has no image; pass --image')
    tasks = list(parsed.root.dag.tasks)
    for name, task in parsed.root.dag.tasks.items():
        if task.component_ref.name not in parsed.components:
            raise CompileError(f'task {name} refers to missing component {task.component_ref.name}')
    return tasks


def _write_atomically(path: str, documents: List[Dict], header: str) -> None:
    storage.makedirs(storage.dirname(storage.absolute(path)))
    with storage.atomic_open(path) as f:
        f.write(header)
        yaml.safe_dump_all(documents, f, sort_keys=True)


def compile_pipeline(config, image: str, output: str, secret: Optional[str] = None) -> Compiled:
    """Writes the Kubeflow package for `config` to `output` (.yaml); `secret` names the object-storage Secret."""
    if not output.endswith(('.yaml', '.yml')):
        raise CompileError(f'--output {output!r}: Kubeflow Pipelines packages are .yaml files; end it in .yaml')
    if secret is not None and not re.fullmatch(r'[a-z0-9]([-a-z0-9.]*[a-z0-9])?', secret):
        raise CompileError(f'--object-storage-secret {secret!r} is not a Kubernetes Secret name (lowercase '
                           'letters, digits, - and .)')
    check_image(image)
    check_name(config)
    from tfx import version
    from tfx.orchestration.kubeflow.v2 import kubeflow_v2_dag_runner as v2
    pipeline = kubeflow_pipeline(config)
    # Spec 2.1: parameters as `parameterType` and `constant`, the only forms the open-source driver resolves
    # (driver.go, resolveInputParameter: "param runtime value spec of type ... not implemented" otherwise), and
    # the component's input definitions passed to the entrypoint, which reads `parameterValues` with them.
    runner = v2.KubeflowV2DagRunner(v2.KubeflowV2DagRunnerConfig(
        default_image=image, default_commands=ENTRYPOINT_COMMAND, use_pipeline_spec_2_1=True))
    try:
        job = runner.run(pipeline, write_out=False)
    except NotImplementedError as e:  # TFX's step builder: InfraValidator and the like
        raise CompileError(f'{e}; open-source Kubeflow Pipelines 2 cannot run it: replace it with a plain '
                           'component') from None
    except ValueError as e:
        name = re.fullmatch(r'Invalid custom artifact type name: (\S+)', str(e))
        if name:
            raise CompileError(f'artifact type {name.group(1)!r}: Kubeflow needs custom artifact type names like '
                               f'\'tfx_tabular.{name.group(1).split(".")[-1]}\' (lowercase namespace, a dot, '
                               'CamelCase name); rename its TYPE_NAME') from None
        raise CompileError(f'TFX cannot compile this pipeline for Kubeflow: {e}') from None
    spec = for_open_source_kfp(job['pipelineSpec'])
    pipeline_root = pipeline.pipeline_info.pipeline_root if is_uri(config.run_path) else None
    if pipeline_root:
        spec['defaultPipelineRoot'] = pipeline_root
    platform = _platform_spec(list(spec['deploymentSpec']['executors']), secret) if secret else None
    tasks = check_spec(spec, platform)
    header = (f'# Kubeflow Pipelines 2.x package for tfx-tabular pipeline {config.name!r}, compiled by TFX '
              f'{version.__version__} KubeflowV2DagRunner.\n# Image: {image}\n')
    _write_atomically(output, [spec] + ([platform] if platform else []), header)
    return Compiled(path=output, tasks=tasks, pipeline_root=pipeline_root, warnings=local_path_warnings(config))
