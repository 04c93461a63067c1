"""A trained DNN seen the way the projector needs it, whatever framework trained it.

`Network` holds the model's own input layer (which concatenates feature columns in an order of its choosing),
the hidden kernels in order, the embedding tables, and a way to run transformed examples through it.
Keras models are read from the loaded model (`keras_network`); estimator models plug in through
`estimator_network({variable name: ndarray}, feature_columns)`, which needs nothing but checkpoint values.
"""
import os
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Tuple

import numpy as np
import tensorflow as tf

Features = Dict[str, np.ndarray]

ESTIMATOR_HIDDEN = 'dnn/hiddenlayer_{}/'
ESTIMATOR_LOGITS = 'dnn/logits/'
ESTIMATOR_INPUT_LAYER = 'dnn/input_from_feature_columns/input_layer/'


class UnsupportedModel(ValueError):
    """The model is not a DNN this component can read; names what was found."""


@dataclass
class Dense:
    name: str
    kernel: np.ndarray      # [inputs, units]: row i is what input i adds to every unit
    bias: np.ndarray
    activation: str


@dataclass
class Network:
    input_layer: Callable       # (features, cols_to_output_tensors dict) -> dense input tensor
    input_keys: List[str]       # transformed feature keys the input layer reads
    hidden: List[Dense]
    run: Callable[[Features], Tuple[List[np.ndarray], np.ndarray]]  # -> (each hidden layer's activations, probs)
    embedding_tables: Dict[str, np.ndarray] = field(default_factory=dict)  # embedding column name -> table


@dataclass
class Segment:
    column: object   # the feature column
    start: int
    width: int


def layout(network: Network, sample: Features) -> List[Segment]:
    """Which rows of the first kernel each feature column fills, as the model's own input layer reports it.

    The input layer is asked for each column's output on real examples (`cols_to_output_tensors`); the
    segments follow the order it concatenated them, checked against its actual output.
    """
    per_column: Dict = {}
    features = {k: tf.constant(sample[k]) for k in network.input_keys}
    output = network.input_layer(features, per_column).numpy()
    pieces = [t.numpy().reshape(output.shape[0], -1) for t in per_column.values()]
    if not pieces or not np.array_equal(np.concatenate(pieces, axis=1), output):
        raise UnsupportedModel('the input layer does not concatenate its feature columns in the order it reports')
    segments, start = [], 0
    for column, piece in zip(per_column, pieces):
        segments.append(Segment(column, start, piece.shape[1]))
        start += piece.shape[1]
    first = network.hidden[0].kernel.shape[0]
    if start != first:
        raise UnsupportedModel(f'the input layer is {start} wide but the first hidden kernel has {first} rows')
    return segments


def _activation_name(layer) -> str:
    return tf.keras.activations.serialize(layer.activation) if callable(layer.activation) else str(layer.activation)


def _chain_after(model: tf.keras.Model, start) -> List:
    """The layers from `start` to the model's output, refusing branches (this is a plain stack of layers)."""
    chain, layer = [], start
    while layer.outbound_nodes:
        nexts = {id(n.outbound_layer): n.outbound_layer for n in layer.outbound_nodes}
        if len(nexts) != 1:
            raise UnsupportedModel(f'layer {layer.name!r} feeds {len(nexts)} layers; expected a single stack')
        layer = next(iter(nexts.values()))
        chain.append(layer)
    return chain


def keras_network(model: tf.keras.Model) -> Network:
    """A Keras model whose deep part is DenseFeatures -> Dense ... -> Dense (logits), Dropout etc. in between.

    The deep part's input layer is the feature-column layer followed by at least two Dense layers (hidden
    layers, then logits); a wide part (feature layer -> one Dense) or a head merging them is left aside.
    """
    deep = []
    for layer in model.layers:
        if hasattr(layer, '_feature_columns'):
            try:
                denses = [l for l in _chain_after(model, layer) if isinstance(l, tf.keras.layers.Dense)]
            except UnsupportedModel:
                continue
            if len(denses) >= 2:
                deep.append((layer, denses[:-1]))
    if len(deep) != 1:
        raise UnsupportedModel(f'expected one feature-column layer followed by hidden Dense layers, found {len(deep)}')
    feature_layer, hidden_layers = deep[0]
    probe = tf.keras.Model(model.inputs, [l.output for l in hidden_layers] + list(model.outputs))
    input_keys = list(model.input_names)

    def run(features: Features):
        outputs = probe({k: tf.constant(features[k]) for k in input_keys}, training=False)
        return [o.numpy() for o in outputs[:-1]], outputs[-1].numpy()

    tables = {}
    for weight in feature_layer.weights:
        # DenseFeatures names an embedding column's table `<layer>/<column name>/embedding_weights:0`.
        parts = weight.name.split('/')
        if len(parts) >= 3 and parts[-1].startswith('embedding_weights'):
            tables[parts[-2]] = weight.numpy()
    return Network(
        input_layer=lambda f, cols: feature_layer(f, cols_to_output_tensors=cols),
        input_keys=input_keys,
        hidden=[Dense(l.name, l.kernel.numpy(), l.bias.numpy(), _activation_name(l)) for l in hidden_layers],
        run=run, embedding_tables=tables)


