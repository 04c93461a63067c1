"""`tfx-tabular init`: a starter config written from what the CSV holds, each choice with a comment saying why.

The CSV is read with the run's own reader (pipeline/core/csv_checks.py: encoding, delimiter, missing-value tokens), every
row of it, so a column declared numeric here holds numbers in every row the run will check. Column names can be
any string: keys and values go through yaml.safe_dump, and the written file must pass `load_config`.
"""
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import yaml

from tfx_tabular.pipeline.core.csv_checks import (NA_TOKENS, CsvFormat, DataError, check_header, guess_encoding, numeric_cell,
                                 read_rows, sniff_format, undecodable_at)

LIKELY_LABELS = ('label', 'target', 'class', 'y', 'outcome', 'species', 'churn', 'attrition', 'survived',
                 'default', 'income', 'diagnosis', 'response', 'digit')
MAX_LABEL_CLASSES = 50
MAX_CATEGORICAL = 100  # more distinct strings than this are hashed
MAX_TRACKED = 1000  # distinct values counted per column; beyond, a column is "high-cardinality"
MIN_ROWS_FOR_UNIQUE = 20  # fewer rows say little about a column being unique per row
FREE_TEXT_LENGTH = 50
FREE_TEXT_WORDS = 6

_ID_NAMES = {'id', 'uuid', 'guid', 'index', 'rowid', 'row_id', 'row_number', 'unnamed: 0'}
_ID_SUFFIX = re.compile(r'(?i:.*[\s_.-](?:id|uuid|guid))|.*[a-z](?:Id|ID)')  # user_id, customer-ID, customerId
_CODE_NAME = re.compile(r'(?i).*(?:zip|postal|fips).*|.*code')
_INTEGER = re.compile(r'\s*[+-]?\d+\s*')
_DATE = re.compile(r'''\s*(?:
      \d{4}[-/.]\d{1,2}[-/.]\d{1,2}                      # 2021-03-04, 2021/3/4
    | \d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}                    # 04/03/2021, 4.3.21
    | \d{1,2}[ -][A-Za-z]{3,9}[ ,-]+\d{2,4}              # 4 March 2021, 04-Mar-21
    | [A-Za-z]{3,9}\.?[ ]\d{1,2},?[ ]\d{4}               # Mar 4, 2021
    | \d{1,2}:\d{2}(?::\d{2})?                           # 13:45 (a time alone)
    )(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(?:[AaPp][Mm]|Z|[+-]\d{2}:?\d{2})?)?\s*''', re.X)


@dataclass
class ColumnProfile:
    """What `init` needs to know of one column, from every row. Missing values (blank, NA, null, ?...) are kept
    apart: `blank` cells are empty for CsvExampleGen too, `na` tokens are text to it unless a numeric column."""
    rows: int = 0
    blank: int = 0
    na: Counter = field(default_factory=Counter)
    values: Counter = field(default_factory=Counter)  # up to MAX_TRACKED distinct values, then only those
    overflow: bool = False  # more than MAX_TRACKED distinct values
    unique_when_full: bool = False  # every value distinct up to the point the tracking filled up
    numeric: bool = True
    numbers: int = 0
    first_text: Optional[Tuple[int, str]] = None  # (line, cell) of the first value that is not a number
    integer: bool = True
    zero_padded: bool = False
    low: float = float('inf')
    high: float = float('-inf')
    dates: int = 0
    length: int = 0
    words: int = 0

    def add(self, line: int, cell: str, decimal_comma: bool) -> None:
        self.rows += 1
        number = numeric_cell(cell, decimal_comma)
        if number == '' or cell.strip().lower() in NA_TOKENS:
            if cell:
                self.na[cell] += 1
            else:
                self.blank += 1
            return
        if not self.overflow:
            self.values[cell] += 1
            if len(self.values) > MAX_TRACKED:
                self.overflow = True
                self.unique_when_full = sum(self.values.values()) == len(self.values)
        if number is None:
            self.numeric = False
            self.first_text = self.first_text or (line, cell)
        else:
            self.numbers += 1
        if self.numeric:
            value = float(number)
            self.low, self.high = min(self.low, value), max(self.high, value)
            if not _INTEGER.fullmatch(number):
                self.integer = False
            elif re.match(r'\s*[+-]?0\d', number):
                self.zero_padded = True
        if not self.numeric:
            self.length += len(cell)
            self.words += len(cell.split())
            if _DATE.fullmatch(cell):
                self.dates += 1

    @property
    def missing(self) -> int:
        return self.blank + sum(self.na.values())

    @property
    def present(self) -> int:
        return self.rows - self.missing

    @property
    def distinct(self) -> int:
        return len(self.values)

    @property
    def unique(self) -> bool:
        """Every row its own value (as far as the tracked values tell)."""
        if self.present < MIN_ROWS_FOR_UNIQUE:
            return False
        return self.unique_when_full if self.overflow else self.distinct == self.present

    @property
    def classes(self) -> List[str]:
        """The values a label column has for the run, where an NA token is a class like any other."""
        return sorted(set(self.values) | set(self.na))


