"""The run report: one self-contained HTML file (pictures embedded, no network needed) beside summary.json.

It shows what people would rather look at than read: overall metrics against their thresholds, the confusion
matrix, the calibration plot, the candidate against the served model (the baseline), metrics per slice with
counts, fairness bars per group with each gate's bound and verdict, and the training curves.

When a run evaluates several models (`models:`, or the hierarchical model beside its base), a model comparison
comes first: model x overall metric with blessing and failures, the pushed one marked, the selection rule, and bars
side by side; for a hierarchical run, the max cut and the base and hierarchical confusion matrices. The pushed
model's (else the first's) sections follow, as for one model. Tree models add their feature importances.

A renderer of the run summary (pipeline/results/summary.py), as text.py is: it decides nothing, the gates'
verdicts are read from what they recorded. The figures are in figures.py.
"""
import base64
import html
from typing import Dict, List, Optional, Tuple

import numpy as np

from tfx_tabular.pipeline.core import storage
from tfx_tabular.pipeline.core.names import SHORT_METRIC_NAMES
from tfx_tabular.pipeline.results.report import figures
from tfx_tabular.pipeline.results.report.figures import PUSHED_MARK
from tfx_tabular.pipeline.results.summary import TABLE_METRICS, groups_of

REPORT_FILE = 'report.html'


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


def _explanations_section(summary: Dict, config) -> List[str]:
    """Tree models: feature importances, and why they have no Embedding Projector output."""
    from tfx_tabular.pipeline.core.config import MODEL_KINDS
    parts = []
    for model, importances in (summary.get('feature_importances') or {}).items():
        parts += [f'<h2>Feature importances: {html.escape(model)}</h2>', figures.importances_figure(model, importances),
                  '<p>Each feature\'s share of the loss reduction of every split on it, over all the trees (YDF\'s '
                  'SUM_SCORE), by the config\'s feature names; crossed features by their own name.</p>']
    trees = [m.name for m in config.models if MODEL_KINDS[m.kind].trainer == 'trees']
    if trees:
        parts.append(f'<p>No Embedding Projector output for {html.escape(", ".join(trees))}: gradient-boosted trees '
                     'learn no vectors (no embeddings, no hidden layers) to project; the feature importances show '
                     'what they rely on.</p>')
    return parts


def find_verdict(verdicts: Optional[List[Dict]], gate, column: str) -> Optional[Dict]:
    """The recorded verdict of one fairness gate on one column (summary `fairness_gates`), None if none was."""
    for v in verdicts or []:
        if v['metric'] == gate.metric and v['column'] == column and (v.get('max_gap') is None) == (
                gate.max_gap is None):
            return v
    return None


def verdict_text(gate, verdict: Optional[Dict]) -> str:
    """What the gate decided, in words: 'fails for Male (0.6313)', 'met by every group', 'largest gap ...'."""
    if verdict is None:
        return 'no verdict recorded'
    values = verdict.get('values') or {}
    if not any(v == v for v in values.values()):
        return 'no group has a value'
    if gate.max_gap is not None:
        if verdict.get('gap') is None:
            return 'one group only has a value, no gap'
        high, low = verdict['high'], verdict['low']
        return (f'largest gap {verdict["gap"]:.4f} ({high} {values[high]:.4f} vs {low} {values[low]:.4f}), '
                f'{"within" if verdict["passed"] else "exceeds"} max_gap')
    failing = verdict.get('failing') or {}
    if failing:
        return f'fails for {", ".join(f"{g} ({v:.4f})" for g, v in sorted(failing.items()))}'
    return 'met by every group'


def _gate_line(gate, verdict: Optional[Dict], values: Dict[str, float]) -> str:
    """'Gate: accuracy min 0.7: fails for Male (0.6313)'; what the figure shows, in words."""
    return f'Gate: {gate.metric} {figures.gate_band(gate, values)[2]}: {verdict_text(gate, verdict)}'