_ACTIVATIONS = {'relu': lambda z: np.maximum(z, 0), 'linear': lambda z: z, 'tanh': np.tanh,
                'sigmoid': lambda z: 1 / (1 + np.exp(-z))}


def estimator_network(variables: Dict[str, np.ndarray], feature_columns: List, activation: str = 'relu',
                      multi_label: bool = False) -> Network:
    """A canned DNN estimator (`DNNClassifier` and friends) from its checkpoint values.

    Kernels are `dnn/hiddenlayer_<i>/kernel`, the output `dnn/logits/kernel`; embedding tables
    `dnn/input_from_feature_columns/input_layer/<column>/embedding_weights`. The input layer is rebuilt as the
    estimator builds it (a DenseFeatures layer over the same columns) and given the estimator's tables.
    """
    hidden = []
    while ESTIMATOR_HIDDEN.format(len(hidden)) + 'kernel' in variables:
        prefix = ESTIMATOR_HIDDEN.format(len(hidden))
        hidden.append(Dense(prefix.rstrip('/'), variables[prefix + 'kernel'], variables[prefix + 'bias'],
                            activation))
    if not hidden or ESTIMATOR_LOGITS + 'kernel' not in variables:
        raise UnsupportedModel('no dnn/hiddenlayer_0/kernel or dnn/logits/kernel among the estimator variables')
    logits_kernel, logits_bias = variables[ESTIMATOR_LOGITS + 'kernel'], variables[ESTIMATOR_LOGITS + 'bias']
    input_layer = tf.keras.layers.DenseFeatures(feature_columns, name='input_layer')
    input_layer.build(None)  # creates the embedding tables, which then take the estimator's values
    tables = {}
    for weight in input_layer.weights:
        parts = weight.name.split('/')
        if parts[-1].startswith('embedding_weights'):
            value = variables[f'{ESTIMATOR_INPUT_LAYER}{parts[-2]}/embedding_weights']
            weight.assign(value)
            tables[parts[-2]] = value
    input_keys = sorted({k for c in feature_columns for k in _keys(c)})

    def call(features, cols):
        return input_layer(features, cols_to_output_tensors=cols)

    act = _ACTIVATIONS[activation]

    def run(features: Features):
        x = call({k: tf.constant(features[k]) for k in input_keys}, {}).numpy()
        activations = []
        for layer in hidden:
            x = act(x @ layer.kernel + layer.bias)
            activations.append(x)
        logits = x @ logits_kernel + logits_bias
        if logits.shape[1] == 1 or multi_label:
            probabilities = 1 / (1 + np.exp(-logits))
        else:
            e = np.exp(logits - logits.max(axis=1, keepdims=True))
            probabilities = e / e.sum(axis=1, keepdims=True)
        return activations, probabilities

    return Network(call, input_keys, hidden, run, tables)


def _keys(column) -> List[str]:
    """The transformed features a column reads."""
    return list(column.parse_example_spec)


def load_network(serving_dir: str, feature_columns_fn: Callable[[], List], multi_label: bool = False) -> Network:
    """The Trainer's exported model: Keras (keras_metadata.pb) or a canned DNN estimator.

    components/trainer/estimator.py saves an estimator as a tf.Module whose `estimator` attribute is the loaded TF1 export;
    its variables keep the estimator's own names (`dnn/hiddenlayer_0/kernel`, ...).
    """
    if tf.io.gfile.exists(os.path.join(serving_dir, 'keras_metadata.pb')):
        return keras_network(tf.keras.models.load_model(serving_dir))
    try:
        loaded = tf.saved_model.load(serving_dir)
    except (OSError, ValueError, tf.errors.OpError) as e:
        raise UnsupportedModel(f'{serving_dir} is not a SavedModel ({e})')
    if not hasattr(loaded, 'estimator'):
        raise UnsupportedModel(f'{serving_dir} is neither a Keras model nor an estimator saved by the Trainer')
    variables = {v.name.split(':')[0]: v.numpy() for v in loaded.estimator.variables if v.name.startswith('dnn/')}
    network = estimator_network(variables, feature_columns_fn(), multi_label=multi_label)
    # Probabilities from the estimator itself: a wide-and-deep one adds its linear part to the DNN's logits.
    predict = loaded.estimator.signatures['predict']
    dnn_only = network.run

    def run(features: Features):
        activations, _ = dnn_only(features)
        outputs = predict(**{k: tf.constant(features[k]) for k in predict.structured_input_signature[1]})
        return activations, outputs['logistic' if 'logistic' in outputs else 'probabilities'].numpy()

    network.run = run
    return network
