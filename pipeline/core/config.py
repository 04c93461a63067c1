"""The run's YAML config: its schema, and validation that fails in one clear line per problem.

Everything downstream (pipeline, preprocessing_fn, trainer, evaluator) reads this model, never the raw YAML.
Input paths (the CSV) resolve against the config file's folder; output paths against the working directory.
"""
from __future__ import annotations

import codecs
import os
from typing import Annotated, Dict, List, Literal, NamedTuple, Optional, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tfx_tabular.pipeline.core import storage
from tfx_tabular.pipeline.core.csv_checks import csv_files, read_header, sniff_format


class ConfigError(Exception):
    """A config problem: each entry of `problems` is one line naming the key and the fix."""

    def __init__(self, path: str, problems: List[str]):
        self.path = path
        self.problems = problems
        super().__init__('\n'.join(f'{path}: {p}' for p in problems))


class _Strict(BaseModel):
    model_config = ConfigDict(extra='forbid')


class DataConfig(_Strict):
    csv: str = Field(description='CSV path or glob, relative to the config file')
    eval_fraction: float = Field(0.2, gt=0, lt=1)
    encoding: str = Field('auto', description='auto: UTF-8, or what a byte-order mark says (UTF-8, UTF-16); '
                                              'else a Python codec name such as cp1252 or latin-1')
    delimiter: str = Field('auto', description='auto: the most frequent of , ; tab | in the header line; '
                                               'else one character, or tab')

    @field_validator('encoding')
    @classmethod
    def _known_codec(cls, encoding):
        if encoding != 'auto':
            try:
                codecs.lookup(encoding)
            except LookupError:
                raise ValueError(f'unknown encoding {encoding!r}; use auto, utf-8, cp1252, latin-1 or another '
                                 'Python codec name') from None
        return encoding

    @field_validator('delimiter')
    @classmethod
    def _one_character(cls, delimiter):
        delimiter = '\t' if delimiter == 'tab' else delimiter
        if delimiter != 'auto' and (len(delimiter) != 1 or delimiter in '"\r\n'):
            raise ValueError(f'must be auto, tab or one character such as ; or |, got {delimiter!r} (a tab in '
                             'YAML: tab, or "\\t" in double quotes)')
        return delimiter


class LabelConfig(_Strict):
    column: str
    type: Literal['binary', 'multiclass', 'multilabel']
    classes: Optional[List[str]] = None
    delimiter: str = Field('|', min_length=1,
                           description='multilabel only: separates the labels of one row, as in "a|c"')

    @model_validator(mode='after')
    def _classes_fit_type(self):
        if self.column.upper().startswith('TODO'):
            raise ValueError('label column is still TODO: set it to the CSV column to predict')
        if self.classes is not None:
            if len(set(self.classes)) != len(self.classes):
                raise ValueError('classes must not repeat')
            if self.type == 'binary' and len(self.classes) != 2:
                raise ValueError(f'a binary label has exactly 2 classes, got {len(self.classes)}: '
                                 'list [negative, positive] or use type: multiclass')
            if self.type == 'multiclass' and len(self.classes) < 3:
                raise ValueError('a multiclass label has at least 3 classes: use type: binary for 2')
            if self.type == 'multilabel' and len(self.classes) < 2:
                raise ValueError('a multilabel label has at least 2 classes')
        if self.type != 'multilabel' and self.delimiter != '|':
            raise ValueError('delimiter applies to type: multilabel only; remove it or set type: multilabel')
        return self


class NumericFeature(_Strict):
    kind: Literal['numeric']
    scaling: Literal['z_score', 'min_max', 'log', 'raw'] = 'z_score'


class _IdFeature(_Strict):
    """A feature tf.Transform turns into integer ids: one-hot for the models, or a learnt embedding."""
    embedding_dim: Optional[int] = Field(None, ge=1, le=1024,
                                         description='give DNN models a learnt embedding instead of one-hot')


class BucketizedFeature(_IdFeature):
    kind: Literal['bucketized']
    buckets: int = Field(ge=2, le=1000, description='number of quantile buckets')


