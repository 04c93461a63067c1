"""Messy real-world CSVs (tests/messy_csv.py): bad ones refused in one line before Beam starts, the rest read
(encoding, delimiter, byte-order mark, missing-value tokens) and handed to CsvExampleGen as a normalised copy only
when it would misread them; `init` choosing sensibly and never writing a config the run rejects."""
import csv
import os

import pytest
import yaml

from tfx_tabular.pipeline.core.config import load_config
from tfx_tabular.pipeline.core.csv_checks import DataError, prepare_input, scan_csv_files, sniff_format
from tfx_tabular.pipeline.init_config import _entry
from tests import messy_csv
from tests.conftest import DATA, run_cli

CHURN_FEATURES = {'age': {'kind': 'numeric'}, 'income': {'kind': 'bucketized', 'buckets': 3},
                  'plan': {'kind': 'categorical'}}


def _config(csv_path, features=None, label='churned', **data) -> str:
    """A config next to `csv_path` whose run directory is beside it too; returns its path."""
    folder = os.path.dirname(csv_path)
    raw = {'name': 'messy', 'data': {'csv': os.path.basename(csv_path), **data},
           'label': {'column': label, 'type': 'binary'}, 'features': features or CHURN_FEATURES,
           'serving': {'model_name': 'messy', 'push_dir': os.path.join(folder, 'serving')},
           'run_dir': os.path.join(folder, 'run')}
    path = os.path.join(folder, 'config.yaml')
    with open(path, 'w', encoding='utf-8') as f:
        yaml.safe_dump(raw, f, allow_unicode=True)
    return path


def _refused(result, message: str):
    """Exit 2 and exactly `data error: <message>` on stderr: one line, no traceback."""
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.splitlines() == [f'data error: {message}'], result.stderr


def _rows(path):
    with open(path, newline='', encoding='utf-8') as f:
        return list(csv.reader(f))


# ---- refused before Beam, in one line ----------------------------------------------------------------------

def test_empty_file_is_empty_for_validate_and_run(tmp_path):
    path = messy_csv.empty(tmp_path)
    config = _config(path)
    message = f'{path}: the file is empty; it needs a header row and at least one data row'
    _refused(run_cli('validate', '--config', config), message)  # not "every feature is not a CSV column"
    _refused(run_cli('run', '--config', config), message)
    assert not os.path.exists(tmp_path / 'run')


def _invalid_utf8_message(path):
    offset = open(path, 'rb').read().index(b'\xe9')
    return (f'{path}: line {messy_csv.INVALID_UTF8_LINE} is not UTF-8 (byte e9 at offset {offset}); set '
            'data.encoding: cp1252 in the config (Windows-1252, as Excel on Windows saves) or re-save the file as '
            'UTF-8')


@pytest.mark.parametrize('case', ['header_only', 'invalid_utf8', 'text_in_numeric', 'empty_feature', 'ragged'])
def test_run_refuses_bad_data_before_beam(tmp_path, case):
    features = CHURN_FEATURES
    if case == 'header_only':
        path = messy_csv.header_only(tmp_path)
        message = f'{path}: the file has a header but no data rows; add data'
    elif case == 'invalid_utf8':
        path = messy_csv.invalid_utf8(tmp_path)
        message = _invalid_utf8_message(path)
    elif case == 'text_in_numeric':
        path = messy_csv.text_in_numeric(tmp_path)
        message = (f"{path}: row {messy_csv.TEXT_IN_NUMERIC_LINE}, column 'age' holds 'forty', not a number, but "
                   'features.age is numeric; fix or blank the value (blank, NA, null and ? are missing values) or '
                   'make the feature categorical')
    elif case == 'empty_feature':
        path = messy_csv.profile_mix(tmp_path)
        features = {'empty': {'kind': 'categorical'}, 'rooms': {'kind': 'numeric'}}
        message = f"{path}: column 'empty' has no value in any row; remove features.empty from the config"
    else:
        path = messy_csv.delimited(tmp_path, ';')
        with open(path, 'a') as f:
            f.write('40;1000;basic\n')
        message = (f'{path}: row 62 has 3 fields, the header has 4; fix the row (quote values that contain '
                   'semicolons)')
    result = run_cli('run', '--config', _config(path, features, label='target' if case == 'empty_feature'
                                                 else 'churned'))
    _refused(result, message)
    assert 'Traceback' not in result.stderr and not os.path.exists(tmp_path / 'run')  # stopped before any TFX