@dataclass
class CsvProfile:
    encoding: str  # '' when `auto` reads it
    encoding_note: str
    delimiter: str
    columns: Dict[str, ColumnProfile]


def profile_csv(path: str) -> CsvProfile:
    """Every column profiled over every row, read as the run will read it; a file that is not UTF-8 is read as
    the encoding the run's error message would suggest, and `init` writes that choice into the config."""
    fmt = sniff_format(path)
    try:
        return CsvProfile('', '', fmt.delimiter, _profile_columns(path, fmt))
    except DataError:
        line, _, bad = undecodable_at(path, fmt.encoding)
        if not bad:
            raise
    encoding = guess_encoding(path)
    fmt = sniff_format(path, encoding)
    return CsvProfile(encoding, f'not UTF-8 (line {line}: byte {bad.hex(" ")}); check that accented text reads right',
                      fmt.delimiter, _profile_columns(path, fmt))


def _profile_columns(path: str, fmt: CsvFormat) -> Dict[str, ColumnProfile]:
    rows = read_rows(path, fmt)
    header = check_header(path, next(rows, (0, None))[1])
    columns = [ColumnProfile() for _ in header]
    decimal_comma = fmt.delimiter != ','
    n_rows = 0
    for line, row in rows:
        if not row:
            continue
        if len(row) != len(header):
            raise DataError(f'{path}: row {line} has {len(row)} fields, the header has {len(header)}; fix the row '
                            f'(quote values that contain the delimiter) before writing a config')
        n_rows += 1
        for column, cell in zip(columns, row):
            column.add(line, cell, decimal_comma)
    if n_rows == 0:
        raise DataError(f'{path}: the file has a header but no data rows; add data')
    return dict(zip(header, columns))


def guess_label(columns: Dict[str, ColumnProfile]) -> Optional[str]:
    """A label only when obvious: a usual label name with 2 to 50 classes and no row without one."""
    for name, p in columns.items():
        if name.lower() in LIKELY_LABELS and 2 <= p.distinct <= MAX_LABEL_CLASSES and not p.overflow \
                and not p.missing:
            return name
    return None


def _most_common(values: Counter) -> str:
    return repr(values.most_common(1)[0][0])


def _number(value: float) -> str:
    return f'{value:g}'


