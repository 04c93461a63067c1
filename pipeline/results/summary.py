"""What a run produced, read back once from MLMD and the artifacts: per-component state and time, metrics, the
gates' verdicts, blessing, push. The one reader of a run's results.

The summary is a plain dict (the shapes below, as TypedDicts) so that it is summary.json as is; two renderers draw
it: text.py (the CLI's printout) and report/ (the HTML page). They decide nothing: each verdict is the one its gate
recorded (Evaluator: TFMA's validation result; FairnessGate, MajorityGate, ModelSelector: their blessing's
properties).
"""
import json
import os
from typing import Dict, List, Optional, Tuple, TypedDict

import numpy as np

import tensorflow as tf
import tensorflow_transform as tft
from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2
from tfx.orchestration import metadata

from tfx_tabular.components.embedding_metadata.locate import embedding_logdir
from tfx_tabular.components.evaluator import results as tfma_results
from tfx_tabular.components.fairness_gate.executor import BLESSED_KEY, FAILURES_KEY, VERDICTS_KEY
from tfx_tabular.components.majority_gate.executor import FAILURES_PROPERTY, FLOOR_PROPERTY
from tfx_tabular.components.model_selector.executor import METRIC_KEY, SELECTED
from tfx_tabular.components.trainer.data import class_names
from tfx_tabular.components.trainer.trees.training import IMPORTANCES_FILE
from tfx_tabular.pipeline.core.config import MODEL_KINDS
from tfx_tabular.pipeline.core import storage
from tfx_tabular.pipeline.core.names import HIERARCHICAL, evaluated_models, metadata_path, node_id

TABLE_METRICS = ('example_count', 'accuracy', 'auc', 'precision', 'recall', 'false_positive_rate',
                 'false_negative_rate')
Metrics = Dict[str, Dict[str, float]]  # {slice name ('overall', 'column=value'): {metric: value}}


class GateVerdict(TypedDict, total=False):
    """One fairness gate on one sensitive column, as decided: a bound (min/max, by the Evaluator: `failing` is
    {group: value} of its failed thresholds) or a gap (max_gap, by FairnessGate: `gap` between `high` and `low`)."""
    metric: str
    column: str
    min: Optional[float]
    max: Optional[float]
    max_gap: Optional[float]
    values: Dict[str, float]
    failing: Dict[str, float]
    high: Optional[str]
    low: Optional[str]
    gap: Optional[float]
    passed: bool


class Evaluation(TypedDict, total=False):
    """One model's evaluation (read_evaluation); a one-model summary holds these keys itself."""
    evaluation_uri: str
    metrics: Metrics
    baseline: Optional[Dict]  # {'version', 'source', 'metrics'} of the served model compared with
    served: Optional[Dict]  # what ServedModel found: {'found', 'version', 'source', 'base_path', 'state'}
    validation_failures: List[str]
    blessed: bool
    floor: Optional[Dict]  # MajorityGate's counts and bounds
    fairness_gates: List[GateVerdict]
    confusion_matrix: Optional[List[List[float]]]  # rows: true class, columns: predicted; overall slice
    calibration: Dict[str, List[Tuple[float, float, float]]]  # {class: [(mean predicted, observed, examples)]}


class ModelRow(TypedDict, total=False):
    """A model of a several-model run (`models`): overall metrics, blessing, failures, and for the report its
    slices, gate verdicts and confusion matrix."""
    model: str
    kind: str
    blessed: Optional[bool]
    metrics: Dict[str, float]
    validation_failures: List[str]
    slices: Metrics
    evaluation_uri: Optional[str]
    fairness_gates: List[GateVerdict]
    confusion_matrix: Optional[List[List[float]]]


