"""`tfx-tabular kubeflow compile|submit|run-local` (registered by pipeline/cli.py).

Exit codes as for the other commands: 0 done, 1 the server could not be reached or refused the run (submit) or a
task failed (run-local), 2 bad config, package or arguments. Every error is one line on stderr naming what is
wrong and the fix; run-local adds the failed task's last log lines under it.
"""
import argparse
import logging
import os
import sys
import tempfile

EXIT_FAILED, EXIT_BAD_INPUT = 1, 2


def _quiet():
    """TensorFlow, Beam and the Google clients print pages of notices on import; none matter for a compile."""
    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
    os.environ.setdefault('PYTHONWARNINGS', 'ignore')
    import warnings
    warnings.filterwarnings('ignore')
    logging.getLogger().setLevel(logging.ERROR)
    logging.getLogger('absl').setLevel(logging.ERROR)


def _load_config(path):
    """Checks the CSV header here when the data is local; object-storage data is read only if the labels are."""
    from tfx_tabular.pipeline.core.config import load_config
    config = load_config(path, check_csv=False)
    return config if '://' in config.csv_pattern else load_config(path)


def _compile(args, output):
    from tfx_tabular.kubeflow.compile import compile_pipeline
    compiled = compile_pipeline(_load_config(args.config), args.image, output, secret=args.object_storage_secret)
    for line in compiled.warnings:
        print(f'warning: {line}', file=sys.stderr)
    return compiled


def cmd_compile(args) -> int:
    _quiet()
    from tfx_tabular.kubeflow.compile import CompileError
    if args.output is None:
        from tfx_tabular.pipeline.core.config import load_config
        args.output = f'{load_config(args.config, check_csv=False).name}_kubeflow.yaml'
    try:
        compiled = _compile(args, args.output)
    except CompileError as e:
        print(f'tfx-tabular kubeflow compile: {e}', file=sys.stderr)
        return EXIT_BAD_INPUT
    root = compiled.pipeline_root or "the cluster's default (kfp-launcher ConfigMap)"
    print(f'Wrote {compiled.path}: {len(compiled.tasks)} components ({", ".join(sorted(compiled.tasks))}), '
          f'image {args.image}, pipeline root {root}.')
    print(f'Start a run: tfx-tabular kubeflow submit --package {compiled.path} --host http://localhost:8080')
    return 0


def _submit(args, package) -> int:
    from tfx_tabular.kubeflow.submit import prepare, submit
    options = dict(experiment=args.experiment, run_name=args.run_name, pipeline_root=args.pipeline_root,
                   service_account=args.service_account)
    if args.dry_run:
        if args.host:
            from tfx_tabular.kubeflow.submit import check_host
            check_host(args.host)
        s = prepare(package, **options)
        print(f'Dry run: package OK ({s.tasks} components of pipeline {s.pipeline!r}); would start run '
              f'{s.run_name!r} in experiment {s.experiment!r} on {args.host or "--host"} '
              f'(request body {len(str(s.body)) // 1024} KB). Nothing was sent.')
        return 0
    s = submit(package, args.host, namespace=args.namespace, **options)
    print(f'Started run {s.run_id} ({s.run_name!r}) of pipeline {s.pipeline!r} in experiment {s.experiment!r}.')
    return 0