def choose_feature(name: str, p: ColumnProfile) -> Tuple[Optional[Dict], str]:
    """(feature spec, why) for one column; no spec when the column is left out."""
    if not p.present:
        return None, 'left out: empty in every row'
    if p.distinct == 1 and not p.missing:
        return None, f'left out: the same value ({_most_common(p.values)}) in every row'
    if name.lower() in _ID_NAMES or _ID_SUFFIX.fullmatch(name):
        return None, 'left out: named like an id'
    missing = f', {p.missing / p.rows:.0%} missing' if p.missing else ''
    if not p.numeric:
        if p.dates >= 0.9 * p.present:
            return None, (f'left out: dates or times (e.g. {_most_common(p.values)}); add numeric parts such as '
                          'year or month as CSV columns if they matter')
        if (p.length / p.present > FREE_TEXT_LENGTH or p.words / p.present > FREE_TEXT_WORDS) and (
                p.overflow or p.distinct > MAX_CATEGORICAL or p.distinct > p.present / 2):
            return None, (f'left out: free text ({p.length / p.present:.0f} characters, {p.words / p.present:.0f} '
                          'words on average)')
        if p.unique:
            return None, 'left out: every row has its own value (an id?)'
        if p.numbers >= 0.9 * p.present:
            line, cell = p.first_text
            return _categorical(p, f'mostly numbers, but row {line} holds {cell!r}: fix such values and make it '
                                   f'numeric{missing}')
        return _categorical(p, f'text{missing}')
    if p.integer and p.unique and p.high - p.low + 1 <= 2 * p.present:
        return None, f'left out: integers {_number(p.low)}..{_number(p.high)}, each row its own, like a row counter'
    if p.integer and (p.zero_padded or _CODE_NAME.fullmatch(name)):
        why = f'zero-padded, e.g. {_most_common(p.values)}' if p.zero_padded else 'named like a code'
        return _categorical(p, f'integer codes ({why}){missing}')
    if p.distinct <= 2 and p.missing:  # mean-filling would blur "missing" into the values
        return _categorical(p, f'{p.distinct} values{missing}')
    kind = 'integers' if p.integer else 'numbers'
    distinct = f'{p.distinct}+' if p.overflow else str(p.distinct)
    return ({'kind': 'numeric', 'scaling': 'z_score'},
            f'{kind} {_number(p.low)}..{_number(p.high)}, {distinct} distinct{missing}'
            f'{" (filled with the mean)" if p.missing else ""}')


def _categorical(p: ColumnProfile, what: str) -> Tuple[Dict, str]:
    if p.overflow or p.distinct > MAX_CATEGORICAL:
        distinct = f'{p.distinct}+' if p.overflow else str(p.distinct)
        return ({'kind': 'hashed', 'hash_buckets': min(10_000, 2 * p.distinct)},
                f'{what}, {distinct} distinct values: hashed')
    return {'kind': 'categorical', 'oov_buckets': 1}, f'{what}, {p.distinct} distinct values'


def _flow(value) -> str:
    """`value` as one line of YAML (flow style), quoted where YAML needs it (keywords, `: `, `#`, yes/null...)."""
    return yaml.safe_dump(value, default_flow_style=True, sort_keys=False, allow_unicode=True,
                          width=10 ** 6).removesuffix('...\n').strip()


def _entry(key: str, value, indent: int = 2, comment: str = '') -> str:
    """`key: value` at `indent`, with `comment` (one line) after it."""
    line = f'{" " * indent}{_flow(key)}: {_flow(value)}'
    return f'{line}   # {" ".join(comment.split())}' if comment else line


