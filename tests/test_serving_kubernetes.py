"""kubeflow/serving/: the manifests parse into the `kubernetes` client's models, and their ports, paths and
arguments agree with each other, with the push layout (models.config rendered from a push directory) and
with the flags of `tfx-tabular serve`, which are tensorflow_model_server's."""
import json
import os

import pytest
import yaml
from kubernetes import client

from tfx_tabular.pipeline.cli import build_parser
from tfx_tabular.serving import model_config as mc
from tests.conftest import ROOT

MANIFESTS = os.path.join(ROOT, 'kubeflow', 'serving')


class _Response:
    """What ApiClient.deserialize reads: a response body."""

    def __init__(self, obj):
        self.data = json.dumps(obj)


def _load(name):
    api = client.ApiClient()
    objects = {}
    with open(os.path.join(MANIFESTS, name)) as f:
        for doc in yaml.safe_load_all(f):
            group = doc['apiVersion'].split('/')[-1].capitalize()
            kind = f'{group}{doc["kind"]}'
            objects[doc['kind']] = api.deserialize(_Response(doc), kind)
    return objects


@pytest.fixture(scope='module')
def manifests():
    objects = _load('tf-serving.yaml')
    objects.update(_load('pvc.yaml'))
    return objects


def _args(container):
    return dict(a[2:].split('=', 1) for a in container.args)


def test_manifests_are_kubernetes_objects(manifests):
    assert isinstance(manifests['ConfigMap'], client.V1ConfigMap)
    assert isinstance(manifests['Deployment'], client.V1Deployment)
    assert isinstance(manifests['Service'], client.V1Service)
    assert isinstance(manifests['PersistentVolumeClaim'], client.V1PersistentVolumeClaim)
    container = manifests['Deployment'].spec.template.spec.containers[0]
    assert container.image.startswith('tensorflow/serving:')  # the official image
    assert container.command == ['tensorflow_model_server']
    labels = manifests['Deployment'].spec.template.metadata.labels
    assert manifests['Deployment'].spec.selector.match_labels.items() <= labels.items()
    assert manifests['Service'].spec.selector.items() <= labels.items()


def test_ports_agree(manifests):
    container = manifests['Deployment'].spec.template.spec.containers[0]
    args = _args(container)
    ports = {p.name: p.container_port for p in container.ports}
    assert ports == {'grpc': int(args['port']), 'rest': int(args['rest_api_port'])} == {'grpc': 8500, 'rest': 8501}
    service = {p.name: (p.port, p.target_port) for p in manifests['Service'].spec.ports}
    assert service == {'grpc': (8500, 'grpc'), 'rest': (8501, 'rest')}
    assert container.readiness_probe.http_get.port in ports
    assert container.liveness_probe.tcp_socket.port in ports


def test_models_config_and_volumes_agree_with_the_push_layout(manifests, tmp_path):
    pod = manifests['Deployment'].spec.template.spec
    container = pod.containers[0]
    mounts = {m.name: m.mount_path for m in container.volume_mounts}
    volumes = {v.name: v for v in pod.volumes}
    config_file = _args(container)['model_config_file']
    config_volume = next(n for n, v in volumes.items() if v.config_map is not None)
    assert volumes[config_volume].config_map.name == manifests['ConfigMap'].metadata.name
    assert os.path.dirname(config_file) == mounts[config_volume]  # a folder mount, so ConfigMap edits arrive
    assert os.path.basename(config_file) in manifests['ConfigMap'].data
    models_volume = next(n for n, v in volumes.items() if v.persistent_volume_claim is not None)
    assert volumes[models_volume].persistent_volume_claim.claim_name == manifests['PersistentVolumeClaim'].metadata.name
    models_root = mounts[models_volume]

    text = manifests['ConfigMap'].data[os.path.basename(config_file)]
    config = mc.parse_models_config(text)
    names = [m.name for m in config.model_config_list.config]
    assert all(m.base_path == f'{models_root}/{m.name}' for m in config.model_config_list.config)
    assert f'/v1/models/{names[-1]}' == container.readiness_probe.http_get.path

    # The ConfigMap is exactly what `tfx-tabular serving config --base_path_root` renders for a push directory
    # holding the shipped models (each model's folder in the TF Serving layout).
    push_dir = tmp_path / 'push'
    for name in names:
        version = push_dir / name / '1700000000'
        version.mkdir(parents=True)
        (version / 'saved_model.pb').write_bytes(b'')
    rendered = mc.rerooted(mc.update_models_config(str(push_dir)), models_root)
    assert mc.format_models_config(rendered) == text


def test_container_args_are_flags_tfx_tabular_serve_understands(manifests):
    container = manifests['Deployment'].spec.template.spec.containers[0]
    args = build_parser().parse_args(['serve', *container.args])
    assert (args.port, args.rest_api_port) == (8500, 8501)
    assert args.model_config_file == _args(container)['model_config_file']
    assert args.model_config_file_poll_wait_seconds == 60 and args.file_system_poll_wait_seconds == 10
