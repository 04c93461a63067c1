"""Trained YDF trees compiled into core TensorFlow ops, so the exported model needs nothing TF Serving lacks.

Every tree becomes a row of padded node arrays: the feature a node tests, its threshold (numeric: go to the
positive child when value >= threshold, as YDF does) or its set (categorical: the positive child when the id's
YDF dictionary index is in the node's mask), both children, and the leaf value. Leaves point at themselves, so
`depth` rounds of gathers take every example of every tree to its leaf at once. Leaf values are summed per output
(a tree adds to one logit) on top of the initial predictions, then the link: a sigmoid per output (binary, and
multi-label with one model per class), or a softmax (multi-class).

YDF keeps its own dictionary of categorical values (ids seen fewer than `min_vocab_frequency` times share index 0,
out-of-dictionary); each (model, feature) gets a table from our id to that index, so membership is decided exactly
as YDF decides it.
"""
from dataclasses import dataclass, field
from typing import Dict, List, Sequence

import numpy as np
import tensorflow as tf

ABSENT_LOGIT = -1e9  # a class the training split never had: its softmax share is 0


@dataclass
class Forest:
    """Trees as flat arrays ([trees * nodes], node j of tree t at t * nodes + j) plus what turns leaves into
    probabilities. `features` are the transformed keys in the column order the trees index."""
    features: List[str]
    n_outputs: int
    link: str                                   # 'sigmoid' | 'softmax'
    bias: np.ndarray                            # [n_outputs] initial logits
    nodes: int = 1                              # padded nodes per tree
    depth: int = 0                              # rounds of gathers to reach every leaf
    feature: List[int] = field(default_factory=list)
    threshold: List[float] = field(default_factory=list)
    categorical: List[bool] = field(default_factory=list)
    index_offset: List[int] = field(default_factory=list)   # where the node's id -> YDF index table starts
    id_limit: List[int] = field(default_factory=list)       # largest id that table covers
    mask_offset: List[int] = field(default_factory=list)    # where the node's membership mask starts
    pos: List[int] = field(default_factory=list)
    neg: List[int] = field(default_factory=list)
    value: List[float] = field(default_factory=list)
    tree_output: List[int] = field(default_factory=list)    # per tree: the logit it adds to
    tree_iteration: List[int] = field(default_factory=list)  # per tree: its boosting iteration (for curves)
    id_index: List[int] = field(default_factory=lambda: [0])  # entry 0: the dummy numeric nodes point at
    members: List[bool] = field(default_factory=lambda: [False])

    @property
    def n_trees(self) -> int:
        return len(self.tree_output)


def _tree_nodes(tree) -> List:
    """The tree's nodes in depth-first order, each as (node, positive child index, negative child index, depth)."""
    import ydf
    nodes = []

    def visit(node, depth):
        i = len(nodes)
        nodes.append(None)
        if isinstance(node, ydf.tree.Leaf):
            nodes[i] = (node, i, i, depth)
        else:
            nodes[i] = (node, visit(node.pos_child, depth + 1), visit(node.neg_child, depth + 1), depth)
        return i
    visit(tree.root, 0)
    return nodes