def test_na_tokens_are_missing_only_in_numeric_columns(tmp_path):
    """NA, N/A, null, ?, NaN and blanks are missing numbers; in a categorical column they stay values."""
    path = messy_csv.na_tokens(tmp_path)
    scan = scan_csv_files([path], 'churned', 'binary', numeric_columns=['age', 'income'])
    assert scan.rewrites[path] == ['missing-value tokens in numeric columns']
    assert scan_csv_files([path], 'churned', 'binary', numeric_columns=['income']).rewrites[path] == [
        'missing-value tokens in numeric columns']
    assert scan_csv_files([path], 'churned', 'binary').rewrites[path] == []  # no numeric column: read as it is


def test_bad_encoding_and_delimiter_settings_are_config_errors(tmp_path):
    path = messy_csv.clean(tmp_path)
    result = run_cli('validate', '--config', _config(path, encoding='klingon'))
    assert result.returncode == 2 and result.stderr.splitlines() == [
        f"config error: {tmp_path / 'config.yaml'}: data.encoding: unknown encoding 'klingon'; use auto, utf-8, "
        'cp1252, latin-1 or another Python codec name'], result.stderr
    result = run_cli('validate', '--config', _config(path, delimiter='\\t'))
    assert result.returncode == 2 and result.stderr.splitlines() == [
        f"config error: {tmp_path / 'config.yaml'}: data.delimiter: must be auto, tab or one character such as ; "
        "or |, got '\\\\t' (a tab in YAML: tab, or \"\\t\" in double quotes)"], result.stderr


# ---- read, and normalised for CsvExampleGen only when needed ------------------------------------------------

def test_clean_csv_is_read_where_it_is(tmp_path):
    config = load_config(_config(messy_csv.clean(tmp_path)))
    scan, pattern = prepare_input(config)
    assert pattern == config.csv_pattern and not os.path.exists(tmp_path / 'run')
    assert scan.label_counts == {'no': 188, 'yes': 112}


@pytest.mark.parametrize('delimiter', [';', '\t', '|'])
def test_delimiter_detected_and_copy_comma_delimited(tmp_path, delimiter):
    path = messy_csv.delimited(tmp_path, delimiter)
    assert sniff_format(path).delimiter == delimiter
    config = load_config(_config(path))
    scan, pattern = prepare_input(config)
    name = {';': 'semicolon', '\t': 'tab', '|': 'pipe'}[delimiter]
    assert scan.rewrites == {path: [f'{name}-delimited']}
    copy = pattern.replace('*', 'part-00000')
    assert _rows(copy)[:2] == [['age', 'income', 'plan', 'churned'], [str(v) for v in messy_csv.churn_rows(1)[1]]]
    assert open(copy).readline() == 'age,income,plan,churned\n'  # what TFX splits on commas


def test_delimiter_sniffed_outside_quotes(tmp_path):
    path = tmp_path / 'q.csv'
    path.write_text('"a,b,c";d;e\n1;2;3\n')
    assert sniff_format(str(path)).delimiter == ';'
    path.write_text('single\n1\n')
    assert sniff_format(str(path)).delimiter == ','


def test_excel_semicolon_bom_decimal_commas_and_na_normalised(tmp_path):
    path = messy_csv.excel_semicolon(tmp_path)
    config = load_config(_config(path))  # the BOM is not part of the first column's name
    scan, pattern = prepare_input(config)
    assert scan.rewrites[path] == ['a byte-order mark', 'semicolon-delimited', 'decimal commas in numeric columns',
                                   'missing-value tokens in numeric columns']
    assert scan.label_counts == {'no': 188, 'yes': 112}
    raw = open(pattern.replace('*', 'part-00000'), 'rb').read()
    assert raw.startswith(b'age,income,plan,churned\n')
    rows = _rows(pattern.replace('*', 'part-00000'))
    source = messy_csv.churn_rows(300, na_every=9, decimal_comma=True)
    assert len(rows) == len(source)
    for got, want in zip(rows[1:], source[1:]):
        for cell, value in zip(got[:2], want[:2]):
            if str(value).strip() in messy_csv.NA_TOKENS or str(value).lower() == 'nan':
                assert cell == '', (got, want)  # a blank: missing for CsvExampleGen, filled with the mean
            else:
                assert float(cell) == float(str(value).replace(',', '.'))


