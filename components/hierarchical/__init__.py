"""HierarchicalTrainer: the auxiliary max-cut classifier, trained on one side of ConfusionCut's cut against the
other (components/confusion_cut/) and combined with the base model; pipeline/hierarchical.py wires both in.
Classes load lazily, like components/embedding_metadata: importing the package does not import TFX.
"""
__all__ = ['HierarchicalTrainer']


def __getattr__(name):
    if name == 'HierarchicalTrainer':
        from tfx_tabular.components.hierarchical.component import HierarchicalTrainer
        return HierarchicalTrainer
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
