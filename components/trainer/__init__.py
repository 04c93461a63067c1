"""The stock TFX Trainer's user module: `tfx_tabular.components.trainer.run_fn` trains every model kind."""
from tfx_tabular.components.trainer.module import run_fn

__all__ = ['run_fn']