def test_copy_made_once_per_input_version(tmp_path):
    """The copy keeps its mtime across runs (CsvExampleGen's fingerprint, so TFX's cache, hold); a changed CSV
    gets a new copy and the old one goes."""
    path = messy_csv.bom(tmp_path)
    config = load_config(_config(path))
    _, pattern = prepare_input(config)
    copy = pattern.replace('*', 'part-00000')
    mtime = os.stat(copy).st_mtime_ns
    assert prepare_input(config)[1] == pattern and os.stat(copy).st_mtime_ns == mtime
    with open(path, 'a') as f:
        f.write('30,2000.5,pro,yes\n')
    _, new_pattern = prepare_input(config)
    assert new_pattern != pattern and not os.path.exists(copy)
    assert _rows(new_pattern.replace('*', 'part-00000'))[-1] == ['30', '2000.5', 'pro', 'yes']
    assert sorted(os.listdir(tmp_path / 'run' / 'csv_input')) == [os.path.basename(os.path.dirname(new_pattern))]


def test_cp1252_read_when_set_and_copied_as_utf8(tmp_path):
    path = messy_csv.cp1252(tmp_path)
    features = {'âge': {'kind': 'numeric'}, 'Catégorie': {'kind': 'categorical'}}
    with pytest.raises(DataError, match='line 1 is not UTF-8 .* set data.encoding: cp1252'):
        load_config(_config(path, features))
    config = load_config(_config(path, features, encoding='cp1252'))
    scan, pattern = prepare_input(config)
    assert scan.rewrites[path] == ['cp1252 text']
    rows = _rows(pattern.replace('*', 'part-00000'))
    assert rows[0] == ['âge', 'income', 'Catégorie', 'churned']
    assert {r[2] for r in rows[1:]} == {'Économie', 'Confort €', 'Premium’s'}


def test_quoted_and_padded_header_rewritten_plain(tmp_path):
    path = messy_csv.weird_names(tmp_path)
    config = load_config(_config(path, {'padded': {'kind': 'numeric'}, 'Total $ (USD)': {'kind': 'numeric'}},
                                 label='class'))
    scan, pattern = prepare_input(config)
    assert scan.rewrites[path] == ['a header CsvExampleGen would misread (quoted or space-padded names, or odd '
                                   'line ends)']
    first_line = open(pattern.replace('*', 'part-00000'), encoding='utf-8').readline()
    assert first_line.strip().split(',') == messy_csv.WEIRD_NAMES


def test_header_name_tfx_cannot_read(tmp_path):
    path = tmp_path / 'c.csv'
    path.write_text('"a,b",y\n1,n\n2,y\n')
    with pytest.raises(DataError, match=r"column name 'a,b' holds a comma, quote or line break.*rename it"):
        scan_csv_files([str(path)], 'y', 'binary')


def _on_ram(config_path, local: str) -> str:
    """`local` copied to ram:// (TensorFlow's in-memory file system, read through tf.io.gfile as gs:// and s3://
    are) and the config at `config_path` pointed at the copy; returns the URI."""
    import tensorflow as tf
    remote = f'ram://{os.path.basename(os.path.dirname(local))}-{os.getpid()}/{os.path.basename(local)}'
    tf.io.gfile.makedirs(remote.rsplit('/', 1)[0])
    tf.io.gfile.copy(local, remote, overwrite=True)
    with open(config_path, encoding='utf-8') as f:
        raw = yaml.safe_load(f)
    raw['data']['csv'] = remote
    with open(config_path, 'w', encoding='utf-8') as f:
        yaml.safe_dump(raw, f, allow_unicode=True)
    return remote


@pytest.mark.parametrize('make', [messy_csv.excel_semicolon, messy_csv.bom, messy_csv.clean])
def test_object_storage_csv_read_and_normalised_like_a_local_one(tmp_path, make):
    """A URI data.csv (gs://, s3://; here ram://) is sniffed, checked and normalised exactly as its local copy,
    the copy going under the (local) run_dir; Beam cannot read ram://, so even a clean file is copied, saying so."""
    local = make(tmp_path)
    config_path = _config(local)
    local_scan, local_pattern = prepare_input(load_config(config_path))
    want = open(local_pattern.replace('*', 'part-00000') if local_pattern != local else local, 'rb').read()
    remote = _on_ram(config_path, local)
    config = load_config(config_path)  # the header check reads the URI
    assert config.csv_files == [remote]
    scan, pattern = prepare_input(config)
    assert scan.label_counts == local_scan.label_counts and scan.formats == {remote: local_scan.formats[local]}
    beam = "a ram:// path, which Beam's CsvExampleGen cannot read"
    assert scan.rewrites == {remote: local_scan.rewrites[local] + [beam]}
    assert pattern.startswith(str(tmp_path / 'run' / 'csv_input')) and pattern.endswith('*.csv')
    assert open(pattern.replace('*', 'part-00000'), 'rb').read() == want  # the local copy's bytes
    assert prepare_input(config)[1] == pattern  # once per version of the input


