"""The streaming CsvExampleGen (components/csv_example_gen) writes what TFX's CsvExampleGen writes: the same
examples (types, values, blanks) in the same splits, on messy data and over several files and batches.

Both components run for real with LocalDagRunner. Speed and memory at scale: bench/scale.py and bench/width.py.
"""
import csv
import functools
import glob
import os
import random

import pytest


def _examples_by_split(component, csv_dir, root):
    """Runs one ExampleGen with LocalDagRunner; returns {split: its serialized examples, sorted}."""
    import tensorflow as tf
    from tfx import v1 as tfx
    from tfx.orchestration import metadata
    pipeline = tfx.dsl.Pipeline(
        pipeline_name='example-gen', pipeline_root=str(root / 'root'), components=[component(input_base=csv_dir)],
        metadata_connection_config=metadata.sqlite_metadata_connection_config(str(root / 'metadata.sqlite')),
        beam_pipeline_args=['--direct_running_mode=in_memory'])
    tfx.orchestration.LocalDagRunner().run(pipeline)
    splits = {}
    for folder in glob.glob(str(root / 'root' / 'CsvExampleGen' / 'examples' / '*' / 'Split-*')):
        files = glob.glob(os.path.join(folder, '*.gz'))
        splits[os.path.basename(folder)] = sorted(tf.data.TFRecordDataset(files, 'GZIP').as_numpy_iterator())
    return splits


def _messy_rows(n: int, seed: int):
    """Rows that exercise TFX's type inference and conversion cell by cell."""
    rng = random.Random(seed)
    texts = ['a', 'b,c', '"q"', 'line\nbreak', 'crlf\r\nbreak', 'é', '日本語', ' padded ', 'x' * 300, '0x1F', '1,5']
    rows = []
    for i in range(n):
        blank = rng.random() < 0.15
        rows.append([
            '' if blank else str(rng.randint(-10 ** 6, 10 ** 6)),                         # n: int64 with blanks
            '' if rng.random() < 0.1 else rng.choice(['0.5', '-0.0', '1e39', '-1e-50', ' 2.5', 'nan', 'inf',
                                                      f'{rng.gauss(0, 1e3):.6f}', '3']),   # x: float32
            rng.choice(['1', '2', '3.25', '']),                                          # mixed: int and float
            str(rng.randint(0, 9)) if i != n // 2 else str(2 ** 63),                     # big: beyond int64 -> text
            rng.choice(['1.5', '2', '']) if i != n // 3 else str(-2 ** 64),              # bigf: float + huge int
            rng.choice(['1_000', '+7', ' 12 ', '-3']),                                   # odd: int() accepts these
            '' if rng.random() < 0.2 else rng.choice(texts),                              # text: quoted, unicode
            rng.choice(['setosa', 'versicolor', '']),                                    # class (a keyword)
            '',                                                                          # empty: every cell blank
            rng.choice(['ü', 'ß', '€5', '']),                                           # unicode name and values
            str(i % 2 if seed == 0 else (i % 2) + 0.5),                                  # filetype: int / float
            rng.choice(['x', '1', '']),                                                  # twice: text here,
            rng.choice(['1', '2', '']),                                                  # ints here
        ])
    return rows


