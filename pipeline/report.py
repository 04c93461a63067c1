"""The run report: one self-contained HTML file (pictures embedded, no network needed) beside summary.json.

It shows what people would rather look at than read: overall metrics against their thresholds, the confusion
matrix, metrics per slice with counts, and the training curves.
"""
import base64
import html
import io
import os
from typing import Dict, List, Optional

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


def confusion_matrix(evaluation_uri: str, n_classes: int) -> Optional[np.ndarray]:
    """Rows: true class, columns: predicted class, on the overall slice (binary at threshold 0.5)."""
    import tensorflow_model_analysis as tfma
    for plots in tfma.load_plots(evaluation_uri):
        if plots.slice_key.single_slice_keys:
            continue
        for kv in plots.plot_keys_and_values:
            multi = kv.value.multi_class_confusion_matrix_at_thresholds
            if multi.matrices:
                matrix = np.zeros((n_classes, n_classes))
                for e in multi.matrices[0].entries:
                    if e.actual_class_id < n_classes and e.predicted_class_id < n_classes:
                        matrix[e.actual_class_id, e.predicted_class_id] = e.num_weighted_examples
                return matrix
            binary = kv.value.confusion_matrix_at_thresholds
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


def write_report(summary: Dict, thresholds: Dict[str, float], path: str) -> str:
    """Writes the report to `path` (via a temp file) and returns the path."""
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
        from pipeline.summary import TABLE_METRICS
        columns = [c for c in TABLE_METRICS if c in metrics['overall']]
        parts += ['<h2>Per slice</h2>', _table(metrics, columns),
                  '<p>n/a: the metric is undefined on the slice (e.g. a class absent from it).</p>']
        if len(metrics) > 1:
            parts.append(_slices_figure(metrics, 'accuracy'))
        by_class = {}
        for key, value in metrics['overall'].items():
            if '/' in key:
                metric, class_name = key.split('/', 1)
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