class RunSummary(Evaluation, total=False):
    """summary.json: the run, its components, the label, the shown model's Evaluation, and the rest below."""
    name: str
    run_dir: str
    metadata: str
    log: str
    components: List[Dict]  # {'component', 'state', 'seconds', 'outputs': {key: {'type', 'uri', 'properties', ..}}}
    all_cached: bool
    label: Dict  # {'column', 'type', 'classes', 'counts', 'majority_class_rate'}
    models: List[ModelRow]
    selected_model: str
    selection: Optional[str]
    max_drop: Dict[str, float]
    fairness_by_class: Dict[str, Dict]
    pushed: bool
    pushed_to: Optional[str]
    embeddings_logdir: Optional[str]
    feature_importances: Dict[str, List[Dict]]
    confusion_cut: Dict  # read_confusion_cut
    tensorboard_logdir: str
    training_curves: str  # added by the runner
    report: str  # added by the runner


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


def read_metrics(evaluation_uri: str, classes: List[str], model: str = 'candidate',
                 digits: Optional[int] = 4) -> Metrics:
    """{slice: {metric: value}} of one model: 'candidate', 'baseline' (the served model) or 'diff' (candidate
    minus baseline). Multi-class precision/recall/auc are macro averages, per class `<metric>/<class>`."""
    return tfma_results.read_metrics(evaluation_uri, classes, model, digits=digits)


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


def failure_lines(failed, evaluation_uri: str, classes: List[str], baseline_version: Optional[int] = None) -> List[str]:
    """One line per failed threshold (`failed`: tfma_results.validation_failures): the metric, the slice (or the
    two groups of a gap), value and bound. A change threshold (evaluation.max_drop) names the served model's
    version and value too."""
    failures = []
    candidate = None
    for where, f in failed:
        name = tfma_results.metric_name(f.metric_key, classes)
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


def read_validation_failures(evaluation_uri: str, classes: List[str],
                             baseline_version: Optional[int] = None) -> List[str]:
    return failure_lines(tfma_results.validation_failures(evaluation_uri), evaluation_uri, classes, baseline_version)


def groups_of(column: str, by_slice: Dict[str, object]) -> Dict[str, object]:
    """{group: x} of the one-column slices `column=group` of a {slice name: x} dict."""
    prefix = f'{column}='
    return {name[len(prefix):]: x for name, x in by_slice.items() if name.startswith(prefix) and ', ' not in name}


def bound_verdicts(fairness, metrics: Metrics, failed, classes: List[str]) -> List[GateVerdict]:
    """The fairness gates' per-group bounds (min/max) as the Evaluator decided them: the TFMA thresholds it failed
    on each group's slice (TFMA fails an undefined value too)."""
    verdicts = []
    for gate in fairness.gates if fairness else []:
        if gate.min is None and gate.max is None:
            continue
        failed_here = {where: f.metric_value.double_value.value if f.HasField('metric_value') else float('nan')
                       for where, f in failed if f.metric_threshold.HasField('value_threshold')
                       and tfma_results.metric_name(f.metric_key, classes) == gate.metric}
        for column in fairness.sensitive:
            values = {g: m[gate.metric] for g, m in groups_of(column, metrics).items() if gate.metric in m}
            failing = groups_of(column, failed_here)
            verdicts.append({'metric': gate.metric, 'column': column, 'min': gate.min, 'max': gate.max,
                             'max_gap': None, 'values': values, 'failing': failing, 'passed': not failing})
    return verdicts


def confusion_matrix(evaluation_uri: str, n_classes: int, plots=None) -> Optional[np.ndarray]:
    """Rows: true class, columns: predicted class, on the overall slice (binary at threshold 0.5). `plots`:
    tfma_results.overall_plots(evaluation_uri) when already read."""
    for _, value in tfma_results.overall_plots(evaluation_uri) if plots is None else plots:
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


