"""The generated preprocessing_fn, run through real tf.Transform (Beam) on a small in-memory dataset."""
import functools
import math
import tempfile

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from tensorflow_transform.tf_metadata import dataset_metadata, schema_utils

from tfx_tabular.pipeline.core.config import Config
from tfx_tabular.transforms.feature_columns import per_feature
from tfx_tabular.transforms.preprocessing import CROSS_SEPARATOR, NUMERIC_KEY, custom_config, preprocessing_fn

ROWS = [
    # num   mm    inc   bkt  city  town   v (sometimes missing)   y
    (1.0, 0.0, 0, 1.0, 'b', 'x', [2.0], 'yes'),
    (2.0, 5.0, 10, 1.0, 'a', 'y', [], 'no'),
    (3.0, 10.0, 100, 1.0, 'b', 'x', [4.0], 'no'),
    (4.0, 10.0, 1000, 1.0, 'c', 'z', [6.0], 'no'),
    (1.0, 0.0, 0, 9.0, 'b', 'x', [2.0], 'yes'),
    (2.0, 5.0, 10, 9.0, 'a', 'y', [4.0], 'no'),
    (3.0, 10.0, 100, 9.0, 'b', 'x', [4.0], 'no'),
    (4.0, 10.0, 1000, 9.0, 'b', 'z', [6.0], 'no'),
]
COLUMNS = ['num', 'mm', 'inc', 'bkt', 'city', 'town', 'v', 'y']


def _config(classes=None):
    label = {'column': 'y', 'type': 'binary'}
    if classes:
        label['classes'] = classes
    return Config(name='t', data={'csv': 'x.csv'}, label=label, serving={'model_name': 't'}, features={
        'num': {'kind': 'numeric', 'scaling': 'z_score'},
        'mm': {'kind': 'numeric', 'scaling': 'min_max'},
        'inc': {'kind': 'numeric', 'scaling': 'log'},
        'bkt': {'kind': 'bucketized', 'buckets': 2},
        'city': {'kind': 'categorical', 'top_k': 2, 'oov_buckets': 1},
        'town': {'kind': 'hashed', 'hash_buckets': 7},
        'v': {'kind': 'numeric', 'scaling': 'raw'},
        'city_x_town': {'kind': 'crossed', 'columns': ['city', 'town'], 'hash_buckets': 11},
    })


def _transform(config, transform_dir=None):
    """Analyzes and transforms ROWS; returns ({output: values}, city vocabulary). Keeps the transform graph in
    `transform_dir` when given."""
    spec = {'num': tf.io.FixedLenFeature([], tf.float32), 'mm': tf.io.FixedLenFeature([], tf.float32),
            'inc': tf.io.FixedLenFeature([], tf.int64), 'bkt': tf.io.FixedLenFeature([], tf.float32),
            'city': tf.io.FixedLenFeature([], tf.string), 'town': tf.io.FixedLenFeature([], tf.string),
            'v': tf.io.VarLenFeature(tf.float32), 'y': tf.io.FixedLenFeature([], tf.string)}
    metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(spec))
    raw = [dict(zip(COLUMNS, row)) for row in ROWS]
    fn = functools.partial(preprocessing_fn, custom_config=custom_config(config))
    with tempfile.TemporaryDirectory() as tmp, tft_beam.Context(temp_dir=tmp, force_tf_compat_v1=False):
        (transformed, _), transform_fn = (raw, metadata) | tft_beam.AnalyzeAndTransformDataset(fn)
        out_dir = transform_dir or tempfile.mkdtemp(dir=tmp)
        _ = transform_fn | tft_beam.WriteTransformFn(out_dir)
        vocab = [v.decode() for v in tft.TFTransformOutput(out_dir).vocabulary_by_name('city')]
    columns = {k: np.array([row[k] for row in transformed]) for k in transformed[0]}
    # Each numeric feature's column of the block, beside the block itself.
    return {**columns, **per_feature(columns, config.features)}, vocab


@pytest.fixture(scope='module')
def outputs():
    return _transform(_config(classes=['no', 'yes']))


def _column(i):
    return np.array([row[i] for row in ROWS], dtype=np.float64)


def test_output_keys(outputs):
    out, _ = outputs
    assert sorted(out) == sorted([NUMERIC_KEY] + [f'{n}_xf' for n in
                                                  ['num', 'mm', 'inc', 'bkt', 'city', 'town', 'v', 'city_x_town', 'y']])
    assert out[NUMERIC_KEY].shape == (len(ROWS), 4)  # num, mm, inc, v side by side, in config order


