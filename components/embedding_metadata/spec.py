"""The EmbeddingMetadata artifact type and the ComponentSpec of EmbeddingMetadataGen.

The artifact is a TensorBoard log directory: point `tensorboard --logdir` at its URI and the Embedding
Projector shows every tensor it holds, each row labelled by what it stands for.
"""
from tfx import types
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ExecutionParameter

from tfx_tabular.components.embedding_metadata.locate import ARTIFACT_TYPE

MODEL_KEY = 'model'
TRANSFORM_GRAPH_KEY = 'transform_graph'
EXAMPLES_KEY = 'examples'
OUTPUT_KEY = 'embedding_metadata'
CUSTOM_CONFIG_KEY = 'custom_config'
SLICING_KEY = 'slicing'
MAX_EXAMPLES_KEY = 'max_examples'

DEFAULT_MAX_EXAMPLES = 500


class EmbeddingMetadata(types.Artifact):
    """A TensorBoard log dir: `projector_config.pbtxt`, one tensor TSV and one metadata TSV per tensor."""
    TYPE_NAME = ARTIFACT_TYPE


class EmbeddingMetadataGenSpec(types.ComponentSpec):
    PARAMETERS = {
        # JSON, as Trainer takes it: the config's features and label (preprocessing.custom_config).
        CUSTOM_CONFIG_KEY: ExecutionParameter(type=str),
        # JSON list of raw columns shown next to each example embedding.
        SLICING_KEY: ExecutionParameter(type=str, optional=True),
        # How many eval examples get an activation row (config: embeddings.examples).
        MAX_EXAMPLES_KEY: ExecutionParameter(type=int, optional=True),
    }
    INPUTS = {
        MODEL_KEY: ChannelParameter(type=standard_artifacts.Model),
        TRANSFORM_GRAPH_KEY: ChannelParameter(type=standard_artifacts.TransformGraph),
        # The raw examples (ExampleGen): frequencies need the raw values hashed and crossed ids came from.
        EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples),
    }
    OUTPUTS = {
        OUTPUT_KEY: ChannelParameter(type=EmbeddingMetadata),
    }
