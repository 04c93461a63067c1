"""The run report: one self-contained HTML file (pictures embedded, no network needed) beside summary.json.

It shows what people would rather look at than read: overall metrics against their thresholds, the confusion
matrix, the calibration plot, the candidate against the served model (the baseline), metrics per slice with
counts, fairness bars per group with each gate's bound, and the training curves.

When a run evaluates several models (`models:`, or the hierarchical model beside its base), a model comparison
comes first: model x overall metric with blessing and failures, the pushed one marked, the selection rule, and bars
side by side (overall, per slice, per class for multi-class, the fairness gates' metric per group); for a
hierarchical run, the max cut (ConfusionCut's graph, value, bound, sides) and the base and hierarchical confusion
matrices. The pushed model's (else the first's) sections follow, as for one model. Tree models add their feature
importances (and say why they have no Embedding Projector output).
"""
import base64
import html
import io
import os
from typing import Dict, List, Optional, Tuple

import numpy as np

from tfx_tabular.pipeline.core.names import SHORT_METRIC_NAMES

REPORT_FILE = 'report.html'


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


def _overall_plots(evaluation_uri: str):
    """The candidate model's plots on the overall slice: [(PlotKey, PlotData)] (a baseline has its own)."""
    import tensorflow_model_analysis as tfma
    from tfx_tabular.components.evaluator.results import is_candidate
    for plots in tfma.load_plots(evaluation_uri):
        if plots.HasField('cross_slice_key') or plots.slice_key.single_slice_keys:
            continue
        return [(kv.key, kv.value) for kv in plots.plot_keys_and_values if is_candidate(kv.key)]
    return []


def confusion_matrix(evaluation_uri: str, n_classes: int) -> Optional[np.ndarray]:
    """Rows: true class, columns: predicted class, on the overall slice (binary at threshold 0.5)."""
    for _, value in _overall_plots(evaluation_uri):
        multi = value.multi_class_confusion_matrix_at_thresholds
        if multi.matrices:
            matrix = np.zeros((n_classes, n_classes))
            for e in multi.matrices[0].entries:
                if e.actual_class_id < n_classes and e.predicted_class_id < n_classes:
                    matrix[e.actual_class_id, e.predicted_class_id] = e.num_weighted_examples
            return matrix
        binary = value.confusion_matrix_at_thresholds
        if binary.matrices:
            m = min(binary.matrices, key=lambda m: abs(m.threshold - 0.5))
            return np.array([[m.true_negatives, m.false_positives], [m.false_negatives, m.true_positives]])
    return None


def _confusion_figure(matrix: np.ndarray, classes: List[str]) -> str:
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


def floor_bounds(floor: Optional[Dict]) -> Dict[str, float]:
    """{metric: bound} of the majority-class floor (MajorityGate; summary['floor']): accuracy, and auc when the
    binary label is imbalanced."""
    if not floor:
        return {}
    return {m: floor[m] for m in ('accuracy', 'auc') if floor.get(m) is not None}


def _floor_paragraph(floor: Optional[Dict]) -> str:
    if not floor:
        return ''
    auc = (f' The label is imbalanced, so auc must also reach {floor["auc"]:.4f} (a constant scores 0.5).'
           if floor.get('auc') is not None else '')
    return (f'<p>Majority-class floor (red dashed line): always answering <b>{html.escape(str(floor["answer"]))}'
            f'</b> scores accuracy {floor["rate"]:.4f} on the {floor["examples"]} rows of the eval split; a model '
            f'is blessed only above {floor["accuracy"]:.4f}.{auc}</p>')