def _baseline_table(candidate: Dict[str, Dict[str, float]], served: Dict[str, Dict[str, float]]) -> str:
    metrics = [m for m in figures.COMPARED if m in candidate.get('overall', {})]
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
                  figures.baseline_figure(summary['metrics'], baseline['metrics'], baseline.get('version'), max_drop)]
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
        groups = groups_of(column, metrics)
        if not groups:
            parts.append(f'<p>{html.escape(column)}: no group in the eval split.</p>')
            continue
        parts.append(f'<h3>{html.escape(column)}</h3>')
        if fairness.gates:
            verdicts = [find_verdict(summary.get('fairness_gates'), gate, column) for gate in fairness.gates]
            failing = {gate.metric: set((v or {}).get('failing') or ()) for gate, v in zip(fairness.gates, verdicts)
                       if gate.max_gap is None}
            parts.append(figures.fairness_gate_figure(column, groups, fairness.gates, failing))
            lines = [_gate_line(gate, v, {g: m.get(gate.metric, float('nan')) for g, m in groups.items()})
                     for gate, v in zip(fairness.gates, verdicts)]
            parts.append('<ul>' + ''.join(f'<li>{html.escape(line)}</li>' for line in lines) + '</ul>')
        figure = figures.fairness_rates_figure(column, groups, label['classes'], thresholds[0])
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


def _models_table(summary: Dict) -> str:
    """model x overall metric, blessed and failures; the pushed row marked, each metric's best value in bold."""
    models, selected = summary['models'], summary.get('selected_model')
    metrics = figures._compared_metrics(models)
    best = {}
    for m in metrics:
        values = [x['metrics'][m] for x in models if m in x['metrics'] and not np.isnan(x['metrics'][m])]
        if values:
            best[m] = min(values) if m in figures.LOWER_IS_BETTER else max(values)
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


def _verdicts_table(verdicts: List[Tuple[object, str, str, bool]], models: List[Dict]) -> str:
    """One row per gate, one column per model: the gate's verdict in words (red when it failed)."""
    gates = []
    for gate, _, _, _ in verdicts:
        if gate not in gates:
            gates.append(gate)
    cells = {(id(g), m): (v, failed) for g, m, v, failed in verdicts}
    head = '<tr><th>gate</th>' + ''.join(f'<th>{html.escape(m["model"])}</th>' for m in models) + '</tr>'
    rows = []
    for gate in gates:
        text = figures.gate_band(gate, {})[2] if gate.max_gap is None else f'max_gap {gate.max_gap:g}'
        row = [f'<td>{html.escape(f"{gate.metric} {text}")}</td>']
        for m in models:
            v, bad = cells.get((id(gate), m['model']), ('-', False))
            row.append(f'<td class="left{" bad" if bad else ""}">{html.escape(v)}</td>')
        rows.append('<tr>' + ''.join(row) + '</tr>')
    return f'<table class="verdicts">{head}{"".join(rows)}</table>'


def _model_matrices(models: List[Dict]) -> List[Tuple[str, np.ndarray]]:
    return [(model['model'], np.array(model['confusion_matrix'])) for model in models
            if model.get('confusion_matrix') is not None]


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
             figures.models_figure(models, selected, config.evaluation.thresholds, floor_bounds(summary.get('floor'))),
             _floor_paragraph(summary.get('floor'))]
    slices = sorted({s for m in models for s in (m.get('slices') or {})}, key=lambda s: (s != 'overall', s))
    if len(slices) > 1:
        values = {m['model']: {s: v.get('accuracy', np.nan) for s, v in (m.get('slices') or {}).items()}
                  for m in models}
        parts += ['<h3>Accuracy per slice, side by side</h3>',
                  figures.side_by_side_figure(slices, models, values, selected, 'Accuracy per slice and model',
                                       'accuracy')]
    classes = label['classes']
    if len(classes) > 2 and label['type'] == 'multiclass' and any(f'recall/{c}' in m['metrics'] for m in models
                                                                   for c in classes):
        values = {m['model']: {c: m['metrics'].get(f'recall/{c}', np.nan) for c in classes} for m in models}
        parts += ['<h3>Recall per class, side by side</h3>',
                  figures.side_by_side_figure(classes, models, values, selected,
                                       'Recall per class and model (share of each class found)', 'recall',
                                       vertical=True)]
    if config.fairness:
        panels = _fairness_panels(config.fairness, classes)
        parts.append('<h3>Fairness per group, side by side</h3>')
        for column in config.fairness.sensitive:
            if not any(groups_of(column, m.get('slices') or {}) for m in models):
                parts.append(f'<p>{html.escape(column)}: no group in the eval split.</p>')
                continue
            per_model = {m['model']: groups_of(column, m.get('slices') or {}) for m in models}
            verdicts, failing = [], {}
            for metric, gate in panels:
                for m in (models if gate is not None else []):
                    verdict = find_verdict(m.get('fairness_gates'), gate, column)
                    verdicts.append((gate, m['model'], verdict_text(gate, verdict),
                                     bool(verdict) and not verdict['passed']))
                    failing[(m['model'], metric)] = set((verdict or {}).get('failing') or ())
            figure = figures.fairness_models_figure(column, models, selected, panels, per_model, failing)
            parts += [f'<h4>{html.escape(column)}</h4>', figure]
            if verdicts:
                parts.append(_verdicts_table(verdicts, models))
    if not summary.get('confusion_cut'):
        matrices = _model_matrices(models)
        if len(matrices) > 1:
            parts += ['<h3>Confusion matrices, eval split</h3>', figures.confusion_models_figure(matrices, classes)]
    return parts


