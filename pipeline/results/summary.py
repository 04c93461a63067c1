"""What a run produced, read back from MLMD and TFMA: per-component state and time, artifacts, metrics, blessing.

The same dict is printed for people (`format_summary`) and written to `<run_dir>/summary.json` for scripts.
"""
import json
import os
from typing import Dict, List, Optional

import tensorflow as tf
import tensorflow_model_analysis as tfma
import tensorflow_transform as tft
from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2
from tfx.orchestration import metadata

from tfx_tabular.components.embedding_metadata.locate import embedding_logdir, tensorboard_command
from tfx_tabular.components.majority_gate.executor import FAILURES_PROPERTY, FLOOR_PROPERTY
from tfx_tabular.components.model_selector.component import METRIC_KEY, SELECTED
from tfx_tabular.components.evaluator.results import is_baseline, is_candidate, is_diff, slice_name
from tfx_tabular.components.trainer.data import class_names
from tfx_tabular.components.trainer.trees.training import IMPORTANCES_FILE
from tfx_tabular.pipeline.core.config import MODEL_KINDS
from tfx_tabular.pipeline.core.names import (HIERARCHICAL, SHORT_METRIC_NAMES, TFMA_TO_CONFIG, evaluated_models,
                                             metadata_path, node_id)

TABLE_METRICS = ('example_count', 'accuracy', 'auc', 'precision', 'recall', 'false_positive_rate',
                 'false_negative_rate')
STATES = {metadata_store_pb2.Execution.COMPLETE: 'ran', metadata_store_pb2.Execution.CACHED: 'cached',
          metadata_store_pb2.Execution.FAILED: 'failed', metadata_store_pb2.Execution.RUNNING: 'running'}


def open_store(path: str) -> metadata_store.MetadataStore:
    return metadata_store.MetadataStore(metadata.sqlite_metadata_connection_config(path))


def latest_run_components(store) -> List[Dict]:
    """Each execution of the newest pipeline run: node id, state, seconds, output artifacts (type, uri, props)."""
    runs = store.get_contexts_by_type('pipeline_run')
    if not runs:
        return []
    run = max(runs, key=lambda c: (c.create_time_since_epoch, c.id))
    components = []
    executions = sorted(store.get_executions_by_context(run.id), key=lambda e: e.id)
    events = store.get_events_by_execution_ids([e.id for e in executions])
    artifacts = {a.id: a for a in store.get_artifacts_by_id(list({e.artifact_id for e in events}))}
    type_names = {t.id: t.name for t in store.get_artifact_types_by_id(list({a.type_id for a in artifacts.values()}))}
    for execution in executions:
        node = next((c.name.split('.', 1)[-1] for c in store.get_contexts_by_execution(execution.id)
                     if c.type == 'node'), str(execution.id))
        outputs = {}
        for event in events:
            if event.execution_id == execution.id and event.type == metadata_store_pb2.Event.OUTPUT:
                artifact = artifacts[event.artifact_id]
                key = event.path.steps[0].key if event.path.steps else type_names[artifact.type_id]
                outputs[key] = {
                    'type': type_names[artifact.type_id], 'uri': artifact.uri, 'mlmd_id': artifact.id,
                    'properties': {k: (v.int_value if v.HasField('int_value') else v.string_value)
                                   for k, v in artifact.custom_properties.items()
                                   if v.HasField('int_value') or v.HasField('string_value')}}
        components.append({
            'component': node, 'state': STATES.get(execution.last_known_state, 'unknown'),
            'seconds': round((execution.last_update_time_since_epoch - execution.create_time_since_epoch) / 1000, 1),
            'outputs': outputs})
    return components


def metric_name(key, classes: List[str]) -> str:
    """A readable name for a TFMA MetricKey: config metric names, macro averages plain, per class by name."""
    name = TFMA_TO_CONFIG.get(key.name, key.name)
    if key.sub_key.HasField('class_id'):
        class_id = key.sub_key.class_id.value
        name += f'/{classes[class_id] if class_id < len(classes) else class_id}'
    return name


MODELS = {'candidate': is_candidate, 'baseline': is_baseline, 'diff': is_diff}


