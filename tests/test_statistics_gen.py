"""The in-process StatisticsGen (components/statistics_gen) writes the statistics TFX's StatisticsGen writes: per
split, the same features, types, counts, moments, top values and the same inferred schema, on messy data read in
several record batches whose types differ. Both components run for real with LocalDagRunner."""
import glob
import os
import random

import pytest

from tests.conftest import write_csv


def _messy_rows(n: int):
    rng = random.Random(5)
    rows = []
    for i in range(n):
        rows.append([
            '' if rng.random() < 0.2 else rng.randint(-50, 50),                       # ints with blanks
            '' if rng.random() < 0.1 else f'{rng.gauss(3, 2):.4f}',                   # floats with blanks
            rng.choice(['red', 'green', 'blue', 'gelb', 'é', '']),                    # categories, unicode
            '' if i < 60 else rng.choice(['x', 'y']),                                 # blank in the first batches
            '',                                                                       # every cell blank
            0 if rng.random() < 0.7 else rng.randint(1, 255),                         # mostly zeros
            f'id-{i}',                                                                # unique per row
            rng.choice(['yes', 'no']),
        ])
    return rows


def _statistics(root, component_id):
    from tensorflow_data_validation import load_stats_binary
    folders = glob.glob(os.path.join(root, component_id, 'statistics', '*', 'Split-*'))
    return {os.path.basename(f): load_stats_binary(os.path.join(f, 'FeatureStats.pb')).datasets[0] for f in folders}


def _sorted_schema(statistics):
    import tensorflow_data_validation as tfdv
    from tensorflow_metadata.proto.v0 import statistics_pb2
    schema = tfdv.infer_schema(statistics_pb2.DatasetFeatureStatisticsList(datasets=[statistics]))
    features, domains = sorted(schema.feature, key=lambda f: f.name), sorted(schema.string_domain, key=lambda d: d.name)
    del schema.feature[:], schema.string_domain[:]
    schema.feature.extend(features)
    schema.string_domain.extend(domains)
    return schema


def test_in_process_statistics_are_tfx_statistics(tmp_path, monkeypatch):
    from tfx import v1 as tfx
    from tfx.orchestration import metadata
    from tfx_tabular.components.csv_example_gen.component import StreamingCsvExampleGen
    from tfx_tabular.components.statistics_gen import executor
    from tfx_tabular.components.statistics_gen.component import InProcessStatisticsGen
    monkeypatch.setattr(executor, 'BATCH_SIZE', 40)  # several batches per split; `late` is all blank in the first
    calls, original = [], executor.split_statistics
    monkeypatch.setattr(executor, 'split_statistics', lambda *a: calls.append(a[1]) or original(*a))
    data = tmp_path / 'data'
    data.mkdir()
    write_csv(data / 'data.csv', ['count', 'x', 'colour', 'late', 'empty', 'pixel', 'row_id', 'naïve label'],
              _messy_rows(400))
    example_gen = StreamingCsvExampleGen(input_base=str(data))
    theirs = tfx.components.StatisticsGen(examples=example_gen.outputs['examples']).with_id('TfxStatisticsGen')
    ours = InProcessStatisticsGen(examples=example_gen.outputs['examples'])
    root = str(tmp_path / 'root')
    tfx.orchestration.LocalDagRunner().run(tfx.dsl.Pipeline(
        pipeline_name='statistics', pipeline_root=root, components=[example_gen, theirs, ours],
        metadata_connection_config=metadata.sqlite_metadata_connection_config(str(tmp_path / 'metadata.sqlite')),
        beam_pipeline_args=['--direct_running_mode=in_memory']))
    assert sorted(calls) == ['eval', 'train']  # ours did run in this process
    expected, got = _statistics(root, 'TfxStatisticsGen'), _statistics(root, 'StatisticsGen')
    assert set(got) == set(expected) == {'Split-train', 'Split-eval'}
    for split, want in expected.items():
        have = got[split]
        assert have.num_examples == want.num_examples > 0
        want_features = {f.path.step[0]: f for f in want.features}
        have_features = {f.path.step[0]: f for f in have.features}
        assert set(have_features) == set(want_features)
        for name, w in want_features.items():
            h = have_features[name]
            assert (h.type, h.WhichOneof('stats')) == (w.type, w.WhichOneof('stats')), name
            if w.HasField('num_stats'):
                hn, wn = h.num_stats, w.num_stats
                assert hn.common_stats == wn.common_stats, name
                assert (hn.min, hn.max, hn.num_zeros) == (wn.min, wn.max, wn.num_zeros), name
                assert hn.mean == pytest.approx(wn.mean) and hn.std_dev == pytest.approx(wn.std_dev), name
            elif w.HasField('string_stats'):
                hs, ws = h.string_stats, w.string_stats
                assert hs.common_stats == ws.common_stats, name
                assert hs.unique == ws.unique and list(hs.top_values) == list(ws.top_values), name
        assert _sorted_schema(have) == _sorted_schema(want)


