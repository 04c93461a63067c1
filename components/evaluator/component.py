"""BaselineEvaluator: TFX's Evaluator with the executor of executor.py (tfx.components.Evaluator takes no custom
executor spec), so the candidate meets the model served when it runs.

    served = ServedModel(model_base_path=model_push_dir(config), candidate=trainer.outputs['model'])
    evaluator = BaselineEvaluator(examples=..., model=trainer.outputs['model'],
                                  baseline_model=served.outputs['model'], eval_config=...)
"""
from tfx.components.evaluator.component import Evaluator
from tfx.dsl.components.base import executor_spec

from tfx_tabular.components.evaluator import executor

# A BeamExecutorSpec (an ExecutorClassSpec), so the pipeline's Beam arguments still reach the Evaluator.
BASELINE_EVALUATOR_EXECUTOR = executor_spec.BeamExecutorSpec(executor.Executor)


class BaselineEvaluator(Evaluator):
    """TFX's Evaluator running BaselineEvaluatorExecutor (tfx.components.Evaluator takes no custom executor)."""
    EXECUTOR_SPEC = BASELINE_EVALUATOR_EXECUTOR

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._id = self._id or 'Evaluator'  # the node id of TFX's Evaluator, unless .with_id() gives another
