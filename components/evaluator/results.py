"""Reading TFMA's output: slice keys as (column, value) pairs, and which model a metric or plot key belongs to.

With a baseline model TFMA writes every metric three times in one slice: the candidate's, the baseline's and
their difference (`is_diff`). Readers that want "the model's" value must pick the candidate's, which TFMA names
`candidate`, or '' when only one model was evaluated (it drops the name of a lone ModelSpec). One place decodes
slice keys, so the FairnessGate, the summary and the report name groups alike.
"""
from typing import List, Tuple

CANDIDATE = 'candidate'  # tfma.CANDIDATE_KEY / BASELINE_KEY, spelled out so this module imports nothing heavy
BASELINE = 'baseline'


def slice_items(slice_key) -> List[Tuple[str, str]]:
    """[(column, value), ...] of a TFMA SliceKey proto; [] for the overall slice."""
    items = []
    for k in slice_key.single_slice_keys:
        kind = k.WhichOneof('kind')
        value = getattr(k, kind) if kind else ''
        items.append((k.column, value.decode() if isinstance(value, bytes) else str(value)))
    return items


def slice_name(slice_key) -> str:
    """'overall', or 'column=value, ...'."""
    return ', '.join(f'{column}={value}' for column, value in slice_items(slice_key)) or 'overall'


def is_candidate(key) -> bool:
    """A MetricKey/PlotKey proto of the candidate model's own value (not the baseline's, not a difference)."""
    return key.model_name in ('', CANDIDATE) and not getattr(key, 'is_diff', False)


def is_baseline(key) -> bool:
    return key.model_name == BASELINE and not getattr(key, 'is_diff', False)


def is_diff(key) -> bool:
    """Candidate minus baseline, as TFMA computes it for every metric when there is a baseline."""
    return bool(getattr(key, 'is_diff', False))
