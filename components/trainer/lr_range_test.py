"""Learning-rate range test (Smith, "Cyclical Learning Rates", 2017; the fastai `lr_find`): train a fresh model
for a short run while the learning rate grows exponentially from `min_lr` to `max_lr`, record the loss of every
batch, and read a good rate off the curve.

Why a separate short run: it costs `steps` batches (about a tenth of a normal training run here), finds the scale
of the rate without a search, and shows on one plot where training starts to learn and where it diverges.

The rule for `suggested`: one tenth of the rate at the minimum of the smoothed loss (clipped to
[min_lr, max_lr]). At the minimum the rate is already about as high as training tolerates, so a tenth of it
learns fast and stays clear of the divergence that follows. The rate of steepest smoothed-loss descent is
reported too (`steepest`), but it is noisier on short runs, so it is not the suggestion.
"""
import json
import math
import os
from dataclasses import asdict, dataclass
from typing import Callable, Dict, List, Optional

import tensorflow as tf
from absl import logging

from tfx_tabular.pipeline.core import storage

LR_RANGE_PLOT = 'lr_range_test.png'
LR_RANGE_JSON = 'lr_range_test.json'


@dataclass
class LRRangeResult:
    lrs: List[float]          # the rate of each recorded step
    losses: List[float]       # the batch loss at that step (before the step's update)
    smoothed: List[float]     # bias-corrected exponential moving average of `losses`
    suggested: float          # min_lr <= suggested <= max_lr; see the module docstring for the rule
    lr_at_min: float          # the rate where `smoothed` is lowest
    steepest: Optional[float]  # the rate of steepest descent of `smoothed` per log-rate (None if too few points)
    min_lr: float
    max_lr: float
    steps: int                # steps asked for
    stopped_early: bool       # the loss exploded (or became NaN/inf) before `steps`
    rule: str = 'lr_at_min / 10'

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)


def _set_lr(optimizer, lr: float) -> None:
    """Works for the Keras 2.15 optimizers (a variable) and the legacy ones (a hyper-parameter)."""
    variable = optimizer.learning_rate if hasattr(optimizer, 'learning_rate') else optimizer.lr
    tf.keras.backend.set_value(variable, lr)