def test_numeric_block_keeps_config_order_across_scalings():
    """Columns are scaled in groups by scaling; the block still lists them as the config does."""
    config = _config()
    config.features = {name: config.features[name] for name in ('mm', 'num', 'city', 'v', 'inc')}
    out, _ = _transform(config)
    np.testing.assert_allclose(out[NUMERIC_KEY][:, 0], [0, .5, 1, 1, 0, .5, 1, 1], rtol=1e-6)  # mm, min-max
    num = _column(0)
    np.testing.assert_allclose(out[NUMERIC_KEY][:, 1], (num - num.mean()) / num.std(), rtol=1e-5)
    present = [r[6][0] for r in ROWS if r[6]]
    np.testing.assert_allclose(out[NUMERIC_KEY][:, 2], [r[6][0] if r[6] else np.mean(present) for r in ROWS],
                               rtol=1e-6)


def test_numeric_scalings(outputs):
    out, _ = outputs
    num = _column(0)
    np.testing.assert_allclose(out['num_xf'], (num - num.mean()) / num.std(), rtol=1e-5)
    np.testing.assert_allclose(out['mm_xf'], [0, .5, 1, 1, 0, .5, 1, 1], rtol=1e-6)
    logs = np.log1p(_column(2))
    np.testing.assert_allclose(out['inc_xf'], (logs - logs.mean()) / logs.std(), rtol=1e-5)


def test_missing_numeric_filled_with_mean(outputs):
    out, _ = outputs
    present = [r[6][0] for r in ROWS if r[6]]
    expected = [r[6][0] if r[6] else sum(present) / len(present) for r in ROWS]
    np.testing.assert_allclose(out['v_xf'], expected, rtol=1e-6)


def test_quantile_buckets(outputs):
    out, _ = outputs
    assert list(out['bkt_xf']) == [0, 0, 0, 0, 1, 1, 1, 1]


def test_vocabulary_top_k_and_oov(outputs):
    out, vocab = outputs
    assert vocab == ['b', 'a']  # most frequent first, 'c' cut by top_k=2
    assert list(out['city_xf']) == [0, 1, 0, 2, 0, 1, 0, 0]  # 'c' -> the one OOV bucket, id 2


def test_hash_and_cross(outputs):
    out, _ = outputs
    towns = [r[5] for r in ROWS]
    assert list(out['town_xf']) == list(tf.strings.to_hash_bucket_fast(towns, 7).numpy())
    crossed = [f'{r[4]}{CROSS_SEPARATOR}{r[5]}' for r in ROWS]
    assert list(out['city_x_town_xf']) == list(tf.strings.to_hash_bucket_fast(crossed, 11).numpy())
    assert all(0 <= i < 11 for i in out['city_x_town_xf'])


def test_label_follows_configured_classes(outputs):
    out, _ = outputs
    assert list(out['y_xf']) == [1, 0, 0, 0, 1, 0, 0, 0]


def test_label_without_classes_uses_frequency_order():
    out, _ = _transform(_config())
    # 'no' is the most frequent value, so it gets id 0 and 'yes' id 1.
    assert list(out['y_xf']) == [1, 0, 0, 0, 1, 0, 0, 0]
    assert math.isclose(float(np.std(out['num_xf'])), 1.0, rel_tol=1e-5)


@pytest.mark.parametrize('classes, expected', [
    (None, [[1, 2], [0], [1, 0]]),              # vocabulary: b, a (2 rows each; ties by value, descending), c
    (['c', 'a', 'b'], [[1, 0], [2], [1, 2]]),   # the config's order
])
def test_multilabel_label_becomes_a_list_of_class_ids(classes, expected):
    label = {'column': 'y', 'type': 'multilabel', **({'classes': classes} if classes else {})}
    config = Config(name='t', data={'csv': 'x.csv'}, serving={'model_name': 't'},
                    features={'n': {'kind': 'numeric'}}, label=label)
    spec = {'n': tf.io.FixedLenFeature([], tf.float32), 'y': tf.io.FixedLenFeature([], tf.string)}
    metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(spec))
    rows = [{'n': 1.0, 'y': 'a|c'}, {'n': 2.0, 'y': 'b'}, {'n': 3.0, 'y': ' a | b '}]
    fn = functools.partial(preprocessing_fn, custom_config=custom_config(config))
    with tempfile.TemporaryDirectory() as tmp, tft_beam.Context(temp_dir=tmp, force_tf_compat_v1=False):
        (transformed, _), _ = (rows, metadata) | tft_beam.AnalyzeAndTransformDataset(fn)
    assert [list(r['y_xf']) for r in transformed] == expected


