"""Checks on the CSV files that run before Beam starts, so broken input fails in one readable line.

Beam's CSV decoder reports an empty file, a missing header or a ragged row deep inside a worker traceback; here
each is named with its file, row and fix. The pass streams every file once and also counts the label classes.

TFX's CsvExampleGen reads UTF-8, comma-delimited files whose header is the first line split on commas, and infers a
column's type from every value (one `NA` makes a numeric column text). Files it would misread (a byte-order mark,
another encoding or delimiter, quoted or space-padded column names, missing-value tokens or decimal commas in a
numeric column) are read here with the shared reader below and, for the run, rewritten once into a normalised
copy under the run directory; clean files are read where they are. Files are read through
pipeline/core/storage.py, so data.csv may be a gs:// or s3:// URI (any file system tf.io.gfile knows). `tfx-tabular init` reads through the same
reader, so it sees the columns the run will see.
"""
import codecs
import csv
import hashlib
import json
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

from tfx_tabular.pipeline.core import storage

# Cells that mean "no value" in a numeric column (compared stripped and lower-cased); CsvExampleGen knows only ''.
NA_TOKENS = frozenset({'', 'na', 'n/a', 'n.a.', '#n/a', 'nan', '-nan', 'null', 'none', 'nil', '?', '-', '--', '.',
                       'missing'})
DELIMITER_NAMES = {',': 'comma', ';': 'semicolon', '\t': 'tab', '|': 'pipe'}
_BOMS = ((codecs.BOM_UTF8, 'utf-8-sig'), (codecs.BOM_UTF32_LE, 'utf-32'), (codecs.BOM_UTF32_BE, 'utf-32'),
         (codecs.BOM_UTF16_LE, 'utf-16'), (codecs.BOM_UTF16_BE, 'utf-16'))  # UTF-32 LE starts like UTF-16 LE
_DECIMAL_COMMA = re.compile(r'[+-]?\d*,\d+')
_INT64_LIMIT = 2 ** 63
_HEAD_BYTES = 1 << 16
# Bumped when the normalised copy's content changes for the same input, so older copies are not reused.
_NORMALISED_FORMAT = 1


class DataError(Exception):
    """Input data that cannot be used as it is; the message names the file, row or column and the fix."""


@dataclass(frozen=True)
class CsvFormat:
    """How one file is read: a Python codec and a delimiter (set by data.encoding/data.delimiter, or detected)."""
    encoding: str
    delimiter: str


def _outside_quotes(text: str) -> Iterator[str]:
    quoted = False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        elif not quoted:
            yield ch


def sniff_format(path: str, encoding: str = 'auto', delimiter: str = 'auto') -> CsvFormat:
    """`auto` encoding: UTF-8, or what a byte-order mark says (a mark also wins over a set encoding, since it names
    the real one). `auto` delimiter: the most frequent of , ; tab | outside quotes in the header line (comma on a
    tie or when none occurs: a one-column file)."""
    with storage.open_binary(path) as f:
        head = f.read(_HEAD_BYTES)
    codec = next((name for bom, name in _BOMS if head.startswith(bom)), None)
    codec = codec or ('utf-8' if encoding == 'auto' else encoding)
    if delimiter == 'auto':
        text = head.decode(codec, errors='replace')
        counts = Counter(_outside_quotes(text.splitlines()[0] if text else ''))
        delimiter = max(DELIMITER_NAMES, key=lambda d: counts[d])
        delimiter = delimiter if counts[delimiter] else ','
    return CsvFormat(codec, delimiter)


def guess_encoding(path: str) -> str:
    """The 8-bit encoding to suggest for a file that is not UTF-8: Windows-1252 (Excel on Windows) when it
    decodes every byte, else Latin-1, which decodes anything."""
    decoder = codecs.getincrementaldecoder('cp1252')()
    try:
        with storage.open_binary(path) as f:
            for chunk in iter(lambda: f.read(1 << 20), b''):
                decoder.decode(chunk)
        return 'cp1252'
    except UnicodeDecodeError:
        return 'latin-1'


def undecodable_at(path: str, encoding: str) -> Tuple[int, int, bytes]:
    """(line, byte offset, the bytes) of the first place `path` does not decode as `encoding`."""
    decoder = codecs.getincrementaldecoder(encoding)()
    offset = line_no = 0
    with storage.open_binary(path) as f:
        for line_no, line in enumerate(f, 1):
            try:
                decoder.decode(line)
            except UnicodeDecodeError as e:
                return line_no, offset + e.start, line[e.start:e.end]
            offset += len(line)
    return line_no, offset, b''


