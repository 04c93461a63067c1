"""MajorityGate: a model is blessed only if it beats the constant predictor, always answering the eval split's
most frequent class (and, on an imbalanced binary label, ranks better than chance). On by default
(`evaluation.floor`); placed after the Evaluator (and FairnessGate) of each model, before ModelSelector/Pusher.
"""
__all__ = ['MajorityGate']


def __getattr__(name):
    if name == 'MajorityGate':
        from tfx_tabular.components.majority_gate.component import MajorityGate
        return MajorityGate
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
