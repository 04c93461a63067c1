"""Benchmark: training throughput (examples/s) of every model kind on the shipped binary dataset, fed by the real
input pipeline, next to the same Keras models fed from in-memory tensors (the floor: what the input pipeline costs).

tf.Transform runs once, in-process (as tests/test_trainers.py does), on the config's features; its output is
written as Transform writes it (gzipped TFRecords) and read back through TFX's own dataset factory and the
Trainer's `dataset` (components/trainer/data.py), exactly as the Trainer reads it. Per kind, two figures:

- steady: examples/s over `--steps` training steps after `--warmup` steps, inside one training call (Keras `fit`,
  `Estimator.train`), no evaluation, no checkpoints, no summaries: the speed of a training step with its input.
  Printed per wall second (best of `--repeats`: the least disturbed run) and per CPU second of this process, all
  threads (median): on a shared machine the CPU figure is the steadier one;
- as run_fn: the whole training schedule of `run_fn` (`train_steps` in `epochs` rounds, each followed by
  `eval_steps` evaluation batches, TensorBoard / checkpoints, graph building), export excluded; early stopping is
  off so every kind runs every step. train_steps x batch_size / wall seconds.

The floor rows feed the same Keras model pre-batched, cached transformed tensors (`from_tensor_slices`), floor and
real runs alternating; the last row pulls batches from the real input pipeline with no model at all.

    .venv/bin/python bench/training.py [--config data/attrition/config.yaml] [--steps 1000] [--warmup 50]
"""
import argparse
import csv
import functools
import json
import math
import os
import re
import statistics
import sys
import tempfile
import time
import zlib

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import tensorflow as tf  # noqa: E402
import tensorflow_transform as tft  # noqa: E402
import tensorflow_transform.beam as tft_beam  # noqa: E402
from absl import logging as absl_logging  # noqa: E402
from tensorflow_transform.tf_metadata import dataset_metadata, metadata_io, schema_utils  # noqa: E402
from tfx.components.trainer.fn_args_utils import DataAccessor, FnArgs  # noqa: E402
from tfx.components.util import tfxio_utils  # noqa: E402
from tfx.types import standard_artifacts  # noqa: E402

from tfx_tabular.components.trainer.data import class_names, dataset, head_type  # noqa: E402
from tfx_tabular.components.trainer.estimator import build_estimator  # noqa: E402
from tfx_tabular.components.trainer.keras_model import build_keras_model  # noqa: E402
from tfx_tabular.pipeline.core.config import MODEL_KINDS, load_config  # noqa: E402
from tfx_tabular.transforms.preprocessing import custom_config, label_key, parse_custom_config, preprocessing_fn  # noqa: E402


def read_rows(config):
    """The CSV's rows, typed as CsvExampleGen types columns (int64 if every value is an integer, float32 if every
    value is a number, else string), with the raw feature spec Transform gets from the schema."""
    columns = config.raw_columns + [config.label.column]
    with open(config.csv_files[0], newline='', encoding='utf-8-sig') as f:
        raw = [{c: r[c] for c in columns} for r in csv.DictReader(f)]
    spec, cast = {}, {}
    for c in columns:
        values = [r[c] for r in raw]
        if all(re.fullmatch(r'-?\d+', v) for v in values):
            spec[c], cast[c] = tf.io.FixedLenFeature([], tf.int64), int
        elif all(re.fullmatch(r'-?[\d.]+(e-?\d+)?', v) for v in values):
            spec[c], cast[c] = tf.io.FixedLenFeature([], tf.float32), float
        else:
            spec[c], cast[c] = tf.io.FixedLenFeature([], tf.string), str
    return [{c: cast[c](r[c]) for c in columns} for r in raw], spec


