"""The run summary in words, for the terminal: a renderer of the summary (pipeline/results/summary.py), as the
HTML report is; it prints the verdicts the summary holds and decides none."""
from typing import Dict, List, Optional

from tfx_tabular.components.embedding_metadata.locate import tensorboard_command
from tfx_tabular.pipeline.core.names import SHORT_METRIC_NAMES
from tfx_tabular.pipeline.results.summary import TABLE_METRICS, RunSummary


def format_importances(importances: Optional[Dict[str, List[Dict]]], top: int = 8) -> List[str]:
    lines = []
    for model, values in (importances or {}).items():
        shown = ', '.join(f'{v["feature"]} {v["importance"]:.3f}' for v in values[:top])
        more = f' (+{len(values) - top} more in summary.json)' if len(values) > top else ''
        lines += ['', f'Feature importances of {model} (share of its trees\' loss reduction): {shown}{more}']
    return lines


def format_baseline(evaluation: Dict, max_drop: Optional[Dict[str, float]]) -> List[str]:
    """The candidate against the served model on the overall slice, or why there was no comparison.

    `evaluation`: what read_evaluation returns (the summary itself for a one-model run)."""
    served, baseline = evaluation.get('served'), evaluation.get('baseline')
    rules = ', '.join(f'{m} {v:g}' for m, v in (max_drop or {}).items())
    if baseline:
        where = f'version {baseline["version"]}' if baseline.get('version') else 'baseline'
        lines = ['', f'Compared with the served model ({where}: {baseline.get("source") or "?"}), overall slice:',
                 f'  {"metric":<12}{"candidate":>11}{"served":>11}{"change":>11}']
        candidate, base = evaluation['metrics'].get('overall', {}), baseline['metrics'].get('overall', {})
        for m in ('accuracy', 'auc', 'precision', 'recall'):
            if m in candidate and m in base:
                change = candidate[m] - base[m]
                lines.append(f'  {m:<12}{_rate(candidate[m], 4):>11}{_rate(base[m], 4):>11}'
                             + (f'{"n/a":>11}' if change != change else f'{change:>+11.4f}'))
        lines.append(f'  evaluation.max_drop: {rules}' if rules else
                     '  No change thresholds (evaluation.max_drop) configured: the comparison does not gate.')
        return lines
    if served and not served['found'] and 'metrics' in evaluation:
        why = f'so change thresholds (evaluation.max_drop: {rules}) did not apply' if rules else \
            'so there is nothing to compare with'
        if served['state'] == 'cached':
            return ['', f'This evaluation was reused from TFX\'s cache; when it ran, no model was served at '
                        f'{served["base_path"]}, {why}.']
        return ['', f'First run: no model served yet at {served["base_path"]}, {why}.']
    return []


def format_floor(floor: Optional[Dict]) -> List[str]:
    """The majority-class floor of the eval split (MajorityGate), under the eval metrics."""
    if not floor:
        return []
    lines = [f'  majority-class floor on the eval split: accuracy above {floor["accuracy"]:.4f} (always answering '
             f'{floor["answer"]!r} scores {floor["rate"]:.4f} on its {floor["examples"]} rows)']
    if floor.get('auc') is not None:
        lines.append(f'  imbalanced binary label: auc at least {floor["auc"]:.4f} (a constant scores 0.5)')
    return lines


def format_fairness_by_class(table: Optional[Dict[str, Dict]]) -> List[str]:
    """Multi-class Fairness Indicators: per group, each class's one-vs-rest FPR and FNR at one threshold."""
    if not table:
        return []
    keys = sorted({k for classes in table.values() for rates in classes.values() for k in rates})
    thresholds = sorted({k.split('@', 1)[1] for k in keys}, key=lambda t: abs(float(t) - 0.5))
    t = thresholds[0]
    classes = sorted({c for per_class in table.values() for c in per_class})
    lines = ['', f'Fairness per group and class, one-vs-rest, at threshold {t} (FPR / FNR; all thresholds in '
                 'summary.json):', '  ' + f'{"group":<30}' + ''.join(f'{c[:17]:>18}' for c in classes)]
    for group in sorted(table):
        cells = []
        for c in classes:
            rates = table[group].get(c, {})
            fpr, fnr = rates.get(f'fpr@{t}'), rates.get(f'fnr@{t}')
            cells.append(f'{_rate(fpr)} / {_rate(fnr)}'.rjust(18))
        lines.append('  ' + f'{group[:30]:<30}' + ''.join(cells))
    return lines


