"""Gradient-boosted trees (kind gradient_boosted_trees) trained by YDF on the tf.Transform output.

The trees see exactly what the other kinds see, the transformed features: numeric features as their scaled
floats, bucketized ones as their bucket ids read as numbers (buckets are ordered, so a threshold on the id is a
threshold on the value), and vocabulary, hashed and crossed ids as categorical values, split by set membership
(their order means nothing). Training stops early on the eval split's loss, as the Keras kinds' early stopping
does. Labels: class ids for binary and multi-class; a multi-label label gets one binary model per class.

The Trainer then compiles the trees into TensorFlow ops (compile.py) and wraps them with the Transform graph, so
the exported model has the same three signatures as every kind. It also writes, into `model_run`:
- `training_curves.png` and TensorBoard scalars (loss and accuracy on train and eval after each boosting
  iteration, computed by the compiled model itself);
- `feature_importances.json`: each feature's share of the total loss reduction of all splits (YDF's SUM_SCORE),
  by the config's feature names.
"""
import json
import os
from typing import Dict, List, Optional, Tuple

import numpy as np
import tensorflow as tf
from tfx_bsl.public import tfxio

from tfx_tabular.components.trainer.curves import CURVES_FILE, plot_curves
from tfx_tabular.components.trainer.data import multi_hot
from tfx_tabular.components.trainer.trees.compile import CompiledTrees, forest_from_ydf
from tfx_tabular.transforms.feature_columns import num_ids, per_feature
from tfx_tabular.transforms.preprocessing import label_key, transformed_name

IMPORTANCES_FILE = 'feature_importances.json'
LABEL = '__label__'  # cannot clash with a transformed key (those end in _xf)
BATCH = 4096
CURVE_POINTS = 25
NUMERICAL_KINDS = ('numeric', 'bucketized')


def read_split(fn_args, files: List[str], tf_transform_output, features: Dict, label, n_classes: int
               ) -> Tuple[Dict[str, np.ndarray], np.ndarray]:
    """Every transformed example of `files` once, in file order: ({key: values}, one key per feature), labels).
    Labels are class ids, or for a multi-label label a [rows, classes] 0/1 matrix."""
    dataset = fn_args.data_accessor.tf_dataset_factory(
        files, tfxio.TensorFlowDatasetOptions(batch_size=BATCH, label_key=label_key(label), num_epochs=1,
                                              shuffle=False),
        tf_transform_output.transformed_metadata.schema)
    columns: Dict[str, List[np.ndarray]] = {}
    labels = []
    for x, y in dataset:
        for key, value in per_feature(x, features).items():
            columns.setdefault(key, []).append(tf.reshape(value, [-1]).numpy())
        labels.append((multi_hot(y, n_classes, tf.int64) if label.type == 'multilabel' else y).numpy())
    if not labels:
        raise ValueError(f'no transformed examples in {files}; the trees have nothing to train on')
    y = np.concatenate(labels)
    return {k: np.concatenate(v) for k, v in columns.items()}, y if label.type == 'multilabel' else y.reshape(-1)


def training_threads(configured: Optional[int]) -> Optional[int]:
    """YDF's training threads: the config's; else one on a machine of up to two cores, where YDF's thread pool
    costs more than it gives (measured here, 300 trees: 480 rows x 300 columns 31 s on two threads against 2.5 s on
    one, 5,000 x 50 8.2 s against 3.5 s, 4,000 x 10 1.9 s against 0.7 s; the same trees either way); else None,
    YDF's own choice."""
    if configured:
        return configured
    return 1 if (os.cpu_count() or 1) <= 2 else None


def _learner(features: Dict, trees: Dict, seed: int):
    import ydf
    return ydf.GradientBoostedTreesLearner(
        label=LABEL, task=ydf.Task.CLASSIFICATION, include_all_columns=False,
        features=[ydf.Feature(transformed_name(n), ydf.Semantic.NUMERICAL if s.kind in NUMERICAL_KINDS
                              else ydf.Semantic.CATEGORICAL) for n, s in features.items()],
        num_trees=trees['num_trees'], max_depth=trees['max_depth'], shrinkage=trees['shrinkage'],
        min_examples=trees['min_examples'], subsample=trees['subsample'],
        l2_regularization=trees['l2_regularization'],
        early_stopping='LOSS_INCREASE' if trees['early_stopping'] else 'NONE', validation_ratio=0.0,
        categorical_algorithm=trees['categorical_algorithm'], random_seed=seed,
        num_threads=training_threads(trees['num_threads']))


def _fit(learner, x, y, valid_x, valid_y):
    """One YDF model on labels `y` (ints, given as text); eval rows of a class training never saw are left out of
    the validation data, which YDF could not score."""
    seen = np.isin(valid_y, np.unique(y))
    valid = {**{k: v[seen] for k, v in valid_x.items()}, LABEL: valid_y[seen].astype(str)}
    return learner.train({**x, LABEL: y.astype(str)}, valid=valid if seen.any() else None, verbose=0)


def train_models(x, y, valid_x, valid_y, features: Dict, label_type: str, trees: Dict, seed: int) -> List:
    """The YDF models: one, or for a multi-label label one per class (a class every training row has, or none
    has, gets its constant log-odds instead of a model)."""
    learner = _learner(features, trees, seed)
    if label_type != 'multilabel':
        return [_fit(learner, x, y, valid_x, valid_y)]
    models = []
    for k in range(y.shape[1]):
        if y[:, k].min() == y[:, k].max():
            rate = (y[:, k].sum() + 0.5) / (len(y) + 1.0)
            models.append(float(np.log(rate / (1 - rate))))
        else:
            models.append(_fit(learner, x, y[:, k], valid_x, valid_y[:, k]))
    return models


