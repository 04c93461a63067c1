"""The tensors shown in the projector and a label for every row, in the row order of the model's matrices.

- `feature_values`: the first hidden kernel, one row per input dimension of the model's input layer.
- `embedding_<feature>`: each embedding column's table, one row per id.
- `units_<layer>`: the kernel of each later hidden layer, one row per unit of the layer before it.
- `examples`: the last hidden layer's activations for eval examples.
"""
from typing import Dict, List, Sequence

import numpy as np

from tfx_tabular.components.embedding_metadata.data import Split
from tfx_tabular.components.embedding_metadata.network import Network, Segment
from tfx_tabular.components.embedding_metadata.projector import ProjectorTensor
from tfx_tabular.components.embedding_metadata.values import MISSING, Row, ValueCatalog
from tfx_tabular.transforms.feature_columns import NumericBlock
from tfx_tabular.transforms.preprocessing import transformed_name

FEATURE_HEADER = ['label', 'feature', 'kind', 'value', 'frequency']
UNIT_HEADER = ['label', 'layer', 'unit', 'active_rate', 'top_inputs']
EXAMPLE_HEADER = ['label', 'true_label', 'predicted_label', 'score', 'correct']
TOP_IN_LABEL = 3
TOP_IN_COLUMN = 8
RATE_SAMPLE = 10_000  # training examples that measure how often each unit is active


def _is_embedding(column) -> bool:
    return hasattr(column, 'categorical_column') and hasattr(column, 'dimension')


def input_rows(segments: List[Segment], catalog: ValueCatalog) -> List[Row]:
    """A row per input dimension, segment by segment as the input layer laid them out."""
    rows = []
    for segment in segments:
        column = segment.column
        if _is_embedding(column):
            name = catalog.feature_name(column.categorical_column.key)
            present = catalog.present(name)
            got = [Row(f'{name} embedding[{j}]', name, 'embedding', f'dimension {j}', present)
                   for j in range(segment.width)]
        elif hasattr(column, 'categorical_column'):  # indicator: one row per id
            got = catalog.id_rows(column.categorical_column.key, column.categorical_column.num_buckets)
        elif isinstance(column, NumericBlock):  # one row per numeric feature, side by side
            got = [row for name in column.names for row in catalog.numeric_rows(transformed_name(name), 1)]
        elif hasattr(column, 'key'):
            got = catalog.numeric_rows(column.key, segment.width)
        else:
            got = [Row(f'{column.name}[{j}]', column.name, 'unknown', str(j), 0) for j in range(segment.width)]
        if len(got) != segment.width:
            raise ValueError(f'{column.name}: {len(got)} labels for {segment.width} input dimensions')
        rows += got
    return rows


def _row_cells(row: Row) -> List[str]:
    return [row.label, row.feature, row.kind, row.value, str(row.frequency)]


def feature_value_tensor(network: Network, inputs: List[Row]) -> ProjectorTensor:
    return ProjectorTensor('feature_values', network.hidden[0].kernel, FEATURE_HEADER, [_row_cells(r) for r in inputs])


def embedding_tensors(network: Network, segments: List[Segment], catalog: ValueCatalog) -> List[ProjectorTensor]:
    tensors = []
    for segment in segments:
        column = segment.column
        if _is_embedding(column) and column.name in network.embedding_tables:
            table = network.embedding_tables[column.name]
            ids = catalog.id_rows(column.categorical_column.key, table.shape[0])
            name = catalog.feature_name(column.categorical_column.key)
            tensors.append(ProjectorTensor(f'embedding_{name}', table, FEATURE_HEADER, [_row_cells(r) for r in ids]))
    return tensors


def active_rates(network: Network, activations: List[np.ndarray]) -> List[np.ndarray]:
    """Per hidden layer, the share of training examples on which each unit passes signal on.

    ReLU units pass nothing when off, so a path through a rarely active unit counts for little.
    """
    rates = []
    for layer, values in zip(network.hidden, activations):
        rates.append((values > 0).mean(axis=0) if layer.activation == 'relu' else np.ones(values.shape[1]))
    return rates


