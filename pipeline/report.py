"""The run report: one self-contained HTML file (pictures embedded, no network needed) beside summary.json.

It shows what people would rather look at than read: overall metrics against their thresholds, the confusion
matrix, the calibration plot, the candidate against the served model (the baseline), metrics per slice with
counts, fairness bars per group with each gate's bound, and the training curves.
"""
import base64
import html
import io
import os
from typing import Dict, List, Optional, Tuple

import numpy as np

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
    from components.tfma_results import is_candidate
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


def _metrics_figure(overall: Dict[str, float], thresholds: Dict[str, float]) -> str:
    plt = _pyplot()
    names = [m for m in ('accuracy', 'auc', 'precision', 'recall') if m in overall]
    fig, ax = plt.subplots(figsize=(6, 0.6 * len(names) + 1))
    values = [overall[m] for m in names]
    colors = ['#c0392b' if m in thresholds and overall[m] < thresholds[m] else '#2e86c1' for m in names]
    ax.barh(names, values, color=colors)
    for i, m in enumerate(names):
        if np.isnan(values[i]):  # undefined (e.g. no positive prediction): say so instead of an empty row
            ax.text(0, i, ' n/a (undefined)', va='center', ha='left')
            continue
        ax.text(min(values[i], 0.98), i, f' {values[i]:.3f}', va='center', ha='right' if values[i] > 0.9 else 'left')
        if m in thresholds:
            ax.plot([thresholds[m]] * 2, [i - 0.4, i + 0.4], color='black', linewidth=2)
    ax.set_xlim(0, 1)
    ax.invert_yaxis()
    ax.set_title('Overall metrics (black line: blessing threshold)')
    return _png(fig)


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


STYLE = """body{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}
td:first-child,th:first-child{text-align:left}.bad{color:#c0392b}.good{color:#1e8449}img{max-width:100%}"""


def write_report(summary: Dict, config, path: str) -> str:
    """Writes the report of `summary` (pipeline/summary.py) to `path` (via a temp file) and returns the path.

    `config` gives what the summary does not hold: the thresholds, max_drop and fairness gates to draw."""
    thresholds = config.evaluation.thresholds
    parts = [f'<h1>Run report: {html.escape(summary["name"])}</h1>',
             f'<p>Run directory: <code>{html.escape(summary["run_dir"])}</code></p>']
    if 'blessed' in summary:
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
        parts += ['<h2>Overall</h2>', _metrics_figure(metrics['overall'], thresholds),
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
        from pipeline.summary import TABLE_METRICS
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
    if summary.get('embeddings_logdir'):
        from components.embedding_metadata.locate import tensorboard_command
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