def _metrics_figure(overall: Dict[str, float], thresholds: Dict[str, float],
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


def _importances_figure(model: str, importances: List[Dict], top: int = 20) -> str:
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


def _explanations_section(summary: Dict, config) -> List[str]:
    """Tree models: feature importances, and why they have no Embedding Projector output."""
    from tfx_tabular.pipeline.core.config import MODEL_KINDS
    parts = []
    for model, importances in (summary.get('feature_importances') or {}).items():
        parts += [f'<h2>Feature importances: {html.escape(model)}</h2>', _importances_figure(model, importances),
                  '<p>Each feature\'s share of the loss reduction of every split on it, over all the trees (YDF\'s '
                  'SUM_SCORE), by the config\'s feature names; crossed features by their own name.</p>']
    trees = [m.name for m in config.models if MODEL_KINDS[m.kind].trainer == 'trees']
    if trees:
        parts.append(f'<p>No Embedding Projector output for {html.escape(", ".join(trees))}: gradient-boosted trees '
                     'learn no vectors (no embeddings, no hidden layers) to project; the feature importances show '
                     'what they rely on.</p>')
    return parts


def _slices_figure(metrics: Dict[str, Dict[str, float]], metric: str) -> str:
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


def calibration_curves(evaluation_uri: str, classes: List[str], bins: int = 10) -> Dict[str, List[Tuple]]:
    """{class: [(mean predicted probability, observed rate, examples), ...]} on the overall slice.

    TFMA's CalibrationPlot keeps 1000 prediction buckets (binary: one plot for the positive class; multi-class:
    one per class, one-vs-rest); they are merged into `bins` equal-width bins here, empty ones dropped.
    """
    curves = {}
    for key, value in _overall_plots(evaluation_uri):
        buckets = value.calibration_histogram_buckets.buckets
        if not buckets:
            continue
        if key.sub_key.HasField('class_id'):
            class_id = key.sub_key.class_id.value
            name = classes[class_id] if class_id < len(classes) else str(class_id)
        else:
            name = classes[-1] if classes else 'positive'  # binary: P(positive class)
        totals = np.zeros((bins, 3))  # examples, label sum, prediction sum
        for b in buckets:
            n = b.num_weighted_examples.value
            if n <= 0:
                continue
            mean = b.total_weighted_refined_prediction.value / n
            i = min(bins - 1, max(0, int(mean * bins)))
            totals[i] += (n, b.total_weighted_label.value, b.total_weighted_refined_prediction.value)
        curves[name] = [(p / n, y / n, n) for n, y, p in totals if n > 0]
    return curves


def _calibration_figure(curves: Dict[str, List[Tuple]]) -> str:
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


def _groups(metrics: Dict[str, Dict[str, float]], column: str) -> Dict[str, Dict[str, float]]:
    """{group value: metrics} of the slices on one column."""
    prefix = f'{column}='
    return {name[len(prefix):]: values for name, values in metrics.items()
            if name.startswith(prefix) and ', ' not in name}


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


def _gate_verdict(gate, values: Dict[str, float]) -> str:
    """'Gate: accuracy min 0.7: fails for Male (0.6313)', or '...: met (...)'; what the figure shows, in words."""
    low, high, text = gate_band(gate, values)
    finite = {g: v for g, v in values.items() if not np.isnan(v)}
    head = f'Gate: {gate.metric} {text}'
    if not finite:
        return f'{head}: no group has a value'
    if gate.max_gap is not None:
        top, bottom = max(finite, key=finite.get), min(finite, key=finite.get)
        gap = finite[top] - finite[bottom]
        verdict = 'exceeds max_gap' if gap > gate.max_gap else 'within max_gap'
        return f'{head}: largest gap {gap:.4f} ({top} {finite[top]:.4f} vs {bottom} {finite[bottom]:.4f}), {verdict}'
    failing = [f'{g} ({v:.4f})' for g, v in sorted(finite.items())
               if (low is not None and v < low) or (high is not None and v > high)]
    return f'{head}: fails for {", ".join(failing)}' if failing else f'{head}: met by every group'


def _fairness_gate_figure(column: str, groups: Dict[str, Dict[str, float]], gates) -> str:
    """One panel per gated metric: a bar per group, the gate's bound(s) as lines, bars outside in red."""
    plt = _pyplot()
    names = sorted(groups)
    fig, axes = plt.subplots(1, len(gates), figsize=(4.6 * len(gates), 0.45 * len(names) + 1.6), squeeze=False)
    for ax, gate in zip(axes[0], gates):
        values = {g: groups[g].get(gate.metric, float('nan')) for g in names}
        low, high, text = gate_band(gate, values)
        outside = [(low is not None and v < low - 1e-9) or (high is not None and v > high + 1e-9) for v in
                   values.values()]
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


def _fairness_rates_figure(column: str, groups: Dict[str, Dict[str, float]], classes: List[str],
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


def _baseline_table(candidate: Dict[str, Dict[str, float]], served: Dict[str, Dict[str, float]]) -> str:
    metrics = [m for m in COMPARED if m in candidate.get('overall', {})]
    head = '<tr><th rowspan="2">slice</th>' + ''.join(f'<th colspan="3">{m}</th>' for m in metrics) + '</tr><tr>' + \
        ''.join('<th>candidate</th><th>served</th><th>change</th>' for _ in metrics) + '</tr>'
    rows = []
    for name in sorted(candidate, key=lambda s: (s != 'overall', s)):
        cells = []
        for m in metrics:
            c, b = candidate[name].get(m), served.get(name, {}).get(m)
            change = None if c is None or b is None else c - b
            if change is None or np.isnan(change):
                cells.append(_cell(c) + _cell(b) + ('<td>-</td>' if change is None else '<td>n/a</td>'))
                continue
            cls = '' if abs(change) < 5e-5 else ' class="good"' if change > 0 else ' class="bad"'
            cells.append(_cell(c) + _cell(b) + f'<td{cls}>{change:+.4f}</td>')
        rows.append(f'<tr><td>{html.escape(name)}</td>{"".join(cells)}</tr>')
    return f'<table>{head}{"".join(rows)}</table>'


def _baseline_figure(candidate: Dict[str, Dict[str, float]], served: Dict[str, Dict[str, float]],
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


def _baseline_section(summary: Dict, max_drop: Dict[str, float]) -> List[str]:
    baseline, served = summary.get('baseline'), summary.get('served')
    parts = ['<h2>Candidate vs the served model (baseline)</h2>']
    if baseline:
        rules = ', '.join(f'{m} {v:g}' for m, v in max_drop.items())
        parts.append(f'<p>Served model: version {html.escape(str(baseline.get("version")))} '
                     f'(<code>{html.escape(str(baseline.get("source") or ""))}</code>). '
                     + (f'Change thresholds (evaluation.max_drop, overall slice): {html.escape(rules)}.'
                        if rules else 'No change thresholds (evaluation.max_drop) configured: the comparison is '
                                      'shown, not gated.') + '</p>')
        parts += [_baseline_table(summary['metrics'], baseline['metrics']),
                  _baseline_figure(summary['metrics'], baseline['metrics'], baseline.get('version'), max_drop)]
    elif served is not None and not served['found']:
        when = ('This evaluation was reused from TFX\'s cache; when it ran, no model was served'
                if served['state'] == 'cached' else 'First run: no model served yet')
        parts.append(f'<p>No baseline. {when} at <code>{html.escape(str(served["base_path"]))}</code>, so the '
                     'candidate was evaluated alone and change thresholds (evaluation.max_drop) did not apply.</p>')
    else:
        parts.append('<p>No baseline: this pipeline compared the candidate with no served model.</p>')
    return parts


def _fairness_section(summary: Dict, fairness) -> List[str]:
    metrics, label = summary['metrics'], summary['label']
    parts = ['<h2>Fairness per group</h2>']
    thresholds = sorted((f'{t:g}' for t in fairness.thresholds), key=lambda t: abs(float(t) - 0.5))
    for column in fairness.sensitive:
        groups = _groups(metrics, column)
        if not groups:
            parts.append(f'<p>{html.escape(column)}: no group in the eval split.</p>')
            continue
        parts.append(f'<h3>{html.escape(column)}</h3>')
        if fairness.gates:
            parts.append(_fairness_gate_figure(column, groups, fairness.gates))
            lines = [_gate_verdict(gate, {g: v.get(gate.metric, float('nan')) for g, v in groups.items()})
                     for gate in fairness.gates]
            parts.append('<ul>' + ''.join(f'<li>{html.escape(line)}</li>' for line in lines) + '</ul>')
        figure = _fairness_rates_figure(column, groups, label['classes'], thresholds[0])
        if figure:
            parts.append(figure)
    by_class = summary.get('fairness_by_class')
    if by_class:
        t = thresholds[0]
        classes = label['classes']
        head = '<tr><th rowspan="2">group</th>' + ''.join(f'<th colspan="2">{html.escape(c)}</th>' for c in classes) \
            + '</tr><tr>' + '<th>FPR</th><th>FNR</th>' * len(classes) + '</tr>'
        rows = [f'<tr><td>{html.escape(g)}</td>' + ''.join(
            _cell(by_class[g].get(c, {}).get(f'fpr@{t}')) + _cell(by_class[g].get(c, {}).get(f'fnr@{t}'))
            for c in classes) + '</tr>' for g in sorted(by_class, key=lambda s: (s != 'overall', s))]
        parts += [f'<h3>Per class, one-vs-rest, at threshold {t}</h3>', f'<table>{head}{"".join(rows)}</table>']
    return parts


def _cell(value: Optional[float]) -> str:
    return '<td>-</td>' if value is None else '<td>n/a</td>' if np.isnan(value) else f'<td>{value:.4g}</td>'


def _table(metrics: Dict[str, Dict[str, float]], columns: List[str], first: str = 'slice') -> str:
    head = ''.join(f'<th>{html.escape(c)}</th>' for c in [first] + columns)
    rows = []
    for name in sorted(metrics, key=lambda s: (s != 'overall', s)):
        cells = ''.join(_cell(metrics[name].get(c)) for c in columns)
        rows.append(f'<tr><td>{html.escape(name)}</td>{cells}</tr>')
    return f'<table><tr>{head}</tr>{"".join(rows)}</table>'


# --- Several models (`models:` and/or the hierarchical model): the comparison, and the max cut ----------------

MODEL_METRICS = ('accuracy', 'auc', 'precision', 'recall', 'false_positive_rate', 'false_negative_rate')
MODEL_COLOURS = ('#2e86c1', '#e67e22', '#27ae60', '#8e44ad', '#c0392b', '#16a085', '#7f8c8d', '#d4ac0d')
PUSHED_MARK = '\u2605 pushed'


def _model_colours(models: List[Dict]) -> Dict[str, str]:
    return {m['model']: MODEL_COLOURS[i % len(MODEL_COLOURS)] for i, m in enumerate(models)}


def _legend_name(model: Dict, selected: Optional[str]) -> str:
    return f'{model["model"]} ({PUSHED_MARK})' if model['model'] == selected else model['model']


def _compared_metrics(models: List[Dict]) -> List[str]:
    return [m for m in MODEL_METRICS if any(m in model['metrics'] for model in models)]


def _models_table(summary: Dict) -> str:
    """model x overall metric, blessed and failures; the pushed row marked, each metric's best value in bold."""
    models, selected = summary['models'], summary.get('selected_model')
    metrics = _compared_metrics(models)
    best = {}
    for m in metrics:
        values = [x['metrics'][m] for x in models if m in x['metrics'] and not np.isnan(x['metrics'][m])]
        if values:
            best[m] = min(values) if m in LOWER_IS_BETTER else max(values)
    head = ''.join(f'<th{" class=left" if c in ("kind", "failures") else ""}>{html.escape(c)}</th>' for c in
                   ['model', 'kind'] + [SHORT_METRIC_NAMES.get(m, m) for m in metrics] + ['blessed', 'failures'])
    rows = []
    for model in models:
        cells = []
        for m in metrics:
            value = model['metrics'].get(m)
            cell = _cell(value) if value is None or np.isnan(value) else f'<td>{value:.4f}</td>'
            if m in best and model['metrics'].get(m) == best[m] and len(models) > 1:
                cell = cell.replace('<td>', '<td><b>', 1).replace('</td>', '</b></td>')
            cells.append(cell)
        failures = model.get('validation_failures') or []
        failed = ('<ul class="failures">' + ''.join(f'<li>{html.escape(f)}</li>' for f in failures) + '</ul>'
                  if failures else '-')
        is_selected = model['model'] == selected
        name = html.escape(model['model']) + (f' <span class="pushed">{PUSHED_MARK}</span>' if is_selected else '')
        blessed = '<td class="good">yes</td>' if model.get('blessed') else '<td class="bad">no</td>'
        rows.append(f'<tr{" class=selected" if is_selected else ""}><td>{name}</td>'
                    f'<td class="left">{html.escape(str(model.get("kind", "")))}</td>{"".join(cells)}{blessed}'
                    f'<td class="left">{failed}</td></tr>')
    return f'<table class="models"><tr>{head}</tr>{"".join(rows)}</table>'


def _models_figure(models: List[Dict], selected: Optional[str], thresholds: Dict[str, float],
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


def _side_by_side_figure(rows: List[str], models: List[Dict], values: Dict[str, Dict[str, float]],
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


def _fairness_panels(fairness, classes: List[str]) -> List[Tuple[str, object]]:
    """(metric key, gate or None) per panel: the gated metrics; without gates, binary FPR and FNR at the
    Fairness Indicators threshold nearest 0.5 (multi-class: accuracy)."""
    if fairness.gates:
        return [(gate.metric, gate) for gate in fairness.gates]
    if len(classes) > 2:
        return [('accuracy', None)]
    t = min((f'{t:g}' for t in fairness.thresholds), key=lambda t: abs(float(t) - 0.5))
    return [(f'fairness_indicators_metrics/{rate}@{t}', None) for rate in ('false_positive_rate',
                                                                           'false_negative_rate')]


def _fairness_models_figure(column: str, models: List[Dict], selected: Optional[str],
                            panels: List[Tuple[str, object]]) -> Tuple[str, List[Tuple[object, str, str]]]:
    """Per panel (gated metric), one bar group per group of `column`, one bar per model; a gate's min/max as
    black lines; a bar outside its model's gate band hatched with a red edge. Rates (FPR, FNR) get an axis
    zoomed to their values. Returns the figure and (gate, model, verdict) per gate and model."""
    plt = _pyplot()
    colours = _model_colours(models)
    per_model = {m['model']: _groups(m.get('slices') or {}, column) for m in models}
    names = sorted({g for groups in per_model.values() for g in groups})
    height = 0.8 / len(models)
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels) + 1.5,
                                                      0.22 * len(names) * len(models) + 0.3 * len(names) + 1.8),
                             squeeze=False)
    verdicts = []
    for ax, (metric, gate) in zip(axes[0], panels):
        for j, model in enumerate(models):
            values = {g: per_model[model['model']].get(g, {}).get(metric, float('nan')) for g in names}
            low, high = (gate_band(gate, values)[:2] if gate is not None else (None, None))
            if gate is not None:
                verdicts.append((gate, model['model'], _gate_verdict(gate, values).split(': ', 2)[-1]))
            ys = [i - 0.4 + height * (j + 0.5) for i in range(len(names))]
            for y, g in zip(ys, names):
                v = values[g]
                outside = not np.isnan(v) and ((low is not None and v < low - 1e-9) or
                                               (high is not None and v > high + 1e-9))
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
    return _png(fig), verdicts


def _verdicts_table(verdicts: List[Tuple[object, str, str]], models: List[Dict]) -> str:
    """One row per gate, one column per model: the gate's verdict in words (red when it fails)."""
    gates = []
    for gate, _, _ in verdicts:
        if gate not in gates:
            gates.append(gate)
    cells = {(id(g), m): v for g, m, v in verdicts}
    head = '<tr><th>gate</th>' + ''.join(f'<th>{html.escape(m["model"])}</th>' for m in models) + '</tr>'
    rows = []
    for gate in gates:
        text = gate_band(gate, {})[2] if gate.max_gap is None else f'max_gap {gate.max_gap:g}'
        row = [f'<td>{html.escape(f"{gate.metric} {text}")}</td>']
        for m in models:
            v = cells.get((id(gate), m['model']), '-')
            bad = v.startswith('fails') or 'exceeds' in v
            row.append(f'<td class="left{" bad" if bad else ""}">{html.escape(v)}</td>')
        rows.append('<tr>' + ''.join(row) + '</tr>')
    return f'<table class="verdicts">{head}{"".join(rows)}</table>'


def _confusion_models_figure(matrices: List[Tuple[str, np.ndarray]], classes: List[str],
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


def _model_matrices(models: List[Dict], n_classes: int) -> List[Tuple[str, np.ndarray]]:
    matrices = []
    for model in models:
        uri = model.get('evaluation_uri')
        matrix = confusion_matrix(uri, n_classes) if uri and os.path.isdir(uri) else None
        if matrix is not None:
            matrices.append((model['model'], matrix))
    return matrices


def _comparison_section(summary: Dict, config) -> List[str]:
    """Several models: the table and bars of overall metrics, accuracy per slice (per class for multi-class) and
    the fairness metrics per group, side by side; each model's confusion matrix (unless the cut section has
    them)."""
    models, selected, label = summary['models'], summary.get('selected_model'), summary['label']
    rule = html.escape(str(summary.get('selection') or ''))
    if selected and 'only candidate' in rule:  # no ModelSelector: the hierarchical model is only reported
        choice = (f'<p>Pushed: <b>{html.escape(selected)}</b> (marked {PUSHED_MARK}), {rule}: the hierarchical model '
                  'is evaluated and reported, never pushed (hierarchical.push_if_better: false).' + (
                      f' Pushed to <code>{html.escape(str(summary["pushed_to"]))}</code>.'
                      if summary.get('pushed_to') else '') + '</p>')
    elif selected:
        choice = (f'<p>Pushed: <b>{html.escape(selected)}</b> (marked {PUSHED_MARK}), selected by <b>{rule}</b> '
                  'among the blessed models.' + (f' Pushed to <code>{html.escape(str(summary["pushed_to"]))}</code>.'
                                                  if summary.get('pushed_to') else '') + '</p>')
    else:
        choice = f'<p class="bad">No model is blessed, so none is pushed (selection: {rule}).</p>'
    parts = ['<h2 id="model-comparison">Model comparison</h2>', choice,
             '<p>Every model is evaluated on the same eval split, slices and gates. Overall slice; bold: the '
             'best value of each metric (lowest for fpr/fnr); multi-class precision, recall and auc are macro '
             'averages.</p>',
             _models_table(summary),
             _models_figure(models, selected, config.evaluation.thresholds, floor_bounds(summary.get('floor'))),
             _floor_paragraph(summary.get('floor'))]
    slices = sorted({s for m in models for s in (m.get('slices') or {})}, key=lambda s: (s != 'overall', s))
    if len(slices) > 1:
        values = {m['model']: {s: v.get('accuracy', np.nan) for s, v in (m.get('slices') or {}).items()}
                  for m in models}
        parts += ['<h3>Accuracy per slice, side by side</h3>',
                  _side_by_side_figure(slices, models, values, selected, 'Accuracy per slice and model',
                                       'accuracy')]
    classes = label['classes']
    if len(classes) > 2 and label['type'] == 'multiclass' and any(f'recall/{c}' in m['metrics'] for m in models
                                                                   for c in classes):
        values = {m['model']: {c: m['metrics'].get(f'recall/{c}', np.nan) for c in classes} for m in models}
        parts += ['<h3>Recall per class, side by side</h3>',
                  _side_by_side_figure(classes, models, values, selected,
                                       'Recall per class and model (share of each class found)', 'recall',
                                       vertical=True)]
    if config.fairness:
        panels = _fairness_panels(config.fairness, classes)
        parts.append('<h3>Fairness per group, side by side</h3>')
        for column in config.fairness.sensitive:
            if not any(_groups(m.get('slices') or {}, column) for m in models):
                parts.append(f'<p>{html.escape(column)}: no group in the eval split.</p>')
                continue
            figure, verdicts = _fairness_models_figure(column, models, selected, panels)
            parts += [f'<h4>{html.escape(column)}</h4>', figure]
            if verdicts:
                parts.append(_verdicts_table(verdicts, models))
    if not summary.get('confusion_cut'):
        matrices = _model_matrices(models, len(classes))
        if len(matrices) > 1:
            parts += ['<h3>Confusion matrices, eval split</h3>', _confusion_models_figure(matrices, classes)]
    return parts


def _cut_section(summary: Dict) -> List[str]:
    """The hierarchical model's max cut: the confusion graph, the cut's numbers and sides, and the confusion
    matrices of the base and the hierarchical model on the eval split."""
    import tensorflow as tf
    from tfx_tabular.components.confusion_cut.graph import read_cut
    from tfx_tabular.components.confusion_cut.spec import GRAPH_FILE
    info = summary['confusion_cut']
    uri, base = info['uri'], info.get('base_model')
    parts = ['<h2 id="max-cut">Hierarchical model: the maximum cut of the base model\'s confusions</h2>']
    try:
        cut = read_cut(uri)
    except (tf.errors.NotFoundError, OSError, ValueError) as e:
        return parts + [f'<p class="bad">The ConfusionCut output could not be read at <code>{html.escape(uri)}'
                        f'</code>: {html.escape(str(e).splitlines()[0] if str(e) else type(e).__name__)}</p>']
    total = cut.get('total_weight') or 0
    share = f' ({cut["value"] / total:.0%} of all)' if total else ''
    if cut.get('exact'):
        method = str(cut.get('method') or 'enumeration')
        quality = f'exact maximum cut ({method[len("exact: "):] if method.startswith("exact: ") else method})'
    else:
        ratio = f', at least {cut["value"] / cut["upper_bound"]:.0%} of the maximum' if cut.get('upper_bound') else ''
        quality = (f'heuristic cut ({cut.get("method", "")}); upper bound on the maximum '
                   f'{cut["upper_bound"]:.1f}{ratio}')
    parts.append(
        f'<p>Base model <b>{html.escape(str(base))}</b>, confusions counted on the '
        f'<code>{html.escape(str(cut.get("split")))}</code> split ({cut.get("examples")} examples, accuracy '
        f'{cut.get("accuracy", float("nan")):.4f}). Edge weight: confusions between two classes, both ways. '
        f'The cut puts the most-confused classes on opposite sides; the auxiliary classifier learns side A '
        f'against side B, and the hierarchical model combines it with the base model\'s probabilities.</p>')
    rows = [('cut value (confusions across the sides)', f'{cut["value"]:.0f} of {total:.0f}{share}'),
            ('upper bound', f'{cut["upper_bound"]:.1f}'),
            ('method', quality)]
    for side, name in enumerate(('side A', 'side B')):
        rows.append((name, ', '.join(cut['sides'][side])))
    heaviest = cut.get('cut_edges', [])[:5]
    if heaviest:
        rows.append(('heaviest cut edges', ', '.join(f'{a}\u2013{b} {w:.0f}' for a, b, w in heaviest)))
    within = cut.get('kept_edges', [])[:3]
    if within:
        rows.append(('heaviest edges within a side', ', '.join(f'{a}\u2013{b} {w:.0f}' for a, b, w in within)))
    parts.append('<table class="cut">' + ''.join(f'<tr><th>{html.escape(k)}</th><td class="left">{html.escape(v)}'
                                                 '</td></tr>' for k, v in rows) + '</table>')
    graph = os.path.join(uri, GRAPH_FILE)
    if tf.io.gfile.exists(graph):
        with tf.io.gfile.GFile(graph, 'rb') as f:
            encoded = base64.b64encode(f.read()).decode()
        parts.append(f'<img alt="confusion graph with the cut" src="data:image/png;base64,{encoded}">')
    # the base model and the hierarchical one (pipeline.HIERARCHICAL, its name and kind; not imported: tfx)
    models = [m for m in summary.get('models', []) if m['model'] == base or m.get('kind') == 'hierarchical']
    matrices = _model_matrices(models, len(cut['classes']))
    if matrices:
        side_of = cut.get('side_of') if cut['classes'] == summary['label']['classes'] else None
        parts += ['<h3>Confusion matrices on the eval split: base and hierarchical</h3>',
                  _confusion_models_figure(matrices, summary['label']['classes'], side_of)]
        if side_of is not None:
            side = np.array(side_of)
            across = side[:, None] != side[None, :]
            counts = [f'{name}: {m[across].sum():.0f} across the cut, '
                      f'{m[~across].sum() - np.trace(m):.0f} within a side' for name, m in matrices]
            parts.append('<p>Classes ordered side A then side B (black lines): off-diagonal blocks are confusions '
                         f'across the cut, the ones the auxiliary classifier is there to fix. Misclassified '
                         f'examples: {html.escape("; ".join(counts))}.</p>')
    return parts


STYLE = """body{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}
td:first-child,th:first-child{text-align:left}.bad{color:#c0392b}.good{color:#1e8449}img{max-width:100%}
tr.selected{background:#eaf4fb}.pushed{color:#1e8449;font-weight:bold;white-space:nowrap}
td.left,th.left{text-align:left}
ul.failures{margin:0;padding-left:1.2em;font-size:90%}table.cut th{text-align:left;background:#f6f6f6}
table.verdicts th{text-align:left}"""


def write_report(summary: Dict, config, path: str) -> str:
    """Writes the report of `summary` (pipeline/results/summary.py) to `path` (via a temp file) and returns the path.

    `config` gives what the summary does not hold: the thresholds, max_drop and fairness gates to draw."""
    thresholds = config.evaluation.thresholds
    parts = [f'<h1>Run report: {html.escape(summary["name"])}</h1>',
             f'<p>Run directory: <code>{html.escape(summary["run_dir"])}</code></p>']
    models = summary.get('models')
    if models:  # several models: the choice and every model's blessing are in the comparison
        parts += _comparison_section(summary, config)
        if summary.get('confusion_cut'):
            parts += _cut_section(summary)
        shown = summary.get('selected_model') or models[0]['model']
        why = 'the pushed model' if summary.get('selected_model') else 'no model was pushed; the first one'
        parts.append(f'<h2 id="model-detail">The {html.escape(shown)} model in detail ({why})</h2>')
    elif 'blessed' in summary:
        if summary['blessed']:
            verdict = '<p class="good"><b>Blessed</b>: every threshold met.'
            if summary.get('pushed'):
                verdict += f' Pushed to <code>{html.escape(summary["pushed_to"])}</code>.'
            parts.append(verdict + '</p>')
        else:
            failures = ''.join(f'<li>{html.escape(f)}</li>' for f in summary.get('validation_failures', []))
            parts.append(f'<p class="bad"><b>Not blessed, not pushed</b>:</p><ul>{failures}</ul>')
    metrics = summary.get('metrics')
    label = summary['label']
    if metrics:
        parts += ['<h2>Overall</h2>',
                  _metrics_figure(metrics['overall'], thresholds, floor_bounds(summary.get('floor'))),
                  _floor_paragraph(summary.get('floor')) or
                  f'<p>Majority-class rate: {label["majority_class_rate"]:.4f}</p>']
        matrix = confusion_matrix(summary['evaluation_uri'], len(label['classes']))
        if matrix is not None:
            parts += ['<h2>Confusion matrix</h2>', _confusion_figure(matrix, label['classes'])]
        positive = f' (positive class: {html.escape(label["classes"][1])})' if label['type'] == 'binary' else ''
        parts.append(f'<p>Classes, in label-id order: {html.escape(", ".join(label["classes"]))}{positive}</p>')
        curves = calibration_curves(summary['evaluation_uri'], label['classes'])
        if curves:
            parts += ['<h2>Calibration</h2>', _calibration_figure(curves),
                      '<p>Each point: the examples whose predicted probability fell in one tenth of [0, 1]; on '
                      'the dashed line the model\'s probabilities match how often the class occurred'
                      + ('; one-vs-rest per class.' if label['type'] != 'binary' else '.') + '</p>']
        parts += _baseline_section(summary, dict(config.evaluation.max_drop))
        from tfx_tabular.pipeline.results.summary import TABLE_METRICS
        columns = [c for c in TABLE_METRICS if c in metrics['overall']]
        parts += ['<h2>Per slice</h2>', _table(metrics, columns),
                  '<p>n/a: the metric is undefined on the slice (e.g. a class absent from it).</p>']
        if len(metrics) > 1:
            parts.append(_slices_figure(metrics, 'accuracy'))
        if config.fairness:
            parts += _fairness_section(summary, config.fairness)
        by_class = {}
        for key, value in metrics['overall'].items():
            metric, _, class_name = key.rpartition('/')
            # Per-class Fairness Indicators are in the fairness section; binary ones have no class at all.
            if class_name in label['classes'] and not metric.startswith('fairness_indicators_metrics/'):
                by_class.setdefault(class_name, {})[metric] = value
        if by_class:
            columns = sorted({m for values in by_class.values() for m in values})
            parts += ['<h2>Per class, one-vs-rest (overall slice)</h2>', _table(by_class, columns, 'class')]
    curves = summary.get('training_curves')
    if curves and os.path.exists(curves):
        with open(curves, 'rb') as f:
            encoded = base64.b64encode(f.read()).decode()
        parts += ['<h2>Training curves</h2>', f'<img alt="training curves" src="data:image/png;base64,{encoded}">']
    parts += _explanations_section(summary, config)
    if summary.get('embeddings_logdir'):
        from tfx_tabular.components.embedding_metadata.locate import tensorboard_command
        parts.append(f'<p>Embedding Projector (every learnt row labelled by the feature value it stands for): '
                     f'<code>{html.escape(tensorboard_command(summary["embeddings_logdir"]))}</code>, then open '
                     '<code>http://localhost:6006/#projector</code></p>')
    if summary.get('tensorboard_logdir'):
        parts.append(f'<p>TensorBoard: <code>tensorboard --logdir {html.escape(summary["tensorboard_logdir"])}'
                     '</code></p>')
    page = (f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{html.escape(summary["name"])} report'
            f'</title><style>{STYLE}</style></head><body>{"".join(parts)}</body></html>')
    with open(path + '.tmp', 'w', encoding='utf-8') as f:
        f.write(page)
    os.replace(path + '.tmp', path)
    return path
