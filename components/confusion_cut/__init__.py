"""ConfusionCut: the base model's confusion matrix on a held-out split, as a graph cut in two by a maximum cut.

The classes the model confuses most end up on opposite sides; HierarchicalTrainer (components/hierarchical/)
trains a small classifier of one side against the other. Works on any exported model: it only calls the
`serving_default` and `transform_features` signatures every model of this package has.
"""
__all__ = ['ConfusionCut', 'ConfusionCutArtifact']


def __getattr__(name):
    if name == 'ConfusionCut':
        from tfx_tabular.components.confusion_cut.component import ConfusionCut
        return ConfusionCut
    if name == 'ConfusionCutArtifact':
        from tfx_tabular.components.confusion_cut.spec import ConfusionCutArtifact
        return ConfusionCutArtifact
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