def cmd_submit(args) -> int:
    _quiet()
    from tfx_tabular.kubeflow.compile import CompileError
    from tfx_tabular.kubeflow.submit import SubmitError, SubmitFailed
    if not args.dry_run and not args.host:
        print('tfx-tabular kubeflow submit: --host is required (e.g. http://localhost:8080); '
              'or pass --dry-run to check everything without a server', file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.config and not args.image:
        print('tfx-tabular kubeflow submit: --config needs --image (the pipeline image to compile with)',
              file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        if args.package:
            return _submit(args, args.package)
        with tempfile.TemporaryDirectory() as tmp:
            return _submit(args, _compile(args, os.path.join(tmp, 'pipeline.yaml')).path)
    except (CompileError, SubmitError) as e:
        print(f'tfx-tabular kubeflow submit: {e}', file=sys.stderr)
        return EXIT_FAILED if isinstance(e, SubmitFailed) else EXIT_BAD_INPUT


def _duration(seconds: float) -> str:
    return f'{seconds:.0f} s' if seconds < 60 else f'{int(seconds // 60)} min {seconds % 60:.0f} s'


def cmd_run_local(args) -> int:
    _quiet()
    from tfx_tabular.kubeflow.run_local import RunLocalError, read_spec, run_local
    try:
        spec = read_spec(args.package)
        image = next(iter(spec.deployment_spec['executors'].values()))['container']['image']
        how = ('a new interpreter' if args.fresh_interpreters
               else 'a child of one interpreter that imported TensorFlow and TFX once')
        print(f'Running {args.package} (pipeline {spec.pipeline_info.name!r}, {len(spec.root.dag.tasks)} tasks) with '
              f'kfp\'s local orchestration; each task is {how} ({sys.executable}), standing in for {image}.',
              flush=True)
        run = run_local(args.package, args.pipeline_root, fresh_interpreters=args.fresh_interpreters)
    except RunLocalError as e:
        print(f'tfx-tabular kubeflow run-local: {e}', file=sys.stderr)
        return EXIT_BAD_INPUT
    failed = run.failed
    if failed:
        print(f'tfx-tabular kubeflow run-local: task {failed.name} failed (exit code {failed.exit_code}); '
              f'its log: {failed.log}; last lines:', file=sys.stderr)
        for line in failed.tail:
            print(f'  {line}', file=sys.stderr)
        return EXIT_FAILED
    pushed = run.pushed_to()
    print(f'All {len(run.tasks)} tasks succeeded in {_duration(run.seconds)}. Artifacts and each task\'s log: '
          f'{run.run_dir}')
    print(f'Model pushed to {pushed}.' if pushed else 'No model pushed (none was blessed).')
    return 0


COMPILE_HELP = """\
Compiles the pipeline `tfx-tabular run` runs (same config, same components) with TFX's KubeflowV2DagRunner into a
Kubeflow Pipelines 2.x package. On the cluster every path in the config must be an object-storage URI (gs://,
s3://): data.csv, run_dir (the pipeline root) and serving.push_dir; local paths compile, with a warning each.
Beam flags come from the config's beam section (profiles: direct, dataflow, portable)."""

SUBMIT_HELP = """\
Starts a run on Kubeflow Pipelines 2.x with the kfp SDK's Client (kfp 2.13.0, the last kfp that works with the
protobuf 4 of TFX 1.15). Give a compiled --package, or --config and --image to compile on the fly. --dry-run
checks the package and builds the request without contacting any server."""


RUN_LOCAL_HELP = """\
Executes a compiled package on this machine with kfp's own local orchestration (kfp.local): the DAG in dependency
order, each task's executor input built as KFP 2 builds it (artifact URIs under the pipeline root), its outputs read
from executor_output.json and passed downstream. Each task runs the container's command and args in a process of
this virtualenv, which stands in for the pipeline image (same code, not the same image): forked from one interpreter
that imported TensorFlow and TFX once, or with --fresh-interpreters a new interpreter each. Like open-source KFP 2 it
runs no lifecycle hook. Not exercised: Kubernetes, Argo, KFP's driver and launcher, MLMD and its cache, object
storage and its credentials. Paths in the package (data, push directory) are used as compiled: compile a config
with local paths to run it here."""


def add_commands(subparsers) -> None:
    """Adds `kubeflow compile`, `submit` and `run-local`; each handler takes args and returns an exit code."""
    p = subparsers.add_parser('kubeflow', help='Kubeflow Pipelines 2.x: compile, run-local (check here), submit',
                              description='Compile the pipeline for Kubeflow Pipelines 2.x, check the package here, '
                                          'start runs on a cluster. The image comes from kubeflow/Dockerfile.')
    sub = p.add_subparsers(dest='kubeflow_command', required=True, metavar='KUBEFLOW_COMMAND')

    c = sub.add_parser('compile', help='write the Kubeflow Pipelines package (pipeline spec YAML) for a config',
                       description=COMPILE_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    c.add_argument('--config', required=True, help='YAML config file')
    c.add_argument('--image', required=True,
                   help='container image every component runs in, built from kubeflow/Dockerfile '
                        '(e.g. registry.example.com/team/tfx-tabular:0.1.0)')
    c.add_argument('--output', '-o', help='package to write, .yaml (default: <name>_kubeflow.yaml here)')
    c.add_argument('--object-storage-secret', metavar='SECRET',
                   help='Kubernetes Secret whose AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION and '
                        'S3_ENDPOINT keys become env vars of every component, for s3:// paths '
                        '(see kubeflow/manifests/object-storage-secret.yaml)')
    c.set_defaults(func=cmd_compile)

    s = sub.add_parser('submit', help='start a run on a Kubeflow Pipelines 2.x cluster (or --dry-run)',
                       description=SUBMIT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    what = s.add_mutually_exclusive_group(required=True)
    what.add_argument('--package', help='a package written by `tfx-tabular kubeflow compile`')
    what.add_argument('--config', help='YAML config file: compile it first (needs --image)')
    s.add_argument('--image', help='with --config: the container image to compile with')
    s.add_argument('--object-storage-secret', metavar='SECRET', help='with --config: as for compile')
    s.add_argument('--host', help='Kubeflow Pipelines endpoint, e.g. http://localhost:8080 after '
                                  '`kubectl -n kubeflow port-forward svc/ml-pipeline-ui 8080:80`')
    s.add_argument('--experiment', help="experiment to file the run under, created if missing "
                                        "(default: the pipeline's name)")
    s.add_argument('--run-name', help='display name of the run (default: pipeline name and time)')
    s.add_argument('--namespace', help='Kubernetes namespace of a multi-user Kubeflow (your profile namespace)')
    s.add_argument('--service-account', help='Kubernetes service account the components run as '
                                             '(see kubeflow/manifests/service-account.yaml)')
    s.add_argument('--pipeline-root', help="object-storage URI for the run's artifacts, overriding the package's")
    s.add_argument('--dry-run', action='store_true',
                   help='check the package and build the request, send nothing (no --host needed)')
    s.set_defaults(func=cmd_submit)

    r = sub.add_parser('run-local', help='execute a compiled package here, each task a process of its own (no cluster)',
                       description=RUN_LOCAL_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    r.add_argument('--package', required=True, help='a package written by `tfx-tabular kubeflow compile`')
    r.add_argument('--pipeline-root', default='kfp_local_outputs',
                   help='local folder for the artifacts, one subfolder per run (default: ./kfp_local_outputs)')
    r.add_argument('--fresh-interpreters', action='store_true',
                   help='start a new Python interpreter per task, as a container does (default: fork each task '
                        'from one interpreter that imported TensorFlow and TFX once, about 6 s less per task)')
    r.set_defaults(func=cmd_run_local)