class CategoricalFeature(_IdFeature):
    kind: Literal['categorical']
    top_k: Optional[int] = Field(None, ge=1, description='keep the k most frequent values')
    oov_buckets: int = Field(1, ge=1, le=1000)


class HashedFeature(_IdFeature):
    kind: Literal['hashed']
    hash_buckets: int = Field(ge=2, le=1_000_000)


class CrossedFeature(_IdFeature):
    kind: Literal['crossed']
    columns: List[str] = Field(min_length=2)
    hash_buckets: int = Field(ge=2, le=1_000_000)


Feature = Annotated[
    Union[NumericFeature, BucketizedFeature, CategoricalFeature, HashedFeature, CrossedFeature],
    Field(discriminator='kind')]
FEATURE_KINDS = ('numeric', 'bucketized', 'categorical', 'hashed', 'crossed')


class ModelKind(NamedTuple):
    """What a model kind is, for the code that treats kinds differently (instead of testing name prefixes)."""
    builds: str       # what the Trainer builds
    trainer: str      # the family that trains it (components/trainer/registry.py): keras | estimator | trees
    projector: bool   # has hidden layers for the Embedding Projector (EmbeddingMetadataGen)
    tunable: bool     # the Tuner (keras-tuner) can search it
    wide: bool        # has a linear part on one-hot ids, so needs an id feature
    complexity: int   # ModelSelector's preference among models within noise of the best: the lowest first


MODEL_KINDS = {
    'keras_dnn': ModelKind('Keras DNN', 'keras', projector=True, tunable=True, wide=False, complexity=2),
    'keras_wide_deep': ModelKind('Keras DNN + linear part on one-hot ids', 'keras', True, True, True, 3),
    'estimator_dnn': ModelKind('tf.estimator DNNClassifier (DNNEstimator)', 'estimator', True, False, False, 2),
    'estimator_linear': ModelKind('tf.estimator LinearClassifier (LinearEstimator)', 'estimator', False, False, False,
                                  0),
    'estimator_wide_deep': ModelKind('tf.estimator DNNLinearCombinedClassifier (…Estimator)', 'estimator', True,
                                     False, True, 3),
    'gradient_boosted_trees': ModelKind('YDF gradient-boosted trees compiled into TensorFlow ops', 'trees', False,
                                        False, False, 1),
}
KIND_NAMES = tuple(MODEL_KINDS)
# ModelConfig fields only the neural kinds read: set on a tree kind they are a config error, not silently ignored.
NEURAL_FIELDS = ('hidden_units', 'dropout', 'optimizer', 'learning_rate', 'batch_size', 'epochs',
                 'early_stopping_patience', 'tuning')


class TreesConfig(_Strict):
    """Gradient-boosted trees (kind gradient_boosted_trees, components/trainer/trees/), trained by YDF on the tf.Transform
    output and compiled into TensorFlow ops for serving."""
    num_trees: int = Field(300, ge=1, le=5000, description='boosting iterations at most (multi-class: trees per '
                                                           'class)')
    max_depth: int = Field(6, ge=2, le=12)
    shrinkage: float = Field(0.1, gt=0, le=1, description='learning rate: each tree\'s contribution is scaled by it')
    min_examples: int = Field(5, ge=1, description='fewest training examples in a leaf')
    subsample: float = Field(1.0, gt=0, le=1, description='share of the training rows each tree is grown on')
    l2_regularization: float = Field(0.0, ge=0)
    early_stopping: bool = Field(True, description='stop once the eval-split loss has not improved for 30 '
                                                   'iterations, keeping the best number of trees')
    categorical_algorithm: Literal['RANDOM', 'CART'] = Field(
        'RANDOM', description="how a categorical feature's split is searched: RANDOM samples value subsets "
                              "(Breiman's random categorical); CART, YDF's default, takes the best subset found by "
                              'ordering the values, which overfits many-valued columns (bench/quality.py: RANDOM '
                              'as good or better on 8 of 8 datasets)')
    num_threads: Optional[int] = Field(
        None, ge=1, description="YDF's training threads; by default one on a machine of up to two cores, where "
                                "YDF's threads cost more than they give (300 trees on 480 rows x 300 columns: 31 s "
                                'on two threads, 2.5 s on one), else YDF\'s own choice')


