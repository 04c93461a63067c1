"""The pipeline's Pusher executor: TFX's, with an atomic push and models.config (see executor.py)."""
from tfx.dsl.components.base import executor_spec

from tfx_tabular.components.pusher.executor import Executor

ATOMIC_PUSH_EXECUTOR = executor_spec.ExecutorClassSpec(Executor)
