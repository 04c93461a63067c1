"""The names every layer agrees on: where a run's files are, what a node is called, what a metric is called.

Pure functions of the config; no TFX import, so the CLI, the results layer and the components share them cheaply.
"""
import os
from typing import List, Tuple

PIPELINE_ROOT = 'pipeline_root'
METADATA_FILE = 'metadata.sqlite'
HIERARCHICAL = 'hierarchical'  # the name (and kind) of the auxiliary max-cut model (config `hierarchical`)


def pipeline_root(config) -> str:
    return os.path.join(config.run_path, PIPELINE_ROOT)


def metadata_path(config) -> str:
    return os.path.join(config.run_path, METADATA_FILE)


def model_push_dir(config) -> str:
    """`<push_dir>/<model_name>`: TF Serving's model base path; Pusher adds `<version>/`."""
    return os.path.join(config.push_path, config.serving.model_name)


def evaluated_models(config) -> List[Tuple[str, str]]:
    """(name, kind) of every model the pipeline evaluates: the config's models, then the hierarchical one."""
    models = [(m.name, m.kind) for m in config.models]
    if config.hierarchical and config.hierarchical.enabled:
        models.append((HIERARCHICAL, HIERARCHICAL))
    return models


def node_id(config, base: str, model_name: str) -> str:
    """A per-model node's id: `Trainer` with one model, `Trainer_<name>` when several are evaluated."""
    return base if len(evaluated_models(config)) == 1 else f'{base}_{model_name}'


# The config's name of a binary metric -> the key TFMA writes it under, and TFMA's keys back to the config's names.
BINARY_METRIC_KEYS = {'accuracy': 'binary_accuracy', 'auc': 'auc', 'precision': 'precision', 'recall': 'recall',
                      'false_positive_rate': 'fpr', 'false_negative_rate': 'fnr'}
TFMA_TO_CONFIG = {'binary_accuracy': 'accuracy', 'sparse_categorical_accuracy': 'accuracy',
                  'fpr': 'false_positive_rate', 'fnr': 'false_negative_rate'}
# Column headings in tables and plots.
SHORT_METRIC_NAMES = {'false_positive_rate': 'fpr', 'false_negative_rate': 'fnr', 'example_count': 'examples'}