class LearningRateRange(_Strict):
    min: float = Field(1e-4, gt=0, le=1)
    max: float = Field(0.03, gt=0, le=1)

    @model_validator(mode='after')
    def _ordered(self):
        if self.min >= self.max:
            raise ValueError(f'learning_rate: min {self.min} must be below max {self.max}')
        return self


class TuningConfig(_Strict):
    """Optional tuning of a Keras model (components/tuner/module.py, components/trainer/lr_range_test.py).

    `search`: a TFX Tuner (keras-tuner) tries `trials` points of the space below, each trained `steps_per_trial`
    steps and scored by its lowest eval loss; the best values replace the model's in the Trainer. A dimension left
    out keeps the model's own value. `lr_range_test`: before training, a short run with an exponentially
    increasing learning rate; the Trainer plots loss vs rate, logs the suggested rate and, with
    `use_suggested_lr`, trains with it."""
    search: bool = Field(True, description='run the TFX Tuner before the Trainer')
    algorithm: Literal['random', 'bayesian'] = 'random'
    trials: int = Field(10, ge=1, le=500)
    steps_per_trial: int = Field(200, ge=1, description='training steps of each trial (in the model\'s epochs)')
    hidden_units: Optional[List[List[Annotated[int, Field(ge=1)]]]] = Field(
        None, min_length=1, description='choices, e.g. [[64, 32], [128, 64], [32]]; default: the model\'s')
    learning_rate: Optional[LearningRateRange] = Field(
        default_factory=LearningRateRange, description='log-uniform range; null keeps the model\'s rate')
    dropout: Optional[List[Annotated[float, Field(ge=0, lt=1)]]] = Field(
        None, min_length=1, description='choices, e.g. [0.0, 0.1, 0.3]; default: the model\'s')
    lr_range_test: bool = Field(False, description='run the learning-rate range test before training')
    lr_range_steps: int = Field(100, ge=5, le=10000)
    lr_range_min: float = Field(1e-5, gt=0, lt=10)
    lr_range_max: float = Field(1.0, gt=0, le=10)
    use_suggested_lr: bool = Field(False, description='train with the range test\'s suggested learning rate')

    @model_validator(mode='after')
    def _consistent(self):
        if self.search and not (self.hidden_units or self.learning_rate or self.dropout):
            raise ValueError('search has nothing to tune: give hidden_units, learning_rate or dropout, '
                             'or set search: false')
        if not self.search and not self.lr_range_test:
            raise ValueError('search and lr_range_test are both off: remove tuning or turn one on')
        if self.use_suggested_lr and not self.lr_range_test:
            raise ValueError('use_suggested_lr needs lr_range_test: true')
        if self.use_suggested_lr and self.search and self.learning_rate:
            raise ValueError('use_suggested_lr and the learning_rate search both set the learning rate: '
                             'set learning_rate: null or use_suggested_lr: false')
        if self.lr_range_min >= self.lr_range_max:
            raise ValueError(f'lr_range_min {self.lr_range_min} must be below lr_range_max {self.lr_range_max}')
        return self