def test_object_storage_csv_errors_name_the_uri(tmp_path):
    config_path = _config(messy_csv.clean(tmp_path))
    remote = _on_ram(config_path, messy_csv.invalid_utf8(tmp_path))
    with pytest.raises(DataError, match=rf'^{remote}: line {messy_csv.INVALID_UTF8_LINE} is not UTF-8'):
        load_config(config_path)


def test_copy_needs_a_run_dir_beam_can_read(tmp_path):
    config = load_config(_config(messy_csv.bom(tmp_path)))
    config.run_dir = f'ram://run-{os.getpid()}'
    with pytest.raises(DataError, match=r": has a byte-order mark, so the run writes a normalised copy under "
                                        r"run_dir, but Beam cannot read ram://run-\d+; set run_dir to a local"):
        prepare_input(config)


# ---- init ------------------------------------------------------------------------------------------------

def _init(csv_path, *args) -> dict:
    """`tfx-tabular init`, then the written config through load_config and the run's pre-Beam pass (what `run`
    does before Beam): init never writes a config the run rejects. Returns the parsed YAML."""
    out = os.path.join(os.path.dirname(csv_path), 'init.yaml')
    result = run_cli('init', csv_path, '-o', out, '--force', *args)
    assert result.returncode == 0, result.stderr
    config = load_config(out)
    config.run_dir = os.path.join(os.path.dirname(csv_path), 'run')
    prepare_input(config)
    with open(out, encoding='utf-8') as f:
        return yaml.safe_load(f) | {'_text': open(out, encoding='utf-8').read()}


@pytest.mark.parametrize('make', [messy_csv.clean, messy_csv.excel_semicolon, messy_csv.bom, messy_csv.na_tokens,
                                  messy_csv.invalid_utf8, messy_csv.cp1252, messy_csv.text_in_numeric,
                                  lambda d: messy_csv.delimited(d, ';'), lambda d: messy_csv.delimited(d, '\t'),
                                  lambda d: messy_csv.delimited(d, '|')])
def test_init_writes_a_config_the_run_accepts(tmp_path, make):
    raw = _init(make(tmp_path), '--label', 'churned')
    assert raw['label'] == {'column': 'churned', 'type': 'binary'}
    assert len(raw['features']) == 3


def test_init_reads_what_the_run_reads(tmp_path):
    raw = _init(messy_csv.excel_semicolon(tmp_path), '--label', 'churned')
    assert raw['data']['delimiter'] == ';' and 'encoding' not in raw['data']
    assert raw['features']['age'] == {'kind': 'numeric', 'scaling': 'z_score'}  # NA tokens are missing, not text
    assert raw['features']['income']['kind'] == 'numeric'  # decimal commas are numbers
    assert '  age: {kind: numeric, scaling: z_score}   # integers 18..80, 62 distinct, 6% missing (filled with the ' \
           'mean)' in raw['_text']
    raw = _init(messy_csv.delimited(tmp_path, '\t'), '--label', 'churned')
    assert raw['data']['delimiter'] == '\t'
    raw = _init(messy_csv.invalid_utf8(tmp_path), '--label', 'churned')
    assert raw['data']['encoding'] == 'cp1252'
    assert (f'  encoding: cp1252   # not UTF-8 (line {messy_csv.INVALID_UTF8_LINE}: byte e9); check that accented '
            'text reads right') in raw['_text']
    raw = _init(messy_csv.text_in_numeric(tmp_path), '--label', 'churned')
    assert raw['features']['age']['kind'] == 'categorical'
    assert (f"# mostly numbers, but row {messy_csv.TEXT_IN_NUMERIC_LINE} holds 'forty': fix such values and make it "
            'numeric') in raw['_text']


