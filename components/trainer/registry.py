"""How each model kind trains and saves, by the family pipeline/core/config.py's MODEL_KINDS gives it.

A kind's descriptor (what it builds, whether it has hidden layers, whether it can be tuned, whether it has a wide
part) is vocabulary, in the bottom layer; how it trains needs TensorFlow, so it is here. A new family is one
entry: `train(fn_args, features, label, names, tf_transform_output, model_cfg)` returns (what to save, a function
from transformed features to probabilities); `save(holder, export_dir, signatures)` writes the SavedModel.
"""
from typing import Callable, NamedTuple

import tensorflow as tf

from tfx_tabular.components.trainer.estimator import train_estimator
from tfx_tabular.components.trainer.keras_model import save_keras, train_keras
from tfx_tabular.components.trainer.trees.training import train_trees
from tfx_tabular.pipeline.core.config import MODEL_KINDS


class Family(NamedTuple):
    train: Callable
    save: Callable


def save_module(holder: tf.Module, export_dir: str, signatures) -> None:
    tf.saved_model.save(holder, export_dir, signatures=signatures)


FAMILIES = {
    'keras': Family(train_keras, save_keras),
    'estimator': Family(train_estimator, save_module),
    'trees': Family(train_trees, save_module),
}


def family(kind: str) -> Family:
    return FAMILIES[MODEL_KINDS[kind].trainer]
