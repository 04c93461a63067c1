"""The stock TFX Tuner's user module: `tfx_tabular.components.tuner.tuner_fn` searches the model's hyperparameters."""
from tfx_tabular.components.tuner.module import tuner_fn

__all__ = ['tuner_fn']