def _undecodable_message(path: str, encoding: str) -> str:
    line, offset, bad = undecodable_at(path, encoding)
    name = 'UTF-8' if codecs.lookup(encoding).name.startswith('utf-8') else encoding
    guess = guess_encoding(path)
    return (f'{path}: line {line} is not {name} (byte {bad.hex(" ")} at offset {offset}); set data.encoding: '
            f'{guess} in the config ({"Windows-1252, as Excel on Windows saves" if guess == "cp1252" else "Latin-1"})'
            f' or re-save the file as UTF-8')


def read_rows(path: str, fmt: CsvFormat) -> Iterator[Tuple[int, List[str]]]:
    """(line number, fields) of every row, the header first; undecodable bytes and broken quoting become a
    DataError naming the line."""
    with storage.open_text(path, fmt.encoding, newline='') as f:
        reader = csv.reader(f, delimiter=fmt.delimiter)
        try:
            for row in reader:
                yield reader.line_num, row
        except UnicodeDecodeError:
            raise DataError(_undecodable_message(path, fmt.encoding)) from None
        except csv.Error as e:
            raise DataError(f'{path}: row {reader.line_num}: {e}; look for an unclosed " quote and fix the row') \
                from None


def _looks_like_value(cell: str) -> bool:
    try:
        float(cell)
        return True
    except ValueError:
        return cell == ''


def check_header(path: str, header: Optional[List[str]]) -> List[str]:
    """The header's column names, stripped of surrounding spaces; a DataError when it cannot name the columns."""
    if not header or all(not c.strip() for c in header):
        raise DataError(f'{path}: the file is empty; it needs a header row and at least one data row')
    header = [c.strip() for c in header]
    if all(_looks_like_value(c) for c in header):
        raise DataError(f'{path}: row 1 has no column names ({",".join(header[:5])}...); '
                        'add a header row naming each column')
    blank = [i + 1 for i, c in enumerate(header) if not c]
    if blank:
        raise DataError(f'{path}: header column {blank[0]} has no name; name every column')
    dupes = [c for c, n in Counter(header).items() if n > 1]
    if dupes:
        raise DataError(f'{path}: column {dupes[0]!r} appears twice in the header; make names unique')
    for name in header:
        if any(ch in name for ch in ',"\r\n'):
            raise DataError(f'{path}: column name {name!r} holds a comma, quote or line break, which TFX\'s '
                            'CsvExampleGen cannot read in a header (it splits the first line on commas); rename it')
    return header


def read_header(path: str, fmt: CsvFormat) -> List[str]:
    rows = read_rows(path, fmt)
    try:
        return check_header(path, next(rows, (0, None))[1])
    finally:
        rows.close()


def numeric_cell(cell: str, decimal_comma: bool = False) -> Optional[str]:
    """A numeric column's cell as CsvExampleGen must see it: '' for a missing value (blank, NA, null, ?, NaN...),
    the number (with a decimal point for a decimal comma), or None when it is no finite 64-bit number."""
    try:
        value = float(cell)  # the common case, first
    except ValueError:
        stripped = cell.strip()
        if stripped.lower() in NA_TOKENS:
            return ''
        if not (decimal_comma and _DECIMAL_COMMA.fullmatch(stripped)):
            return None
        cell = stripped.replace(',', '.')
        value = float(cell)
    if math.isnan(value):
        return ''
    if math.isinf(value):
        return None
    if abs(value) >= _INT64_LIMIT and re.fullmatch(r'\s*[+-]?[\d_]+\s*', cell):
        return None  # CsvExampleGen would read an integer beyond 64 bits as text
    return cell


def _first_line_as_example_gen_reads_it(path: str) -> List[str]:
    """TFX's `load_csv_column_names`: the first line, stripped and split on every comma."""
    with storage.open_binary(path) as f:
        return f.readline().decode('utf-8', errors='replace').strip().split(',')


@dataclass
class CsvScan:
    """What the pre-Beam pass learnt: the label counts, each file's format and why CsvExampleGen would misread it
    (empty: it reads the file as it is)."""
    label_counts: Dict[str, int]
    formats: Dict[str, CsvFormat] = field(default_factory=dict)
    rewrites: Dict[str, List[str]] = field(default_factory=dict)


