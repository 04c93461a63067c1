"""HierarchicalTrainer: base model + auxiliary side classifier + logistic regression, exported as one model."""
from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import standard_artifacts
from tfx.utils import json_utils

from tfx_tabular.components.hierarchical import executor
from tfx_tabular.components.hierarchical.spec import DEFAULT_COMBINER_SPLIT, HierarchicalTrainerSpec


class HierarchicalTrainer(base_component.BaseComponent):
    """Trains the auxiliary classifier of the ConfusionCut's two sides and the combiner on top of `base_model`."""

    SPEC_CLASS = HierarchicalTrainerSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

    def __init__(self, base_model: types.BaseChannel, examples: types.BaseChannel,
                 transform_graph: types.BaseChannel, confusion_cut: types.BaseChannel, custom_config: dict,
                 combiner_split: str = DEFAULT_COMBINER_SPLIT):
        """`examples` are Transform's transformed examples; `custom_config` holds features, label and
        `hierarchical` (the config's HierarchicalConfig as a dict); the auxiliary classifier trains on 'train',
        the logistic regression on `combiner_split`."""
        spec = HierarchicalTrainerSpec(
            base_model=base_model, examples=examples, transform_graph=transform_graph, confusion_cut=confusion_cut,
            custom_config=json_utils.dumps(custom_config), combiner_split=combiner_split,
            model=types.Channel(type=standard_artifacts.Model))
        super().__init__(spec=spec)