# ---- blanks in every kind of column ---------------------------------------------------------------------------
BLANKS = {  # column -> values per row, None where the CSV cell is blank
    'z': [1.0, None, 3.0, 8.0, None, 2.0, 5.0, 1.0],
    'm': [None, 4.0, 2.0, 10.0, 6.0, None, 2.0, 0.0],
    'l': [0.0, 10.0, None, 1000.0, 3.0, 100.0, None, 7.0],
    'r': [2.0, None, 4.0, None, 6.0, 6.0, 4.0, 2.0],
    'k': [7.0, 7.0, None, 7.0, 7.0, 7.0, 7.0, 7.0],         # constant where present
    'b': [1.0, 1.0, 9.0, 9.0, 5.0, None, 1.0, 9.0],          # its mean, 5.0, is also a present value
    'c': [3, 3, 7, None, 3, 7, None, 12],                    # integer codes, declared categorical
}


def _blank_config():
    return Config(name='t', data={'csv': 'x.csv'}, serving={'model_name': 't'},
                  label={'column': 'y', 'type': 'binary', 'classes': ['no', 'yes']}, features={
                      'z': {'kind': 'numeric', 'scaling': 'z_score'}, 'm': {'kind': 'numeric', 'scaling': 'min_max'},
                      'l': {'kind': 'numeric', 'scaling': 'log'}, 'r': {'kind': 'numeric', 'scaling': 'raw'},
                      'k': {'kind': 'numeric', 'scaling': 'z_score'}, 'b': {'kind': 'bucketized', 'buckets': 2},
                      'c': {'kind': 'categorical', 'oov_buckets': 1}})


@pytest.fixture(scope='module')
def blanks(tmp_path_factory):
    from tests.conftest import run_transform
    spec = {c: tf.io.VarLenFeature(tf.int64 if c == 'c' else tf.float32) for c in BLANKS}
    spec['y'] = tf.io.FixedLenFeature([], tf.string)
    rows = [{**{c: [] if v[i] is None else [v[i]] for c, v in BLANKS.items()}, 'y': ['no', 'yes'][i % 2]}
            for i in range(len(BLANKS['z']))]
    out_dir = str(tmp_path_factory.mktemp('blanks'))
    transformed, _ = run_transform(_blank_config(), rows, spec, out_dir)
    columns = {k: np.array([row[k] for row in transformed]) for k in transformed[0]}
    return per_feature(columns, _blank_config().features), tft.TFTransformOutput(out_dir)


def _filled(column):
    """The column with every blank replaced by the mean of its present values."""
    present = [v for v in BLANKS[column] if v is not None]
    return np.array([np.mean(present) if v is None else v for v in BLANKS[column]], np.float64)


def _z(x):
    return (x - x.mean()) / x.std() if x.std() else x - x.mean()


def test_blanks_are_filled_with_the_mean_then_scaled(blanks):
    """Whatever the scaling, a blank becomes its column's mean first, and the scaling then sees the filled
    column: z-score and log use the filled column's mean and variance, min-max its range."""
    out, _ = blanks
    np.testing.assert_allclose(out['z_xf'], _z(_filled('z')), rtol=1e-5, atol=1e-6)
    assert out['z_xf'][1] == pytest.approx(0.0, abs=1e-6) and np.std(out['z_xf']) == pytest.approx(1.0, rel=1e-5)
    m = _filled('m')
    np.testing.assert_allclose(out['m_xf'], (m - m.min()) / (m.max() - m.min()), rtol=1e-6)
    np.testing.assert_allclose(out['l_xf'], _z(np.log1p(_filled('l'))), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out['r_xf'], _filled('r'), rtol=1e-6)
    np.testing.assert_allclose(out['k_xf'], 0.0, atol=1e-6)  # no spread: centred, not divided by 0


def test_blank_bucketized_value_takes_the_bucket_of_the_mean(blanks):
    out, _ = blanks
    ids = out['b_xf'].tolist()
    assert ids[5] == ids[4]  # the blank, and the present 5.0 (the column's mean)
    assert ids[0] == ids[1] == ids[6] == 0 and ids[2] == ids[3] == ids[7] == 1


def test_integer_categorical_with_blanks(blanks):
    """Integer codes are looked up as text; a blank is a value of its own that no vocabulary holds: the OOV id."""
    out, tft_output = blanks
    assert [v.decode() for v in tft_output.vocabulary_by_name('c')] == ['3', '7', '12']
    assert out['c_xf'].tolist() == [0, 0, 1, 3, 0, 1, 3, 2]
