"""The TFX pipeline built from a config: CsvExampleGen -> ... -> Pusher.

Per model (the config's `models`): Trainer -> EmbeddingMetadataGen, ServedModel (the model TF Serving has now,
the Evaluator's baseline) -> Evaluator -> [FairnessGate] -> MajorityGate (unless `evaluation.floor` is off).
With `hierarchical`, ConfusionCut -> HierarchicalTrainer on the base model, evaluated the same way. With several
candidates a ModelSelector picks the best blessed one for the Pusher.

User code is referenced by dotted path (`transforms.preprocessing.preprocessing_fn`, `components.trainer.run_fn`)
from this installed package, so TFX needs no module-file wheel staged into the pipeline root.
"""
import functools
import os
from typing import Dict, List, Optional

from tfx import v1 as tfx
from tfx.dsl.io import fileio
from tfx.orchestration import metadata

from tfx_tabular.components.anomaly_gate.component import AnomalyGate
from tfx_tabular.components.csv_example_gen.component import StreamingCsvExampleGen
from tfx_tabular.components.embedding_metadata import EmbeddingMetadataGen
from tfx_tabular.components.evaluator.eval_config import eval_config
from tfx_tabular.components.fairness_gate.component import FairnessGate
from tfx_tabular.components.majority_gate import MajorityGate
from tfx_tabular.components.model_selector.component import ModelSelector
from tfx_tabular.components.pusher import ATOMIC_PUSH_EXECUTOR
from tfx_tabular.components.evaluator.component import BaselineEvaluator
from tfx_tabular.components.served_model.component import ServedModel
from tfx_tabular.components.statistics_gen.component import InProcessStatisticsGen
from tfx_tabular.components.transform.component import Transform
from tfx_tabular.pipeline.core.config import MODEL_KINDS
from tfx_tabular.pipeline.core.names import HIERARCHICAL, metadata_path, model_push_dir, node_id, pipeline_root
from tfx_tabular.pipeline.core.beam import resolve_running_mode
from tfx_tabular.pipeline.hierarchical import example_splits, hierarchical_nodes
from tfx_tabular.transforms.preprocessing import custom_config

# ExampleGen hashes each example into one of 100 buckets: the same rows always land in the same split.
SPLIT_BUCKETS = 100


def _evaluation_nodes(config, name: str, model, n_classes: int, example_gen, schema_gen, transform) -> Dict:
    """ServedModel (the baseline) -> Evaluator -> [FairnessGate] -> [MajorityGate] for one model channel."""
    ids = functools.partial(node_id, config, model_name=name)
    served = ServedModel(model_base_path=model_push_dir(config), candidate=model).with_id(ids('ServedModel'))
    evaluator = BaselineEvaluator(
        examples=example_gen.outputs['examples'], model=model, schema=schema_gen.outputs['schema'],
        baseline_model=served.outputs['model'], eval_config=eval_config(config, n_classes)).with_id(ids('Evaluator'))
    nodes = [served, evaluator]
    blessing = evaluator.outputs['blessing']
    if config.fairness:
        gate = FairnessGate(
            evaluation=evaluator.outputs['evaluation'], evaluator_blessing=evaluator.outputs['blessing'],
            gap_gates=[g.model_dump() for g in config.fairness.gates if g.max_gap is not None],
            sensitive=list(config.fairness.sensitive)).with_id(ids('FairnessGate'))
        nodes.append(gate)
        blessing = gate.outputs['blessing']
    if config.evaluation.floor.enabled:
        floor = MajorityGate(
            evaluation=evaluator.outputs['evaluation'], upstream_blessing=blessing,
            examples=example_gen.outputs['examples'], transform_graph=transform.outputs['transform_graph'],
            custom_config=custom_config(config), floor=config.evaluation.floor.model_dump(mode='json'),
        ).with_id(ids('MajorityGate'))
        nodes.append(floor)
        blessing = floor.outputs['blessing']
    return {'nodes': nodes, 'model': model, 'evaluation': evaluator.outputs['evaluation'], 'blessing': blessing}


def _model_nodes(config, model_cfg, n_classes: int, example_gen, schema_gen, transform) -> Dict:
    """Trainer -> EmbeddingMetadataGen, and the evaluation nodes."""
    ids = functools.partial(node_id, config, model_name=model_cfg.name)
    tuner = None
    if model_cfg.tuning and model_cfg.tuning.search:
        tuner = tfx.components.Tuner(
            tuner_fn='tfx_tabular.components.tuner.tuner_fn',
            examples=transform.outputs['transformed_examples'],
            transform_graph=transform.outputs['transform_graph'],
            schema=schema_gen.outputs['schema'],
            train_args=tfx.proto.TrainArgs(num_steps=model_cfg.tuning.steps_per_trial),
            eval_args=tfx.proto.EvalArgs(num_steps=model_cfg.eval_steps),
            custom_config={**custom_config(config), 'model': model_cfg.model_dump(mode='json')}).with_id(ids('Tuner'))
    trainer = tfx.components.Trainer(
        run_fn='tfx_tabular.components.trainer.run_fn',
        examples=transform.outputs['transformed_examples'],
        transform_graph=transform.outputs['transform_graph'],
        schema=schema_gen.outputs['schema'],
        train_args=tfx.proto.TrainArgs(num_steps=model_cfg.train_steps),
        eval_args=tfx.proto.EvalArgs(num_steps=model_cfg.eval_steps),
        hyperparameters=tuner.outputs['best_hyperparameters'] if tuner else None,
        custom_config={**custom_config(config), 'model': model_cfg.model_dump(mode='json')}).with_id(ids('Trainer'))
    embedding_metadata = EmbeddingMetadataGen(
        model=trainer.outputs['model'], transform_graph=transform.outputs['transform_graph'],
        examples=example_gen.outputs['examples'], custom_config=custom_config(config),
        slicing=config.slice_columns, max_examples=config.embeddings.examples).with_id(ids('EmbeddingMetadataGen'))
    evaluation = _evaluation_nodes(config, model_cfg.name, trainer.outputs['model'], n_classes, example_gen,
                                   schema_gen, transform)
    # A linear model and trees have no hidden layer for the projector to show.
    nodes = ([tuner] if tuner else []) + [trainer] + (
        [embedding_metadata] if MODEL_KINDS[model_cfg.kind].projector else []) + evaluation['nodes']
    return {**evaluation, 'nodes': nodes}


