"""The Evaluator's TFMA EvalConfig, built from the config: metrics that fit the label, slices, blessing thresholds.

TFMA applies the Transform graph itself (the model's `transform_features` signature) to get the label, and
slices on the raw CSV columns of each eval example.
"""
import json
from typing import Dict, List, Optional

import tensorflow_model_analysis as tfma

from tfx_tabular.components.trainer.signatures import PREDICTION_KEY
from tfx_tabular.transforms.preprocessing import label_key

# Config metric name -> TFMA metric class, per label type.
BINARY_METRICS = {'accuracy': 'BinaryAccuracy', 'auc': 'AUC', 'precision': 'Precision', 'recall': 'Recall',
                  'false_positive_rate': 'FPR', 'false_negative_rate': 'FNR'}
MULTICLASS_METRICS = {'accuracy': 'SparseCategoricalAccuracy', 'auc': 'AUC', 'precision': 'Precision',
                      'recall': 'Recall'}
# Multi-label: accuracy over every (example, class) decision; the rest one-vs-rest per class, macro averaged.
MULTILABEL_METRICS = {**MULTICLASS_METRICS, 'accuracy': 'BinaryAccuracy'}
CONFUSION_PLOTS = {'multiclass': 'MultiClassConfusionMatrixPlot', 'multilabel': 'MultiLabelConfusionMatrixPlot'}


def _bound(lower: Optional[float] = None, upper: Optional[float] = None) -> tfma.MetricThreshold:
    return tfma.MetricThreshold(value_threshold=tfma.GenericValueThreshold(
        lower_bound=None if lower is None else {'value': lower},
        upper_bound=None if upper is None else {'value': upper}))


def _metric(class_name: str, lower_bound: Optional[float] = None) -> tfma.MetricConfig:
    """A metric, with its lower bound (if any) checked on the overall slice only.

    A plain `threshold` would be checked on every slice, failing a model for one small group's value.
    """
    metric = tfma.MetricConfig(class_name=class_name)
    if lower_bound is not None:
        metric.per_slice_thresholds.append(
            tfma.PerSliceMetricThreshold(slicing_specs=[tfma.SlicingSpec()], threshold=_bound(lower=lower_bound)))
    return metric


def _add_fairness_gates(metrics: Dict[str, tfma.MetricConfig], fairness) -> None:
    """Per-group bounds become per-slice thresholds on each sensitive column's slices. Gap bounds only need
    their metric computed per group: components/fairness_gate/ compares the groups."""
    for gate in fairness.gates:
        class_name = BINARY_METRICS[gate.metric]
        metric = metrics.setdefault(class_name, tfma.MetricConfig(class_name=class_name))
        if gate.min is not None or gate.max is not None:
            metric.per_slice_thresholds.append(tfma.PerSliceMetricThreshold(
                slicing_specs=[tfma.SlicingSpec(feature_keys=[c]) for c in fairness.sensitive],
                threshold=_bound(gate.min, gate.max)))


def _add_change_thresholds(specs: List[tfma.MetricsSpec], names: Dict[str, str], max_drop: Dict[str, float]) -> None:
    """`evaluation.max_drop`: on the overall slice, the candidate may be at most this much below the baseline.

    The change threshold joins the metric's overall value threshold when it has one (TFMA checks both)."""
    for metric_name, drop in max_drop.items():
        metric = next(m for spec in specs for m in spec.metrics if m.class_name == names[metric_name])
        overall = next((t for t in metric.per_slice_thresholds
                        if list(t.slicing_specs) == [tfma.SlicingSpec()]), None)
        if overall is None:
            overall = metric.per_slice_thresholds.add(slicing_specs=[tfma.SlicingSpec()])
        overall.threshold.change_threshold.CopyFrom(tfma.GenericChangeThreshold(
            direction=tfma.MetricDirection.HIGHER_IS_BETTER, absolute={'value': -drop}))


def eval_config(config, n_classes: int) -> tfma.EvalConfig:
    thresholds: Dict[str, float] = config.evaluation.thresholds
    binary = config.label.type == 'binary'
    names = {'binary': BINARY_METRICS, 'multiclass': MULTICLASS_METRICS,
             'multilabel': MULTILABEL_METRICS}[config.label.type]
    overall = {names['accuracy']: _metric(names['accuracy'], thresholds.get('accuracy'))}
    fairness = config.fairness
    fairness_indicators = [] if fairness is None else [tfma.MetricConfig(
        class_name='FairnessIndicators', config=json.dumps({'thresholds': fairness.thresholds}))]
    if binary:
        for m in ('auc', 'precision', 'recall'):
            overall[names[m]] = _metric(names[m], thresholds.get(m))
        if fairness:
            _add_fairness_gates(overall, fairness)
        specs = [tfma.MetricsSpec(metrics=[tfma.MetricConfig(class_name='ExampleCount'), *overall.values(),
                                           tfma.MetricConfig(class_name='ConfusionMatrixPlot'),
                                           tfma.MetricConfig(class_name='CalibrationPlot'),
                                           *fairness_indicators])]
    else:
        # One-vs-rest precision/recall/AUC (and Fairness Indicators) per class, and their macro average.
        per_class = [_metric(names[m], thresholds.get(m)) for m in ('auc', 'precision', 'recall')]
        specs = [tfma.MetricsSpec(metrics=[tfma.MetricConfig(class_name='ExampleCount'), *overall.values(),
                                           tfma.MetricConfig(class_name=CONFUSION_PLOTS[config.label.type])]),
                 tfma.MetricsSpec(metrics=per_class,
                                  binarize=tfma.BinarizationOptions(class_ids={'values': list(range(n_classes))}),
                                  aggregate=tfma.AggregationOptions(
                                      macro_average=True, class_weights={i: 1.0 for i in range(n_classes)})),
                 # Plots cannot be macro averaged (TFMA fails on it): calibration per class, in a spec of its own.
                 tfma.MetricsSpec(metrics=[tfma.MetricConfig(class_name='CalibrationPlot')],
                                  binarize=tfma.BinarizationOptions(class_ids={'values': list(range(n_classes))}))]
        if fairness_indicators:
            # Per class only: TFMA 0.46 also macro-averages every metric of an aggregated spec, and for Fairness
            # Indicators that fails (KeyError on `_fairness_indicators_metrics`) on a slice lacking a class.
            specs.append(tfma.MetricsSpec(metrics=fairness_indicators, binarize=tfma.BinarizationOptions(
                class_ids={'values': list(range(n_classes))})))
    _add_change_thresholds(specs, names, config.evaluation.max_drop)
    # Every kind is evaluated through its signatures, so TFMA may load it as a plain SavedModel (tf_generic): left
    # unset, TFMA first loads the model with Keras to find out whether it is one, then loads it again with Keras.
    candidate = tfma.ModelSpec(name='candidate', signature_name='serving_default', label_key=label_key(config.label),
                               prediction_key=PREDICTION_KEY, preprocessing_function_names=['transform_features'],
                               model_type=tfma.TF_GENERIC)
    baseline = tfma.ModelSpec()
    baseline.CopyFrom(candidate)
    baseline.name, baseline.is_baseline = 'baseline', True
    return tfma.EvalConfig(
        # The baseline is the served model (components/served_model/); its executor drops this spec and the
        # change thresholds when nothing is served yet.
        model_specs=[candidate, baseline],
        slicing_specs=[tfma.SlicingSpec()] + [tfma.SlicingSpec(feature_keys=[f]) for f in config.slice_columns],
        metrics_specs=specs,
        # The model's own compiled Keras metrics would duplicate these under other names.
        options=tfma.Options(include_default_metrics={'value': False}))
