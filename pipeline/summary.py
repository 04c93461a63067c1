"""What a run produced, read back from MLMD and TFMA: per-component state and time, artifacts, metrics, blessing.

The same dict is printed for people (`format_summary`) and written to `<run_dir>/summary.json` for scripts.
"""
import json
import os
from typing import Dict, List

import tensorflow_model_analysis as tfma
import tensorflow_transform as tft
from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2
from tfx.orchestration import metadata

from components.embedding_metadata.locate import embedding_logdir, tensorboard_command
from components.evaluator import TFMA_TO_CONFIG
from components.trainer import class_names
from pipeline.pipeline import metadata_path

TABLE_METRICS = ('example_count', 'accuracy', 'auc', 'precision', 'recall', 'false_positive_rate',
                 'false_negative_rate')
SHORT_NAMES = {'false_positive_rate': 'fpr', 'false_negative_rate': 'fnr', 'example_count': 'examples'}
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


def _slice_name(slice_key) -> str:
    """'overall', or 'column=value, ...' from a TFMA SliceKey proto."""
    parts = []
    for k in slice_key.single_slice_keys:
        kind = k.WhichOneof('kind')
        value = getattr(k, kind) if kind else ''
        parts.append(f'{k.column}={value.decode() if isinstance(value, bytes) else value}')
    return ', '.join(parts) or 'overall'


def metric_name(key, classes: List[str]) -> str:
    """A readable name for a TFMA MetricKey: config metric names, macro averages plain, per class by name."""
    name = TFMA_TO_CONFIG.get(key.name, key.name)
    if key.sub_key.HasField('class_id'):
        class_id = key.sub_key.class_id.value
        name += f'/{classes[class_id] if class_id < len(classes) else class_id}'
    return name


def read_metrics(evaluation_uri: str, classes: List[str]) -> Dict[str, Dict[str, float]]:
    """{slice: {metric: value}}; multi-class precision/recall/auc are macro averages, per class `<metric>/<class>`."""
    slices = {}
    for per_slice in tfma.load_metrics(evaluation_uri):
        if per_slice.HasField('cross_slice_key'):
            continue
        slices[_slice_name(per_slice.slice_key)] = {
            metric_name(kv.key, classes): round(kv.value.double_value.value, 4)
            for kv in per_slice.metric_keys_and_values if kv.value.HasField('double_value')}
    return slices


def read_validation_failures(evaluation_uri: str, classes: List[str]) -> List[str]:
    """One line per failed threshold: the metric, the slice (or the two groups of a gap), value and bound."""
    failures = []
    for per_slice in tfma.load_validation_result(evaluation_uri).metric_validations_per_slice:
        if per_slice.HasField('cross_slice_key'):
            key = per_slice.cross_slice_key
            where = f'{_slice_name(key.comparison_slice_key)} minus {_slice_name(key.baseline_slice_key)}'
        else:
            where = _slice_name(per_slice.slice_key)
        for f in per_slice.failures:
            bound = f.metric_threshold.value_threshold
            limits = ([f'lower bound {bound.lower_bound.value}'] if bound.HasField('lower_bound') else []) + (
                [f'upper bound {bound.upper_bound.value}'] if bound.HasField('upper_bound') else [])
            value = f.metric_value.double_value.value
            failures.append(f'{metric_name(f.metric_key, classes)} = {value:.4f} on {where} fails '
                            f'{" and ".join(limits)}')
    return failures


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
    evaluator = by_name.get('Evaluator', {}).get('outputs', {})
    if 'evaluation' in evaluator:
        uri = evaluator['evaluation']['uri']
        summary['evaluation_uri'] = uri
        summary['metrics'] = read_metrics(uri, names)
        summary['validation_failures'] = read_validation_failures(uri, names)
    gate = by_name.get('FairnessGate', {}).get('outputs', {}).get('blessing')
    blessing = gate or evaluator.get('blessing')
    if blessing:
        summary['blessed'] = bool(blessing['properties'].get('blessed', 0))
    if gate:
        summary['validation_failures'] += json.loads(gate['properties'].get('fairness_failures', '[]'))
    pusher = by_name.get('Pusher', {}).get('outputs', {})
    if 'pushed_model' in pusher:
        props = pusher['pushed_model']['properties']
        summary['pushed'] = bool(props.get('pushed', 0))
        summary['pushed_to'] = props.get('pushed_destination') if summary['pushed'] else None
    summary['embeddings_logdir'] = embedding_logdir(components)
    model_run = by_name.get('Trainer', {}).get('outputs', {}).get('model_run')
    if model_run:
        summary['tensorboard_logdir'] = model_run['uri']
    return summary


def write_summary(summary: Dict, path: str) -> None:
    tmp = path + '.tmp'
    with open(tmp, 'w', encoding='utf-8') as f:
        json.dump(summary, f, indent=2, sort_keys=False)
    os.replace(tmp, path)


def format_summary(summary: Dict) -> str:
    lines = ['', f'Run {summary["name"]}: {summary["run_dir"]}']
    lines.append(f'  {"component":<20} {"state":<7} {"seconds":>8}')
    for c in summary['components']:
        lines.append(f'  {c["component"]:<20} {c["state"]:<7} {c["seconds"]:>8.1f}')
    if summary['all_cached']:
        lines.append('  Nothing changed since the last run: every component was reused from TFX\'s cache.')
    metrics = summary.get('metrics')
    if metrics:
        names = [m for m in TABLE_METRICS if m in metrics.get('overall', {})]
        lines += ['', 'Eval metrics on the eval split (multi-class: macro averages; per class in summary.json):',
                  '  ' + f'{"slice":<30}' + ''.join(f'{SHORT_NAMES.get(n, n):>11}' for n in names)]
        for slice_name in sorted(metrics, key=lambda s: (s != 'overall', s)):
            values = metrics[slice_name]
            lines.append('  ' + f'{slice_name[:30]:<30}' + ''.join(
                f'{values[n]:>11.4g}' if n in values else f'{"-":>11}' for n in names))
        lines.append(f'  majority-class rate (always predicting the most frequent class): '
                     f'{summary["label"]["majority_class_rate"]:.4f}')
    if 'blessed' in summary:
        if summary['blessed']:
            lines.append('Blessed: yes (every threshold in evaluation.thresholds met).')
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
