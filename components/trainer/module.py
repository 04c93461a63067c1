"""Trainer `run_fn`: trains the model kind of `custom_config['model']` on the tf.Transform output and exports it
with the serving signatures every kind shares (signatures.py).

Kinds (pipeline/core/config.py MODEL_KINDS) train by family (registry.py): keras_dnn, keras_wide_deep with Keras
`fit` (keras_model.py); estimator_dnn, estimator_linear, estimator_wide_deep with `tf.estimator.train_and_evaluate`
(estimator.py: DNNClassifier, LinearClassifier, DNNLinearCombinedClassifier, or the *Estimator variants with a
MultiLabelHead); gradient_boosted_trees with YDF, compiled into TensorFlow ops (trees/). An estimator is first
exported as a TF1 SavedModel over transformed features, then loaded and wrapped with the Transform graph, as a
Keras model and the trees are.
"""
import tensorflow as tf
import tensorflow_transform as tft
from tfx import v1 as tfx

from tfx_tabular.components.trainer.data import class_names
from tfx_tabular.components.trainer.hyperparameters import apply_hyperparameters, best_values
from tfx_tabular.components.trainer.registry import family
from tfx_tabular.components.trainer.signatures import finish_signature_defs, serving_signatures
from tfx_tabular.transforms.preprocessing import parse_custom_config


def run_fn(fn_args: tfx.components.FnArgs) -> None:
    features, label = parse_custom_config(fn_args.custom_config)
    model_cfg = fn_args.custom_config['model']
    if fn_args.hyperparameters:  # the Tuner's best values (model.tuning.search)
        model_cfg = apply_hyperparameters(model_cfg, fn_args.hyperparameters)
        print(f'training with the tuned values {best_values(fn_args.hyperparameters)}', flush=True)
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)
    names = class_names(label, tf_transform_output)
    tf.keras.utils.set_random_seed(model_cfg['seed'])
    kind = family(model_cfg['kind'])
    holder, probabilities = kind.train(fn_args, features, label, names, tf_transform_output, model_cfg)

    raw_columns = [n for n, f in features.items() if f.kind != 'crossed']
    signatures = serving_signatures(holder, probabilities, tf_transform_output, raw_columns, label, names)
    kind.save(holder, fn_args.serving_model_dir, signatures)
    finish_signature_defs(fn_args.serving_model_dir, raw_columns)