class ModelConfig(_Strict):
    """One model to train. Keras kinds train with `fit`, estimator kinds with `train_and_evaluate`; all read the
    same feature columns (transforms/feature_columns.py) and export the same serving signatures."""
    name: Optional[str] = Field(None, pattern=r'^[a-z][a-z0-9_]{0,30}$',
                                description='names the model in the comparison and its pipeline nodes; '
                                            'default: its kind')
    kind: Literal[KIND_NAMES] = 'keras_dnn'
    head: Optional[Literal['binary', 'multiclass', 'multilabel']] = Field(
        None, description='the output head; default and only valid value: the label type')
    hidden_units: List[Annotated[int, Field(ge=1)]] = Field(default_factory=lambda: [64, 32], min_length=1)
    dropout: float = Field(0.1, ge=0, lt=1)
    optimizer: Literal['adam', 'sgd', 'rmsprop', 'adagrad'] = 'adam'
    learning_rate: float = Field(0.003, gt=0, le=1)
    seed: int = Field(42, ge=0, description='seeds weights initialisation and the shuffle of training data')
    early_stopping_patience: Optional[int] = Field(
        None, ge=1, description='stop after this many evaluations without a lower eval loss (Keras: epochs, '
                                'keeping the best weights)')
    batch_size: int = Field(64, ge=1)
    train_steps: int = Field(1000, ge=1)
    epochs: int = Field(10, ge=1, le=1000, description='training is cut into this many rounds of train_steps/'
                                                       'epochs steps, each followed by an evaluation (Keras epochs)')
    eval_steps: int = Field(50, ge=1)
    tuning: Optional[TuningConfig] = Field(None, description='hyper-parameter search and/or learning-rate range '
                                                             'test; Keras kinds only')
    trees: Optional[TreesConfig] = Field(None, description='gradient_boosted_trees only; default: TreesConfig()')

    @model_validator(mode='after')
    def _default_name(self):
        if self.name is None:
            self.name = self.kind
        return self

    @model_validator(mode='after')
    def _tuning_fits_kind(self):
        if self.tuning is not None and not MODEL_KINDS[self.kind].tunable:
            tunable = ', '.join(k for k, v in MODEL_KINDS.items() if v.tunable)
            raise ValueError(f'tuning applies to Keras kinds only ({tunable}), not {self.kind}: remove tuning or use '
                             'a Keras kind')
        return self

    @model_validator(mode='after')
    def _options_fit_kind(self):
        """Tree options on a tree kind only, and the neural kinds' options not on it (defaults filled in)."""
        if MODEL_KINDS[self.kind].trainer == 'trees':
            neural = [f for f in NEURAL_FIELDS if f in self.model_fields_set and getattr(self, f) != type(
                self).model_fields[f].get_default(call_default_factory=True)]
            if neural:
                raise ValueError(f'{", ".join(neural)}: not used by kind {self.kind} (set its options under trees: '
                                 'num_trees, max_depth, shrinkage, ...); remove them')
            self.trees = self.trees or TreesConfig()
        elif self.trees is not None:
            raise ValueError(f'trees: applies to kind gradient_boosted_trees only, not {self.kind}; remove it')
        return self


METRICS = ('accuracy', 'auc', 'precision', 'recall')


class SelectionConfig(_Strict):
    """How the best of several models is chosen: among the blessed ones, the best value of `metric`; for accuracy,
    by default the simplest model within one standard error of the best (components/model_selector/)."""
    metric: Literal['accuracy', 'auc', 'precision', 'recall'] = 'accuracy'
    direction: Literal['maximize', 'minimize'] = 'maximize'
    prefer_simpler: bool = Field(
        True, description='metric accuracy: push the simplest model (linear, then trees, then DNN, then wide and '
                          'deep) whose accuracy is within one standard error of the best, sqrt(p(1-p)/n) on the n '
                          'eval rows; a smaller difference is noise on an eval split that size')


class FloorConfig(_Strict):
    """The constant predictor every model must beat (components/majority_gate/): always answering the eval
    split's most frequent class. A model at or below its accuracy is never blessed; on an imbalanced binary
    label, where that accuracy is high for free, the model must also rank better than chance (AUC)."""
    enabled: bool = Field(True, description='gate every model on the majority-class floor')
    accuracy_margin: float = Field(
        0.0, ge=0, lt=0.5, description="accuracy must exceed the eval split's majority-class rate by more than this")
    auc_margin: float = Field(0.05, ge=0, lt=0.5,
                              description='imbalanced binary labels: AUC must reach 0.5 (a constant) + this')
    imbalanced_from: float = Field(0.6, gt=0.5, le=1, description='a binary label is imbalanced when its majority '
                                                                  'class holds at least this share of the eval rows')