def test_init_choices_on_messy_columns(tmp_path):
    raw = _init(messy_csv.profile_mix(tmp_path))
    assert raw['label'] == {'column': 'target', 'type': 'multiclass'}
    text = raw['_text']
    for line in ['  # row: left out: integers 1..200, each row its own, like a row counter',
                 '  # customer_id: left out: named like an id',
                 '  # uuid: left out: named like an id',
                 "  # constant: left out: the same value ('same') in every row",
                 '  # empty: left out: empty in every row',
                 "  # signup_date: left out: dates or times (e.g. '2023-",
                 '  # comment: left out: free text (',
                 '  # email: left out: every row has its own value (an id?)',
                 "  zip: {kind: hashed, hash_buckets: 398}   # integer codes (zero-padded, e.g. '0",
                 '  store_code: {kind: categorical, oov_buckets: 1}   # integer codes (named like a code), ',
                 '  rooms: {kind: numeric, scaling: z_score}   # integers 1..5, 5 distinct',
                 '  flag: {kind: numeric, scaling: z_score}   # integers 0..1, 2 distinct',
                 '  ratio: {kind: numeric, scaling: z_score}   # numbers ',
                 '  city: {kind: categorical, oov_buckets: 1}   # text, 3 distinct values']:
        assert line in text, line
    assert set(raw['features']) == {'zip', 'store_code', 'rooms', 'flag', 'ratio', 'city'}
    assert raw['slicing'] == ['city']


def test_init_wide_few_valued_integers_are_numeric(tmp_path):
    raw = _init(messy_csv.wide(tmp_path))
    assert raw['label'] == {'column': 'label', 'type': 'multiclass'}
    assert len(raw['features']) == 300
    assert {f['kind'] for f in raw['features'].values()} == {'numeric'}


def test_init_any_column_name(tmp_path):
    raw = _init(messy_csv.weird_names(tmp_path))
    assert raw['label'] == {'column': 'class', 'type': 'binary'}
    assert set(raw['features']) == set(messy_csv.WEIRD_NAMES) - {'class'}


@pytest.mark.parametrize('name', messy_csv.WEIRD_NAMES + [
    'on', 'No', '~', '123', '1.5', '-x', '? x', '[a', '{a', '*a', '&a', '!a', '%a', '@a', '`a', "it's", 'a "q"',
    ' lead', 'trail ', 'tab\there', 'a #b', 'ünïcödé 名前', '- x', 'a:b', ':a', 'a,b'])
def test_init_yaml_entry_round_trips(name):
    assert yaml.safe_load(_entry(name, {'kind': 'numeric'}, 0, 'why: # not a key')) == {name: {'kind': 'numeric'}}
    assert yaml.safe_load(_entry('column', name, 0)) == {'column': name}


@pytest.mark.parametrize('make, message', [
    (messy_csv.empty, '{path}: the file is empty; it needs a header row and at least one data row'),
    (messy_csv.header_only, '{path}: the file has a header but no data rows; add data'),
])
def test_init_refuses_unusable_csv(tmp_path, make, message):
    path = make(tmp_path)
    result = run_cli('init', path, '-o', str(tmp_path / 'c.yaml'))
    _refused(result, message.format(path=path))
    assert not os.path.exists(tmp_path / 'c.yaml')


def test_init_label_flag_with_blank_labels(tmp_path):
    path = tmp_path / 'l.csv'
    path.write_text('x,y\n' + ''.join(f'{i},{"ab"[i % 2] if i % 7 else ""}\n' for i in range(40)))
    result = run_cli('init', str(path), '--label', 'y', '-o', str(tmp_path / 'c.yaml'))
    assert result.returncode == 2 and result.stderr.splitlines() == [
        f"tfx-tabular init: --label 'y' is empty in 6 rows of {path}; fill in the label or drop those rows"]


def test_init_on_shipped_digits(tmp_path):
    raw = _init_shipped(tmp_path, 'digits')
    assert raw['label'] == {'column': 'digit', 'type': 'multiclass'}
    assert {f['kind'] for f in raw['features'].values()} == {'numeric'}  # pixel counts, 0..16: numbers
    assert "  # pixel_0_0: left out: the same value ('0') in every row" in raw['_text']


def _init_shipped(tmp_path, name):
    import shutil
    path = str(tmp_path / f'{name}.csv')
    shutil.copy(os.path.join(DATA, name, f'{name}.csv'), path)
    return _init(path)