def transform(config, rows, spec, out):
    """tf.Transform on the train split (analyze + transform), the eval split transformed with the same graph;
    written as Transform's `transformed_examples` artifact. Returns (examples artifact, transform dir, in-memory
    transformed train rows)."""
    eval_buckets = max(1, round(100 * config.data.eval_fraction))
    is_eval = [zlib.crc32(json.dumps(r, sort_keys=True).encode()) % 100 < eval_buckets for r in rows]
    train = [r for r, e in zip(rows, is_eval) if not e]
    evaluation = [r for r, e in zip(rows, is_eval) if e]
    metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(spec))
    transform_dir = os.path.join(out, 'transform')
    fn = functools.partial(preprocessing_fn, custom_config=custom_config(config))
    with tft_beam.Context(temp_dir=os.path.join(out, 'tft_tmp'), force_tf_compat_v1=False):
        (train_t, t_metadata), transform_fn = (train, metadata) | tft_beam.AnalyzeAndTransformDataset(fn)
        eval_t, _ = ((evaluation, metadata), transform_fn) | tft_beam.TransformDataset()
        _ = transform_fn | tft_beam.WriteTransformFn(transform_dir)
    metadata_io.write_metadata(metadata, os.path.join(transform_dir, tft.TFTransformOutput.RAW_METADATA_DIR))
    coder = tft.coders.ExampleProtoCoder(t_metadata.schema)
    examples = standard_artifacts.Examples()
    examples.uri, examples.split_names = os.path.join(out, 'transformed_examples'), json.dumps(['train', 'eval'])
    for split, data in (('train', train_t), ('eval', eval_t)):
        folder = os.path.join(examples.uri, f'Split-{split}')
        os.makedirs(folder)
        with tf.io.TFRecordWriter(os.path.join(folder, 'transformed_examples-00000-of-00001.gz'), 'GZIP') as w:
            for r in data:
                w.write(coder.encode(r))
    return examples, transform_dir, train_t


