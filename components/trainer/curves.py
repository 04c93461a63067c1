"""Training curves: read from Keras' history or an estimator's event files, drawn as one PNG per run."""
import glob
import os
from typing import Dict, List, Tuple

import tensorflow as tf

from tfx_tabular.pipeline.core import storage

CURVES_FILE = 'training_curves.png'
Curves = Dict[str, Dict[str, List[Tuple[float, float]]]]  # metric -> {'train'|'eval': [(x, value)]}


def plot_curves(curves: Curves, path: str, x_label: str) -> None:
    """One panel per metric, train and eval lines; written to a temp file, then renamed."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(curves), figsize=(4.5 * len(curves), 3.5), squeeze=False)
    for ax, (metric, series) in zip(axes[0], curves.items()):
        for name, points in series.items():
            ax.plot([p[0] for p in points], [p[1] for p in points], marker='o', label=name)
        ax.set_title(metric)
        ax.set_xlabel(x_label)
        ax.legend()
    fig.tight_layout()
    try:
        with storage.atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=90, format='png')
    finally:
        plt.close(fig)


def keras_curves(history: Dict[str, List[float]]) -> Curves:
    curves: Curves = {}
    for metric, values in history.items():
        name, series = (metric[4:], 'eval') if metric.startswith('val_') else (metric, 'train')
        curves.setdefault(name, {})[series] = list(enumerate(values, start=1))
    return curves


def event_curves(logdirs: Dict[str, str], tags=('loss', 'accuracy', 'auc')) -> Curves:
    """Scalars by step from the TensorBoard event files an estimator writes ({'train': dir, 'eval': dir})."""
    curves: Curves = {}
    for series, logdir in logdirs.items():
        for path in sorted(glob.glob(os.path.join(logdir, 'events.out.tfevents.*'))):
            for event in tf.compat.v1.train.summary_iterator(path):
                for value in event.summary.value:
                    if value.tag in tags:
                        number = value.simple_value if value.HasField('simple_value') else float(
                            tf.make_ndarray(value.tensor))
                        curves.setdefault(value.tag, {}).setdefault(series, []).append((event.step, number))
    return {m: {s: sorted(points) for s, points in series.items()} for m, series in curves.items()}
