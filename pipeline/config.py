"""The run's YAML config: its schema, and validation that fails in one clear line per problem.

Everything downstream (pipeline, preprocessing_fn, trainer, evaluator) reads this model, never the raw YAML.
Input paths (the CSV) resolve against the config file's folder; output paths against the working directory.
"""
from __future__ import annotations

import csv
import glob
import os
from typing import Annotated, Dict, List, Literal, Optional, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator


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


class LabelConfig(_Strict):
    column: str
    type: Literal['binary', 'multiclass']
    classes: Optional[List[str]] = None

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


class ModelConfig(_Strict):
    kind: Literal['keras_dnn', 'keras_wide_deep'] = 'keras_dnn'
    hidden_units: List[Annotated[int, Field(ge=1)]] = Field(default_factory=lambda: [64, 32], min_length=1)
    dropout: float = Field(0.1, ge=0, lt=1)
    optimizer: Literal['adam', 'sgd', 'rmsprop', 'adagrad'] = 'adam'
    learning_rate: float = Field(0.003, gt=0, le=1)
    seed: int = Field(42, ge=0, description='seeds weights initialisation and the shuffle of training data')
    early_stopping_patience: Optional[int] = Field(
        None, ge=1, description='stop after this many epochs without a lower eval loss; keep the best weights')
    batch_size: int = Field(64, ge=1)
    train_steps: int = Field(1000, ge=1)
    eval_steps: int = Field(50, ge=1)


METRICS = ('accuracy', 'auc', 'precision', 'recall')


class EvaluationConfig(_Strict):
    thresholds: Dict[Literal['accuracy', 'auc', 'precision', 'recall'],
                     Annotated[float, Field(ge=0, le=1)]] = Field(
        default_factory=lambda: {'accuracy': 0.5},
        description='lower bounds on overall metrics; a model below any is not blessed')


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


class ServingConfig(_Strict):
    model_name: str = Field(pattern=r'^[A-Za-z0-9_.-]+$')
    push_dir: str = 'serving_models'


class BeamConfig(_Strict):
    """Beam flags for the Beam-powered components: a profile (kubeflow/beam_profiles.py) and extra flags.

    After loading, `args` holds the whole list (the profile's flags, then the extra ones); expanding it again
    gives the same list, so a dumped config reloads unchanged.
    """
    profile: str = Field('direct', description='direct (local, default), dataflow or portable (Flink/Spark)')
    settings: Dict[str, Union[int, str]] = Field(default_factory=dict, description="the profile's Beam flags")
    args: List[str] = Field(default_factory=list,
                            description="extra Beam flags; one here replaces the profile's flag of the same name")

    @model_validator(mode='after')
    def _expand_profile(self):
        from kubeflow.beam_profiles import pipeline_args
        self.args = pipeline_args(self.profile, self.settings, self.args)
        return self


class Config(_Strict):
    name: str = Field(pattern=r'^[A-Za-z0-9_-]+$')
    data: DataConfig
    label: LabelConfig
    features: Dict[str, Feature] = Field(min_length=1)
    slicing: List[str] = Field(default_factory=list)
    model: ModelConfig = Field(default_factory=ModelConfig)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    fairness: Optional[FairnessConfig] = None
    embeddings: EmbeddingsConfig = Field(default_factory=EmbeddingsConfig)
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
    def _model_fits_features(self):
        if self.model.kind == 'keras_wide_deep' and all(f.kind == 'numeric' for f in self.features.values()):
            raise ValueError('model.kind keras_wide_deep needs at least one categorical, bucketized, hashed or '
                             'crossed feature for its wide part; use keras_dnn for numeric-only features')
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
        if '://' in self.csv_pattern:
            import tensorflow as tf
            return sorted(tf.io.gfile.glob(self.csv_pattern))
        return sorted(glob.glob(self.csv_pattern))

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


def read_csv_header(path: str) -> List[str]:
    with open(path, newline='', encoding='utf-8-sig') as f:
        return next(csv.reader(f), [])


def _check_against_csv(config: Config) -> List[str]:
    files = config.csv_files
    if not files:
        return [f'data.csv: no file matches {config.csv_pattern}; fix the path (relative to the config file)']
    header = read_csv_header(files[0])
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
    """Reads and validates a config file; raises ConfigError listing every problem found."""
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
