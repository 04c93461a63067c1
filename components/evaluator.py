"""The Evaluator's TFMA EvalConfig, built from the config: metrics that fit the label, slices, blessing thresholds.

TFMA applies the Transform graph itself (the model's `transform_features` signature) to get the label, and
slices on the raw CSV columns of each eval example.
"""
from typing import Dict, List, Optional

import tensorflow_model_analysis as tfma

from components.trainer import PREDICTION_KEY
from transforms.preprocessing import label_key

# Config metric name -> TFMA metric class, per label type.
BINARY_METRICS = {'accuracy': 'BinaryAccuracy', 'auc': 'AUC', 'precision': 'Precision', 'recall': 'Recall'}
MULTICLASS_METRICS = {'accuracy': 'SparseCategoricalAccuracy', 'auc': 'AUC', 'precision': 'Precision',
                      'recall': 'Recall'}


# TFMA's output key of each metric class -> the config's name for it.
TFMA_TO_CONFIG = {'binary_accuracy': 'accuracy', 'sparse_categorical_accuracy': 'accuracy'}


def _metric(class_name: str, lower_bound: Optional[float] = None) -> tfma.MetricConfig:
    """A metric, with its lower bound (if any) checked on the overall slice only.

    A plain `threshold` would be checked on every slice, failing a model for one small group's value.
    """
    if lower_bound is None:
        return tfma.MetricConfig(class_name=class_name)
    bound = tfma.MetricThreshold(value_threshold=tfma.GenericValueThreshold(lower_bound={'value': lower_bound}))
    return tfma.MetricConfig(class_name=class_name, per_slice_thresholds=[
        tfma.PerSliceMetricThreshold(slicing_specs=[tfma.SlicingSpec()], threshold=bound)])


def eval_config(config, n_classes: int) -> tfma.EvalConfig:
    thresholds: Dict[str, float] = config.evaluation.thresholds
    binary = config.label.type == 'binary'
    names = BINARY_METRICS if binary else MULTICLASS_METRICS
    overall: List[tfma.MetricConfig] = [tfma.MetricConfig(class_name='ExampleCount'),
                                        _metric(names['accuracy'], thresholds.get('accuracy'))]
    if binary:
        overall += [_metric(names[m], thresholds.get(m)) for m in ('auc', 'precision', 'recall')]
        overall.append(tfma.MetricConfig(class_name='ConfusionMatrixPlot'))
        specs = [tfma.MetricsSpec(metrics=overall)]
    else:
        overall.append(tfma.MetricConfig(class_name='MultiClassConfusionMatrixPlot'))
        # One-vs-rest precision/recall/AUC per class, and their macro average (which the thresholds gate).
        per_class = [_metric(names[m], thresholds.get(m)) for m in ('auc', 'precision', 'recall')]
        specs = [tfma.MetricsSpec(metrics=overall),
                 tfma.MetricsSpec(metrics=per_class,
                                  binarize=tfma.BinarizationOptions(class_ids={'values': list(range(n_classes))}),
                                  aggregate=tfma.AggregationOptions(
                                      macro_average=True, class_weights={i: 1.0 for i in range(n_classes)}))]
    return tfma.EvalConfig(
        model_specs=[tfma.ModelSpec(signature_name='serving_default', label_key=label_key(config.label),
                                    prediction_key=PREDICTION_KEY,
                                    preprocessing_function_names=['transform_features'])],
        slicing_specs=[tfma.SlicingSpec()] + [tfma.SlicingSpec(feature_keys=[f]) for f in config.slicing],
        metrics_specs=specs,
        # The model's own compiled Keras metrics would duplicate these under other names.
        options=tfma.Options(include_default_metrics={'value': False}))
