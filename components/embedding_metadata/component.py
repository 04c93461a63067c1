"""EmbeddingMetadataGen: after Trainer, writes the Embedding Projector log dir for the trained model."""
from typing import List, Optional

from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.utils import json_utils

from tfx_tabular.components.embedding_metadata import executor
from tfx_tabular.components.embedding_metadata.spec import EmbeddingMetadata, EmbeddingMetadataGenSpec


class EmbeddingMetadataGen(base_component.BaseComponent):
    """Labels every row of the model's learnt matrices (feature values, hidden units, example activations)."""

    SPEC_CLASS = EmbeddingMetadataGenSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

    def __init__(self, model: types.BaseChannel, transform_graph: types.BaseChannel,
                 examples: types.BaseChannel, custom_config: dict, slicing: Optional[List[str]] = None,
                 max_examples: Optional[int] = None):
        """`examples` are the raw ExampleGen examples (train split: frequencies; eval split: example rows)."""
        spec = EmbeddingMetadataGenSpec(
            model=model, transform_graph=transform_graph, examples=examples,
            custom_config=json_utils.dumps(custom_config),
            slicing=json_utils.dumps(list(slicing or [])),
            max_examples=max_examples,
            embedding_metadata=types.Channel(type=EmbeddingMetadata))
        super().__init__(spec=spec)