class _Builder:
    """Collects the trees of one or more YDF models into a Forest (padding happens in `finish`)."""

    def __init__(self, features: Sequence[str], id_sizes: Dict[str, int], n_outputs: int, link: str):
        self.forest = Forest(list(features), n_outputs, link, np.zeros(n_outputs, np.float32))
        self.id_sizes = id_sizes
        self.trees = []  # per tree: [(feature, threshold, categorical, index_offset, id_limit, mask_offset, pos, neg, value)]

    def _id_tables(self, model) -> Dict[int, tuple]:
        """YDF column index -> (our column, offset of its id -> YDF index table, largest id) for the model."""
        import ydf
        tables = {}
        spec = model.data_spec()
        for feature in model.input_features():
            column = self.forest.features.index(feature.name)
            if feature.semantic != ydf.Semantic.CATEGORICAL:
                tables[feature.column_idx] = (column, 0, 0)
                continue
            items = spec.columns[feature.column_idx].categorical.items
            size = self.id_sizes[feature.name]
            offset = len(self.forest.id_index)
            self.forest.id_index += [items[str(i)].index if str(i) in items else 0 for i in range(size)]
            tables[feature.column_idx] = (column, offset, size - 1)
        return tables

    def add(self, model, outputs: Sequence[int], sign: float = 1.0) -> None:
        """Adds `model`'s trees; tree i adds `sign` x its leaf to output `outputs[i % trees per iteration]`."""
        import ydf
        tables = self._id_tables(model)
        per_iteration = model.num_trees_per_iteration()
        for i, tree in enumerate(model.get_all_trees()):
            rows = []
            for node, pos, neg, depth in _tree_nodes(tree):
                self.forest.depth = max(self.forest.depth, depth)
                if isinstance(node, ydf.tree.Leaf):
                    rows.append((0, 0.0, False, 0, 0, 0, pos, neg, sign * float(node.value.value)))
                    continue
                condition = node.condition
                column, offset, limit = tables[condition.attribute]
                if isinstance(condition, ydf.tree.NumericalHigherThanCondition):
                    rows.append((column, condition.threshold, False, 0, 0, 0, pos, neg, 0.0))
                elif isinstance(condition, ydf.tree.CategoricalIsInCondition):
                    mask_offset = len(self.forest.members)
                    dictionary = model.data_spec().columns[condition.attribute].categorical.number_of_unique_values
                    positive = set(condition.mask)
                    self.forest.members += [j in positive for j in range(dictionary)]
                    rows.append((column, 0.0, True, offset, limit, mask_offset, pos, neg, 0.0))
                else:
                    raise ValueError(f'cannot compile a {type(condition).__name__} into TensorFlow ops; the trees '
                                     'are trained with axis-aligned numeric and categorical conditions only')
            self.trees.append(rows)
            self.forest.tree_output.append(outputs[i % per_iteration])
            self.forest.tree_iteration.append(i // per_iteration)

    def finish(self) -> Forest:
        forest = self.forest
        forest.nodes = max([len(rows) for rows in self.trees] + [1])
        padding = (0, 0.0, False, 0, 0, 0, 0, 0, 0.0)
        for t, rows in enumerate(self.trees):
            base = t * forest.nodes
            for j, (feature, threshold, categorical, offset, limit, mask, pos, neg, value) in enumerate(
                    rows + [padding] * (forest.nodes - len(rows))):
                forest.feature.append(feature)
                forest.threshold.append(threshold)
                forest.categorical.append(categorical)
                forest.index_offset.append(offset)
                forest.id_limit.append(limit)
                forest.mask_offset.append(mask)
                forest.pos.append(base + (pos if j < len(rows) else j))
                forest.neg.append(base + (neg if j < len(rows) else j))
                forest.value.append(value)
        return forest


def _binary_sign(model, positive: str = '1') -> float:
    """+1 if the model's sigmoid is P(positive), -1 if it is P(the other class)."""
    classes = model.label_classes()
    return 1.0 if classes[1] == positive else -1.0


def forest_from_ydf(models: Sequence, label_type: str, n_classes: int, features: Sequence[str],
                    id_sizes: Dict[str, int]) -> Forest:
    """One Forest from the trained models: binary and multi-class one model (labels are class ids as text),
    multi-label one binary model per class (labels '0'/'1'; None for a class the training split has in every row
    or in none, whose constant answer is its bias)."""
    if label_type == 'multiclass':
        builder = _Builder(features, id_sizes, n_classes, 'softmax')
        (model,) = models
        classes = [int(c) for c in model.label_classes()]
        initial = model.initial_predictions()
        builder.forest.bias[:] = ABSENT_LOGIT
        if model.num_trees_per_iteration() == 1:  # only two classes in the training split: one sigmoid logit
            builder.forest.bias[classes[0]], builder.forest.bias[classes[1]] = 0.0, initial[0]
            builder.add(model, [classes[1]])
        else:
            builder.forest.bias[classes] = initial
            builder.add(model, classes)
        return builder.finish()
    builder = _Builder(features, id_sizes, 1 if label_type == 'binary' else n_classes, 'sigmoid')
    for k, model in enumerate(models):
        if isinstance(model, float):  # a constant class of a multi-label label: its logit
            builder.forest.bias[k] = model
            continue
        sign = _binary_sign(model)
        builder.forest.bias[k] = sign * model.initial_predictions()[0]
        builder.add(model, [k], sign)
    return builder.finish()


class CompiledTrees(tf.Module):
    """The Forest as TensorFlow variables and ops: transformed features -> probabilities ([batch, outputs])."""

    def __init__(self, forest: Forest):
        super().__init__(name='gradient_boosted_trees')

        def constant(values, dtype):
            return tf.Variable(np.asarray(values, dtype=dtype.as_numpy_dtype), trainable=False)
        self.features, self.link, self.depth = tuple(forest.features), forest.link, forest.depth
        self.n_trees, self.nodes = forest.n_trees, forest.nodes
        self.feature = constant(forest.feature, tf.int32)
        self.threshold = constant(forest.threshold, tf.float32)
        self.categorical = constant(forest.categorical, tf.bool)
        self.index_offset = constant(forest.index_offset, tf.int32)
        self.id_limit = constant(forest.id_limit, tf.float32)
        self.mask_offset = constant(forest.mask_offset, tf.int32)
        self.pos = constant(forest.pos, tf.int32)
        self.neg = constant(forest.neg, tf.int32)
        self.value = constant(forest.value, tf.float32)
        self.id_index = constant(forest.id_index, tf.int32)
        self.members = constant(forest.members, tf.bool)
        self.bias = constant(forest.bias, tf.float32)
        self.tree_outputs = constant(np.eye(forest.n_outputs, dtype=np.float32)[forest.tree_output].reshape(
            forest.n_trees, forest.n_outputs), tf.float32)

    def leaf_values(self, transformed: Dict[str, tf.Tensor]) -> tf.Tensor:
        """[batch, trees]: the leaf each example reaches in each tree."""
        x = tf.stack([tf.cast(tf.reshape(transformed[k], [-1]), tf.float32) for k in self.features], axis=1)
        batch = tf.shape(x)[0]
        node = tf.tile(tf.range(self.n_trees, dtype=tf.int32)[tf.newaxis, :] * self.nodes, [batch, 1])
        for _ in range(self.depth):
            value = tf.gather(x, tf.gather(self.feature, node), batch_dims=1)
            ids = tf.cast(tf.clip_by_value(value, 0.0, tf.gather(self.id_limit, node)), tf.int32)
            index = tf.gather(self.id_index, tf.gather(self.index_offset, node) + ids)
            member = tf.gather(self.members, tf.gather(self.mask_offset, node) + index)
            positive = tf.where(tf.gather(self.categorical, node), member, value >= tf.gather(self.threshold, node))
            node = tf.where(positive, tf.gather(self.pos, node), tf.gather(self.neg, node))
        return tf.gather(self.value, node)

    def logits(self, transformed: Dict[str, tf.Tensor]) -> tf.Tensor:
        return self.bias + tf.matmul(self.leaf_values(transformed), self.tree_outputs)

    def __call__(self, transformed: Dict[str, tf.Tensor]) -> tf.Tensor:
        logits = self.logits(transformed)
        return tf.nn.softmax(logits) if self.link == 'softmax' else tf.sigmoid(logits)