def _format_reasons(fmt: CsvFormat) -> List[str]:
    reasons = []
    if fmt.encoding == 'utf-8-sig':
        reasons.append('a byte-order mark')
    elif codecs.lookup(fmt.encoding).name != 'utf-8':
        reasons.append(f'{fmt.encoding} text')
    if fmt.delimiter != ',':
        reasons.append(f'{DELIMITER_NAMES.get(fmt.delimiter, repr(fmt.delimiter))}-delimited')
    return reasons


def scan_csv_files(files: List[str], label_column: str, label_type: str, delimiter: str = '|', *,
                   numeric_columns: Sequence[str] = (), feature_columns: Sequence[str] = (),
                   encoding: str = 'auto', csv_delimiter: str = 'auto') -> CsvScan:
    """Validates every file (header, row lengths, numbers in `numeric_columns`, some value in each of
    `feature_columns`, the label) and notes which files CsvExampleGen cannot read as they are.
    `delimiter` separates a multi-label row's labels; `csv_delimiter` the file's fields."""
    if not files:
        raise DataError('no CSV file matches data.csv; fix the path in the config')
    counts: Counter = Counter()
    scan = CsvScan(label_counts={})
    unfilled = set(feature_columns)  # feature columns without a value so far
    first_header = None
    label_at = None
    for path in files:
        fmt = sniff_format(path, encoding, csv_delimiter)
        rows = read_rows(path, fmt)
        header = check_header(path, next(rows, (0, None))[1])
        if first_header is None:
            first_header = header
        elif header != first_header:
            raise DataError(f'{path}: header differs from {files[0]}; all files matched by data.csv '
                            'must have the same columns in the same order')
        label_at = header.index(label_column) if label_column in header else None
        numeric_at = [(i, c) for i, c in enumerate(header) if c in numeric_columns]
        feature_at = [(i, c) for i, c in enumerate(header) if c in feature_columns and c not in numeric_columns]
        decimal_comma = fmt.delimiter != ','
        reasons = _format_reasons(fmt)
        if not reasons and header != _first_line_as_example_gen_reads_it(path):
            reasons.append('a header CsvExampleGen would misread (quoted or space-padded names, or odd line ends)')
        rewritten = set()
        n_rows = 0
        for line, row in rows:
            if not row:
                continue
            n_rows += 1
            if len(row) != len(header):
                raise DataError(f'{path}: row {line} has {len(row)} fields, the header has {len(header)}; fix the '
                                f'row (quote values that contain {DELIMITER_NAMES.get(fmt.delimiter, "delimiter")}s)')
            for i, name in numeric_at:
                cell = numeric_cell(row[i], decimal_comma)
                if cell is None:
                    raise DataError(f'{path}: row {line}, column {name!r} holds {row[i]!r}, not a number, but '
                                    f'features.{name} is numeric; fix or blank the value (blank, NA, null and ? '
                                    'are missing values) or make the feature categorical')
                if cell != row[i]:
                    rewritten.add('missing-value tokens' if cell == '' else 'decimal commas')
                if cell:
                    unfilled.discard(name)
            if unfilled:
                for i, name in feature_at:
                    if row[i]:
                        unfilled.discard(name)
            if label_at is not None:
                if label_type == 'multilabel':
                    counts.update({v.strip() for v in row[label_at].split(delimiter)} - {''} or {''})
                else:
                    counts[row[label_at]] += 1
        if n_rows == 0:
            raise DataError(f'{path}: the file has a header but no data rows; add data')
        scan.formats[path] = fmt
        scan.rewrites[path] = reasons + [f'{r} in numeric columns' for r in sorted(rewritten)]
    if label_at is None:
        raise DataError(f'{files[0]}: label column {label_column!r} is not in the header')
    empty = [c for c in first_header if c in unfilled]
    if empty:
        where = files[0] if len(files) == 1 else f'every file of data.csv ({len(files)})'
        raise DataError(f'{where}: column {empty[0]!r} has no value in any row; remove features.{empty[0]} from the '
                        'config')
    if '' in counts:
        raise DataError(f'label column {label_column!r} is empty in {counts[""]} rows; '
                        'fill in the label or drop those rows')
    if len(counts) < 2:
        only = next(iter(counts), '')
        raise DataError(f'label column {label_column!r} has a single class ({only!r}) in every row; '
                        'a classifier needs at least two classes in the data')
    if label_type == 'binary' and len(counts) != 2:
        raise DataError(f'label column {label_column!r} has {len(counts)} classes '
                        f'({", ".join(sorted(counts)[:6])}...); set label.type: multiclass')
    scan.label_counts = dict(counts)
    return scan


