"""The one reader of TFMA's output: metrics per slice of one model, the overall plots, the validation failures.

With a baseline model TFMA writes every metric three times in one slice: the candidate's, the baseline's and
their difference (`is_diff`). Readers that want "the model's" value must pick the candidate's, which TFMA names
`candidate`, or '' when only one model was evaluated (it drops the name of a lone ModelSpec). The gates, the
ModelSelector and the results layer all read through here, so they name slices and metrics alike.
"""
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from tfx_tabular.pipeline.core.names import TFMA_TO_CONFIG

CANDIDATE = 'candidate'  # tfma.CANDIDATE_KEY / BASELINE_KEY, spelled out so this module imports nothing heavy
BASELINE = 'baseline'
OVERALL = 'overall'

SliceItems = Tuple[Tuple[str, str], ...]


def slice_items(slice_key) -> List[Tuple[str, str]]:
    """[(column, value), ...] of a TFMA SliceKey proto; [] for the overall slice."""
    items = []
    for k in slice_key.single_slice_keys:
        kind = k.WhichOneof('kind')
        value = getattr(k, kind) if kind else ''
        items.append((k.column, value.decode() if isinstance(value, bytes) else str(value)))
    return items


def items_name(items: Sequence[Tuple[str, str]]) -> str:
    return ', '.join(f'{column}={value}' for column, value in items) or OVERALL


def slice_name(slice_key) -> str:
    """'overall', or 'column=value, ...'."""
    return items_name(slice_items(slice_key))


def is_candidate(key) -> bool:
    """A MetricKey/PlotKey proto of the candidate model's own value (not the baseline's, not a difference)."""
    return key.model_name in ('', CANDIDATE) and not getattr(key, 'is_diff', False)


def is_baseline(key) -> bool:
    return key.model_name == BASELINE and not getattr(key, 'is_diff', False)


def is_diff(key) -> bool:
    """Candidate minus baseline, as TFMA computes it for every metric when there is a baseline."""
    return bool(getattr(key, 'is_diff', False))


MODELS: Dict[str, Callable] = {CANDIDATE: is_candidate, BASELINE: is_baseline, 'diff': is_diff}


def metric_name(key, classes: Sequence[str] = ()) -> str:
    """The config's name of a TFMA MetricKey; a per-class one as `<metric>/<class name>` (the id without names)."""
    name = TFMA_TO_CONFIG.get(key.name, key.name)
    if key.sub_key.HasField('class_id'):
        class_id = key.sub_key.class_id.value
        name += f'/{classes[class_id] if class_id < len(classes) else class_id}'
    return name


def read_slices(evaluation_uri: str, classes: Sequence[str] = (), model: str = CANDIDATE,
                per_class: bool = True) -> Dict[SliceItems, Dict[str, float]]:
    """{slice items: {metric: value}} of one model ('candidate', 'baseline' or 'diff': candidate minus baseline),
    named by metric_name; cross slices left out. Without `per_class`, only metrics with no sub key (for
    multi-class: the macro averages)."""
    import tensorflow_model_analysis as tfma
    keep = MODELS[model]
    slices = {}
    for per_slice in tfma.load_metrics(evaluation_uri):
        if per_slice.HasField('cross_slice_key'):
            continue
        values = {metric_name(kv.key, classes): kv.value.double_value.value
                  for kv in per_slice.metric_keys_and_values
                  if keep(kv.key) and kv.value.HasField('double_value')
                  and (per_class or not kv.key.HasField('sub_key'))}
        if values:
            slices[tuple(slice_items(per_slice.slice_key))] = values
    return slices


def read_metrics(evaluation_uri: str, classes: Sequence[str] = (), model: str = CANDIDATE, per_class: bool = True,
                 digits: Optional[int] = None) -> Dict[str, Dict[str, float]]:
    """{slice name ('overall', 'column=value'): {metric: value}}, as read_slices, rounded to `digits`."""
    return {items_name(items): {k: v if digits is None else round(v, digits) for k, v in values.items()}
            for items, values in read_slices(evaluation_uri, classes, model, per_class).items()}


def overall_metrics(evaluation_uri: str) -> Dict[str, float]:
    """The candidate's overall-slice metrics with no sub key (macro averages for multi-class), the config's names."""
    return read_slices(evaluation_uri, per_class=False).get((), {})


def group_values(evaluation_uri: str, metric: str, column: str) -> Dict[str, float]:
    """{group: value} of one metric (the config's or TFMA's name) of the candidate over the slices of one column."""
    name = TFMA_TO_CONFIG.get(metric, metric)
    return {items[0][1]: values[name] for items, values in read_slices(evaluation_uri, per_class=False).items()
            if len(items) == 1 and items[0][0] == column and name in values}


def overall_plots(evaluation_uri: str):
    """The candidate model's plots on the overall slice: [(PlotKey, PlotData)] (a baseline has its own)."""
    import tensorflow_model_analysis as tfma
    for plots in tfma.load_plots(evaluation_uri):
        if plots.HasField('cross_slice_key') or plots.slice_key.single_slice_keys:
            continue
        return [(kv.key, kv.value) for kv in plots.plot_keys_and_values if is_candidate(kv.key)]
    return []


def validation_failures(evaluation_uri: str):
    """[(where, failure proto)] of the Evaluator's failed thresholds; `where` a slice name, or 'a minus b' for a
    cross slice."""
    import tensorflow_model_analysis as tfma
    found = []
    for per_slice in tfma.load_validation_result(evaluation_uri).metric_validations_per_slice:
        if per_slice.HasField('cross_slice_key'):
            key = per_slice.cross_slice_key
            where = f'{slice_name(key.comparison_slice_key)} minus {slice_name(key.baseline_slice_key)}'
        else:
            where = slice_name(per_slice.slice_key)
        found += [(where, f) for f in per_slice.failures]
    return found
