"""The report's figures: each returns one PNG as an <img> tag (embedded, so the page needs no network).

They draw what the summary holds; a gate's verdict comes from the gate (summary `fairness_gates`), never from here.
"""
import base64
import io
from typing import Dict, List, Optional, Tuple

import numpy as np

from tfx_tabular.pipeline.core.names import SHORT_METRIC_NAMES


def _png(fig) -> str:
    import matplotlib.pyplot as plt
    buffer = io.BytesIO()
    fig.savefig(buffer, format='png', dpi=90, bbox_inches='tight')
    plt.close(fig)
    return f'<img alt="" src="data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()}">'


def _pyplot():
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    return plt


def confusion_figure(matrix: np.ndarray, classes: List[str]) -> str:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(1.2 * len(classes) + 2.5, 1.1 * len(classes) + 1.8))
    ax.imshow(matrix, cmap='Blues')
    for (i, j), value in np.ndenumerate(matrix):
        ax.text(j, i, f'{value:.0f}', ha='center', va='center',
                color='white' if value > matrix.max() / 2 else 'black')
    ax.set_xticks(range(len(classes)), classes, rotation=30, ha='right')
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel('predicted')
    ax.set_ylabel('true')
    ax.set_title('Confusion matrix, eval split')
    return _png(fig)


def metrics_figure(overall: Dict[str, float], thresholds: Dict[str, float],
                    floor: Optional[Dict[str, float]] = None) -> str:
    plt = _pyplot()
    names = [m for m in ('accuracy', 'auc', 'precision', 'recall') if m in overall]
    fig, ax = plt.subplots(figsize=(6, 0.6 * len(names) + 1))
    values = [overall[m] for m in names]
    floor = floor or {}
    colors = ['#c0392b' if (m in thresholds and overall[m] < thresholds[m]) or (m in floor and overall[m] <= floor[m])
              else '#2e86c1' for m in names]
    ax.barh(names, values, color=colors)
    for i, m in enumerate(names):
        if np.isnan(values[i]):  # undefined (e.g. no positive prediction): say so instead of an empty row
            ax.text(0, i, ' n/a (undefined)', va='center', ha='left')
            continue
        ax.text(min(values[i], 0.98), i, f' {values[i]:.3f}', va='center', ha='right' if values[i] > 0.9 else 'left')
        if m in thresholds:
            ax.plot([thresholds[m]] * 2, [i - 0.4, i + 0.4], color='black', linewidth=2)
        if m in floor:
            ax.plot([floor[m]] * 2, [i - 0.45, i + 0.45], color='#c0392b', linewidth=2, linestyle='--')
    ax.set_xlim(0, 1)
    ax.invert_yaxis()
    ax.set_title('Overall metrics (black line: blessing threshold; red dashed: majority-class floor)'
                 if floor else 'Overall metrics (black line: blessing threshold)', fontsize=10)
    return _png(fig)


def importances_figure(model: str, importances: List[Dict], top: int = 20) -> str:
    """Horizontal bars: each feature's share of the trees' loss reduction, largest on top."""
    plt = _pyplot()
    shown = importances[:top]
    fig, ax = plt.subplots(figsize=(6.5, 0.32 * len(shown) + 1.2))
    ax.barh([i['feature'] for i in shown], [i['importance'] for i in shown], color='#2e86c1')
    for y, i in enumerate(shown):
        ax.text(i['importance'], y, f' {i["importance"]:.3f}', va='center', fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, max([i['importance'] for i in shown] + [0.01]) * 1.18)
    ax.set_xlabel('share of the loss reduction of all splits')
    ax.set_title(f'Feature importances, {model}' + (f' (top {top} of {len(importances)})'
                                                    if len(importances) > top else ''), fontsize=10)
    return _png(fig)


