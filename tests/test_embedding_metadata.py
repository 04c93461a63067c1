"""EmbeddingMetadataGen on the shared real pipeline runs: attrition (binary, wide-and-deep, every feature kind and
an embedding column) and penguins (multi-class DNN).

The labels are checked against the model, not against the code that wrote them: each label's raw value goes
through the exported model's own `transform_features` signature and its own feature layer, and must switch on
exactly the row it labels. TensorBoard itself serves the artifact over HTTP.
"""
import csv
import glob
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft
import yaml

from tfx_tabular.components.embedding_metadata.buckets import boundaries, bucket_intervals
from tfx_tabular.pipeline.core.config import load_config
from tfx_tabular.pipeline.results.summary import open_store
from tfx_tabular.transforms.preprocessing import NUMERIC_KEY, transformed_name
from tests.conftest import run_cli

RUNS = ['attrition_run', 'penguins_run']
COMPONENT = 'EmbeddingMetadataGen'
FEATURE_HEADER = ['label', 'feature', 'kind', 'value', 'frequency']


# ---- reading a run -----------------------------------------------------------------------------------
def _outputs(summary):
    return {f'{c["component"]}.{key}': art for c in summary['components'] for key, art in c['outputs'].items()}


def _read_tsv(path):
    with open(path, encoding='utf-8', newline='') as f:
        lines = [line.rstrip('\n').split('\t') for line in f]
    return lines[0], lines[1:]


class Run:
    """One pipeline run's config, artifacts, exported model and the projector files read from disk."""

    def __init__(self, config_path, summary):
        self.config_path = config_path
        self.config = load_config(config_path)
        self.summary = summary
        outputs = _outputs(summary)
        self.logdir = outputs[f'{COMPONENT}.embedding_metadata']['uri']
        self.artifact = outputs[f'{COMPONENT}.embedding_metadata']
        self.examples_uri = outputs['CsvExampleGen.examples']['uri']
        self.model_artifact = outputs['Trainer.model']
        self.transform_graph_uri = outputs['Transform.transform_graph']['uri']
        self.tft_output = tft.TFTransformOutput(self.transform_graph_uri)
        self.model = tf.keras.models.load_model(os.path.join(self.model_artifact['uri'], 'Format-Serving'))
        self.raw_spec = self.tft_output.raw_feature_spec()
        with open(self.config.csv_files[0], newline='') as f:
            self.template = next(csv.DictReader(f))
        with open(os.path.join(self.logdir, 'projector_config.pbtxt')) as f:
            from google.protobuf import text_format
            from tensorboard.plugins.projector.projector_config_pb2 import ProjectorConfig
            self.projector = text_format.Parse(f.read(), ProjectorConfig())
        self.tensors, self.metadata = {}, {}
        for e in self.projector.embeddings:
            self.tensors[e.tensor_name] = np.loadtxt(os.path.join(self.logdir, e.tensor_path), delimiter='\t',
                                                     dtype=np.float32, ndmin=2)
            self.metadata[e.tensor_name] = _read_tsv(os.path.join(self.logdir, e.metadata_path))

    def hidden(self):
        layers = []
        while True:
            try:
                layers.append(self.model.get_layer(f'hidden_{len(layers)}'))
            except ValueError:
                return layers

    def typed(self, column, value):
        dtype = self.raw_spec[column].dtype
        if dtype == tf.string:
            return tf.train.Feature(bytes_list=tf.train.BytesList(value=[str(value).encode()]))
        if dtype.is_integer:
            return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(float(value))]))
        return tf.train.Feature(float_list=tf.train.FloatList(value=[float(value)]))

    def transform(self, overrides_list):
        """The exported model's transform_features signature on copies of the first CSV row."""
        examples = []
        for overrides in overrides_list:
            row = {**self.template, **overrides}
            example = tf.train.Example(features=tf.train.Features(
                feature={c: self.typed(c, row[c]) for c in self.raw_spec}))
            examples.append(example.SerializeToString())
        out = self.model.signatures['transform_features'](examples=tf.constant(examples))
        return {k: v.numpy() for k, v in out.items()}

    def split(self, name, limit=None):
        files = sorted(glob.glob(os.path.join(self.examples_uri, f'Split-{name}', '*')))
        return [r.numpy() for r in tf.data.TFRecordDataset(files, compression_type='GZIP').take(limit or -1)]


