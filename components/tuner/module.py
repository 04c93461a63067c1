"""TFX Tuner `tuner_fn` for the Keras kinds, and `apply_hyperparameters` for the Trainer.

The search space is the model's `tuning` section (pipeline/core/config.py:TuningConfig): `hidden_units` choices,
a log-uniform `learning_rate` range, `dropout` choices; a dimension left out keeps the model's value. Each trial
builds the same model the Trainer builds (`components.trainer.build_keras_model`) from the same tf.Transform
output read the same way (`components.trainer._dataset`), so the best values carry over to the Trainer unchanged.

Trials are scored by val_loss (the lowest over their epochs, as the Trainer's early stopping keeps the best
epoch). The oracle is seeded with the model's seed, and every trial re-seeds weights and data order with it, so
trials differ by their hyper-parameters, not by their luck, and a re-run tries the same points.
"""
import copy
import math
import os
from typing import Any, Dict, List, Optional, Union

import keras_tuner
import tensorflow as tf
import tensorflow_transform as tft
from tfx import v1 as tfx

from tfx_tabular.components.trainer.module import _dataset, build_keras_model, class_names
from tfx_tabular.pipeline.core.config import MODEL_KINDS, TuningConfig
from tfx_tabular.transforms.preprocessing import parse_custom_config

TUNABLE = ('hidden_units', 'learning_rate', 'dropout')
OBJECTIVE = 'val_loss'


def _units_key(units: List[int]) -> str:
    """keras-tuner choices must be scalars: [64, 32] is the choice '64,32'."""
    return ','.join(str(int(u)) for u in units)


def _units(value: Union[str, List[int]]) -> List[int]:
    return [int(u) for u in value.split(',')] if isinstance(value, str) else [int(u) for u in value]


def search_space(tuning: Dict) -> keras_tuner.HyperParameters:
    """The keras-tuner space of a `tuning` dict (TuningConfig dumped to JSON)."""
    hp = keras_tuner.HyperParameters()
    if tuning.get('hidden_units'):
        hp.Choice('hidden_units', [_units_key(u) for u in tuning['hidden_units']])
    if tuning.get('learning_rate'):
        hp.Float('learning_rate', tuning['learning_rate']['min'], tuning['learning_rate']['max'], sampling='log')
    if tuning.get('dropout'):
        hp.Choice('dropout', [float(d) for d in tuning['dropout']])
    if not hp.space:
        raise ValueError('tuning: the search space is empty; give hidden_units, learning_rate or dropout')
    return hp


def apply_hyperparameters(model_cfg: Dict, hparams: Optional[Union[Dict, keras_tuner.HyperParameters]]) -> Dict:
    """`model_cfg` with the tuned values in place; a new dict, `model_cfg` is not changed.

    `hparams` is what the Trainer gets as `fn_args.hyperparameters`: TFX reads the Tuner's best_hyperparameters
    file, `HyperParameters.get_config()` as JSON ({'space': [...], 'values': {...}}). A plain {name: value} dict or
    a HyperParameters object work too; None (no Tuner upstream) returns an unchanged copy. A name this module does
    not tune is an error: it means the Tuner and the Trainer disagree about the space.
    """
    result = copy.deepcopy(model_cfg)
    if hparams is None:
        return result
    if isinstance(hparams, keras_tuner.HyperParameters):
        values = hparams.values
    elif isinstance(hparams, dict) and 'values' in hparams and isinstance(hparams['values'], dict):
        values = hparams['values']
    elif isinstance(hparams, dict):
        values = hparams
    else:
        raise TypeError(f'hyperparameters: expected a dict or keras_tuner.HyperParameters, got {type(hparams)}')
    unknown = sorted(set(values) - set(TUNABLE))
    if unknown:
        raise ValueError(f'hyperparameters: {", ".join(unknown)} cannot be applied; tunable: {", ".join(TUNABLE)}')
    if 'hidden_units' in values:
        result['hidden_units'] = _units(values['hidden_units'])
    if 'learning_rate' in values:
        result['learning_rate'] = float(values['learning_rate'])
    if 'dropout' in values:
        result['dropout'] = float(values['dropout'])
    return result


def tuner_fn(fn_args: tfx.components.FnArgs) -> tfx.components.TunerFnResult:
    """TFX's Tuner calls this; it then runs `tuner.search(**fit_kwargs)` and writes the best HyperParameters.

    custom_config: {features, label, 'model': ModelConfig dumped to JSON, with `tuning`}. Each trial trains
    `tuning.steps_per_trial` steps in the model's epochs (at most one epoch per step) and evaluates `eval_steps`
    batches (the component's eval_args, else the model's) after each epoch.
    """
    features, label = parse_custom_config(fn_args.custom_config)
    model_cfg = fn_args.custom_config['model']
    if not MODEL_KINDS[model_cfg['kind']].tunable:
        raise ValueError(f'tuning applies to Keras kinds only, not {model_cfg["kind"]}')
    tuning = TuningConfig(**(model_cfg.get('tuning') or {})).model_dump(mode='json')
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_graph_path or fn_args.transform_output)
    n_classes = len(class_names(label, tf_transform_output))
    seed, batch = model_cfg['seed'], model_cfg['batch_size']

    def build(hp: keras_tuner.HyperParameters) -> tf.keras.Model:
        tf.keras.utils.set_random_seed(seed)
        return build_keras_model(features, tf_transform_output, n_classes, apply_hyperparameters(model_cfg, hp),
                                 label.type)

    tuner_class = keras_tuner.BayesianOptimization if tuning['algorithm'] == 'bayesian' else keras_tuner.RandomSearch
    tuner = tuner_class(
        hypermodel=build, objective=keras_tuner.Objective(OBJECTIVE, 'min'), max_trials=tuning['trials'],
        hyperparameters=search_space(tuning), tune_new_entries=False, allow_new_entries=False, seed=seed,
        directory=os.path.join(fn_args.working_dir, 'keras_tuner'), project_name=model_cfg.get('name') or 'model',
        overwrite=True)  # a re-executed component searches afresh instead of reloading a stale oracle

    steps = tuning['steps_per_trial']
    epochs = max(1, min(model_cfg['epochs'], steps))
    train = _dataset(fn_args, fn_args.train_files, tf_transform_output, label, n_classes, batch, seed)
    evaluation = _dataset(fn_args, fn_args.eval_files, tf_transform_output, label, n_classes, batch, seed)
    callbacks = []
    if model_cfg.get('early_stopping_patience'):
        callbacks.append(tf.keras.callbacks.EarlyStopping(monitor=OBJECTIVE,
                                                          patience=model_cfg['early_stopping_patience']))
    return tfx.components.TunerFnResult(tuner=tuner, fit_kwargs={
        'x': train, 'validation_data': evaluation, 'epochs': epochs, 'steps_per_epoch': math.ceil(steps / epochs),
        'validation_steps': fn_args.eval_steps or model_cfg['eval_steps'], 'callbacks': callbacks, 'verbose': 0})


def best_values(hparams: Optional[Dict]) -> Dict[str, Any]:
    """The tuned values in config terms (hidden_units as a list), for logs and the run summary."""
    if not hparams:
        return {}
    applied = apply_hyperparameters({}, hparams)
    return {k: applied[k] for k in TUNABLE if k in applied}