def slices_figure(metrics: Dict[str, Dict[str, float]], metric: str) -> str:
    plt = _pyplot()
    names = sorted(s for s in metrics if s != 'overall' and metric in metrics[s])
    fig, ax = plt.subplots(figsize=(6.5, 0.45 * len(names) + 1.2))
    ax.barh(names, [metrics[s][metric] for s in names], color='#2e86c1')
    overall = metrics['overall'].get(metric)
    if overall is not None:
        ax.axvline(overall, color='black', linestyle='--', label=f'overall {overall:.3f}')
        ax.legend(loc='lower right')
    ax.set_xlim(0, 1)
    ax.invert_yaxis()
    ax.set_title(f'{metric} per slice')
    return _png(fig)


def calibration_figure(curves: Dict[str, List[Tuple]]) -> str:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.plot([0, 1], [0, 1], color='grey', linestyle='--', label='perfectly calibrated')
    for name, points in curves.items():
        predicted, observed, counts = zip(*points)
        line, = ax.plot(predicted, observed, marker='o', markersize=0, label=name)
        ax.scatter(predicted, observed, s=[20 + 200 * c / max(counts) for c in counts], color=line.get_color())
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel('mean predicted probability (10 bins)')
    ax.set_ylabel('observed frequency')
    ax.set_title('Calibration, eval split (dot size: examples)')
    ax.legend(loc='upper left', fontsize='small')
    return _png(fig)


LOWER_IS_BETTER = ('false_positive_rate', 'false_negative_rate')


def gate_band(gate, values: Dict[str, float]) -> Tuple[Optional[float], Optional[float], str]:
    """(low, high, description) a group's value must lie in under one gate.

    min/max: the bounds themselves. max_gap: no two groups may differ by more than max_gap; drawn as the band of
    width max_gap from the best group (lowest rate for FPR/FNR, highest value otherwise)."""
    if gate.max_gap is None:
        parts = ([f'min {gate.min:g}'] if gate.min is not None else []) + (
            [f'max {gate.max:g}'] if gate.max is not None else [])
        return gate.min, gate.max, ' and '.join(parts)
    finite = [v for v in values.values() if not np.isnan(v)]
    if not finite:
        return None, None, f'max_gap {gate.max_gap:g}'
    if gate.metric in LOWER_IS_BETTER:
        best = min(finite)
        return best, best + gate.max_gap, f'max_gap {gate.max_gap:g} above the best group ({best:.3f})'
    best = max(finite)
    return best - gate.max_gap, best, f'max_gap {gate.max_gap:g} below the best group ({best:.3f})'


def fairness_gate_figure(column: str, groups: Dict[str, Dict[str, float]], gates, failing: Dict[str, set]) -> str:
    """One panel per gated metric: a bar per group, the gate's bound(s) as lines; red: a group its min/max gate
    failed (`failing[metric]`), or outside a gap gate's band."""
    plt = _pyplot()
    names = sorted(groups)
    fig, axes = plt.subplots(1, len(gates), figsize=(4.6 * len(gates), 0.45 * len(names) + 1.6), squeeze=False)
    for ax, gate in zip(axes[0], gates):
        values = {g: groups[g].get(gate.metric, float('nan')) for g in names}
        low, high, text = gate_band(gate, values)
        outside = [g in failing.get(gate.metric, set()) if gate.max_gap is None else
                   (low is not None and v < low - 1e-9) or (high is not None and v > high + 1e-9)
                   for g, v in values.items()]
        ax.barh(names, [0 if np.isnan(v) else v for v in values.values()],
                color=['#c0392b' if o else '#2e86c1' for o in outside])
        for i, v in enumerate(values.values()):
            ax.text(0 if np.isnan(v) else v, i, ' n/a' if np.isnan(v) else f' {v:.3f}', va='center', fontsize=8)
        if gate.max_gap is not None and low is not None:
            ax.axvspan(max(low, 0), min(high, 1), color='#27ae60', alpha=0.15, label='allowed band')
        for bound in (low, high):
            if bound is not None and 0 <= bound <= 1:
                ax.axvline(bound, color='black', linewidth=1.5)
        ax.set_xlim(0, 1.08)
        ax.invert_yaxis()
        ax.set_title(f'{gate.metric}\n{text}', fontsize=9)
    fig.suptitle(f'{column}: gated metrics per group (black line: gate bound; red: outside it)', fontsize=10)
    fig.tight_layout()
    return _png(fig)