@pytest.fixture(scope='module')
def runs(request):
    loaded = {}
    for name in RUNS:
        config_path, _, summary = request.getfixturevalue(name)
        loaded[name] = Run(config_path, summary)
    return loaded


# ---- the component and its artifact --------------------------------------------------------------------
@pytest.mark.parametrize('name', RUNS)
def test_component_ran_after_trainer_and_its_artifact_is_in_mlmd(name, runs):
    run = runs[name]
    states = {c['component']: c['state'] for c in run.summary['components']}
    assert states[COMPONENT] == 'ran'
    assert run.artifact['type'] == 'tfx_tabular.EmbeddingMetadata'
    store = open_store(run.summary['metadata'])
    [recorded] = [a for a in store.get_artifacts_by_type('tfx_tabular.EmbeddingMetadata') if a.uri == run.logdir]
    shapes = json.loads(recorded.custom_properties['tensors'].string_value)
    assert shapes == {e.tensor_name: list(e.tensor_shape) for e in run.projector.embeddings}
    # The execution that wrote it read this run's model (later runs on the same run dir, cached, link it too).
    execution_id = min(e.execution_id for e in store.get_events_by_artifact_ids([recorded.id])
                       if e.type == e.OUTPUT)
    inputs = {e.artifact_id for e in store.get_events_by_execution_ids([execution_id]) if e.type == e.INPUT}
    assert run.model_artifact['mlmd_id'] in inputs
    # Every tensor file has the declared shape, and its metadata a header plus one row per tensor row.
    for e in run.projector.embeddings:
        assert list(run.tensors[e.tensor_name].shape) == list(e.tensor_shape), e.tensor_name
        header, rows = run.metadata[e.tensor_name]
        assert len(header) >= 4 and header[0] == 'label'
        assert len(rows) == e.tensor_shape[0] and all(len(r) == len(header) for r in rows), e.tensor_name
    assert not [f for f in os.listdir(os.path.dirname(run.logdir)) if f.startswith('.')]  # staging removed


@pytest.mark.parametrize('name', RUNS)
def test_every_hidden_kernel_is_written_exactly(name, runs):
    run = runs[name]
    hidden = run.hidden()
    assert np.array_equal(run.tensors['feature_values'], hidden[0].kernel.numpy())
    for depth in range(1, len(hidden)):
        tensor = f'units_hidden_{depth - 1}'
        assert np.array_equal(run.tensors[tensor], hidden[depth].kernel.numpy())
        labels = [r[0] for r in run.metadata[tensor][1]]
        assert [lbl.split(':')[0].split(' ')[0] for lbl in labels] == [f'hidden_{depth - 1}/{u}'
                                                                       for u in range(len(labels))]
        # Units are described by the inputs that drive them, named as in the feature-value rows.
        inputs = {r[0] for r in run.metadata['feature_values'][1]}
        for row in run.metadata[tensor][1]:
            top = [t.rsplit(' (', 1)[0][1:] for t in row[4].split('; ')]
            assert top and set(top) <= inputs, row
            assert 0 <= float(row[3]) <= 1


# ---- the row labels, checked against the model -----------------------------------------------------------
INTERVAL = re.compile(r'^(\(-inf|\[(?P<lo>[^,]+)), (?:(?P<hi>[^)]+)|\+inf)\)$')


def _inside(run, column, interval):
    """A raw value inside the bucket, and one just below it (None for the first bucket)."""
    m = INTERVAL.match(interval)
    assert m, interval
    integer = run.raw_spec[column].dtype.is_integer
    if m.group('lo') is None:
        hi = float(m.group('hi'))
        return (int(hi) - 1 if integer else float(np.nextafter(np.float32(hi), np.float32(-np.inf)))), None
    lo = float(m.group('lo'))
    below = int(lo) - 1 if integer else float(np.nextafter(np.float32(lo), np.float32(-np.inf)))
    return (int(lo) if integer else lo), below


def _raw_overrides(run, feature, value):
    """Raw CSV values that should make the transform produce the id a feature-value row stands for."""
    spec = run.config.features[feature]
    if spec.kind == 'categorical':
        return [{feature: value}]
    if spec.kind == 'bucketized':
        return [{feature: _inside(run, feature, value)[0]}]
    if spec.kind == 'hashed':
        return [{feature: v} for v in value.split('|')]
    if spec.kind == 'crossed':
        probes = []
        for member in value.split('|'):
            overrides = {}
            for column, part in zip(spec.columns, member.split(' × ')):
                kind = run.config.features[column].kind
                overrides[column] = _inside(run, column, part)[0] if kind == 'bucketized' else part
            probes.append(overrides)
        return probes
    raise AssertionError(spec.kind)