def starter_config(csv_path: str, label: Optional[str] = None, config_dir: str = '.') -> str:
    profile = profile_csv(csv_path)
    columns = profile.columns
    if label is not None:
        if label not in columns:
            raise ValueError(f'--label {label!r} is not a column of {csv_path}; columns: {", ".join(columns)}')
        p = columns[label]
        if p.blank:
            raise ValueError(f'--label {label!r} is empty in {p.blank} rows of {csv_path}; fill in the label or '
                             'drop those rows')
        if len(p.classes) < 2:
            raise ValueError(f'--label {label!r} has one value in every row; a classifier needs two classes or more')
    label = label or guess_label(columns)
    name = re.sub(r'[^A-Za-z0-9_-]', '_', os.path.splitext(os.path.basename(csv_path))[0])
    csv_rel = os.path.relpath(os.path.abspath(csv_path), os.path.abspath(config_dir))
    lines = [f'# Starter config written by `tfx-tabular init` from {" ".join(os.path.basename(csv_path).split())}.',
             '# Check every line, then: tfx-tabular run --config <this file>',
             _entry('name', name, 0), 'data:', _entry('csv', csv_rel), '  eval_fraction: 0.2']
    if profile.encoding:
        lines.append(_entry('encoding', profile.encoding, comment=profile.encoding_note))
    if profile.delimiter != ',':
        lines.append(_entry('delimiter', profile.delimiter, comment='detected from the header line'))
    lines.append('label:')
    if label:
        classes = columns[label].classes
        many = '+' if columns[label].overflow else ''
        lines += [_entry('column', label),
                  _entry('type', 'binary' if len(classes) == 2 else 'multiclass',
                         comment=f'{len(classes)}{many} classes: {", ".join(classes[:8])}'
                                 f'{", ..." if len(classes) > 8 else ""}')]
    else:
        lines += ['  column: TODO   # TODO: the CSV column to predict (no obvious label column was found)',
                  '  type: binary   # TODO: binary (2 classes) or multiclass']
    lines.append('features:')
    chosen = {}
    for column, p in columns.items():
        if column == label:
            continue
        spec, why = choose_feature(column, p)
        if spec:
            chosen[column] = spec
            lines.append(_entry(column, spec, comment=why))
        else:
            lines.append(f'  # {_flow(column)}: {why}')
    if not chosen:
        raise ValueError(f'{csv_path}: no column is usable as a feature (each is the label, empty, constant, an id, '
                         'free text or dates); add feature columns')
    slicing = [c for c, spec in chosen.items() if spec['kind'] == 'categorical' and not columns[c].numeric
               and 2 <= columns[c].distinct <= 10][:3]
    lines.append(_entry('slicing', slicing, 0, 'columns to report metrics by'))
    lines += _model_lines(max(p.rows for p in columns.values()))
    lines += _evaluation_lines(columns[label] if label else None)
    lines += ['serving:', _entry('model_name', name), '  push_dir: serving_models', '']
    return '\n'.join(lines)


SIDE_BY_SIDE_ROWS = 200_000  # above, a DNN beside the trees would add its own Trainer and Evaluator passes


def _model_lines(rows: int) -> List[str]:
    """Gradient-boosted trees, a DNN and a linear model side by side, the best blessed one pushed (the simplest
    within noise of the best: ModelSelector); on a large file the trees alone, which train faster there and are
    the strongest of the three on most tables (bench/quality.py)."""
    trees = '  - {name: trees, kind: gradient_boosted_trees}'
    dnn = '  - {name: dnn, kind: keras_dnn, hidden_units: [64, 32], train_steps: 1000, early_stopping_patience: 3}'
    linear = '  - {name: linear, kind: estimator_linear}'
    if rows > SIDE_BY_SIDE_ROWS:
        return [f'models:   # {rows} rows: the trees alone; to compare a DNN and a linear model too, add the lines:',
                f'#{dnn[1:]}', f'#{linear[1:]}', trees]
    return ['models:   # trained side by side on the same features; the best blessed one is pushed', trees, dnn, linear]


def _evaluation_lines(label: Optional[ColumnProfile]) -> List[str]:
    """Bounds relative to the majority-class floor, which the run counts on its eval split, not fixed numbers."""
    seen = ''
    if label is not None:
        counts = label.values + label.na
        answer, top = counts.most_common(1)[0]
        seen = f' (here about {top / sum(counts.values()):.2f}: always {answer!r})'
    return ['evaluation:',
            f"  floor: {{accuracy_margin: 0.01}}   # blessed only above the eval split's majority-class rate{seen} "
            '+ 0.01; an imbalanced binary label also needs auc >= 0.55',
            '  thresholds: {}   # fixed lower bounds on top of the floor if you need them, e.g. {accuracy: 0.8}',
            '  select: {metric: accuracy, direction: maximize}   # which blessed model is pushed: the simplest '
            'within one standard error of the best accuracy (prefer_simpler: false for the best alone)']
