"""The ComponentSpec of HierarchicalTrainer. Its output is a standard Model artifact (`<uri>/Format-Serving`),
so Evaluator, Pusher and the model selector treat it like any trained model."""
from tfx import types
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ExecutionParameter

from tfx_tabular.components.confusion_cut.spec import ConfusionCutArtifact

BASE_MODEL_KEY = 'base_model'
EXAMPLES_KEY = 'examples'
TRANSFORM_GRAPH_KEY = 'transform_graph'
CONFUSION_CUT_KEY = 'confusion_cut'
OUTPUT_KEY = 'model'
CUSTOM_CONFIG_KEY = 'custom_config'
COMBINER_SPLIT_KEY = 'combiner_split'
DEFAULT_COMBINER_SPLIT = 'train'

MIN_PARAMETER_RATIO = 10  # the auxiliary classifier has at least this many times fewer parameters than the base
REPORT_FILE = 'hierarchical.json'  # beside Format-Serving: parameter counts, sides, training metrics


class HierarchicalTrainerSpec(types.ComponentSpec):
    PARAMETERS = {
        # JSON: the config's features and label (preprocessing.custom_config) plus `hierarchical` (its settings).
        CUSTOM_CONFIG_KEY: ExecutionParameter(type=str),
        # The transformed split the logistic regression is fit on: 'holdout' when ExampleGen writes one (no model
        # trained on it, so the base model's mistakes there are real), else 'train'.
        COMBINER_SPLIT_KEY: ExecutionParameter(type=str, optional=True),
    }
    INPUTS = {
        BASE_MODEL_KEY: ChannelParameter(type=standard_artifacts.Model),
        # Transform's output: both new parts train on the 'train' split of the transformed examples.
        EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples),
        TRANSFORM_GRAPH_KEY: ChannelParameter(type=standard_artifacts.TransformGraph),
        CONFUSION_CUT_KEY: ChannelParameter(type=ConfusionCutArtifact),
    }
    OUTPUTS = {
        OUTPUT_KEY: ChannelParameter(type=standard_artifacts.Model),
    }