def lr_range_test(build_model: Callable[[float], tf.keras.Model], dataset: tf.data.Dataset, steps: int = 100,
                  min_lr: float = 1e-5, max_lr: float = 1.0, smoothing: float = 0.9,
                  explode: float = 4.0) -> LRRangeResult:
    """Runs the test on a model from `build_model(min_lr)` (compiled; its optimizer's rate is then overwritten
    each step) over at most `steps` batches of `dataset` (elements (features, label)).

    Step i (0-based) trains at min_lr * (max_lr / min_lr) ** (i / (steps - 1)). The run stops early when the
    smoothed loss exceeds `explode` times its lowest value, or a loss is not finite: past that point the curve
    only says "diverged" and the extra steps cost time.
    """
    if not 0 < min_lr < max_lr:
        raise ValueError(f'need 0 < min_lr < max_lr, got {min_lr}, {max_lr}')
    if steps < 2:
        raise ValueError(f'steps must be at least 2, got {steps}')
    model = build_model(min_lr)
    ratio = max_lr / min_lr
    lrs, losses, smoothed = [], [], []
    average, best, stopped = 0.0, math.inf, False
    for i, (x, y) in enumerate(dataset.take(steps)):
        lr = min_lr * ratio ** (i / (steps - 1))
        _set_lr(model.optimizer, lr)
        result = model.train_on_batch(x, y, reset_metrics=True, return_dict=True)
        loss = float(result['loss'])
        if not math.isfinite(loss):
            stopped = True
            break
        average = smoothing * average + (1 - smoothing) * loss
        value = average / (1 - smoothing ** (i + 1))  # bias correction: early averages are not pulled to 0
        lrs.append(lr)
        losses.append(loss)
        smoothed.append(value)
        best = min(best, value)
        if i > 0 and value > explode * best:
            stopped = True
            break
    if not lrs:
        raise ValueError(f'the first step at learning rate {min_lr} gave a non-finite loss, or the dataset is empty')
    i_min = min(range(len(smoothed)), key=smoothed.__getitem__)
    lr_at_min = lrs[i_min]
    suggested = min(max_lr, max(min_lr, lr_at_min / 10))
    steepest = None
    # d(smoothed)/d(log lr) over a window of +-k points, between the first tenth (the average still settles
    # there) and the minimum (after it the loss rises anyway).
    k = max(2, len(lrs) // 20)
    candidates = range(max(k, len(lrs) // 10), min(i_min, len(lrs) - k))
    if candidates:
        slope = {j: (smoothed[j + k] - smoothed[j - k]) / math.log(lrs[j + k] / lrs[j - k]) for j in candidates}
        steepest = lrs[min(slope, key=slope.get)]
    return LRRangeResult(lrs=lrs, losses=losses, smoothed=smoothed, suggested=suggested, lr_at_min=lr_at_min,
                         steepest=steepest, min_lr=min_lr, max_lr=max_lr, steps=steps, stopped_early=stopped)


def plot_lr_range(result: LRRangeResult, path: str) -> None:
    """Loss vs learning rate on a log axis (raw losses faint, smoothed solid), the suggestion marked by a dashed
    line and the minimum by a dot. Written to a temp file, then renamed, so a reader never sees half a PNG."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(result.lrs, result.losses, color='tab:blue', alpha=0.3, linewidth=1, label='batch loss')
    ax.plot(result.lrs, result.smoothed, color='tab:blue', linewidth=2, label='smoothed loss')
    i_min = result.lrs.index(result.lr_at_min)
    ax.plot([result.lr_at_min], [result.smoothed[i_min]], 'o', color='tab:red',
            label=f'minimum at {result.lr_at_min:.2g}')
    ax.axvline(result.suggested, color='tab:green', linestyle='--', label=f'suggested {result.suggested:.2g}')
    ax.set_xscale('log')
    ax.set_xlabel('learning rate')
    ax.set_ylabel('loss')
    low, high = min(result.smoothed), max(result.smoothed[:i_min + 1])
    margin = 0.1 * (high - low) + 1e-9
    ax.set_ylim(low - margin, high + 4 * margin)  # keep the explosion from flattening the curve
    ax.set_title('learning-rate range test' + (' (stopped: loss exploded)' if result.stopped_early else ''))
    ax.legend(fontsize=8)
    fig.tight_layout()
    try:
        with storage.atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=90, format='png')
    finally:
        plt.close(fig)


def run_for_trainer(build_model: Callable[[float], tf.keras.Model], dataset: tf.data.Dataset, tuning: Dict,
                    out_dir: str, seed: Optional[int] = None) -> LRRangeResult:
    """What the Trainer runs when `model.tuning.lr_range_test` is on: the test with the config's settings, its
    plot (`lr_range_test.png`) and numbers (`lr_range_test.json`) in `out_dir` (the model_run folder), and one log
    line with the suggested rate. Re-seeds afterwards, so the real model starts from the same weights and data
    order whether or not the test ran."""
    result = lr_range_test(build_model, dataset, steps=tuning.get('lr_range_steps', 100),
                           min_lr=tuning.get('lr_range_min', 1e-5), max_lr=tuning.get('lr_range_max', 1.0))
    tf.io.gfile.makedirs(out_dir)
    plot_lr_range(result, os.path.join(out_dir, LR_RANGE_PLOT))
    path = os.path.join(out_dir, LR_RANGE_JSON)
    storage.write_text(path, result.to_json())
    stopped = ', stopped: loss exploded' if result.stopped_early else ''
    message = (f'suggested learning rate: {result.suggested:.3g} (loss lowest at {result.lr_at_min:.3g}, '
               f'{len(result.lrs)} of {result.steps} steps{stopped})')
    logging.info(message)  # the run log
    print(message, flush=True)  # the terminal, next to Keras' epoch lines
    if seed is not None:
        tf.keras.utils.set_random_seed(seed)
    return result