class EvaluationConfig(_Strict):
    floor: FloorConfig = Field(default_factory=FloorConfig,
                               description='the majority-class floor every model must beat (on by default)')
    select: SelectionConfig = Field(default_factory=SelectionConfig,
                                    description='with several models: which blessed one is pushed')
    thresholds: Dict[Literal['accuracy', 'auc', 'precision', 'recall'],
                     Annotated[float, Field(ge=0, le=1)]] = Field(
        default_factory=lambda: {'accuracy': 0.5},
        description='lower bounds on overall metrics; a model below any is not blessed')
    max_drop: Dict[Literal['accuracy', 'auc', 'precision', 'recall'],
                   Annotated[float, Field(ge=0, le=1)]] = Field(
        default_factory=dict,
        description='change thresholds against the served model: the candidate may be at most this much below '
                    'it on the overall slice (e.g. accuracy: 0.02); ignored on a first run, when nothing is served')


FairnessMetric = Literal['accuracy', 'auc', 'precision', 'recall', 'false_positive_rate', 'false_negative_rate']


class FairnessGate(_Strict):
    """A bound every group of every sensitive feature must meet (`min`/`max`), or a bound on the largest
    difference between any two groups of the same feature (`max_gap`)."""
    metric: FairnessMetric
    min: Optional[float] = Field(None, ge=0, le=1)
    max: Optional[float] = Field(None, ge=0, le=1)
    max_gap: Optional[float] = Field(None, gt=0, le=1)

    @model_validator(mode='after')
    def _has_a_bound(self):
        if self.min is None and self.max is None and self.max_gap is None:
            raise ValueError(f'gate on {self.metric} has no bound: add min, max or max_gap')
        return self


class FairnessConfig(_Strict):
    sensitive: List[str] = Field(min_length=1, description='CSV columns whose groups are audited and gated')
    thresholds: List[Annotated[float, Field(gt=0, lt=1)]] = Field(
        default_factory=lambda: [0.3, 0.5, 0.7], min_length=1,
        description="decision thresholds of TFMA's Fairness Indicators")
    gates: List[FairnessGate] = Field(default_factory=list)


class EmbeddingsConfig(_Strict):
    examples: int = Field(500, ge=0, description='eval examples whose last hidden layer the projector shows')


class HierarchicalConfig(_Strict):
    """Auxiliary max-cut classifier (components/hierarchical/): the base model's eval confusion matrix becomes a
    graph, a maximum cut splits the classes in two so the most-confused pairs land on opposite sides, a small
    binary classifier learns the split, and a logistic regression on [base probabilities, auxiliary
    probability] gives the final class. Multi-class labels with at least 3 classes (meant for 10 or more)."""
    enabled: bool = Field(True, description='train and evaluate the hierarchical model next to the base model')
    base: Optional[str] = Field(None, description='name of the model (in models) the auxiliary classifier helps; '
                                                  'default: the first')
    push_if_better: bool = Field(
        True, description='push the hierarchical model instead of the base when it is blessed and scores better '
                          'on the eval split; false: evaluate and report it, never push it')
    aux_hidden_units: List[Annotated[int, Field(ge=1)]] = Field(
        default_factory=lambda: [8], min_length=1,
        description='hidden layers of the auxiliary side-A-vs-side-B classifier; it must have at least 10x fewer '
                    'parameters than the base model (the run fails otherwise: use fewer units)')
    aux_train_steps: int = Field(300, ge=1, description='training steps of the auxiliary classifier')
    combiner_train_steps: int = Field(300, ge=1, description='training steps of the logistic regression')
    learning_rate: float = Field(0.01, gt=0, le=1, description='Adam, for both the auxiliary and the combiner')
    batch_size: int = Field(64, ge=1)
    seed: int = Field(42, ge=0)
    exact_up_to: int = Field(20, ge=2, le=22, description='classes up to which the maximum cut is exact '
                                                          '(enumeration); above, a local search with a bound')
    holdout_fraction: float = Field(
        0.15, ge=0, lt=0.5,
        description="rows ExampleGen puts in a third split, 'holdout', that no model trains on: the confusions "
                    "are counted and the logistic regression is fit there, so 'eval' stays unseen for the "
                    "comparison. 0: confusions on 'eval', logistic regression on 'train' (where the base model "
                    "is rarely wrong, so it learns little)")