def feature_importances(models: List, features: Dict) -> List[Dict]:
    """[{'feature': config name, 'importance': share}], largest first: each model's SUM_SCORE (loss reduction of
    the splits on the feature) as a share of its total, averaged over the models; unused features score 0."""
    names = {transformed_name(n): n for n in features}
    totals = dict.fromkeys(features, 0.0)
    trained = [m for m in models if not isinstance(m, float)]
    for model in trained:
        scores = model.variable_importances().get('SUM_SCORE', [])
        total = sum(score for score, _ in scores) or 1.0
        for score, key in scores:
            totals[names[key]] += score / total / len(trained)
    return [{'feature': n, 'importance': round(v, 6)} for n, v in sorted(totals.items(), key=lambda kv: -kv[1])]


def _loss_and_accuracy(logits: np.ndarray, y: np.ndarray, link: str) -> Tuple[float, float]:
    if link == 'softmax':
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        return float(-log_p[np.arange(len(y)), y].mean()), float((logits.argmax(axis=1) == y).mean())
    y = y.reshape(logits.shape)
    # log(1 + e^-z) for the positives, log(1 + e^z) for the negatives, without overflow
    loss = np.logaddexp(0.0, -logits) * y + np.logaddexp(0.0, logits) * (1 - y)
    return float(loss.mean()), float(((logits > 0) == (y == 1)).mean())


def staged_curves(compiled: CompiledTrees, iterations: np.ndarray, splits: Dict[str, Tuple[Dict, np.ndarray]]):
    """Loss and accuracy after 1..n boosting iterations, per split, from the compiled trees' leaf values:
    {'loss': {'train': [(iteration, value)], 'eval': [...]}, 'accuracy': {...}}."""
    count = int(iterations.max()) + 1 if len(iterations) else 0
    stops = sorted({int(round(s)) for s in np.linspace(1, max(count, 1), min(max(count, 1), CURVE_POINTS))})
    outputs, bias = compiled.tree_outputs.numpy(), compiled.bias.numpy()
    curves = {'loss': {}, 'accuracy': {}}
    for split, (x, y) in splits.items():
        leaves = np.concatenate([compiled.leaf_values({k: v[i:i + BATCH] for k, v in x.items()}).numpy()
                                 for i in range(0, len(y), BATCH)])
        for stop in stops:
            used = iterations < stop
            loss, accuracy = _loss_and_accuracy(bias + leaves[:, used] @ outputs[used], y, compiled.link)
            curves['loss'].setdefault(split, []).append((stop, loss))
            curves['accuracy'].setdefault(split, []).append((stop, accuracy))
    return curves


def _write_events(curves, logdir: str) -> None:
    """The curves as TensorBoard scalars, one run per split (`<logdir>/train`, `<logdir>/eval`)."""
    for split in curves['loss']:
        with tf.summary.create_file_writer(os.path.join(logdir, split)).as_default():
            for metric, series in curves.items():
                for step, value in series[split]:
                    tf.summary.scalar(metric, value, step=step)


def train_trees(fn_args, features: Dict, label, names: List[str], tf_transform_output,
                model_cfg: Dict) -> Tuple[tf.Module, CompiledTrees]:
    """The Trainer's path for gradient_boosted_trees: read, train, compile, write curves and importances.
    Returns (the module to save, transformed features -> probabilities)."""
    n = len(names)
    x, y = read_split(fn_args, fn_args.train_files, tf_transform_output, features, label, n)
    valid_x, valid_y = read_split(fn_args, fn_args.eval_files, tf_transform_output, features, label, n)
    keys = [transformed_name(f) for f in features]
    x, valid_x = {k: x[k] for k in keys}, {k: valid_x[k] for k in keys}
    models = train_models(x, y, valid_x, valid_y, features, label.type, model_cfg['trees'], model_cfg['seed'])
    id_sizes = {transformed_name(f): num_ids(f, s, tf_transform_output)
                for f, s in features.items() if s.kind not in NUMERICAL_KINDS}
    forest = forest_from_ydf(models, label.type, n, keys, id_sizes)
    compiled = CompiledTrees(forest)
    print(f'gradient-boosted trees: {forest.n_trees} trees, depth up to {forest.depth}, '
          f'{int(max(forest.tree_iteration, default=-1)) + 1} boosting iterations', flush=True)
    curves = staged_curves(compiled, np.asarray(forest.tree_iteration), {'train': (x, y), 'eval': (valid_x, valid_y)})
    tf.io.gfile.makedirs(fn_args.model_run_dir)
    _write_events(curves, fn_args.model_run_dir)
    plot_curves(curves, os.path.join(fn_args.model_run_dir, CURVES_FILE), 'boosting iteration')
    with tf.io.gfile.GFile(os.path.join(fn_args.model_run_dir, IMPORTANCES_FILE), 'w') as f:
        json.dump(feature_importances(models, features), f, indent=1)
    holder = tf.Module()
    holder.trees = compiled
    return holder, lambda transformed: compiled(per_feature(transformed, features))