def read_metrics(evaluation_uri: str, classes: List[str], model: str = 'candidate',
                 digits: Optional[int] = 4) -> Dict[str, Dict[str, float]]:
    """{slice: {metric: value}} of one model: 'candidate', 'baseline' (the served model) or 'diff' (candidate
    minus baseline). Multi-class precision/recall/auc are macro averages, per class `<metric>/<class>`."""
    keep = MODELS[model]
    slices = {}
    for per_slice in tfma.load_metrics(evaluation_uri):
        if per_slice.HasField('cross_slice_key'):
            continue
        values = {metric_name(kv.key, classes): kv.value.double_value.value
                  for kv in per_slice.metric_keys_and_values if keep(kv.key) and kv.value.HasField('double_value')}
        if values:
            slices[slice_name(per_slice.slice_key)] = {
                k: v if digits is None else round(v, digits) for k, v in values.items()}
    return slices


def _change_failure(name: str, where: str, diff: float, threshold, candidate: Optional[float],
                    baseline_version: Optional[int]) -> str:
    """'accuracy = 0.7100 on overall is 0.0500 below the served model (version N) 0.7600; max_drop 0.02'."""
    served = f'the served model (version {baseline_version})' if baseline_version else 'the baseline model'
    bound = -threshold.absolute.value if threshold.HasField('absolute') else None
    limit = f'; max_drop {bound:g}' if bound is not None else ''
    if threshold.HasField('relative'):
        limit += f'; relative bound {threshold.relative.value:g}'
    if candidate is None:
        return f'{name} on {where} is {-diff:.4f} below {served}{limit}'
    return (f'{name} = {candidate:.4f} on {where} is {-diff:.4f} below {served} {candidate - diff:.4f}{limit}'
            if diff < 0 else f'{name} = {candidate:.4f} on {where} vs {served} {candidate - diff:.4f}: '
                             f'change {diff:+.4f}{limit}')


def read_validation_failures(evaluation_uri: str, classes: List[str],
                             baseline_version: Optional[int] = None) -> List[str]:
    """One line per failed threshold: the metric, the slice (or the two groups of a gap), value and bound.

    A change threshold (evaluation.max_drop) names the served model's version and value too."""
    failures = []
    candidate = None
    for per_slice in tfma.load_validation_result(evaluation_uri).metric_validations_per_slice:
        if per_slice.HasField('cross_slice_key'):
            key = per_slice.cross_slice_key
            where = f'{slice_name(key.comparison_slice_key)} minus {slice_name(key.baseline_slice_key)}'
        else:
            where = slice_name(per_slice.slice_key)
        for f in per_slice.failures:
            name = metric_name(f.metric_key, classes)
            value = f.metric_value.double_value.value
            if f.metric_threshold.HasField('change_threshold'):
                if candidate is None:
                    candidate = read_metrics(evaluation_uri, classes, digits=None)
                failures.append(_change_failure(name, where, value, f.metric_threshold.change_threshold,
                                                candidate.get(where, {}).get(name), baseline_version))
                continue
            bound = f.metric_threshold.value_threshold
            limits = ([f'lower bound {bound.lower_bound.value}'] if bound.HasField('lower_bound') else []) + (
                [f'upper bound {bound.upper_bound.value}'] if bound.HasField('upper_bound') else [])
            if not f.HasField('metric_value'):  # TFMA: "Metric not found."
                failures.append(f'{name} was not computed on {where} ({f.message.strip()}), so it fails '
                                f'{" and ".join(limits)}')
                continue
            failures.append(f'{name} = {value:.4f} on {where} fails {" and ".join(limits)}')
    return failures


def _outputs(by_name: Dict[str, Dict], node_id: str) -> Dict:
    return by_name.get(node_id, {}).get('outputs', {})


def read_served_model(by_name: Dict[str, Dict], served_id: str = 'ServedModel',
                      evaluator_id: str = 'Evaluator') -> Optional[Dict]:
    """The served model the Evaluator compared with: {'found', 'version', 'source', 'base_path', 'state'}.

    The evaluation artifact records what the Evaluator used (components/served_model/ reads the served version
    again when it runs); ServedModel's own output is the fallback. `state`: the Evaluator's, 'cached' meaning
    the comparison (or its absence) dates from an earlier run. None without a ServedModel node."""
    model = _outputs(by_name, served_id).get('model')
    if not model:
        return None
    props = model['properties']
    served = {'found': bool(props.get('found', 0)), 'version': props.get('version'), 'source': props.get('source'),
              'base_path': props.get('base_path'), 'state': by_name.get(evaluator_id, {}).get('state')}
    evaluation = _outputs(by_name, evaluator_id).get('evaluation', {}).get('properties', {})
    if 'baseline_version' in evaluation:
        version = evaluation['baseline_version']
        served.update(found=bool(version), version=version or None, source=evaluation.get('baseline_source') or None)
    return served