def check_csv_files(files: List[str], label_column: str, label_type: str, delimiter: str = '|',
                    **options) -> Dict[str, int]:
    """Validates every file (see scan_csv_files); returns the count of each label value over all files
    (multi-label: of each label, a row `a|c` counting once for a and once for c)."""
    return scan_csv_files(files, label_column, label_type, delimiter, **options).label_counts


def _write_normalised(src: str, dst: str, fmt: CsvFormat, numeric_columns: Iterable[str]) -> None:
    rows = read_rows(src, fmt)
    header = check_header(src, next(rows)[1])
    numeric_at = [i for i, c in enumerate(header) if c in numeric_columns]
    with storage.open_write(dst, 'w', 'utf-8', newline='') as out:
        writer = csv.writer(out, lineterminator='\n')
        writer.writerow(header)
        for _, row in rows:
            if row:
                for i in numeric_at:
                    row[i] = numeric_cell(row[i], fmt.delimiter != ',')
                writer.writerow(row)


def csv_files(config) -> List[str]:
    """The files of data.csv; a DataError when its URI cannot be listed from here (no file system, no access)."""
    try:
        return config.csv_files
    except storage.StorageError as e:
        raise DataError(str(e)) from None


def beam_reads(path: str) -> bool:
    """Whether Beam, so CsvExampleGen, has a file system for `path` (local, gs://, s3://, hdfs://, azfs://);
    tf.io.gfile knows others (ram://, TF's in-memory file system, or any a TensorFlow plugin adds)."""
    if not storage.is_uri(path):
        return True
    from apache_beam.io.filesystem import FileSystem
    from apache_beam.io.filesystems import FileSystems  # noqa: F401 - registers Beam's file systems
    scheme = path.split('://', 1)[0].lower()
    return any(fs.scheme() == scheme for fs in FileSystem.get_all_subclasses())


def prepare_input(config) -> Tuple[CsvScan, str]:
    """Checks every file of data.csv; returns the scan and the CSV pattern CsvExampleGen reads: data.csv itself
    when every file is clean (no copy), else a normalised copy (UTF-8, commas, plain header, numeric columns
    blank where missing) under `<run_dir>/csv_input/<key>/`. data.csv and run_dir may each be local or an
    object-storage URI (read and written through tf.io.gfile): a gs:// CSV with a local run_dir gets a local
    copy. A URI Beam has no file system for (ram://) is copied there too, clean or not, the reason saying so.
    The copy is made once per version of the input, so CsvExampleGen's input fingerprint, and TFX's cache, stay
    the same across runs."""
    numeric = [n for n, f in config.features.items() if f.kind in ('numeric', 'bucketized')]
    files = csv_files(config)
    scan = scan_csv_files(files, config.label.column, config.label.type, config.label.delimiter,
                          numeric_columns=numeric, feature_columns=config.raw_columns,
                          encoding=config.data.encoding, csv_delimiter=config.data.delimiter)
    if not beam_reads(config.csv_pattern):
        scheme = config.csv_pattern.split('://', 1)[0]
        for path in files:
            scan.rewrites[path].append(f'a {scheme}:// path, which Beam\'s CsvExampleGen cannot read')
    messy = [p for p in files if scan.rewrites[p]]
    if not messy:
        return scan, config.csv_pattern
    if not beam_reads(config.run_path):
        raise DataError(f'{messy[0]}: has {", ".join(scan.rewrites[messy[0]])}, so the run writes a normalised '
                        f'copy under run_dir, but Beam cannot read {config.run_path}; set run_dir to a local '
                        'folder or a gs:// or s3:// URI')
    root = storage.join(config.run_path, 'csv_input')
    stats = [(storage.absolute(p), *storage.stat(p), scan.formats[p].encoding, scan.formats[p].delimiter)
             for p in files]
    key = hashlib.sha1(json.dumps([stats, sorted(numeric), _NORMALISED_FORMAT]).encode()).hexdigest()[:16]
    target = storage.join(root, key)
    if not storage.isdir(target):
        with storage.staged_dir(target) as staging:  # all files appear at once, never half-written
            for i, path in enumerate(files):
                _write_normalised(path, storage.join(staging, f'part-{i:05d}.csv'), scan.formats[path], numeric)
    for stale in set(storage.listdir(root)) - {key}:  # copies of earlier versions of the input
        storage.rmtree(storage.join(root, stale))
    return scan, storage.join(target, '*.csv')