def fairness_rates_figure(column: str, groups: Dict[str, Dict[str, float]], classes: List[str],
                           threshold: str) -> Optional[str]:
    """FPR and FNR (Fairness Indicators at one threshold) per group; multi-class: one bar per class."""
    per_class = len(classes) > 2
    series = classes if per_class else ['']
    names = sorted(groups)
    if not any(f'fairness_indicators_metrics/{r}@{threshold}' + (f'/{c}' if c else '') in groups[g]
               for g in names for c in series for r in ('false_positive_rate', 'false_negative_rate')):
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 0.35 * len(names) * len(series) + 1.8), squeeze=False)
    height = 0.8 / len(series)
    for ax, rate in zip(axes[0], ('false_positive_rate', 'false_negative_rate')):
        for j, c in enumerate(series):
            key = f'fairness_indicators_metrics/{rate}@{threshold}' + (f'/{c}' if c else '')
            values = [groups[g].get(key, float('nan')) for g in names]
            ys = [i + j * height for i in range(len(names))]
            ax.barh(ys, [0 if np.isnan(v) else v for v in values], height=height, label=c or None)
            for y, v in zip(ys, values):  # a 0 and an undefined rate look alike as bars
                ax.text(0 if np.isnan(v) else min(v, 0.9), y, ' n/a' if np.isnan(v) else f' {v:.2f}', va='center',
                        fontsize=7)
        ax.set_yticks([i + height * (len(series) - 1) / 2 for i in range(len(names))], names)
        ax.set_xlim(0, 1)
        ax.invert_yaxis()
        ax.set_title(f'{rate} @ {threshold}' + (' (one-vs-rest per class)' if per_class else ''), fontsize=9)
    if per_class:
        axes[0][1].legend(loc='upper left', bbox_to_anchor=(1.01, 1), fontsize='small', title='class')
    fig.suptitle(f'{column}: Fairness Indicators per group', fontsize=10)
    fig.tight_layout()
    return _png(fig)


COMPARED = ('accuracy', 'auc', 'precision', 'recall')


def baseline_figure(candidate: Dict[str, Dict[str, float]], served: Dict[str, Dict[str, float]],
                     version, max_drop: Dict[str, float]) -> str:
    """Per metric, candidate and served model side by side on each slice; max_drop's bound on overall."""
    plt = _pyplot()
    metrics = [m for m in COMPARED if m in candidate.get('overall', {})]
    names = sorted(candidate, key=lambda s: (s != 'overall', s))
    cols = min(2, len(metrics))
    rows = (len(metrics) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(6 * cols, rows * (0.5 * len(names) + 1.4)), squeeze=False)
    y = np.arange(len(names))
    for ax, m in zip(axes.flat, metrics):
        c = [candidate[n].get(m, np.nan) for n in names]
        b = [served.get(n, {}).get(m, np.nan) for n in names]
        ax.barh(y - 0.2, np.nan_to_num(c), height=0.4, color='#2e86c1', label='candidate')
        ax.barh(y + 0.2, np.nan_to_num(b), height=0.4, color='#aab7b8', label=f'served (version {version})')
        if m in max_drop and not np.isnan(b[0]):
            ax.plot([b[0] - max_drop[m]] * 2, [-0.45, 0.45], color='black', linewidth=2,
                    label=f'lowest allowed (max_drop {max_drop[m]:g})')
        ax.set_yticks(y, names, fontsize=8)
        ax.set_xlim(0, 1)
        ax.invert_yaxis()
        ax.set_title(m)
        ax.legend(loc='lower right', fontsize='x-small')
    for ax in list(axes.flat)[len(metrics):]:
        ax.axis('off')
    fig.suptitle('Candidate vs the served model, per slice', fontsize=10)
    fig.tight_layout()
    return _png(fig)


MODEL_METRICS = ('accuracy', 'auc', 'precision', 'recall', 'false_positive_rate', 'false_negative_rate')