def read_evaluation(by_name: Dict[str, Dict], classes: List[str], evaluator_id: str = 'Evaluator',
                    gate_id: str = 'FairnessGate', served_id: str = 'ServedModel',
                    floor_id: str = 'MajorityGate') -> Dict:
    """One model's evaluation, read from its nodes (`Evaluator_<name>` etc. when a run trains several):
    evaluation_uri, metrics, validation_failures, blessed, served (what ServedModel found), baseline
    ({'version', 'source', 'metrics'} of the served model it was compared with, None when there was none) and
    floor (what MajorityGate counted on the eval split and the bounds it set; absent with the floor off)."""
    result = {}
    evaluator = _outputs(by_name, evaluator_id)
    served = read_served_model(by_name, served_id, evaluator_id)
    result['served'] = served
    result['baseline'] = None
    if 'evaluation' in evaluator:
        uri = evaluator['evaluation']['uri']
        result['evaluation_uri'] = uri
        result['metrics'] = read_metrics(uri, classes)
        baseline_metrics = read_metrics(uri, classes, 'baseline')
        version = served['version'] if served and served['found'] else None
        if baseline_metrics:
            result['baseline'] = {'version': version, 'source': served and served['source'],
                                  'metrics': baseline_metrics}
        result['validation_failures'] = read_validation_failures(uri, classes, version)
    gate = _outputs(by_name, gate_id).get('blessing')
    floor = _outputs(by_name, floor_id).get('blessing')
    blessing = floor or gate or evaluator.get('blessing')
    if blessing:
        result['blessed'] = bool(blessing['properties'].get('blessed', 0))
    if gate:
        result.setdefault('validation_failures', [])
        result['validation_failures'] += json.loads(gate['properties'].get('fairness_failures', '[]'))
    if floor:
        result.setdefault('validation_failures', [])
        result['validation_failures'] += json.loads(floor['properties'].get(FAILURES_PROPERTY, '[]'))
        result['floor'] = json.loads(floor['properties'].get(FLOOR_PROPERTY, 'null'))
    return result


def fairness_by_class(metrics: Dict[str, Dict[str, float]], classes: List[str]) -> Dict[str, Dict]:
    """Multi-class Fairness Indicators, one-vs-rest: {group slice: {class: {'fpr@t': v, 'fnr@t': v}}}.

    TFMA writes them per class as `fairness_indicators_metrics/false_positive_rate@0.5` with the class id as
    sub key (read_metrics names that `.../false_positive_rate@0.5/<class>`)."""
    prefix = 'fairness_indicators_metrics/'
    short = {'false_positive_rate': 'fpr', 'false_negative_rate': 'fnr'}
    table = {}
    for slice_key, values in metrics.items():
        for name, value in values.items():
            if not name.startswith(prefix) or '/' not in name[len(prefix):]:
                continue
            metric, class_name = name[len(prefix):].split('/', 1)
            rate, _, threshold = metric.partition('@')
            if rate in short and class_name in classes:
                table.setdefault(slice_key, {}).setdefault(class_name, {})[f'{short[rate]}@{threshold}'] = value
    return table


def _read_models(config, by_name: Dict[str, Dict], classes: List[str]) -> Dict:
    """The evaluation of the one model; with several (or a hierarchical one), `models` (each one's overall
    metrics, blessing and failures), the ModelSelector's choice (or the one candidate pushed), and the chosen
    model's (else the first's) evaluation in full."""
    models = evaluated_models(config)
    evaluations = {name: read_evaluation(by_name, classes, *(node_id(config, n, name) for n in (
        'Evaluator', 'FairnessGate', 'ServedModel', 'MajorityGate'))) for name, _ in models}
    if len(models) == 1:
        return evaluations[models[0][0]]
    selector = _outputs(by_name, 'ModelSelector').get('blessing', {}).get('properties', {})
    if selector:
        selected, selection, blessed = selector.get(SELECTED, ''), selector.get(METRIC_KEY), selector.get('blessed')
    else:  # one candidate for the Pusher (a hierarchical model that is never pushed is only reported)
        first = models[0][0]
        blessed = evaluations[first].get('blessed')
        selected, selection = (first if blessed else ''), 'the only candidate for the push'
    result = dict(evaluations[selected or models[0][0]])
    result.update(
        models=[{'model': name, 'kind': kind, 'blessed': evaluations[name].get('blessed'),
                 'metrics': evaluations[name].get('metrics', {}).get('overall', {}),
                 'validation_failures': evaluations[name].get('validation_failures', []),
                 # for the report: every slice's metrics, and the TFMA output (plots: confusion matrix)
                 'slices': evaluations[name].get('metrics', {}),
                 'evaluation_uri': evaluations[name].get('evaluation_uri')}
                for name, kind in models],
        selected_model=selected, selection=selection, blessed=bool(blessed))
    return result


