"""The latest run's EmbeddingMetadata artifact, found through MLMD, and the TensorBoard command that shows it.

Only ml_metadata and protobuf are imported here, so `tfx-tabular embeddings` answers in a fraction of a second.
"""
import os
import shlex
from typing import Dict, List, Optional

from google.protobuf import text_format
from ml_metadata import errors
from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2
from tensorboard.plugins.projector.projector_config_pb2 import ProjectorConfig

from tfx_tabular.pipeline.core.names import metadata_path

# Kubeflow's compiler accepts custom artifact type names only in the form `namespace.Name`.
ARTIFACT_TYPE = 'tfx_tabular.EmbeddingMetadata'
CONFIG_FILE = 'projector_config.pbtxt'  # the file name TensorBoard's projector plugin looks for
DEFAULT_PORT = 6006


class NoEmbeddings(Exception):
    """There is nothing to show yet; the message says which command produces it."""


def embedding_logdir(components: List[Dict]) -> Optional[str]:
    """The EmbeddingMetadata URI in `pipeline.summary.latest_run_components` output (for the run report)."""
    for component in components:
        for artifact in component['outputs'].values():
            if artifact['type'] == ARTIFACT_TYPE:
                return artifact['uri']
    return None


def tensorboard_command(logdir: str, port: int = DEFAULT_PORT) -> str:
    return f'tensorboard --logdir {shlex.quote(logdir)} --port {port}'


def _model_name(uri: str) -> str:
    """`.../pipeline_root/EmbeddingMetadataGen_dnn/embedding_metadata/7` -> `dnn` ('' with one model)."""
    node = os.path.basename(os.path.dirname(os.path.dirname(uri.rstrip('/'))))
    return node.split('_', 1)[1] if '_' in node else ''


def _latest_run_artifacts(path: str) -> Dict[str, str]:
    """{model name: URI} of the EmbeddingMetadata of the newest pipeline run (cached runs are attributed too)."""
    connection = metadata_store_pb2.ConnectionConfig()
    connection.sqlite.filename_uri = path
    connection.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
    store = metadata_store.MetadataStore(connection)
    runs = store.get_contexts_by_type('pipeline_run')
    if not runs:
        return {}
    run = max(runs, key=lambda c: (c.create_time_since_epoch, c.id))
    try:
        type_id = store.get_artifact_type(ARTIFACT_TYPE).id
    except errors.NotFoundError:  # no run has produced one yet
        return {}
    found = sorted((a for a in store.get_artifacts_by_context(run.id) if a.type_id == type_id), key=lambda a: a.id)
    return {_model_name(a.uri): a.uri for a in found}


def latest_logdirs(config, config_path: str) -> Dict[str, str]:
    """{model name ('' with one model): log dir} of the latest run; raises NoEmbeddings saying what to run."""
    rerun = f'run `tfx-tabular run --config {config_path}`'
    path = metadata_path(config)
    if not os.path.exists(path):
        raise NoEmbeddings(f'{config.name} has not run yet (no {path}); {rerun} first')
    logdirs = _latest_run_artifacts(path)
    if not logdirs:
        raise NoEmbeddings(f'the latest run of {config.name} made no embedding metadata (it stopped before '
                           f'EmbeddingMetadataGen or predates it); {rerun}')
    for logdir in logdirs.values():
        if not os.path.exists(os.path.join(logdir, CONFIG_FILE)):
            raise NoEmbeddings(f'{logdir} has no {CONFIG_FILE} (deleted or moved?); {rerun} again')
    return logdirs


def describe(logdirs: Dict[str, str], port: int = DEFAULT_PORT) -> List[str]:
    """The command on the first line (for scripts), then where to look and what is there.

    With several models, one command per model (TensorBoard's projector shows only the root of `--logdir`;
    it finds no projector run under `--logdir_spec`), the first model's first.
    """
    lines = []
    for name, logdir in logdirs.items():
        with open(os.path.join(logdir, CONFIG_FILE), encoding='utf-8') as f:
            config = text_format.Parse(f.read(), ProjectorConfig())
        shapes = ', '.join(f'{e.tensor_name} ({" x ".join(str(d) for d in e.tensor_shape)})'
                           for e in config.embeddings)
        where = f'then open http://localhost:{port}/#projector to explore{" model " + name if name else ""}'
        lines += [tensorboard_command(logdir, port), f'{where}: {shapes}']
    return lines