def _top_inputs(weights: np.ndarray, inputs: List[Row], k: int) -> List[str]:
    order = np.argsort(-np.abs(weights))[:k]
    return [f'{"+" if weights[i] >= 0 else "-"}{inputs[i].label} ({weights[i]:+.3f})' for i in order]


def unit_tensors(network: Network, inputs: List[Row], rates: List[np.ndarray]) -> List[ProjectorTensor]:
    """For each hidden layer after the first, its kernel; row u is unit u of the layer before it.

    A unit is labelled by the inputs that drive it most: the input-to-unit weights through the layers below,
    each intermediate unit weighted by how often it is active on the training data.
    """
    tensors = []
    path = network.hidden[0].kernel  # [inputs, units of hidden layer 0]
    for depth in range(1, len(network.hidden)):
        below = network.hidden[depth - 1]
        rows = []
        for unit in range(path.shape[1]):
            top = _top_inputs(path[:, unit], inputs, TOP_IN_COLUMN)
            short = ', '.join(t.rsplit(' (', 1)[0] for t in top[:TOP_IN_LABEL])
            dead = ' (never active)' if rates[depth - 1][unit] == 0 else ''
            rows.append([f'{below.name}/{unit}{dead}: {short}', below.name, str(unit),
                         f'{rates[depth - 1][unit]:.3f}', '; '.join(top)])
        layer = network.hidden[depth]
        tensors.append(ProjectorTensor(f'units_{below.name}', layer.kernel, UNIT_HEADER, rows))
        path = (path * rates[depth - 1][np.newaxis, :]) @ layer.kernel
    return tensors


def predictions(probabilities: np.ndarray, classes: Sequence[str], multi_label: bool = False):
    """(predicted label, probability the model gives it) per example."""
    if probabilities.shape[1] == 1:  # binary: P(positive class)
        positive = probabilities[:, 0]
        return [(classes[1], float(p)) if p >= 0.5 else (classes[0], float(1 - p)) for p in positive]
    if multi_label:
        return [('|'.join(c for c, p in zip(classes, row) if p >= 0.5) or '(none)', float(row.max()))
                for row in probabilities]
    best = probabilities.argmax(axis=1)
    return [(classes[b], float(row[b])) for b, row in zip(best, probabilities)]


def example_tensor(network: Network, evaluation: Split, label_column: str, classes: Sequence[str],
                   slicing: List[str], multi_label: bool = False) -> ProjectorTensor:
    activations, probabilities = network.run(evaluation.transformed)
    rows = []
    for i, (predicted, score) in enumerate(predictions(probabilities, classes, multi_label)):
        true = evaluation.raw[label_column][i]
        true = MISSING if true is None else str(true)
        slices = [MISSING if evaluation.raw[c][i] is None else str(evaluation.raw[c][i]) for c in slicing]
        rows.append([f'true={true} pred={predicted} {score:.2f}', true, predicted, f'{score:.4f}',
                     'yes' if true == predicted else 'no'] + slices)
    header = EXAMPLE_HEADER + [c if c not in EXAMPLE_HEADER else f'{c} (column)' for c in slicing]
    return ProjectorTensor('examples', activations[-1], header, rows)


def projector_tensors(network: Network, segments: List[Segment], catalog: ValueCatalog, train: Split,
                      evaluation: Split, label_column: str, classes: Sequence[str], slicing: List[str],
                      multi_label: bool = False) -> Dict[str, ProjectorTensor]:
    inputs = input_rows(segments, catalog)
    sample = {k: v[:RATE_SAMPLE] for k, v in train.transformed.items()}
    train_activations, _ = network.run(sample)
    rates = active_rates(network, train_activations)
    tensors = [feature_value_tensor(network, inputs)] + embedding_tensors(network, segments, catalog)
    tensors += unit_tensors(network, inputs, rates)
    if evaluation.count:
        tensors.append(example_tensor(network, evaluation, label_column, classes, slicing, multi_label))
    return {t.name: t for t in tensors}