MODEL_COLOURS = ('#2e86c1', '#e67e22', '#27ae60', '#8e44ad', '#c0392b', '#16a085', '#7f8c8d', '#d4ac0d')


PUSHED_MARK = '\u2605 pushed'


def _model_colours(models: List[Dict]) -> Dict[str, str]:
    return {m['model']: MODEL_COLOURS[i % len(MODEL_COLOURS)] for i, m in enumerate(models)}


def _legend_name(model: Dict, selected: Optional[str]) -> str:
    return f'{model["model"]} ({PUSHED_MARK})' if model['model'] == selected else model['model']


def _compared_metrics(models: List[Dict]) -> List[str]:
    return [m for m in MODEL_METRICS if any(m in model['metrics'] for model in models)]


def models_figure(models: List[Dict], selected: Optional[str], thresholds: Dict[str, float],
                   floor: Optional[Dict[str, float]] = None) -> str:
    """Grouped bars: one group per overall metric, one bar per model; blessing thresholds as black lines, the
    majority-class floor as red dashed ones."""
    plt = _pyplot()
    metrics = _compared_metrics(models)
    colours = _model_colours(models)
    width = 0.8 / len(models)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.3 * len(metrics) * max(1, len(models) / 2.5)) + 1.5, 4.2))
    for j, model in enumerate(models):
        values = [model['metrics'].get(m, np.nan) for m in metrics]
        xs = [i - 0.4 + width * (j + 0.5) for i in range(len(metrics))]
        is_selected = model['model'] == selected
        ax.bar(xs, np.nan_to_num(values), width=width * 0.92, color=colours[model['model']],
               edgecolor='black' if is_selected else 'none', linewidth=1.5, label=_legend_name(model, selected))
        for x, v in zip(xs, values):
            ax.text(x, 0.01 if np.isnan(v) else v + 0.01, 'n/a' if np.isnan(v) else f'{v:.3f}', ha='center',
                    va='bottom', fontsize=7, rotation=90 if len(models) > 2 else 0)
    for i, m in enumerate(metrics):
        if m in thresholds:
            ax.plot([i - 0.45, i + 0.45], [thresholds[m]] * 2, color='black', linewidth=2)
        if m in (floor or {}):
            ax.plot([i - 0.45, i + 0.45], [floor[m]] * 2, color='#c0392b', linewidth=2, linestyle='--')
    ax.set_xticks(range(len(metrics)), [SHORT_METRIC_NAMES.get(m, m) for m in metrics])
    ax.set_ylim(0, 1.18)
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.legend(loc='upper left', bbox_to_anchor=(1.01, 1), fontsize='small', title='model')
    ax.set_title('Overall metrics per model, eval split (black line: blessing threshold; '
                 + ('red dashed: majority-class floor; ' if floor else '') + 'black edge: pushed)', fontsize=10)
    return _png(fig)