def summarize(config, label_counts: Dict[str, int], log_path: str) -> Dict:
    store = open_store(metadata_path(config))
    components = latest_run_components(store)
    by_name = {c['component']: c for c in components}
    total = sum(label_counts.values())
    transform = by_name.get('Transform', {}).get('outputs', {}).get('transform_graph')
    names = (class_names(config.label, tft.TFTransformOutput(transform['uri'])) if transform
             else list(config.label.classes or []))
    summary = {
        'name': config.name, 'run_dir': config.run_path, 'metadata': metadata_path(config), 'log': log_path,
        'components': components,
        'all_cached': bool(components) and all(c['state'] == 'cached' for c in components),
        'label': {'column': config.label.column, 'type': config.label.type, 'classes': names,
                  'counts': label_counts,
                  'majority_class_rate': round(max(label_counts.values()) / total, 4) if total else None},
    }
    summary.update(_read_models(config, by_name, names))
    summary['max_drop'] = dict(config.evaluation.max_drop)
    if 'metrics' in summary and config.label.type != 'binary' and config.fairness:
        summary['fairness_by_class'] = fairness_by_class(summary['metrics'], names)
    pusher = by_name.get('Pusher', {}).get('outputs', {})
    if 'pushed_model' in pusher:
        props = pusher['pushed_model']['properties']
        summary['pushed'] = bool(props.get('pushed', 0))
        summary['pushed_to'] = props.get('pushed_destination') if summary['pushed'] else None
    summary['embeddings_logdir'] = embedding_logdir(components)
    importances = read_feature_importances(config, by_name)
    if importances:
        summary['feature_importances'] = importances
    cut = _outputs(by_name, 'ConfusionCut').get('confusion_cut')
    if cut:  # the hierarchical model's max cut (cut.json, confusion.json, confusion_graph.png) and its base model
        summary['confusion_cut'] = {'uri': cut['uri'],
                                    'base_model': config.hierarchical.base or config.models[0].name}
    shown = summary.get('selected_model') or config.models[0].name
    trainer = 'HierarchicalTrainer' if shown == HIERARCHICAL else node_id(config, 'Trainer', shown)
    model_run = _outputs(by_name, trainer).get('model_run')
    if model_run:
        summary['tensorboard_logdir'] = model_run['uri']
    return summary


def read_feature_importances(config, by_name: Dict[str, Dict]) -> Dict[str, List[Dict]]:
    """{model name: [{'feature', 'importance'}]} for every tree model, from its Trainer's model_run (the shares of
    the trees' loss reduction per feature, in the config's feature names; components/trainer/trees/training.py)."""
    importances = {}
    for model in config.models:
        if MODEL_KINDS[model.kind].trainer != 'trees':
            continue
        run = _outputs(by_name, node_id(config, 'Trainer', model.name)).get('model_run')
        path = run and os.path.join(run['uri'], IMPORTANCES_FILE)
        if path and tf.io.gfile.exists(path):
            with tf.io.gfile.GFile(path) as f:
                importances[model.name] = json.load(f)
    return importances


def format_importances(importances: Optional[Dict[str, List[Dict]]], top: int = 8) -> List[str]:
    lines = []
    for model, values in (importances or {}).items():
        shown = ', '.join(f'{v["feature"]} {v["importance"]:.3f}' for v in values[:top])
        more = f' (+{len(values) - top} more in summary.json)' if len(values) > top else ''
        lines += ['', f'Feature importances of {model} (share of its trees\' loss reduction): {shown}{more}']
    return lines


def write_summary(summary: Dict, path: str) -> None:
    tmp = path + '.tmp'
    with open(tmp, 'w', encoding='utf-8') as f:
        json.dump(summary, f, indent=2, sort_keys=False)
    os.replace(tmp, path)


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


def format_summary(summary: Dict) -> str:
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
