"""Broken CSVs stop before Beam starts, with the file, row and fix; `init` writes a usable starter config."""
import os

import pytest
import yaml

from tfx_tabular.pipeline.core.config import load_config
from tfx_tabular.pipeline.core.csv_checks import DataError, check_csv_files
from tests.conftest import DATA, run_cli, write_csv


def _check(path, label='y', label_type='binary', delimiter='|'):
    return check_csv_files([str(path)], label, label_type, delimiter)


def test_counts_label_classes(tmp_path):
    path = write_csv(tmp_path / 'a.csv', ['x', 'y'], [(1, 'a'), (2, 'b'), (3, 'a')])
    assert _check(path) == {'a': 2, 'b': 1}


@pytest.mark.parametrize('content, expected', [
    ('', 'the file is empty'),
    ('1,2,3\n4,5,6\n', 'row 1 has no column names'),
    ('x,y\n', 'has a header but no data rows'),
    ('x,y\n1,a\n2,b,3\n', 'row 3 has 3 fields, the header has 2'),
    ('x,y\n1,a\n2,a\n', "has a single class ('a')"),
    ('x,y\n1,a\n2,b\n3,c\n', 'has 3 classes'),
    ('x,y\n1,a\n2,\n3,b\n', 'is empty in 1 rows'),
    ('x,x,y\n1,2,a\n', "column 'x' appears twice"),
])
def test_bad_csv_named_with_fix(tmp_path, content, expected):
    path = tmp_path / 'bad.csv'
    path.write_text(content)
    with pytest.raises(DataError) as info:
        _check(path)
    assert expected in str(info.value)
    assert str(path) in str(info.value) or 'label column' in str(info.value)


def test_run_stops_before_beam_on_ragged_csv(small_config, tmp_path):
    write, raw = small_config
    config = write()
    with open(tmp_path / 'd.csv', 'a') as f:
        f.write('1,2\n')
    result = run_cli('run', '--config', config)
    assert result.returncode == 2, result.stderr
    assert 'data error:' in result.stderr and 'row 32 has 2 fields' in result.stderr
    assert 'Traceback' not in result.stderr
    assert not os.path.exists(load_config(config).run_path + '/metadata.sqlite')


def test_init_guesses_label_and_kinds(tmp_path):
    out = tmp_path / 'penguins.yaml'
    result = run_cli('init', os.path.join(DATA, 'penguins', 'penguins.csv'), '--output', str(out))
    assert result.returncode == 0, result.stderr
    raw = yaml.safe_load(out.read_text())
    assert raw['label'] == {'column': 'species', 'type': 'multiclass'}
    assert raw['features']['island']['kind'] == 'categorical'
    assert raw['features']['bill_length_mm']['kind'] == 'numeric'
    config = load_config(str(out))  # valid as written, CSV columns included
    assert config.data.csv.endswith('penguins.csv')


def test_init_with_label_flag_and_todo_when_unknown(tmp_path):
    csv_path = write_csv(tmp_path / 'd.csv', ['a', 'b', 'colour'],
                         [(i, i * 2.5, ['red', 'blue'][i % 2]) for i in range(40)])
    result = run_cli('init', str(csv_path), '--output', str(tmp_path / 'c.yaml'))
    assert result.returncode == 0 and 'TODO' in result.stdout
    text = (tmp_path / 'c.yaml').read_text()
    assert 'column: TODO' in text
    rejected = run_cli('validate', '--config', str(tmp_path / 'c.yaml'))
    assert rejected.returncode == 2 and 'label column is still TODO' in rejected.stderr
    result = run_cli('init', str(csv_path), '--label', 'colour', '--output', str(tmp_path / 'c.yaml'), '--force')
    assert result.returncode == 0
    config = load_config(str(tmp_path / 'c.yaml'))
    assert config.label.column == 'colour' and config.label.type == 'binary'
    assert 'colour' not in config.features
    missing = run_cli('init', str(csv_path), '--label', 'nope', '-o', str(tmp_path / 'x.yaml'))
    assert missing.returncode == 2 and "--label 'nope' is not a column" in missing.stderr


def test_multilabel_counts_each_label(tmp_path):
    path = tmp_path / 'm.csv'
    path.write_text('x,y\n1,a|c\n2,c\n3, b | a \n')
    assert _check(path, label_type='multilabel') == {'a': 2, 'b': 1, 'c': 2}
    path.write_text('x,y\n1,a;c\n2,c\n')
    assert _check(path, label_type='multilabel', delimiter=';') == {'a': 1, 'c': 2}