def calibration_curves(evaluation_uri: str, classes: List[str], bins: int = 10, plots=None) -> Dict[str, List[Tuple]]:
    """{class: [(mean predicted probability, observed rate, examples), ...]} on the overall slice.

    TFMA's CalibrationPlot keeps 1000 prediction buckets (binary: one plot for the positive class; multi-class:
    one per class, one-vs-rest); they are merged into `bins` equal-width bins here, empty ones dropped.
    """
    curves = {}
    for key, value in tfma_results.overall_plots(evaluation_uri) if plots is None else plots:
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
        curves[name] = [(float(p / n), float(y / n), float(n)) for n, y, p in totals if n > 0]
    return curves


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
                    floor_id: str = 'MajorityGate', fairness=None) -> Evaluation:
    """One model's evaluation, read from its nodes (`Evaluator_<name>` etc. when a run trains several): see
    Evaluation. `floor` is absent with the floor off, `fairness_gates` without `fairness` (config.fairness)."""
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
        failed = tfma_results.validation_failures(uri)
        result['validation_failures'] = failure_lines(failed, uri, classes, version)
        if fairness:
            result['fairness_gates'] = bound_verdicts(fairness, result['metrics'], failed, classes)
        plots = tfma_results.overall_plots(uri)
        matrix = confusion_matrix(uri, len(classes), plots)
        result['confusion_matrix'] = None if matrix is None else matrix.tolist()
        result['calibration'] = calibration_curves(uri, classes, plots=plots)
    gate = _outputs(by_name, gate_id).get('blessing')
    floor = _outputs(by_name, floor_id).get('blessing')
    blessing = floor or gate or evaluator.get('blessing')
    if blessing:
        result['blessed'] = bool(blessing['properties'].get(BLESSED_KEY, 0))
    if gate:
        result.setdefault('validation_failures', [])
        result['validation_failures'] += json.loads(gate['properties'].get(FAILURES_KEY, '[]'))
        result.setdefault('fairness_gates', [])
        result['fairness_gates'] += json.loads(gate['properties'].get(VERDICTS_KEY, '[]'))
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


def _read_models(config, by_name: Dict[str, Dict], classes: List[str]) -> RunSummary:
    """The evaluation of the one model; with several (or a hierarchical one), `models` (each one's overall
    metrics, blessing and failures), the ModelSelector's choice (or the one candidate pushed), and the chosen
    model's (else the first's) evaluation in full."""
    models = evaluated_models(config)
    evaluations = {name: read_evaluation(by_name, classes, *(node_id(config, n, name) for n in (
        'Evaluator', 'FairnessGate', 'ServedModel', 'MajorityGate')), fairness=config.fairness) for name, _ in models}
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
                 # for the report: every slice's metrics, the gates' verdicts, the confusion matrix
                 'slices': evaluations[name].get('metrics', {}),
                 'evaluation_uri': evaluations[name].get('evaluation_uri'),
                 'fairness_gates': evaluations[name].get('fairness_gates', []),
                 'confusion_matrix': evaluations[name].get('confusion_matrix')}
                for name, kind in models],
        selected_model=selected, selection=selection, blessed=bool(blessed))
    return result


def summarize(config, label_counts: Dict[str, int], log_path: str) -> RunSummary:
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
    if cut:  # the hierarchical model's max cut and its base model
        summary['confusion_cut'] = read_confusion_cut(cut['uri'], config.hierarchical.base or config.models[0].name)
    shown = summary.get('selected_model') or config.models[0].name
    trainer = 'HierarchicalTrainer' if shown == HIERARCHICAL else node_id(config, 'Trainer', shown)
    model_run = _outputs(by_name, trainer).get('model_run')
    if model_run:
        summary['tensorboard_logdir'] = model_run['uri']
    return summary


def read_confusion_cut(uri: str, base_model: str) -> Dict:
    """ConfusionCut's output: {'uri', 'base_model', 'cut' (cut.json), 'graph' (its picture's path, None if
    absent)}; 'error' instead of 'cut' when cut.json cannot be read."""
    from tfx_tabular.components.confusion_cut.graph import read_cut
    from tfx_tabular.components.confusion_cut.spec import GRAPH_FILE
    info = {'uri': uri, 'base_model': base_model}
    try:
        info['cut'] = read_cut(uri)
    except (tf.errors.NotFoundError, OSError, ValueError) as e:
        info['error'] = str(e).splitlines()[0] if str(e) else type(e).__name__
    graph = os.path.join(uri, GRAPH_FILE)
    info['graph'] = graph if 'cut' in info and tf.io.gfile.exists(graph) else None
    return info


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


def write_summary(summary: RunSummary, path: str) -> None:
    storage.write_text(path, json.dumps(summary, indent=2, sort_keys=False))
