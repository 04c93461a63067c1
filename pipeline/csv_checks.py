"""Checks on the CSV files that run before Beam starts, so broken input fails in one readable line.

Beam's CSV decoder reports an empty file, a missing header or a ragged row deep inside a worker traceback; here
each is named with its file, row and fix. The pass streams every file once and also counts the label classes.
"""
import csv
from collections import Counter
from typing import Dict, List


class DataError(Exception):
    """Input data that cannot be used as it is; the message names the file, row or column and the fix."""


def _looks_like_value(cell: str) -> bool:
    try:
        float(cell)
        return True
    except ValueError:
        return cell == ''


def check_csv_files(files: List[str], label_column: str, label_type: str, delimiter: str = '|') -> Dict[str, int]:
    """Validates every file; returns the count of each label value over all files (multi-label: of each label,
    a row `a|c` counting once for a and once for c)."""
    if not files:
        raise DataError('no CSV file matches data.csv; fix the path in the config')
    counts: Counter = Counter()
    first_header = None
    for path in files:
        with open(path, newline='', encoding='utf-8-sig') as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if not header or all(not c.strip() for c in header):
                raise DataError(f'{path}: the file is empty; it needs a header row and at least one data row')
            if all(_looks_like_value(c) for c in header):
                raise DataError(f'{path}: row 1 has no column names ({",".join(header[:5])}...); '
                                'add a header row naming each column')
            blank = [i + 1 for i, c in enumerate(header) if not c.strip()]
            if blank:
                raise DataError(f'{path}: header column {blank[0]} has no name; name every column')
            dupes = [c for c, n in Counter(header).items() if n > 1]
            if dupes:
                raise DataError(f'{path}: column {dupes[0]!r} appears twice in the header; make names unique')
            if first_header is None:
                first_header = header
            elif header != first_header:
                raise DataError(f'{path}: header differs from {files[0]}; all files matched by data.csv '
                                'must have the same columns in the same order')
            label_at = header.index(label_column) if label_column in header else None
            rows = 0
            for row in reader:
                if not row:
                    continue
                rows += 1
                if len(row) != len(header):
                    raise DataError(f'{path}: row {reader.line_num} has {len(row)} fields, the header has '
                                    f'{len(header)}; fix the row (quote values that contain commas)')
                if label_at is not None:
                    if label_type == 'multilabel':
                        counts.update({v.strip() for v in row[label_at].split(delimiter)} - {''} or {''})
                    else:
                        counts[row[label_at]] += 1
            if rows == 0:
                raise DataError(f'{path}: the file has a header but no data rows; add data')
    if label_at is None:
        raise DataError(f'{files[0]}: label column {label_column!r} is not in the header')
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
    return dict(counts)