class ServingConfig(_Strict):
    model_name: str = Field(pattern=r'^[A-Za-z0-9_.-]+$')
    push_dir: str = 'serving_models'


class BeamConfig(_Strict):
    """Beam flags for the Beam-powered components: a profile (pipeline/core/beam.py) and extra flags.

    After loading, `args` holds the whole list (the profile's flags, then the extra ones); expanding it again
    gives the same list, so a dumped config reloads unchanged.
    """
    profile: str = Field('direct', description='direct (local, default), dataflow or portable (Flink/Spark)')
    settings: Dict[str, Union[int, str]] = Field(default_factory=dict, description="the profile's Beam flags")
    args: List[str] = Field(default_factory=list,
                            description="extra Beam flags; one here replaces the profile's flag of the same name")

    @model_validator(mode='after')
    def _expand_profile(self):
        from tfx_tabular.pipeline.core.beam import pipeline_args
        self.args = pipeline_args(self.profile, self.settings, self.args)
        return self


class Config(_Strict):
    name: str = Field(pattern=r'^[A-Za-z0-9_-]+$')
    data: DataConfig
    label: LabelConfig
    features: Dict[str, Feature] = Field(min_length=1)
    slicing: List[str] = Field(default_factory=list)
    model: Optional[ModelConfig] = Field(None, description='the one model to train (or list several in models)')
    models: List[ModelConfig] = Field(default_factory=list,
                                      description='several models, trained and compared side by side')
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    fairness: Optional[FairnessConfig] = None
    embeddings: EmbeddingsConfig = Field(default_factory=EmbeddingsConfig)
    hierarchical: Optional[HierarchicalConfig] = Field(
        None, description='auxiliary max-cut classifier for multi-class labels (off when absent)')
    serving: ServingConfig
    beam: BeamConfig = Field(default_factory=BeamConfig)
    run_dir: Optional[str] = Field(None, description='default: runs/<name> in the working directory')
    frozen_schema: Optional[str] = Field(
        None, description='schema.pbtxt written by `tfx-tabular schema freeze`, relative to the config file')

    # Set by load_config, not by the YAML.
    config_dir: str = Field('.', exclude=True)

    @field_validator('features')
    @classmethod
    def _crosses_reference_features(cls, features):
        for name, spec in features.items():
            if isinstance(spec, CrossedFeature):
                for col in spec.columns:
                    other = features.get(col)
                    if other is None or other.kind not in ('categorical', 'bucketized', 'hashed'):
                        raise ValueError(
                            f'{name}: crossed column {col!r} must name a categorical, bucketized or hashed '
                            'feature defined in features')
        return features

    @model_validator(mode='after')
    def _gates_fit_label(self):
        if self.fairness and self.fairness.gates and self.label.type != 'binary':
            raise ValueError('fairness.gates: gates are supported for binary labels only so far; remove them '
                             '(multi-class runs still report Fairness Indicators per group)')
        return self

    @model_validator(mode='after')
    def _one_model_list(self):
        """`model: {...}` is shorthand for a one-entry `models` list; afterwards `models` holds them all."""
        if self.model is not None and self.models:
            raise ValueError('give either model (one model) or models (a list), not both')
        if not self.models:
            self.models = [self.model or ModelConfig()]
        self.model = None
        names = [m.name for m in self.models]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if 'hierarchical' in names and self.hierarchical and self.hierarchical.enabled:
            raise ValueError("models: the name 'hierarchical' is taken by the hierarchical model; rename yours")
        if dupes:
            raise ValueError(f'models: the name {dupes[0]!r} is used twice; give each model a distinct name')
        return self

    @model_validator(mode='after')
    def _models_fit_features(self):
        numeric_only = all(f.kind == 'numeric' for f in self.features.values())
        embedding_only = all(f.kind != 'numeric' and f.embedding_dim for f in self.features.values())
        for i, m in enumerate(self.models):
            where = f'models[{i}] ({m.name})'
            if MODEL_KINDS[m.kind].wide and numeric_only:
                raise ValueError(f'{where}: kind {m.kind} needs at least one categorical, bucketized, hashed or '
                                 'crossed feature for its wide part; use a dnn kind for numeric-only features')
            if m.kind == 'estimator_linear' and embedding_only:
                raise ValueError(f'{where}: a linear model cannot learn embeddings, and every feature here is an '
                                 'embedding (embedding_dim set); remove embedding_dim from some features or use '
                                 'estimator_dnn')
            if m.head is not None and m.head != self.label.type:
                hint = {'multilabel': 'one sigmoid per class', 'binary': 'one sigmoid',
                        'multiclass': 'one softmax over the classes'}[self.label.type]
                raise ValueError(f'{where}: head {m.head} cannot train a {self.label.type} label ({hint}); '
                                 f'remove head or set it to {self.label.type}')
        return self

    @model_validator(mode='after')
    def _hierarchical_fits(self):
        """Multi-class labels only; `hierarchical.base` names a model of `models` (default: the first)."""
        h = self.hierarchical
        if not (h and h.enabled):
            return self
        if self.label.type != 'multiclass':
            raise ValueError(f'hierarchical: needs a multiclass label with at least 3 classes, label.type is '
                             f'{self.label.type}; remove hierarchical or set enabled: false')
        names = [m.name for m in self.models]
        h.base = h.base or names[0]
        if h.base not in names:
            raise ValueError(f'hierarchical.base: {h.base!r} is not a model name; use one of {", ".join(names)}')
        base_kind = next(m.kind for m in self.models if m.name == h.base)
        if MODEL_KINDS[base_kind].trainer == 'trees':
            raise ValueError(f'hierarchical.base: {h.base!r} is a {base_kind} model, which the hierarchical model '
                             'cannot freeze inside itself yet; name a Keras or estimator model')
        if self.data.eval_fraction + h.holdout_fraction > 0.5:
            raise ValueError(f'hierarchical.holdout_fraction: {h.holdout_fraction} with data.eval_fraction '
                             f'{self.data.eval_fraction} leaves less than half the rows for training; lower either')
        return self

    # ---- derived paths -------------------------------------------------------------------------
    # A path with a scheme (gs://, s3://) is an object-storage URI: kept as written and read via tf.io.gfile.
    @property
    def csv_pattern(self) -> str:
        if '://' in self.data.csv:
            return self.data.csv
        return os.path.normpath(os.path.join(self.config_dir, self.data.csv))

    @property
    def csv_files(self) -> List[str]:
        return storage.glob(self.csv_pattern)

    @property
    def csv_bytes(self) -> Optional[int]:
        """Total size of the CSV files; None for object storage (not looked up) or when nothing matches."""
        if '://' in self.csv_pattern or not self.csv_files:
            return None
        return sum(os.path.getsize(f) for f in self.csv_files)

    @property
    def run_path(self) -> str:
        if self.run_dir and '://' in self.run_dir:
            return self.run_dir.rstrip('/')
        return os.path.abspath(self.run_dir or os.path.join('runs', self.name))

    @property
    def push_path(self) -> str:
        if '://' in self.serving.push_dir:
            return self.serving.push_dir.rstrip('/')
        return os.path.abspath(self.serving.push_dir)

    @property
    def frozen_schema_path(self) -> str:
        if self.frozen_schema and '://' in self.frozen_schema:
            return self.frozen_schema
        return os.path.normpath(os.path.join(self.config_dir, self.frozen_schema or 'schema/schema.pbtxt'))

    @property
    def slice_columns(self) -> List[str]:
        """Columns metrics are reported by: `slicing`, then the sensitive ones not already there."""
        sensitive = self.fairness.sensitive if self.fairness else []
        return list(self.slicing) + [c for c in sensitive if c not in self.slicing]

    @property
    def raw_columns(self) -> List[str]:
        """CSV columns the model reads (crossed features are derived, not read)."""
        return [n for n, f in self.features.items() if f.kind != 'crossed']


