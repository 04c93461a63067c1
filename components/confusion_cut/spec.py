"""The ConfusionCut artifact type and the ComponentSpec of the ConfusionCut component."""
from tfx import types
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ExecutionParameter

# Kubeflow's compiler accepts custom artifact type names only in the form `namespace.Name`.
ARTIFACT_TYPE = 'tfx_tabular.ConfusionCut'
CONFUSION_FILE = 'confusion.json'
CUT_FILE = 'cut.json'
GRAPH_FILE = 'confusion_graph.png'

MODEL_KEY = 'model'
EXAMPLES_KEY = 'examples'
TRANSFORM_GRAPH_KEY = 'transform_graph'
OUTPUT_KEY = 'confusion_cut'
CUSTOM_CONFIG_KEY = 'custom_config'
SPLIT_KEY = 'split'
EXACT_UP_TO_KEY = 'exact_up_to'
SEED_KEY = 'seed'

DEFAULT_SPLIT = 'eval'


class ConfusionCutArtifact(types.Artifact):
    """A folder: confusion.json (matrix, class names), cut.json (the two sides, cut value, bound, method) and
    confusion_graph.png (the graph with the cut). The headline numbers are also custom properties in MLMD."""
    TYPE_NAME = ARTIFACT_TYPE


class ConfusionCutSpec(types.ComponentSpec):
    PARAMETERS = {
        # JSON: the config's features and label (preprocessing.custom_config), for the label and class names.
        CUSTOM_CONFIG_KEY: ExecutionParameter(type=str),
        # The held-out split the confusion matrix is counted on (default 'eval').
        SPLIT_KEY: ExecutionParameter(type=str, optional=True),
        # Classes up to which the cut is exact (maxcut.EXACT_UP_TO by default); seed of the heuristic beyond.
        EXACT_UP_TO_KEY: ExecutionParameter(type=int, optional=True),
        SEED_KEY: ExecutionParameter(type=int, optional=True),
    }
    INPUTS = {
        MODEL_KEY: ChannelParameter(type=standard_artifacts.Model),
        # The raw examples (ExampleGen): the model's serving signature takes raw tf.Examples.
        EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples),
        TRANSFORM_GRAPH_KEY: ChannelParameter(type=standard_artifacts.TransformGraph),
    }
    OUTPUTS = {
        OUTPUT_KEY: ChannelParameter(type=ConfusionCutArtifact),
    }
