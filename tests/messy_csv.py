"""A corpus of messy real-world CSVs, written on demand: each function writes one file into `folder` and returns
its path (a str). Shared by the unit tests of the checks and `init` and by end-to-end runs.

Rows come from a seeded generator, so every call writes the same bytes. `churn_rows` is learnable: the label
depends on `age`, `income` and `plan`.
"""
import codecs
import csv
import os
import random
from typing import List, Sequence

NA_TOKENS = ('NA', 'N/A', 'null', '?', 'NaN', '', ' ')


def _write(folder, name: str, text: str, encoding: str = 'utf-8', bom: bool = False) -> str:
    path = os.path.join(str(folder), name)
    with open(path, 'wb') as f:
        f.write((codecs.BOM_UTF8 if bom else b'') + text.encode(encoding))
    return path


def _lines(rows: Sequence[Sequence], delimiter: str = ',') -> str:
    return ''.join(delimiter.join(str(v) for v in row) + '\n' for row in rows)


def churn_rows(n: int = 300, na_every: int = 0, decimal_comma: bool = False, seed: int = 7) -> List[List]:
    """Header + n rows: age (integer), income (decimal), plan (text), churned (yes/no, learnable). With
    `na_every`, every so many rows a missing-value token (NA, N/A, null, ?, NaN, blank) replaces age or income."""
    rng = random.Random(seed)
    rows = [['age', 'income', 'plan', 'churned']]
    for i in range(n):
        age = rng.randint(18, 80)
        income = round(rng.uniform(1000, 9000), 2)
        plan = rng.choice(['basic', 'plus', 'pro'])
        churned = 'yes' if (age < 35) != (plan == 'pro' and income > 5000) else 'no'
        income_text = f'{income}'.replace('.', ',') if decimal_comma else f'{income}'
        row = [age, income_text, plan, churned]
        if na_every and i % na_every == 1:
            row[i % 2] = NA_TOKENS[(i // na_every) % len(NA_TOKENS)]
        rows.append(row)
    return rows


def clean(folder, n: int = 300) -> str:
    """The control: plain UTF-8, commas, no missing values."""
    return _write(folder, 'clean.csv', _lines(churn_rows(n)))


def excel_semicolon(folder, n: int = 300) -> str:
    """Excel's "CSV UTF-8" in a European locale: a byte-order mark, `;` between fields, decimal commas, and
    NA tokens and blanks in the numeric columns."""
    return _write(folder, 'excel_semicolon.csv', _lines(churn_rows(n, na_every=9, decimal_comma=True), ';'),
                  bom=True)


def bom(folder, n: int = 60) -> str:
    """UTF-8 with a byte-order mark, otherwise clean."""
    return _write(folder, 'bom.csv', _lines(churn_rows(n)), bom=True)


def na_tokens(folder, n: int = 60) -> str:
    """Commas, UTF-8, numeric columns holding NA, N/A, null, ?, NaN and blanks."""
    return _write(folder, 'na_tokens.csv', _lines(churn_rows(n, na_every=3)))


def delimited(folder, delimiter: str, n: int = 60) -> str:
    """Clean rows, fields separated by `delimiter` (';', '\\t' or '|')."""
    name = {';': 'semicolon', '\t': 'tab', '|': 'pipe'}[delimiter]
    return _write(folder, f'{name}.csv', _lines(churn_rows(n), delimiter))


def cp1252(folder, n: int = 60) -> str:
    """Saved by Excel on Windows: Windows-1252 bytes (é, €, ’) in a column name and in values."""
    rows = [['âge', 'income', 'Catégorie', 'churned']] + [
        [r[0], r[1], {'basic': 'Économie', 'plus': 'Confort €', 'pro': 'Premium’s'}[r[2]], r[3]]
        for r in churn_rows(n)[1:]]
    return _write(folder, 'cp1252.csv', _lines(rows), encoding='cp1252')


INVALID_UTF8_LINE = 5


def invalid_utf8(folder, n: int = 60) -> str:
    """UTF-8 except for one Latin-1 byte (0xe9, é) in a value on line INVALID_UTF8_LINE (header = line 1)."""
    text = _lines(churn_rows(n)).encode()
    lines = text.split(b'\n')
    lines[INVALID_UTF8_LINE - 1] = lines[INVALID_UTF8_LINE - 1].replace(b'basic', b'b\xe9sic').replace(
        b'plus', b'pl\xe9s').replace(b'pro', b'pr\xe9')
    path = os.path.join(str(folder), 'invalid_utf8.csv')
    with open(path, 'wb') as f:
        f.write(b'\n'.join(lines))
    return path


def empty(folder) -> str:
    return _write(folder, 'empty.csv', '')


def header_only(folder) -> str:
    return _write(folder, 'header_only.csv', 'age,income,plan,churned\n')


TEXT_IN_NUMERIC_LINE = 7


def text_in_numeric(folder, n: int = 60) -> str:
    """`age` holds 'forty' on line TEXT_IN_NUMERIC_LINE."""
    rows = churn_rows(n)
    rows[TEXT_IN_NUMERIC_LINE - 1][0] = 'forty'
    return _write(folder, 'text_in_numeric.csv', _lines(rows))


WEIRD_NAMES = ['Total $ (USD)', 'a/b', 'x-y.z', 'données', '2nd value', 'Value', 'value', 'yes', 'null', '#tag',
               'key: value', 'padded', 'class']


def weird_names(folder, n: int = 80) -> str:
    """Column names YAML and TensorFlow trip over: a keyword, spaces, $ / ( ) - ., non-ASCII, a leading digit,
    names differing only by case, YAML words (yes, null), '#', ': ', space padding (' padded ') in a header
    whose names Excel quoted; `class` is the label."""
    rng = random.Random(3)
    header = ','.join(f'"{name}"' if name != 'padded' else '" padded "' for name in WEIRD_NAMES)
    rows = []
    for i in range(n):
        x = rng.randint(0, 100)
        rows.append([round(rng.uniform(0, 500), 2), rng.choice('abc'), rng.randint(1, 9),
                     rng.choice(['é', 'ü', 'ß']), rng.randint(0, 3), round(rng.random(), 3), round(rng.random(), 3), rng.choice(['y', 'n']),
                     rng.randint(0, 50), rng.choice(['red', 'blue']), x, rng.randint(5, 9),
                     'hi' if x > 50 else 'lo'])
    return _write(folder, 'weird_names.csv', header + '\n' + _lines(rows))


def profile_mix(folder, n: int = 200) -> str:
    """One column of each kind `init` must judge, `target` the label (3 classes)."""
    rng = random.Random(5)
    header = ['row', 'customer_id', 'uuid', 'constant', 'empty', 'signup_date', 'comment', 'zip', 'store_code',
              'rooms', 'flag', 'ratio', 'city', 'email', 'target']
    words = 'the quick brown fox jumps over a lazy dog while customers complain about slow delivery'.split()
    rows = [header]
    for i in range(n):
        rooms = rng.randint(1, 5)
        rows.append([
            i + 1, rng.randint(10 ** 6, 10 ** 7), f'{rng.getrandbits(64):016x}-{i:04d}', 'same', '',
            f'2023-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}',
            ' '.join(rng.choice(words) for _ in range(rng.randint(9, 16))),
            f'{rng.randint(0, 9999):05d}', rng.randint(100, 160), rooms, rng.choice([0, 1]),
            rng.choice(['NA', round(rng.random(), 3)]), rng.choice(['Paris', 'Lyon', 'Nice']),
            f'user{rng.randint(0, 10 ** 5)}@example.com', ['low', 'mid', 'high'][min(2, rooms // 2)]])
    return _write(folder, 'profile_mix.csv', _lines(rows))


def wide(folder, columns: int = 300, n: int = 120) -> str:
    """`columns` integer columns with 0..16 (like pixel counts: few distinct values, numeric), `label` a digit."""
    rng = random.Random(11)
    rows = [[f'px{i}' for i in range(columns)] + ['label']]
    for _ in range(n):
        digit = rng.randint(0, 2)
        rows.append([min(16, max(0, digit * 5 + rng.randint(-2, 2) + i % 3)) for i in range(columns)] + [digit])
    return _write(folder, 'wide.csv', _lines(rows))


def excel_weird_names(folder, n: int = 240) -> str:
    """Everything at once, as a European Excel writes it: `weird_names`' columns, a byte-order mark, `;` between
    fields, decimal commas, and missing-value tokens in two numeric columns."""
    rows = [next(csv.reader([line]))
            for line in open(weird_names(folder, n), encoding='utf-8').read().splitlines()]
    for i, row in enumerate(rows[1:]):
        if i % 7 == 3:
            row[0] = NA_TOKENS[i % len(NA_TOKENS)]
        if i % 11 == 5:
            row[2] = NA_TOKENS[(i + 1) % len(NA_TOKENS)]
        row[5], row[6] = row[5].replace('.', ','), row[6].replace('.', ',')
        row[0] = row[0].replace('.', ',')
    return _write(folder, 'excel_weird_names.csv', _lines(rows, ';'), bom=True)