def _format_pydantic_error(err: dict) -> str:
    loc = [str(p) for p in err['loc'] if p != '[key]']
    # pydantic puts the discriminator value of a feature into its location (features.age.numeric.scaling).
    if len(loc) > 2 and loc[0] == 'features' and loc[2] in FEATURE_KINDS:
        del loc[2]
    loc = '.'.join(loc)
    kind = err['type']
    msg = err['msg']
    if kind == 'extra_forbidden':
        return f'{loc}: unknown key; remove it or check its spelling'
    if kind == 'missing':
        return f'{loc}: required key is missing; add it'
    if kind == 'union_tag_invalid':
        return f'{loc}: unknown kind {err["input"].get("kind")!r}; use one of {", ".join(FEATURE_KINDS)}'
    if kind == 'union_tag_not_found':
        return f'{loc}: no kind given; add kind: one of {", ".join(FEATURE_KINDS)}'
    if kind == 'literal_error':
        return f'{loc}: {msg.replace("Input should be", "must be")}, got {err["input"]!r}'
    if msg.startswith('Value error, '):
        msg = msg[len('Value error, '):]
    else:
        msg = msg.replace('Input should be', 'must be')
        msg = f'{msg}, got {err["input"]!r}' if not isinstance(err.get('input'), (dict, list)) else msg
    return f'{loc}: {msg}' if loc else msg