def side_by_side_figure(rows: List[str], models: List[Dict], values: Dict[str, Dict[str, float]],
                         selected: Optional[str], title: str, xlabel: str, vertical: bool = False) -> str:
    """Grouped bars: one group per row (slice, class), one bar per model. values: {model: {row: v}}.
    Horizontal (long slice names), or `vertical` (short names, e.g. classes)."""
    plt = _pyplot()
    colours = _model_colours(models)
    if vertical:
        width = 0.8 / len(models)
        fig, ax = plt.subplots(figsize=(max(6.0, 0.35 * len(rows) * len(models) + 0.3 * len(rows)) + 1.5, 3.8))
        for j, model in enumerate(models):
            vs = [values[model['model']].get(r, np.nan) for r in rows]
            xs = [i - 0.4 + width * (j + 0.5) for i in range(len(rows))]
            ax.bar(xs, np.nan_to_num(vs), width=width * 0.92, color=colours[model['model']],
                   edgecolor='black' if model['model'] == selected else 'none', linewidth=1.2,
                   label=_legend_name(model, selected))
            for x, v in zip(xs, vs):
                ax.text(x, 0.01 if np.isnan(v) else v + 0.01, 'n/a' if np.isnan(v) else f'{v:.3f}', ha='center',
                        va='bottom', fontsize=7, rotation=90)
        ax.set_xticks(range(len(rows)), rows, rotation=30 if max(map(len, rows)) > 6 else 0,
                      ha='right' if max(map(len, rows)) > 6 else 'center', fontsize=8)
        ax.set_ylim(0, 1.22)
        ax.set_yticks(np.linspace(0, 1, 6))
        ax.set_ylabel(xlabel)
        ax.legend(loc='upper left', bbox_to_anchor=(1.01, 1), fontsize='small', title='model')
        ax.set_title(title, fontsize=10)
        return _png(fig)
    height = 0.8 / len(models)
    fig, ax = plt.subplots(figsize=(8.5, 0.22 * len(rows) * len(models) + 0.25 * len(rows) + 1.4))
    for j, model in enumerate(models):
        vs = [values[model['model']].get(r, np.nan) for r in rows]
        ys = [i - 0.4 + height * (j + 0.5) for i in range(len(rows))]
        ax.barh(ys, np.nan_to_num(vs), height=height * 0.92, color=colours[model['model']],
                edgecolor='black' if model['model'] == selected else 'none', linewidth=1.2,
                label=_legend_name(model, selected))
        for y, v in zip(ys, vs):
            ax.text(0 if np.isnan(v) else v, y, ' n/a' if np.isnan(v) else f' {v:.3f}', va='center', fontsize=7)
    ax.set_yticks(range(len(rows)), rows, fontsize=8)
    ax.set_xlim(0, 1.1)
    ax.set_xlabel(xlabel)
    ax.invert_yaxis()
    ax.legend(loc='upper left', bbox_to_anchor=(1.01, 1), fontsize='small', title='model')
    ax.set_title(title, fontsize=10)
    return _png(fig)


def fairness_models_figure(column: str, models: List[Dict], selected: Optional[str],
                           panels: List[Tuple[str, object]], per_model: Dict[str, Dict[str, Dict[str, float]]],
                           failing: Dict[Tuple[str, str], set]) -> str:
    """Per panel (gated metric), one bar group per group of `column`, one bar per model; a gate's min/max as
    black lines; a bar its gate failed (`failing[(model, metric)]`; a gap gate: outside the band) hatched with a
    red edge. Rates (FPR, FNR) get an axis zoomed to their values. per_model: {model: {group: metrics}}."""
    plt = _pyplot()
    colours = _model_colours(models)
    names = sorted({g for groups in per_model.values() for g in groups})
    height = 0.8 / len(models)
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels) + 1.5,
                                                      0.22 * len(names) * len(models) + 0.3 * len(names) + 1.8),
                             squeeze=False)
    for ax, (metric, gate) in zip(axes[0], panels):
        for j, model in enumerate(models):
            values = {g: per_model[model['model']].get(g, {}).get(metric, float('nan')) for g in names}
            low, high = (gate_band(gate, values)[:2] if gate is not None else (None, None))
            failed = failing.get((model['model'], metric), set())
            ys = [i - 0.4 + height * (j + 0.5) for i in range(len(names))]
            for y, g in zip(ys, names):
                v = values[g]
                outside = g in failed if gate is not None and gate.max_gap is None else (not np.isnan(v) and (
                    (low is not None and v < low - 1e-9) or (high is not None and v > high + 1e-9)))
                ax.barh(y, 0 if np.isnan(v) else v, height=height * 0.92, color=colours[model['model']],
                        edgecolor='#c0392b' if outside else ('black' if model['model'] == selected else 'none'),
                        hatch='///' if outside else None, linewidth=1.5 if outside else 1.0,
                        label=_legend_name(model, selected) if g == names[0] else None)
                ax.text(0 if np.isnan(v) else v, y, ' n/a' if np.isnan(v) else f' {v:.3f}', va='center', fontsize=7)
        if gate is not None and gate.max_gap is None:
            for bound in (gate.min, gate.max):
                if bound is not None:
                    ax.axvline(bound, color='black', linewidth=1.5)
        ax.set_yticks(range(len(names)), names, fontsize=8)
        top = 1.0
        if any(rate in metric for rate in LOWER_IS_BETTER):  # small rates: zoom in, keep the gate's bound
            shown = [v.get(metric, np.nan) for groups in per_model.values() for v in groups.values()]
            shown += [b for b in ((gate.min, gate.max) if gate is not None else ()) if b is not None]
            finite = [v for v in shown if not np.isnan(v)]
            top = min(1.0, max(0.1, 1.25 * max(finite))) if finite else 1.0
        ax.set_xlim(0, top * 1.12)
        ax.invert_yaxis()
        text = gate_band(gate, {})[2] if gate is not None and gate.max_gap is None else (
            f'max_gap {gate.max_gap:g} between groups' if gate is not None else 'not gated')
        ax.set_title(f'{metric.replace("fairness_indicators_metrics/", "")}\n{text}', fontsize=9)
    axes[0][-1].legend(loc='upper left', bbox_to_anchor=(1.01, 1), fontsize='small', title='model')
    fig.suptitle(f'{column}: per group and model (black line: gate bound; hatched, red edge: outside the '
                 f'model\'s gate)', fontsize=10)
    fig.tight_layout()
    return _png(fig)