def _feature_layer_input(run, switched):
    """The model's feature layer on a batch where row j has only `switched[j] = (key, value)` set: numeric
    inputs are 0 elsewhere, id inputs are absent (an empty sparse row switches no indicator on)."""
    layer = run.model.get_layer('feature_layer')
    n = len(switched)
    features = {}
    for column in layer._feature_columns:
        if hasattr(column, 'categorical_column'):
            key = column.categorical_column.key
            hits = [(j, v) for j, (k, v) in enumerate(switched) if k == key]
            features[key] = tf.SparseTensor(np.array([[j, 0] for j, _ in hits], np.int64).reshape(-1, 2),
                                            np.array([v for _, v in hits], np.int64), [n, 1])
        else:  # the numeric block: one [batch, n] input, a column per numeric feature
            keys = [transformed_name(name) for name in column.names]
            features[NUMERIC_KEY] = tf.constant([[v if k == key else 0.0 for key in keys] for k, v in switched],
                                                tf.float32)
    return layer(features).numpy()


@pytest.mark.parametrize('name', RUNS)
def test_each_feature_value_row_is_the_input_its_label_names(name, runs):
    """Row i's label, turned into raw data, switches on input i alone; the first-layer pre-activation is then
    bias + row i of the written tensor."""
    run = runs[name]
    header, rows = run.metadata['feature_values']
    assert header == FEATURE_HEADER
    switched, targets, checked_kinds = [], [], set()
    probes, probe_rows = [], []
    for i, (label, feature, kind, value, _) in enumerate(rows):
        if kind == 'numeric':
            assert label == f'{feature} ({value})'
            switched.append((f'{feature}_xf', 1.0))
            targets.append(i)
        elif kind == 'embedding':
            continue  # checked with the embedding table below
        elif value.startswith('<OOV'):
            continue  # checked below: an unseen value lands in an OOV row
        elif value != '(none)':
            for overrides in _raw_overrides(run, feature, value):
                probes.append(overrides)
                probe_rows.append((i, feature))
        checked_kinds.add(kind)
    transformed = run.transform(probes)
    for j, (i, feature) in enumerate(probe_rows):
        switched.append((f'{feature}_xf', int(transformed[f'{feature}_xf'][j])))
        targets.append(i)
    x = _feature_layer_input(run, switched)
    hidden_0 = run.model.get_layer('hidden_0')
    kernel, bias = run.tensors['feature_values'], hidden_0.bias.numpy()
    for j, i in enumerate(targets):
        assert np.flatnonzero(x[j]).tolist() == [i] and x[j, i] == 1, (rows[i], np.flatnonzero(x[j]))
    pre_activation = x @ hidden_0.kernel.numpy() + bias
    np.testing.assert_allclose(pre_activation, bias + kernel[targets], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(hidden_0(x).numpy(), np.maximum(bias + kernel[targets], 0), rtol=1e-6, atol=1e-6)
    one_hot_kinds = {f.kind for f in run.config.features.values() if not getattr(f, 'embedding_dim', None)}
    assert checked_kinds == one_hot_kinds
    if name == 'attrition_run':
        assert one_hot_kinds == {'numeric', 'categorical', 'bucketized', 'crossed'}


def test_bucket_rows_show_the_boundaries_the_transform_applies(runs):
    run = runs['attrition_run']
    rows = [r for r in run.metadata['feature_values'][1] if r[1] == 'Age']
    assert len(rows) == run.config.features['Age'].buckets
    assert rows[0][0].startswith('Age in (-inf, ') and rows[-1][0].endswith(', +inf)')
    for previous, row in zip(rows, rows[1:]):  # contiguous: each bucket starts where the last one ended
        assert INTERVAL.match(previous[3]).group('hi') == INTERVAL.match(row[3]).group('lo')
    inside, below = zip(*[_inside(run, 'Age', r[3]) for r in rows[1:]])
    ids = run.transform([{'Age': v} for v in inside + below])['Age_xf']
    n = len(inside)
    assert ids[:n].tolist() == list(range(1, len(rows)))           # the lower bound is in the bucket
    assert ids[n:].tolist() == list(range(0, len(rows) - 1))       # one below it is in the previous one


def test_oov_rows_and_frequencies_match_the_training_data(runs):
    run = runs['attrition_run']
    rows = run.metadata['feature_values'][1]
    train = [tf.train.Example.FromString(r) for r in run.split('train')]
    for feature, spec in run.config.features.items():
        mine = [r for r in rows if r[1] == feature and r[2] != 'embedding']
        if spec.kind == 'numeric':
            assert [int(r[4]) for r in mine] == [len(train)]
            continue
        if not mine:
            continue
        assert sum(int(r[4]) for r in mine) == len(train), feature  # every training example counted once
        if spec.kind == 'categorical':
            def raw(e):
                f = e.features.feature[feature]
                return f.bytes_list.value[0].decode() if f.bytes_list.value else str(f.int64_list.value[0])
            counts = {}
            for e in train:
                counts[raw(e)] = counts.get(raw(e), 0) + 1
            vocabulary_rows = {r[3]: int(r[4]) for r in mine if not r[3].startswith('<OOV')}
            in_vocabulary = {v: c for v, c in counts.items() if v in vocabulary_rows}
            assert vocabulary_rows == in_vocabulary, feature
            oov = [r for r in mine if r[3].startswith('<OOV')]
            assert len(oov) == spec.oov_buckets
            assert sum(int(r[4]) for r in oov) == sum(c for v, c in counts.items() if v not in vocabulary_rows)
    # An unseen value switches on the OOV row.
    ids = run.transform([{'Gender': 'never-seen-value'}])['Gender_xf']
    [oov_row] = [i for i, r in enumerate(rows) if r[0] == 'Gender=<OOV>']
    x = _feature_layer_input(run, [('Gender_xf', int(ids[0]))])
    assert np.flatnonzero(x[0]).tolist() == [oov_row]


def test_embedding_table_rows_and_embedding_dimensions(runs):
    """JobRole is hashed with embedding_dim: its table rows are labelled by the raw values hashed there, and
    the first-layer rows it fills are its embedding dimensions, in order."""
    run = runs['attrition_run']
    table = run.tensors['embedding_JobRole']
    header, table_rows = run.metadata['embedding_JobRole']
    assert header == FEATURE_HEADER and table.shape == (32, run.config.features['JobRole'].embedding_dim)
    dims = [i for i, r in enumerate(run.metadata['feature_values'][1]) if r[1] == 'JobRole']
    assert [run.metadata['feature_values'][1][i][0] for i in dims] == [
        f'JobRole embedding[{j}]' for j in range(table.shape[1])]
    weights = [w for w in run.model.get_layer('feature_layer').weights if 'JobRole' in w.name]
    np.testing.assert_array_equal(table, weights[0].numpy())
    filled = [(k, r) for k, r in enumerate(table_rows) if r[3] != '(none)']
    assert filled and sum(int(r[4]) for _, r in filled) == sum(int(r[4]) for r in table_rows)
    probes = [(k, v) for k, r in filled for v in r[3].split('|')]
    ids = run.transform([{'JobRole': v} for _, v in probes])['JobRole_xf']
    assert ids.tolist() == [k for k, _ in probes]
    x = _feature_layer_input(run, [('JobRole_xf', int(i)) for i in ids])
    others = np.delete(x, dims, axis=1)
    assert not others.any()
    np.testing.assert_allclose(x[:, dims], table[ids], rtol=1e-6)


# ---- example embeddings --------------------------------------------------------------------------------
@pytest.mark.parametrize('name', RUNS)
def test_example_rows_are_eval_examples_with_true_and_predicted_labels(name, runs):
    run = runs[name]
    header, rows = run.metadata['examples']
    assert header == ['label', 'true_label', 'predicted_label', 'score', 'correct'] + run.config.slicing
    serialized = run.split('eval', 500)
    assert len(rows) == len(serialized) == run.tensors['examples'].shape[0]
    examples = [tf.train.Example.FromString(s) for s in serialized]

    def raw(example, column):
        f = example.features.feature[column]
        return f.bytes_list.value[0].decode() if f.bytes_list.value else str(f.int64_list.value[0])
    assert [r[1] for r in rows] == [raw(e, run.config.label.column) for e in examples]
    for k, column in enumerate(run.config.slicing):
        assert [r[5 + k] for r in rows] == [raw(e, column) for e in examples]
    # Predictions: the exported serving signature on the same raw examples.
    served = run.model.signatures['serving_default'](inputs=tf.constant(serialized))
    classes = [c.decode() for c in served['classes'].numpy()[0]]
    scores = served['scores'].numpy()
    assert [r[2] for r in rows] == [classes[k] for k in scores.argmax(axis=1)]
    np.testing.assert_allclose([float(r[3]) for r in rows], scores.max(axis=1), atol=1e-4)
    assert [r[4] for r in rows] == ['yes' if r[1] == r[2] else 'no' for r in rows]
    # Activations: the model's last hidden layer on those examples.
    hidden = run.hidden()
    last = tf.keras.Model(run.model.inputs, hidden[-1].output)
    transformed = run.model.signatures['transform_features'](examples=tf.constant(serialized))
    activations = last({k: transformed[k] for k in run.model.input_names}).numpy()
    np.testing.assert_allclose(run.tensors['examples'], activations, rtol=1e-5, atol=1e-5)


# ---- TensorBoard --------------------------------------------------------------------------------------
def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _get(url):
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.read()


def test_tensorboard_projector_serves_every_tensor_with_its_labels(runs):
    run = runs['attrition_run']
    port = _free_port()
    exe = os.path.join(os.path.dirname(sys.executable), 'tensorboard')
    tensorboard = subprocess.Popen([exe, '--logdir', run.logdir, '--host', '127.0.0.1', '--port', str(port)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f'http://127.0.0.1:{port}/data/plugin/projector'
    try:
        deadline, served_runs = time.time() + 90, []
        while time.time() < deadline and '.' not in served_runs:
            assert tensorboard.poll() is None, tensorboard.stderr.read().decode()[-2000:]
            try:
                served_runs = json.loads(_get(f'{base}/runs'))
            except OSError:
                time.sleep(0.5)
        assert served_runs == ['.'], served_runs
        info = json.loads(_get(f'{base}/info?run=.'))
        served = {e['tensorName']: e for e in info['embeddings']}
        assert set(served) == set(run.tensors) >= {'feature_values', 'units_hidden_0', 'examples',
                                                   'embedding_JobRole'}
        for name, values in run.tensors.items():
            assert [int(d) for d in served[name]['tensorShape']] == list(values.shape)
            query = urllib.parse.urlencode({'run': '.', 'name': name})
            tensor = np.frombuffer(_get(f'{base}/tensor?{query}'), dtype=np.float32).reshape(values.shape)
            np.testing.assert_array_equal(tensor, values)
            lines = _get(f'{base}/metadata?{query}').decode().rstrip('\n').split('\n')
            assert len(lines) == values.shape[0] + 1  # header + one row per tensor row
            assert lines[0].split('\t') == run.metadata[name][0]
    finally:
        tensorboard.terminate()
        tensorboard.wait(timeout=30)


# ---- CLI ----------------------------------------------------------------------------------------------
def test_cli_prints_the_tensorboard_command_for_the_latest_run(runs, tmp_path):
    run = runs['attrition_run']
    result = run_cli('embeddings', '--config', run.config_path)
    assert result.returncode == 0, result.stderr
    first, second = result.stdout.strip().split('\n')
    # Other tests may run again on this run dir (tests/test_baseline.py does): the latest run's summary names it.
    with open(os.path.join(run.config.run_path, 'summary.json')) as f:
        latest = json.load(f)['embeddings_logdir']
    assert first == f'tensorboard --logdir {latest} --port 6006'
    assert 'http://localhost:6006/#projector' in second and 'feature_values (' in second

    raw = yaml.safe_load(open(run.config_path))
    raw['data']['csv'] = run.config.csv_files[0]
    raw['run_dir'] = str(tmp_path / 'never-ran')
    fresh = tmp_path / 'fresh.yaml'
    fresh.write_text(yaml.safe_dump(raw))
    result = run_cli('embeddings', '--config', str(fresh))
    assert result.returncode == 2
    assert result.stderr.count('\n') == 1 and 'has not run yet' in result.stderr and 'tfx-tabular run' in result.stderr


# ---- pieces that need no pipeline --------------------------------------------------------------------
@pytest.mark.parametrize('dtype', [tf.float32, tf.int64])
def test_boundaries_are_recovered_from_the_transform_alone(dtype):
    true = [-3.25, 0.1, 0.1, 7.0, 1e6] if dtype == tf.float32 else [-3.0, 2.0, 2.0, 7.0, 1e6]

    @tf.function  # eagerly, tft.apply_buckets leaves eager tensors in the global graph's annotation collections,
    def bucketize(x):  # which breaks every later tf.Transform analysis in this process
        return tft.apply_buckets(tf.cast(x, tf.float32), tf.constant([true], tf.float32))

    def ids_of(values):
        return bucketize(tf.constant(values, dtype)).numpy()
    found = boundaries(ids_of, is_float=dtype.is_floating)
    assert found == [float(np.float32(b)) for b in true]
    labels = bucket_intervals(found)
    assert labels[0] == '(-inf, -3.25)' if dtype == tf.float32 else labels[0] == '(-inf, -3.0)'
    assert labels[2] == '[0.1, 0.1)' if dtype == tf.float32 else labels[2] == '[2.0, 2.0)'  # an empty bucket
    assert labels[-1] == '[1000000.0, +inf)'


def test_estimator_variables_plug_in_gives_the_same_rows_and_activations(runs, tmp_path):
    """The estimator path, fed a DNN's weights under canned-estimator variable names, labels and runs it as the
    Keras path does (a stand-in: no estimator model kind exists yet)."""
    from tfx_tabular.components.embedding_metadata.data import read_split, split_files
    from tfx_tabular.components.embedding_metadata.network import estimator_network, keras_network, layout
    from tfx_tabular.components.embedding_metadata.rows import input_rows
    from tfx_tabular.components.embedding_metadata.values import ValueCatalog
    from tfx.types import standard_artifacts
    from tfx_tabular.transforms.feature_columns import feature_columns

    run = runs['penguins_run']
    assert run.config.models[0].kind == 'keras_dnn'
    hidden = run.hidden()
    variables = {}
    for i, layer in enumerate(hidden):
        variables[f'dnn/hiddenlayer_{i}/kernel'] = layer.kernel.numpy()
        variables[f'dnn/hiddenlayer_{i}/bias'] = layer.bias.numpy()
    logits = run.model.get_layer('deep_logits')
    variables['dnn/logits/kernel'], variables['dnn/logits/bias'] = logits.kernel.numpy(), logits.bias.numpy()
    estimator = estimator_network(variables, feature_columns(run.config.features, run.tft_output))
    keras = keras_network(run.model)

    examples = standard_artifacts.Examples()
    examples.uri, examples.split_names = run.examples_uri, json.dumps(['train', 'eval'])
    train = read_split(split_files(examples, 'train'), run.tft_output, 1000)
    catalog = ValueCatalog(run.config.features, run.tft_output, train)
    rows = [r.label for r in input_rows(layout(estimator, train.transformed), catalog)]
    assert rows == [r[0] for r in run.metadata['feature_values'][1]]
    (est_hidden, est_probs), (keras_hidden, keras_probs) = estimator.run(train.transformed), keras.run(
        train.transformed)
    for a, b in zip(est_hidden, keras_hidden):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(est_probs, keras_probs, rtol=1e-4, atol=1e-5)


def test_max_examples_caps_the_example_rows(runs, tmp_path):
    from tfx_tabular.components.embedding_metadata.executor import generate
    from tfx.types import standard_artifacts
    from tfx_tabular.transforms.preprocessing import custom_config

    run = runs['penguins_run']
    examples = standard_artifacts.Examples()
    examples.uri, examples.split_names = run.examples_uri, json.dumps(['train', 'eval'])
    out = str(tmp_path / 'logdir')
    tensors = generate(os.path.join(run.model_artifact['uri'], 'Format-Serving'),
                       run.transform_graph_uri, examples, out, custom_config(run.config),
                       run.config.slicing, max_examples=7)
    assert tensors['examples'].values.shape[0] == 7
    assert len(_read_tsv(os.path.join(out, 'examples.metadata.tsv'))[1]) == 7
    np.testing.assert_array_equal(np.loadtxt(os.path.join(out, 'examples.tsv'), delimiter='\t', dtype=np.float32),
                                  run.tensors['examples'][:7])