def read_csv_header(path: str, encoding: str = 'auto', delimiter: str = 'auto') -> List[str]:
    """The column names as the run reads them (pipeline/core/csv_checks.py); a DataError for an empty or unreadable
    file, so `validate` says what `run` would say."""
    return read_header(path, sniff_format(path, encoding, delimiter))


def _check_against_csv(config: Config) -> List[str]:
    files = csv_files(config)
    if not files:
        return [f'data.csv: no file matches {config.csv_pattern}; fix the path (relative to the config file)']
    header = read_csv_header(files[0], config.data.encoding, config.data.delimiter)
    columns = set(header)
    problems = []
    hint = f'columns of {os.path.basename(files[0])} are: {", ".join(header)}'
    if config.label.column not in columns:
        problems.append(f'label.column: {config.label.column!r} is not a CSV column; {hint}')
    for name in config.raw_columns:
        if name not in columns:
            problems.append(f'features.{name}: not a CSV column; rename it to one of the CSV columns or remove it '
                            f'({hint})')
        elif name == config.label.column:
            problems.append(f'features.{name}: is the label column; a label cannot also be a feature, remove it')
    for name, spec in config.features.items():
        if spec.kind == 'crossed' and name in columns:
            problems.append(f'features.{name}: a crossed feature needs a new name, {name!r} is already a CSV column')
    for name in config.fairness.sensitive if config.fairness else []:
        if name not in columns:
            problems.append(f'fairness.sensitive: {name!r} is not a CSV column ({hint})')
    for name in config.slicing:
        if name not in columns:
            problems.append(f'slicing: {name!r} is not a CSV column; slice on raw CSV columns ({hint})')
    return problems


def load_config(path: str, check_csv: bool = True) -> Config:
    """Reads and validates a config file; raises ConfigError listing every problem found, or DataError when the
    first CSV file cannot be read (empty, undecodable)."""
    if not os.path.isfile(path):
        raise ConfigError(path, ['file not found; pass the path of a YAML config (tfx-tabular init writes one)'])
    try:
        with open(path, encoding='utf-8') as f:
            raw = yaml.safe_load(f)
    except yaml.YAMLError as e:
        mark = getattr(e, 'problem_mark', None)
        where = f'line {mark.line + 1}: ' if mark else ''
        raise ConfigError(path, [f'{where}not valid YAML ({getattr(e, "problem", e)}); fix the syntax'])
    if not isinstance(raw, dict):
        raise ConfigError(path, ['the top level must be a mapping of keys (name, data, label, features, ...)'])
    if 'config_dir' in raw:
        raise ConfigError(path, ['config_dir: unknown key; remove it or check its spelling'])
    try:
        config = Config(**raw, config_dir=os.path.dirname(os.path.abspath(path)))
    except ValidationError as e:
        raise ConfigError(path, [_format_pydantic_error(err) for err in e.errors()])
    if check_csv:
        problems = _check_against_csv(config)
        if problems:
            raise ConfigError(path, problems)
    return config
