"""The `tfx-tabular` command. Exit codes: 0 done, 1 the pipeline failed or stopped on anomalies,
2 bad config, CSV or arguments, 3 the run finished but the model was not blessed (so not pushed)."""
import argparse
import os
import sys

from tfx_tabular.pipeline.core import storage

EXIT_FAILED, EXIT_BAD_INPUT, EXIT_NOT_BLESSED = 1, 2, 3


def _quiet_tensorflow():
    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
    os.environ.setdefault('PYTHONWARNINGS', 'ignore')  # inherited by Beam's worker processes
    import warnings
    warnings.filterwarnings('ignore')


def _load(path):
    from tfx_tabular.pipeline.core.config import load_config
    return load_config(path)


def cmd_run(args) -> int:
    _quiet_tensorflow()
    config = _load(args.config)
    from tfx_tabular.pipeline.runner import run_pipeline
    summary = run_pipeline(config)
    from tfx_tabular.pipeline.results.text import format_summary
    print(format_summary(summary))
    print(f'\nSummary: {os.path.join(config.run_path, "summary.json")}')
    return 0 if summary.get('blessed') else EXIT_NOT_BLESSED


def cmd_validate(args) -> int:
    config = _load(args.config)
    print(f'{args.config}: OK ({len(config.features)} features, label {config.label.column!r}, '
          f'{len(config.csv_files)} CSV file(s))')
    return 0


def cmd_init(args) -> int:
    from tfx_tabular.pipeline.init_config import starter_config
    out = args.output or os.path.splitext(os.path.basename(args.csv))[0] + '.yaml'
    if os.path.exists(out) and not args.force:
        print(f'{out} exists; pass --force to overwrite it or --output to choose another path', file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        text = starter_config(args.csv, args.label, config_dir=os.path.dirname(os.path.abspath(out)))
    except (OSError, ValueError) as e:
        print(f'tfx-tabular init: {e}', file=sys.stderr)
        return EXIT_BAD_INPUT
    storage.write_text(out, text)
    todo = ' (fill in the TODO lines first)' if 'TODO' in text else ''
    print(f'Wrote {out}{todo}. Check it, then: tfx-tabular run --config {out}')
    return 0


def cmd_schema_freeze(args) -> int:
    config = _load(args.config)
    from tfx_tabular.pipeline.schema import NoSchemaError, freeze
    try:
        path = freeze(config)
    except NoSchemaError as e:
        print(f'tfx-tabular schema freeze: {e}', file=sys.stderr)
        return EXIT_BAD_INPUT
    print(f'Froze the schema to {path}; later runs validate their data against it.')
    return 0


def cmd_embeddings(args) -> int:
    _quiet_tensorflow()
    config = _load(args.config)
    from tfx_tabular.components.embedding_metadata.locate import NoEmbeddings, describe, latest_logdirs
    try:
        print('\n'.join(describe(latest_logdirs(config, args.config), args.port)))
    except NoEmbeddings as e:
        print(f'tfx-tabular embeddings: {e}', file=sys.stderr)
        return EXIT_BAD_INPUT
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='tfx-tabular', description='CSV + YAML config -> TFX pipeline -> a served, explainable classifier.')
    sub = parser.add_subparsers(dest='command', required=True, metavar='COMMAND')

    p = sub.add_parser('run', help='run the pipeline locally (Beam DirectRunner, MLMD in SQLite)',
                       description='Validate the config and CSV, run every TFX component with progress, print '
                                   'and save a summary (summary.json in the run directory).')
    p.add_argument('--config', required=True, help='YAML config file')
    p.set_defaults(func=cmd_run)

    p = sub.add_parser('validate', help='check a config (and its CSV header) without running anything')
    p.add_argument('--config', required=True, help='YAML config file')
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser('init', help='write a starter config from a CSV file',
                       description='Read the CSV (types, cardinality) and write a starter YAML config.')
    p.add_argument('csv', help='the CSV file')
    p.add_argument('--label', help='the column to predict (guessed when obvious, else left as TODO)')
    p.add_argument('--output', '-o', help='config path to write (default: <csv name>.yaml here)')
    p.add_argument('--force', action='store_true', help='overwrite an existing file')
    p.set_defaults(func=cmd_init)

    p = sub.add_parser('schema', help='manage the data schema',
                       description='Manage the schema that ExampleValidator checks the data against.')
    schema_sub = p.add_subparsers(dest='schema_command', required=True, metavar='SCHEMA_COMMAND')
    f = schema_sub.add_parser('freeze', help="keep the last run's inferred schema as the one to enforce",
                              description="Copy the last run's inferred schema next to the config "
                                          '(frozen_schema, default schema/schema.pbtxt); later runs import '
                                          'it and stop on data that breaks it.')
    f.add_argument('--config', required=True, help='YAML config file')
    f.set_defaults(func=cmd_schema_freeze)

    p = sub.add_parser('embeddings', help="print the TensorBoard command for the latest run's Embedding Projector",
                       description="Print the TensorBoard command that shows the latest run's EmbeddingMetadata "
                                   '(learnt feature values, hidden units and eval examples, every row labelled).')
    p.add_argument('--config', required=True, help='YAML config file')
    p.add_argument('--port', type=int, default=6006, help='port for TensorBoard (default 6006)')
    p.set_defaults(func=cmd_embeddings)

    # Each area registers its own subcommands; their handlers return an exit code like the ones above.
    from tfx_tabular.kubeflow.cli import add_commands as add_kubeflow_commands
    from tfx_tabular.serving.cli import add_commands as add_serving_commands
    add_serving_commands(sub)
    add_kubeflow_commands(sub)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from tfx_tabular.pipeline.core.config import ConfigError
    from tfx_tabular.pipeline.core.csv_checks import DataError
    try:
        return args.func(args)
    except ConfigError as e:
        for problem in e.problems:
            print(f'config error: {e.path}: {problem}', file=sys.stderr)
        return EXIT_BAD_INPUT
    except DataError as e:
        print(f'data error: {e}', file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception as e:  # noqa: BLE001 - failures the runner named for people
        from tfx_tabular.components.anomaly_gate.executor import DataAnomaliesError
        from tfx_tabular.pipeline.runner import PipelineFailed
        if isinstance(e, DataAnomaliesError):
            print('The data does not match the schema; the run stopped before training:', file=sys.stderr)
            for line in e.lines:
                print(f'  - {line}', file=sys.stderr)
            return EXIT_FAILED
        if isinstance(e, PipelineFailed):
            print(f'error: {e}', file=sys.stderr)
            return EXIT_FAILED
        raise


if __name__ == '__main__':
    sys.exit(main())
