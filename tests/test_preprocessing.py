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

from pipeline.config import Config
from transforms.preprocessing import CROSS_SEPARATOR, custom_config, preprocessing_fn

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
    return {k: [row[k] for row in transformed] for k in transformed[0]}, vocab


@pytest.fixture(scope='module')
def outputs():
    return _transform(_config(classes=['no', 'yes']))


def _column(i):
    return np.array([row[i] for row in ROWS], dtype=np.float64)


def test_output_keys(outputs):
    out, _ = outputs
    assert sorted(out) == sorted(f'{n}_xf' for n in
                                 ['num', 'mm', 'inc', 'bkt', 'city', 'town', 'v', 'city_x_town', 'y'])


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