def create_pipeline(config, n_classes: int, local_metadata: bool = True,
                    csv_pattern: Optional[str] = None) -> tfx.dsl.Pipeline:
    """`csv_pattern`: the files CsvExampleGen reads, default data.csv (the runner passes its normalised copy)."""
    eval_buckets = max(1, round(SPLIT_BUCKETS * config.data.eval_fraction))
    csv_pattern = csv_pattern or config.csv_pattern
    example_gen = StreamingCsvExampleGen(  # TFX's CsvExampleGen, with flat memory on the local DirectRunner
        input_base=os.path.dirname(csv_pattern),
        input_config=tfx.proto.Input(splits=[
            tfx.proto.Input.Split(name='all', pattern=os.path.basename(csv_pattern))]),
        output_config=tfx.proto.Output(split_config=tfx.proto.SplitConfig(
            splits=example_splits(config, SPLIT_BUCKETS, eval_buckets))))  # train, [holdout,] eval
    statistics_gen = InProcessStatisticsGen(examples=example_gen.outputs['examples'])  # TFX's, in-process when small
    if fileio.exists(config.frozen_schema_path):  # fileio: the path may be gs:// or s3://
        schema_gen = tfx.components.ImportSchemaGen(schema_file=config.frozen_schema_path)
    else:
        schema_gen = tfx.components.SchemaGen(
            statistics=statistics_gen.outputs['statistics'], infer_feature_shape=True)
    example_validator = tfx.components.ExampleValidator(
        statistics=statistics_gen.outputs['statistics'], schema=schema_gen.outputs['schema'])
    anomaly_gate = AnomalyGate(anomalies=example_validator.outputs['anomalies'])
    transform = Transform(
        examples=example_gen.outputs['examples'], schema=schema_gen.outputs['schema'],
        preprocessing_fn='tfx_tabular.transforms.preprocessing.preprocessing_fn', custom_config=custom_config(config),
        # Nothing reads Transform's own pre/post-transform statistics or its analyzer cache (StatisticsGen has
        # the data's statistics; TFX's execution cache reuses the whole output): skip computing them.
        disable_statistics=True, disable_analyzer_cache=True)
    transform.add_upstream_node(anomaly_gate)
    per_model = {m.name: _model_nodes(config, m, n_classes, example_gen, schema_gen, transform)
                 for m in config.models}
    model_nodes = [node for m in per_model.values() for node in m['nodes']]
    base = (config.hierarchical.base or config.models[0].name) if config.hierarchical else None
    nodes, hierarchical = hierarchical_nodes(config, per_model[base]['model'] if base else None,
                                             example_gen.outputs['examples'],
                                             transform.outputs['transformed_examples'],
                                             transform.outputs['transform_graph'])
    if hierarchical is not None:
        evaluation = _evaluation_nodes(config, HIERARCHICAL, hierarchical, n_classes, example_gen, schema_gen,
                                       transform)
        model_nodes += nodes + evaluation['nodes']
        if config.hierarchical.push_if_better:  # else evaluated and reported, never pushed
            per_model[HIERARCHICAL] = evaluation
    if len(per_model) == 1:
        only = next(iter(per_model.values()))
        model, blessing = only['model'], only['blessing']
    else:
        select = config.evaluation.select
        complexity = {m.name: MODEL_KINDS[m.kind].complexity for m in config.models}
        complexity[HIERARCHICAL] = max(complexity.values()) + 1  # a model per group: the most complex
        selector = ModelSelector({name: (m['model'], m['evaluation'], m['blessing']) for name, m in per_model.items()},
                                 select.metric, select.direction, complexity if select.prefer_simpler else None)
        model_nodes.append(selector)
        model, blessing = selector.outputs['model'], selector.outputs['blessing']
    pusher = tfx.components.Pusher(
        model=model, model_blessing=blessing,
        push_destination=tfx.proto.PushDestination(
            filesystem=tfx.proto.PushDestination.Filesystem(base_directory=model_push_dir(config))),
        custom_executor_spec=ATOMIC_PUSH_EXECUTOR)  # atomic version folders + models.config
    return tfx.dsl.Pipeline(
        pipeline_name=config.name,
        pipeline_root=pipeline_root(config),
        components=[example_gen, statistics_gen, schema_gen, example_validator, anomaly_gate, transform,
                    *model_nodes, pusher],
        enable_cache=True,
        # local_metadata=False (Kubeflow, which keeps the metadata itself): no SQLite file, no folder made for it.
        metadata_connection_config=(metadata.sqlite_metadata_connection_config(metadata_path(config))
                                    if local_metadata else None),
        beam_pipeline_args=beam_args(config))


def beam_args(config) -> List[str]:
    """The config's Beam flags with `direct_running_mode: auto` decided by the CSV's size."""
    return resolve_running_mode(config.beam.args, config.csv_bytes)[0]