def confusion_models_figure(matrices: List[Tuple[str, np.ndarray]], classes: List[str],
                             side_of: Optional[List[int]] = None) -> str:
    """The confusion matrices of several models side by side (rows: true class, columns: predicted).

    Binary: counts in blue, as the one-model figure. Multi-class: the diagonal (correct) in grey, confusions in
    red on one scale shared by the panels, so the models' mistakes compare at a glance; with `side_of` (the max
    cut) classes are ordered side A then side B and the sides split by lines: the off-diagonal blocks are the
    confusions across the cut."""
    plt = _pyplot()
    n = len(classes)
    order = list(range(n))
    if side_of is not None:
        order = [i for i in range(n) if side_of[i] == 0] + [i for i in range(n) if side_of[i] != 0]
    names = [classes[i] for i in order]
    multi = n > 2
    off_max = max([1.0] + [float(np.max(m[np.ix_(order, order)] * (1 - np.eye(n)))) for _, m in matrices])
    cell = 0.42 if multi else 1.0  # two 10-class panels fit the page's width at a readable size
    fig, axes = plt.subplots(1, len(matrices), figsize=((cell * n + 1.3) * len(matrices), cell * n + 1.5),
                             squeeze=False)
    for ax, (title, matrix) in zip(axes[0], matrices):
        m = matrix[np.ix_(order, order)]
        if multi:
            off = np.ma.masked_where(np.eye(n, dtype=bool), m)
            ax.imshow(np.ma.masked_where(~np.eye(n, dtype=bool), m), cmap='Greys', vmin=0, vmax=m.max() * 3)
            ax.imshow(off, cmap='Reds', vmin=0, vmax=off_max)
            for (i, j), value in np.ndenumerate(m):
                if value or i == j:
                    ax.text(j, i, f'{value:.0f}', ha='center', va='center', fontsize=8 if n > 12 else 9,
                            color='white' if i != j and value > off_max / 2 else 'black')
        else:
            ax.imshow(m, cmap='Blues')
            for (i, j), value in np.ndenumerate(m):
                ax.text(j, i, f'{value:.0f}', ha='center', va='center',
                        color='white' if value > m.max() / 2 else 'black')
        if side_of is not None:
            split = sum(1 for s in side_of if s == 0) - 0.5
            ax.axhline(split, color='black', linewidth=1.5)
            ax.axvline(split, color='black', linewidth=1.5)
        errors = m.sum() - np.trace(m)
        ax.set_xticks(range(n), names, rotation=45 if multi else 30, ha='right', fontsize=8)
        ax.set_yticks(range(n), names, fontsize=8)
        ax.set_xlabel('predicted')
        ax.set_ylabel('true')
        ax.set_title(f'{title}\n{m.sum():.0f} examples, {errors:.0f} misclassified', fontsize=9)
    fig.tight_layout()
    return _png(fig)
