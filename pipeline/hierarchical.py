"""The auxiliary max-cut classifier wired into the pipeline: ConfusionCut then HierarchicalTrainer
(components/confusion_cut/, components/hierarchical/), whose `model` output is an ordinary Model to evaluate
next to the base model.

With `hierarchical.holdout_fraction` > 0 (the default), ExampleGen must also write a 'holdout' split, taken
from 'train': `example_splits(config, SPLIT_BUCKETS, eval_buckets)` gives the three.
"""
from tfx import v1 as tfx

from tfx_tabular.components.confusion_cut import ConfusionCut
from tfx_tabular.components.hierarchical import HierarchicalTrainer
from tfx_tabular.transforms.preprocessing import custom_config

HOLDOUT_SPLIT = 'holdout'


def holdout_buckets(config, total_buckets: int) -> int:
    """Hash buckets (of ExampleGen's `total_buckets`) for the 'holdout' split; 0 when there is none."""
    settings = config.hierarchical
    if settings is None or not settings.enabled or settings.holdout_fraction <= 0:
        return 0
    return max(1, round(total_buckets * settings.holdout_fraction))


def example_splits(config, total_buckets: int, eval_buckets: int) -> list:
    """ExampleGen's output splits: 'train', 'holdout' (when configured), 'eval', in this order.

    ExampleGen gives the splits consecutive ranges of the hash buckets in the order listed, so with 'eval' last it
    keeps the same rows (the last `eval_buckets`) whether or not there is a holdout: base models stay comparable
    with runs without `hierarchical`, and with the model being served.
    """
    Split = tfx.proto.SplitConfig.Split
    holdout = holdout_buckets(config, total_buckets)
    return ([Split(name='train', hash_buckets=total_buckets - eval_buckets - holdout)]
            + ([Split(name=HOLDOUT_SPLIT, hash_buckets=holdout)] if holdout else [])
            + [Split(name='eval', hash_buckets=eval_buckets)])


def hierarchical_nodes(config, base_model, raw_examples, transformed_examples, transform_graph):
    """(nodes, model_channel): [ConfusionCut, HierarchicalTrainer] and the hierarchical Model channel, or
    ([], None) when `config.hierarchical` is absent or disabled.

    base_model: the Trainer's `model` output of the base model (config.hierarchical.base);
    raw_examples: ExampleGen's `examples`; transformed_examples, transform_graph: Transform's outputs.
    Confusions are counted, and the logistic regression fit, on the 'holdout' split when the config has one
    (holdout_buckets > 0), else on 'eval' and 'train'. The ConfusionCut artifact (for the report:
    confusion.json, cut.json, confusion_graph.png) is `nodes[0].outputs['confusion_cut']`.
    """
    settings = config.hierarchical
    if settings is None or not settings.enabled:
        return [], None
    holdout = settings.holdout_fraction > 0
    data = custom_config(config)
    cut = ConfusionCut(model=base_model, examples=raw_examples, transform_graph=transform_graph,
                       custom_config=data, split=HOLDOUT_SPLIT if holdout else 'eval',
                       exact_up_to=settings.exact_up_to, seed=settings.seed)
    trainer = HierarchicalTrainer(
        base_model=base_model, examples=transformed_examples, transform_graph=transform_graph,
        confusion_cut=cut.outputs['confusion_cut'],
        custom_config={**data, 'hierarchical': settings.model_dump(mode='json')},
        combiner_split=HOLDOUT_SPLIT if holdout else 'train')
    return [cut, trainer], trainer.outputs['model']
