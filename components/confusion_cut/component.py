"""ConfusionCut: after Trainer, cuts the base model's confusion graph in two (see the package docstring)."""
from typing import Optional

from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.utils import json_utils

from tfx_tabular.components.confusion_cut import executor
from tfx_tabular.components.confusion_cut.spec import ConfusionCutArtifact, ConfusionCutSpec, DEFAULT_SPLIT


class ConfusionCut(base_component.BaseComponent):
    """Confusion matrix of `model` on the `split` examples -> confusion graph -> maximum cut."""

    SPEC_CLASS = ConfusionCutSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

    def __init__(self, model: types.BaseChannel, examples: types.BaseChannel, transform_graph: types.BaseChannel,
                 custom_config: dict, split: str = DEFAULT_SPLIT, exact_up_to: Optional[int] = None,
                 seed: Optional[int] = None):
        """`examples` are the raw ExampleGen examples; `split` must not have been trained on (see executor)."""
        spec = ConfusionCutSpec(
            model=model, examples=examples, transform_graph=transform_graph,
            custom_config=json_utils.dumps(custom_config), split=split, exact_up_to=exact_up_to, seed=seed,
            confusion_cut=types.Channel(type=ConfusionCutArtifact))
        super().__init__(spec=spec)