def _rate(value: Optional[float], digits: int = 3) -> str:
    return '-' if value is None else 'n/a' if value != value else f'{value:.{digits}f}'


def format_models(summary: Dict) -> List[str]:
    """Several models: one line each (overall metrics, blessed), and which one goes to the Pusher."""
    models = summary.get('models')
    if not models:
        return []
    names = [m for m in TABLE_METRICS if any(m in model['metrics'] for model in models)]
    lines = ['', f'Models compared on the eval split (overall slice; selection: {summary.get("selection")}, '
                 'best blessed):',
             '  ' + f'{"model":<16}{"kind":<22}' + ''.join(f'{SHORT_METRIC_NAMES.get(n, n):>11}' for n in names)
             + f'{"blessed":>9}']
    for model in models:
        mark = '  <- pushed' if model['model'] == summary.get('selected_model') else ''
        lines.append('  ' + f'{model["model"][:15]:<16}{model["kind"]:<22}' + ''.join(
            f'{model["metrics"][n]:>11.4g}' if n in model['metrics'] else f'{"-":>11}' for n in names)
            + f'{"yes" if model["blessed"] else "NO":>9}{mark}')
    for model in models:
        lines += [f'  {model["model"]} not blessed: {f}' for f in model['validation_failures']]
    if not summary.get('selected_model'):
        lines.append('  No model is blessed, so none is pushed.')
    return lines


def format_summary(summary: RunSummary) -> str:
    lines = ['', f'Run {summary["name"]}: {summary["run_dir"]}']
    lines.append(f'  {"component":<20} {"state":<7} {"seconds":>8}')
    for c in summary['components']:
        lines.append(f'  {c["component"]:<20} {c["state"]:<7} {c["seconds"]:>8.1f}')
    if summary['all_cached']:
        lines.append('  Nothing changed since the last run: every component was reused from TFX\'s cache.')
    lines += format_models(summary)
    metrics = summary.get('metrics')
    if metrics:
        names = [m for m in TABLE_METRICS if m in metrics.get('overall', {})]
        if summary.get('models'):
            lines += ['', f'The {summary.get("selected_model") or summary["models"][0]["model"]} model in detail:']
        lines += ['', 'Eval metrics on the eval split (multi-class: macro averages; per class in summary.json):',
                  '  ' + f'{"slice":<30}' + ''.join(f'{SHORT_METRIC_NAMES.get(n, n):>11}' for n in names)]
        for slice_ in sorted(metrics, key=lambda s: (s != 'overall', s)):
            values = metrics[slice_]
            lines.append('  ' + f'{slice_[:30]:<30}' + ''.join(
                f'{values[n]:>11.4g}' if n in values else f'{"-":>11}' for n in names))
        lines += format_floor(summary.get('floor')) or [
            f'  majority-class rate (always predicting the most frequent class): '
            f'{summary["label"]["majority_class_rate"]:.4f}']
        lines += format_fairness_by_class(summary.get('fairness_by_class'))
        lines += format_baseline(summary, summary.get('max_drop'))
    lines += format_importances(summary.get('feature_importances'))
    if 'blessed' in summary:
        if summary['blessed']:
            against = ', and evaluation.max_drop against the served model' if (
                summary.get('baseline') and summary.get('max_drop')) else ''
            floor = ', the majority-class floor beaten' if summary.get('floor') else ''
            lines.append(f'Blessed: yes (every threshold in evaluation.thresholds met{floor}{against}).')
        else:
            lines.append('Blessed: NO, so the model was not pushed:')
            lines += [f'  - {f}' for f in summary.get('validation_failures') or ['see the Evaluator output']]
    if summary.get('pushed'):
        lines.append(f'Pushed to: {summary["pushed_to"]}')
    lines.append('')
    lines.append('Artifacts:')
    for c in summary['components']:
        for key, art in c['outputs'].items():
            lines.append(f'  {c["component"] + "." + key:<40} {art["uri"]}')
    if summary.get('tensorboard_logdir'):
        lines.append(f'Training curves: tensorboard --logdir {summary["tensorboard_logdir"]}')
    if summary.get('embeddings_logdir'):
        lines.append(f'Embedding projector: {tensorboard_command(summary["embeddings_logdir"])} '
                     '(then open http://localhost:6006/#projector)')
    if summary.get('report'):
        lines.append(f'Report (open in a browser): {summary["report"]}')
    return '\n'.join(lines)
