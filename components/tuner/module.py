"""TFX Tuner `tuner_fn` for the tunable kinds (the Keras ones).

The search space (components/trainer/hyperparameters.py) is the model's `tuning` section: `hidden_units`
choices, a log-uniform `learning_rate` range, `dropout` choices; a dimension left out keeps the model's value.
Each trial builds the same model the Trainer builds (components/trainer/keras_model.py) from the same
tf.Transform output read the same way (components/trainer/data.py), so the best values carry over unchanged.

Trials are scored by val_loss (the lowest over their epochs, as the Trainer's early stopping keeps the best
epoch). The oracle is seeded with the model's seed, and every trial re-seeds weights and data order with it, so
trials differ by their hyper-parameters, not by their luck, and a re-run tries the same points.
"""
import math
import os

import keras_tuner
import tensorflow as tf
import tensorflow_transform as tft
from tfx import v1 as tfx

from tfx_tabular.components.trainer.data import class_names, dataset
from tfx_tabular.components.trainer.hyperparameters import apply_hyperparameters, search_space
from tfx_tabular.components.trainer.keras_model import build_keras_model
from tfx_tabular.pipeline.core.config import MODEL_KINDS, TuningConfig
from tfx_tabular.transforms.preprocessing import parse_custom_config

OBJECTIVE = 'val_loss'


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
    train = dataset(fn_args, fn_args.train_files, tf_transform_output, label, n_classes, batch, seed)
    evaluation = dataset(fn_args, fn_args.eval_files, tf_transform_output, label, n_classes, batch, seed)
    callbacks = []
    if model_cfg.get('early_stopping_patience'):
        callbacks.append(tf.keras.callbacks.EarlyStopping(monitor=OBJECTIVE,
                                                          patience=model_cfg['early_stopping_patience']))
    return tfx.components.TunerFnResult(tuner=tuner, fit_kwargs={
        'x': train, 'validation_data': evaluation, 'epochs': epochs, 'steps_per_epoch': math.ceil(steps / epochs),
        'validation_steps': fn_args.eval_steps or model_cfg['eval_steps'], 'callbacks': callbacks, 'verbose': 0})