class KerasStepTimes(tf.keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.times = []

    def on_train_batch_end(self, batch, logs=None):
        self.times.append((time.perf_counter(), time.process_time()))


class EstimatorStepTimes(tf.estimator.SessionRunHook):
    def __init__(self):
        self.times = []

    def after_run(self, run_context, run_values):
        self.times.append((time.perf_counter(), time.process_time()))


def window_rate(times, warmup, steps, batch):
    """(examples per wall second, examples per CPU second of this process, all threads) between the end of step
    `warmup` and the end of step `warmup + steps`. The CPU figure is what other processes on a shared machine
    disturb least."""
    (wall0, cpu0), (wall1, cpu1) = times[warmup - 1], times[warmup + steps - 1]
    return steps * batch / (wall1 - wall0), steps * batch / (cpu1 - cpu0)


class Bench:
    def __init__(self, config, examples, transform_dir, train_rows, out, warmup, steps):
        self.features, self.label = parse_custom_config(custom_config(config))
        self.tft_output = tft.TFTransformOutput(transform_dir)
        self.n = len(class_names(self.label, self.tft_output))
        self.base = config.models[0].model_dump(mode='json')
        self.base['early_stopping_patience'] = None
        self.batch, self.seed = self.base['batch_size'], self.base['seed']
        self.out, self.warmup, self.steps = out, warmup, steps
        self.fn_args = FnArgs(
            train_files=[os.path.join(examples.uri, 'Split-train', '*')],
            eval_files=[os.path.join(examples.uri, 'Split-eval', '*')],
            transform_output=transform_dir, train_steps=self.base['train_steps'],
            eval_steps=self.base['eval_steps'], custom_config={**custom_config(config), 'model': self.base},
            data_accessor=DataAccessor(  # the factory TFX's Trainer builds from the Examples artifact
                tf_dataset_factory=tfxio_utils.get_tf_dataset_factory_from_artifact([examples], []),
                record_batch_factory=None, data_view_decode_fn=None))
        self.train_rows = train_rows

    def cfg(self, kind):
        return {**self.base, 'kind': kind}

    def dataset(self, split, label_dtype=tf.float32):
        files = self.fn_args.train_files if split == 'train' else self.fn_args.eval_files
        return dataset(self.fn_args, files, self.tft_output, self.label, self.n, self.batch, self.seed, label_dtype)

    def in_memory(self):
        """The transformed train rows as tensors, batched and cached once: no files, no parsing, no shuffle."""
        x_spec, y_spec = self.dataset('train').element_spec  # the same dtypes the real pipeline yields
        x = {k: tf.constant([r[k] for r in self.train_rows], s.dtype) for k, s in x_spec.items()}
        y = tf.constant([r[label_key(self.label)] for r in self.train_rows], y_spec.dtype)
        return (tf.data.Dataset.from_tensor_slices((x, y)).batch(self.batch, drop_remainder=True).cache()
                .repeat().prefetch(tf.data.AUTOTUNE))

    def keras_steady(self, kind, data):
        tf.keras.utils.set_random_seed(self.seed)
        model = build_keras_model(self.features, self.tft_output, self.n, self.cfg(kind), self.label.type)
        timer = KerasStepTimes()
        model.fit(data, epochs=1, steps_per_epoch=self.warmup + self.steps, verbose=0, callbacks=[timer])
        return window_rate(timer.times, self.warmup, self.steps, self.batch)

    def estimator_steady(self, kind):
        run_config = tf.estimator.RunConfig(
            model_dir=tempfile.mkdtemp(dir=self.out), tf_random_seed=self.seed, save_checkpoints_steps=10 ** 9,
            save_summary_steps=10 ** 9, log_step_count_steps=10 ** 9)
        estimator = build_estimator(self.features, self.tft_output, self.n, self.cfg(kind), self.label.type,
                                    run_config)
        timer = EstimatorStepTimes()
        estimator.train(lambda: self.dataset('train', tf.int64), max_steps=self.warmup + self.steps, hooks=[timer])
        return window_rate(timer.times, self.warmup, self.steps, self.batch)

    def as_run_fn(self, kind):
        """run_fn's training (components/trainer/keras_model.py:train_keras, estimator.py:train_estimator, early stopping off), timed
        without the export. Kept in step with the trainer by hand."""
        cfg, steps = self.cfg(kind), self.base['train_steps']
        model_run = tempfile.mkdtemp(dir=self.out)
        tf.keras.utils.set_random_seed(self.seed)
        start = time.perf_counter()
        if MODEL_KINDS[kind].trainer == 'keras':
            model = build_keras_model(self.features, self.tft_output, self.n, cfg, self.label.type)
            epochs = min(cfg['epochs'], steps)
            model.fit(self.dataset('train'), epochs=epochs, steps_per_epoch=math.ceil(steps / epochs),
                      validation_data=self.dataset('eval'), validation_steps=self.base['eval_steps'], verbose=0,
                      callbacks=[tf.keras.callbacks.TensorBoard(log_dir=model_run, update_freq='epoch')])
        else:
            every = max(1, math.ceil(steps / cfg['epochs']))
            run_config = tf.estimator.RunConfig(
                model_dir=model_run, tf_random_seed=self.seed, save_checkpoints_steps=every,
                save_summary_steps=every, keep_checkpoint_max=1, log_step_count_steps=every)
            estimator = build_estimator(self.features, self.tft_output, self.n, cfg, self.label.type, run_config)
            tf.estimator.train_and_evaluate(
                estimator,
                tf.estimator.TrainSpec(lambda: self.dataset('train', tf.int64), max_steps=steps),
                tf.estimator.EvalSpec(lambda: self.dataset('eval', tf.int64), steps=self.base['eval_steps'],
                                      throttle_secs=0, start_delay_secs=0))
        wall = time.perf_counter() - start
        return steps * self.batch / wall, wall

    def input_only(self):
        """The real input pipeline alone: batches pulled from `dataset`, no model."""
        iterator = iter(self.dataset('train'))
        times = []
        for _ in range(self.warmup + self.steps):
            next(iterator)
            times.append((time.perf_counter(), time.process_time()))
        return window_rate(times, self.warmup, self.steps, self.batch)


def main():
    parser = argparse.ArgumentParser(description=' '.join(__doc__.split('\n\n')[0].split()))
    parser.add_argument('--config', default='data/attrition/config.yaml')
    parser.add_argument('--steps', type=int, default=1000, help='timed training steps (steady)')
    parser.add_argument('--warmup', type=int, default=50, help='steps run before timing starts (steady)')
    parser.add_argument('--repeats', type=int, default=5, help='steady runs per row: best wall and median CPU figure printed')
    neural = [k for k, v in MODEL_KINDS.items() if v.trainer != 'trees']  # trees train in one YDF call, no steps
    parser.add_argument('--kinds', nargs='+', default=neural, choices=neural)
    args = parser.parse_args()
    tf.get_logger().setLevel('ERROR')
    absl_logging.set_verbosity(absl_logging.ERROR)

    config = load_config(args.config)
    rows, spec = read_rows(config)
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        examples, transform_dir, train_rows = transform(config, rows, spec, out)
        transform_s = time.perf_counter() - start
        bench = Bench(config, examples, transform_dir, train_rows, out, args.warmup, args.steps)
        if head_type(bench.label.type, bench.n) != 'binary':
            sys.exit('bench/training.py: expects a binary label (the floor feeds a float 0/1 label)')

        def measure(fn):
            """Best wall figure (the least disturbed run) and median CPU figure of `repeats` runs."""
            runs = [fn() for _ in range(args.repeats)]
            return max(r[0] for r in runs), statistics.median(r[1] for r in runs)

        # Once per process, untimed: the first model of each family pays one-time costs (thread pools, kernels,
        # grappler caches) that would otherwise land on whichever kind comes first.
        bench.keras_steady('keras_dnn', bench.dataset('train'))
        bench.estimator_steady('estimator_dnn')
        results = []  # (kind, input, (wall ex/s, CPU ex/s), run_fn examples/s, run_fn seconds)
        floors = {}
        for kind in args.kinds:
            if MODEL_KINDS[kind].trainer == 'keras':  # floor and real alternate, so a burst of load hits both alike
                pairs = [(bench.keras_steady(kind, bench.in_memory()), bench.keras_steady(kind, bench.dataset('train')))
                         for _ in range(args.repeats)]
                floors[kind] = (max(p[0][0] for p in pairs), statistics.median(p[0][1] for p in pairs))
                steady = (max(p[1][0] for p in pairs), statistics.median(p[1][1] for p in pairs))
            else:
                steady = measure(lambda: bench.estimator_steady(kind))
            rate, wall = bench.as_run_fn(kind)
            results.append((kind, 'tf.Transform output via dataset', steady, rate, wall))
            print(f'{kind}: steady {steady[0]:,.0f} examples/s ({steady[1]:,.0f} per CPU s), '
                  f'as run_fn {rate:,.0f} examples/s ({wall:.1f} s)', flush=True)
        input_rate = measure(bench.input_only)

    m = config.models[0]
    print(f'\nBenchmark: {config.name}, {len(train_rows)} train rows (of {len(rows)}), {len(config.features)} '
          f'features, batch {m.batch_size}, hidden {m.hidden_units}; steady: {args.steps} steps after '
          f'{args.warmup} warm-up, best wall / median CPU of {args.repeats}; as run_fn: {m.train_steps} steps in '
          f'{m.epochs} rounds + {m.eval_steps} eval batches each; {os.cpu_count()} cores, load average '
          f'{os.getloadavg()[0]:.1f}; tf.Transform took {transform_s:.1f} s')
    print(f'| {"kind":<20} | {"input":<32} | {"steady ex/s":>11} | {"ex per CPU s":>12} | {"vs floor (CPU)":>14} '
          f'| {"as run_fn ex/s":>14} | {"run_fn train s":>14} |')
    print(f'|{"-" * 22}|{"-" * 34}|{"-" * 12}:|{"-" * 13}:|{"-" * 15}:|{"-" * 15}:|{"-" * 15}:|')
    for kind, (wall_rate, cpu_rate) in floors.items():
        print(f'| {kind:<20} | {"in-memory tensors (floor)":<32} | {wall_rate:>11,.0f} | {cpu_rate:>12,.0f} '
              f'| {"1.00x":>14} | {"":>14} | {"":>14} |')
    for kind, source, (wall_rate, cpu_rate), rate, wall in results:
        vs = f'{cpu_rate / floors[kind][1]:.2f}x' if kind in floors else ''
        print(f'| {kind:<20} | {source:<32} | {wall_rate:>11,.0f} | {cpu_rate:>12,.0f} | {vs:>14} | {rate:>14,.0f} '
              f'| {wall:>14.1f} |')
    print(f'| {"(no model)":<20} | {"tf.Transform output via dataset":<32} | {input_rate[0]:>11,.0f} '
          f'| {input_rate[1]:>12,.0f} | {"":>14} | {"":>14} | {"":>14} |')

if __name__ == '__main__':
    main()
