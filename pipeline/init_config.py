"""`tfx-tabular init`: a starter config written from what the CSV holds (types, cardinality, a guessed label)."""
import csv
import os
import re
from collections import Counter
from typing import Dict, List, Optional

LIKELY_LABELS = ('label', 'target', 'class', 'y', 'outcome', 'species', 'churn', 'attrition', 'survived',
                 'default', 'income', 'diagnosis', 'response')
MAX_LABEL_CLASSES = 50
SAMPLE_ROWS = 100_000


def _is_number(value: str) -> bool:
    try:
        float(value)
        return True
    except ValueError:
        return False


def profile_csv(path: str, sample_rows: int = SAMPLE_ROWS) -> Dict[str, Dict]:
    """Per column: numeric or not, distinct values (up to a cap) and how many rows were read."""
    with open(path, newline='', encoding='utf-8-sig') as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if not header:
            raise ValueError(f'{path}: the file is empty; it needs a header row and data rows')
        values: List[Counter] = [Counter() for _ in header]
        numeric = [True] * len(header)
        rows = 0
        for row in reader:
            if len(row) != len(header):
                continue
            rows += 1
            for i, v in enumerate(row):
                if len(values[i]) <= 1000:
                    values[i][v] += 1
                if v != '' and numeric[i] and not _is_number(v):
                    numeric[i] = False
            if rows >= sample_rows:
                break
    return {name: {'numeric': numeric[i], 'distinct': len(values[i]), 'values': values[i], 'rows': rows}
            for i, name in enumerate(header)}


def guess_label(profile: Dict[str, Dict]) -> Optional[str]:
    for name, p in profile.items():
        if name.lower() in LIKELY_LABELS and 2 <= p['distinct'] <= MAX_LABEL_CLASSES:
            return name
    return None


def _feature_line(name: str, p: Dict) -> str:
    distinct, rows = p['distinct'], p['rows']
    if rows and distinct >= rows * 0.95 and not p['numeric']:
        return f'  # {name}: left out, every row has its own value (an id?)'
    if p['numeric'] and distinct > 20:
        return f'  {name}: {{kind: numeric, scaling: z_score}}      # {distinct}+ distinct numbers'
    if distinct <= 100:
        return f'  {name}: {{kind: categorical, oov_buckets: 1}}   # {distinct} distinct values'
    return f'  {name}: {{kind: hashed, hash_buckets: {min(10_000, 2 * distinct)}}}   # {distinct}+ distinct values'


def _yaml_str(value: str) -> str:
    return value if re.fullmatch(r'[A-Za-z_][A-Za-z0-9_.-]*', value) and value.lower() not in (
        'yes', 'no', 'true', 'false', 'on', 'off', 'null') else repr(value)


def starter_config(csv_path: str, label: Optional[str] = None, config_dir: str = '.') -> str:
    profile = profile_csv(csv_path)
    if label is not None and label not in profile:
        raise ValueError(f'--label {label!r} is not a column of {csv_path}; columns: {", ".join(profile)}')
    label = label or guess_label(profile)
    name = re.sub(r'[^A-Za-z0-9_-]', '_', os.path.splitext(os.path.basename(csv_path))[0])
    lines = [f'# Starter config written by `tfx-tabular init` from {os.path.basename(csv_path)}.',
             '# Check every line, then: tfx-tabular run --config <this file>', f'name: {name}', 'data:',
             f'  csv: {os.path.relpath(os.path.abspath(csv_path), os.path.abspath(config_dir))}',
             '  eval_fraction: 0.2', 'label:']
    if label:
        classes = profile[label]['distinct']
        lines += [f'  column: {_yaml_str(label)}', f'  type: {"binary" if classes == 2 else "multiclass"}'
                  f'   # {classes} classes: {", ".join(sorted(profile[label]["values"])[:8])}']
    else:
        lines += ['  column: TODO   # TODO: the CSV column to predict (no obvious label column was found)',
                  '  type: binary   # TODO: binary or multiclass']
    lines.append('features:')
    lines += [_feature_line(_yaml_str(n), p) for n, p in profile.items() if n != label]
    categorical = [n for n, p in profile.items() if n != label and not p['numeric'] and 2 <= p['distinct'] <= 10]
    lines += [f'slicing: [{", ".join(_yaml_str(n) for n in categorical[:3])}]   # columns to report metrics by',
              'model:', '  hidden_units: [64, 32]', '  train_steps: 1000', 'evaluation:', '  thresholds:',
              '    accuracy: 0.5', 'serving:', f'  model_name: {name}', '  push_dir: serving_models', '']
    return '\n'.join(lines)