def _cut_section(summary: Dict) -> List[str]:
    """The hierarchical model's max cut: the confusion graph, the cut's numbers and sides, and the confusion
    matrices of the base and the hierarchical model on the eval split."""
    info = summary['confusion_cut']
    uri, base, cut = info['uri'], info.get('base_model'), info.get('cut')
    parts = ['<h2 id="max-cut">Hierarchical model: the maximum cut of the base model\'s confusions</h2>']
    if cut is None:
        return parts + [f'<p class="bad">The ConfusionCut output could not be read at <code>{html.escape(uri)}'
                        f'</code>: {html.escape(str(info.get("error") or "not read"))}</p>']
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
    if info.get('graph'):
        encoded = base64.b64encode(storage.read_bytes(info['graph'])).decode()
        parts.append(f'<img alt="confusion graph with the cut" src="data:image/png;base64,{encoded}">')
    # the base model and the hierarchical one (pipeline.HIERARCHICAL, its name and kind; not imported: tfx)
    models = [m for m in summary.get('models', []) if m['model'] == base or m.get('kind') == 'hierarchical']
    matrices = _model_matrices(models)
    if matrices:
        side_of = cut.get('side_of') if cut['classes'] == summary['label']['classes'] else None
        parts += ['<h3>Confusion matrices on the eval split: base and hierarchical</h3>',
                  figures.confusion_models_figure(matrices, summary['label']['classes'], side_of)]
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
                  figures.metrics_figure(metrics['overall'], thresholds, floor_bounds(summary.get('floor'))),
                  _floor_paragraph(summary.get('floor')) or
                  f'<p>Majority-class rate: {label["majority_class_rate"]:.4f}</p>']
        if summary.get('confusion_matrix') is not None:
            parts += ['<h2>Confusion matrix</h2>',
                      figures.confusion_figure(np.array(summary['confusion_matrix']), label['classes'])]
        positive = f' (positive class: {html.escape(label["classes"][1])})' if label['type'] == 'binary' else ''
        parts.append(f'<p>Classes, in label-id order: {html.escape(", ".join(label["classes"]))}{positive}</p>')
        curves = summary.get('calibration')
        if curves:
            parts += ['<h2>Calibration</h2>', figures.calibration_figure(curves),
                      '<p>Each point: the examples whose predicted probability fell in one tenth of [0, 1]; on '
                      'the dashed line the model\'s probabilities match how often the class occurred'
                      + ('; one-vs-rest per class.' if label['type'] != 'binary' else '.') + '</p>']
        parts += _baseline_section(summary, dict(config.evaluation.max_drop))
        columns = [c for c in TABLE_METRICS if c in metrics['overall']]
        parts += ['<h2>Per slice</h2>', _table(metrics, columns),
                  '<p>n/a: the metric is undefined on the slice (e.g. a class absent from it).</p>']
        if len(metrics) > 1:
            parts.append(figures.slices_figure(metrics, 'accuracy'))
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
    if curves and storage.exists(curves):
        encoded = base64.b64encode(storage.read_bytes(curves)).decode()
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
    storage.write_text(path, page)
    return path