@pytest.mark.parametrize('args, in_process', [
    ([], True),  # Beam's own default mode is in_memory
    (['--direct_running_mode=in_memory'], True), (['--direct_running_mode=multi_processing'], False),
    (['--runner=DirectRunner', '--direct_running_mode=in_memory'], True),
    (['--runner=DataflowRunner', '--direct_running_mode=in_memory'], False),
])
def test_statistics_skip_beam_only_where_beam_would_run_in_this_process(args, in_process):
    from tfx_tabular.pipeline.core.beam import runs_in_process
    assert runs_in_process(args) is in_process


def _columns_that_stress_histograms(rows: int):
    """Numeric columns whose quantiles have ties, point masses, infinities, NaN, a single value, huge spreads."""
    import numpy as np
    rng = np.random.default_rng(11)
    columns = {
        'gauss': rng.normal(3, 2, rows),
        'pixels': np.where(rng.random(rows) < 0.7, 0, rng.integers(0, 256, rows)).astype(float),
        'few_values': rng.choice([1.0, 2.0, 2.0, 5.0], rows),
        'constant': np.full(rows, 7.5),
        'with_inf': np.where(rng.random(rows) < 0.05, np.inf, rng.normal(0, 1, rows)),
        'with_neg_inf': np.where(rng.random(rows) < 0.05, -np.inf, rng.exponential(3, rows)),
        'only_inf': np.where(rng.random(rows) < 0.5, np.inf, -np.inf),
        'with_nan': np.where(rng.random(rows) < 0.3, np.nan, rng.normal(0, 1e9, rows)),
        'tiny_spread': 1 + rng.integers(0, 3, rows) * 1e-12,
        'ints': rng.integers(-5, 6, rows),
    }
    columns['one_value'] = np.where(np.arange(rows) == 3, 4.0, np.nan)  # NaN here: a missing value
    return columns


def test_numpy_histograms_equal_tfdv_histograms_to_the_last_bit():
    import pyarrow as pa
    from tensorflow_data_validation.statistics import stats_impl, stats_options
    from tfx_tabular.components.statistics_gen.histograms import numpy_histograms
    columns = _columns_that_stress_histograms(3000)
    batches = [pa.RecordBatch.from_arrays(
        [pa.array([[v] if v == v or name != 'one_value' else None for v in values[start:start + 1000]])
         for name, values in columns.items()],
        list(columns)) for start in range(0, 3000, 1000)]
    for options in (stats_options.StatsOptions(), stats_options.StatsOptions(num_histogram_buckets=7)):
        outputs = []
        for numpy_path in (False, True):
            generators = stats_impl.get_generators(options, in_memory=True)
            accumulators = [g.create_accumulator() for g in generators]
            for batch in batches:
                accumulators = [g.add_input(a, batch) for g, a in zip(generators, accumulators)]
            if numpy_path:
                with numpy_histograms():
                    outputs.append(stats_impl.extract_statistics_output(accumulators, generators))
            else:
                outputs.append(stats_impl.extract_statistics_output(accumulators, generators))
        tfdv_statistics, ours = outputs
        histograms = [h for f in ours.datasets[0].features for h in f.num_stats.histograms if h.type == 0]
        assert len(histograms) == len(columns) and sum(len(h.buckets) for h in histograms) > 40
        assert ours.SerializeToString(deterministic=True) == tfdv_statistics.SerializeToString(deterministic=True)