def test_streaming_csv_example_gen_writes_what_tfx_csv_example_gen_writes(tmp_path, monkeypatch):
    """Same examples in the same splits as TFX's executor: blanks, quoted commas, quotes and newlines, ints, floats
    (float32 overflow, nan, inf), ints beyond int64, unicode, a column `class`, an all-blank column, a blank line,
    a column whose type differs between the files and between batches of rows, two columns of one name (TFX types
    them together and keeps the last), names one the prefix of another (protobuf's order puts `bigf` first)."""
    import tensorflow as tf
    from tfx import v1 as tfx
    from tfx_tabular.components.csv_example_gen import executor
    from tfx_tabular.components.csv_example_gen.component import StreamingCsvExampleGen
    monkeypatch.setattr(executor, 'BATCH_CELLS', 200)  # batches of 18 rows: types widen across batches
    data = tmp_path / 'data'
    data.mkdir()
    header = ['n', 'x', 'mixed', 'big', 'bigf', 'odd', 'text', 'class', 'empty', 'naïve €', 'filetype', 'twice', 'twice']
    for index, n in enumerate((150, 90)):
        with open(data / f'part-{index}.csv', 'w', newline='', encoding='utf-8') as f:
            writer = csv.writer(f)
            rows = _messy_rows(n, seed=index)
            writer.writerows([header] + rows[:40])
            f.write('\n')  # a blank line: skipped
            writer.writerows(rows[40:])
    (tmp_path / 'tfx').mkdir()
    (tmp_path / 'ours').mkdir()
    expected = _examples_by_split(tfx.components.CsvExampleGen, str(data), tmp_path / 'tfx')
    ours = _examples_by_split(StreamingCsvExampleGen, str(data), tmp_path / 'ours')
    assert set(ours) == {'Split-train', 'Split-eval'} and sum(len(v) for v in ours.values()) == 240
    kinds = {name: feature.WhichOneof('kind')
             for name, feature in tf.train.Example.FromString(ours['Split-train'][0]).features.feature.items()}
    assert kinds == {'n': 'int64_list', 'x': 'float_list', 'mixed': 'float_list', 'big': 'bytes_list',
                     'bigf': 'bytes_list', 'odd': 'int64_list', 'text': 'bytes_list', 'class': 'bytes_list',
                     'empty': None, 'naïve €': 'bytes_list', 'filetype': 'float_list',
                     'twice': 'bytes_list'}
    # TFX writes the features in its map's order; ours are written as TFX hashes them for the split: sorted, the
    # deterministic serialization. Same bytes, then, once TFX's are serialized that way.
    assert ours == {split: sorted(tf.train.Example.FromString(record).SerializeToString(deterministic=True)
                                  for record in records) for split, records in expected.items()}


@pytest.mark.parametrize('args, local', [
    ([], True), (['--direct_running_mode=multi_processing'], True), (['--runner=DirectRunner'], True),
    (['--runner=DataflowRunner', '--project=p'], False), (['--runner=PortableRunner'], False),
])
def test_reshuffle_is_skipped_only_on_the_local_runner(args, local):
    from tfx_tabular.pipeline.core.beam import runs_locally
    assert runs_locally(args) is local


def test_examples_are_tfx_examples_serialized_deterministically():
    """Without Beam, on random columns: long names and texts (lengths of two and three bytes), negative and large
    integers, float32 overflow, a name that is the prefix of another, an all-blank column, a single row."""
    from tfx.components.example_gen.csv_example_gen.executor import _ParsedCsvToTfExample
    from tfx_bsl.coders import csv_decoder
    from tfx_tabular.components.csv_example_gen import executor
    rng = random.Random(3)
    names = ['a', 'ab', 'b', 'é', 'n' * 200, 'x y', 'class', '', 'big', 'bigger', 'blank']
    cell = {'a': lambda: str(rng.randint(-2 ** 63, 2 ** 63 - 1)), 'ab': lambda: repr(rng.uniform(-1e40, 1e40)),
            'b': lambda: 'z' * rng.choice([1, 127, 128, 20_000]), 'é': lambda: rng.choice(['ü', '0.5', '7']),
            'n' * 200: lambda: str(rng.randint(0, 300)), 'x y': lambda: '1e-45', 'class': lambda: 'setosa',
            '': lambda: str(rng.randint(-5, 5)), 'big': lambda: rng.choice(['1', '2.5']), 'bigger': lambda: '-0.0',
            'blank': lambda: ''}
    for n in (1, 40):
        rows = [[(cell[name]() if rng.random() > 0.2 else '').encode() for name in names] for _ in range(n)]
        inferrer = csv_decoder.ColumnTypeInferrer(names, skip_blank_lines=True)
        infos = inferrer.extract_output(functools.reduce(inferrer.add_input, rows, inferrer.create_accumulator()))
        types = [executor._column_type(list(cells), executor.UNKNOWN) for cells in zip(*rows)]
        assert types == [info.type for info in infos]
        to_example = _ParsedCsvToTfExample()
        expected = [next(to_example.process(row, infos)).SerializeToString(deterministic=True) for row in rows]
        order = executor.serialize.deterministic_order(names)
        assert executor._to_examples(names, order, types, [list(cells) for cells in zip(*rows)]) == expected
