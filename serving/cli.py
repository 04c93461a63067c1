"""`tfx-tabular` subcommands for serving (registered by pipeline/cli.py): serve, predict, and
`serving rollback|status|config`.

Heavy imports (TensorFlow, gRPC) happen inside the handlers, so `tfx-tabular --help` stays fast.
"""
import argparse
import os
import sys

EXIT_FAILED, EXIT_BAD_INPUT = 1, 2
DEFAULT_PUSH_DIR = 'serving_models'


def _fail(command: str, message: str, code: int) -> int:
    print(f'tfx-tabular {command}: {message}', file=sys.stderr)
    return code


def _quiet():
    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')  # TF's C++ start-up lines (CUDA factories) are noise here
    os.environ.setdefault('PYTHONWARNINGS', 'ignore')
    import warnings
    warnings.filterwarnings('ignore')


# ---- serve -------------------------------------------------------------------------------------------------
def _server_source(args):
    """(config, config_file, config poll seconds) from --model_config_file, else --model_base_path (a model's
    folder, or a push dir holding models.config). As in TF Serving, the config file wins when both are given."""
    from tfx_tabular.serving import model_config as mc
    from tfx_tabular.pipeline.core import storage
    from tfx_tabular.serving.flags import DEFAULT_MODEL_NAME, FlagError
    config_poll = args.model_config_file_poll_wait_seconds
    if args.model_config_file:
        if not storage.isfile(args.model_config_file):
            raise FlagError(f'--model_config_file {args.model_config_file}: no such file; pass a ModelServerConfig '
                            'text file (a push dir has one: models.config)')
        return None, storage.absolute(args.model_config_file), config_poll or 0
    if not args.model_base_path:
        raise FlagError('--model_base_path and --model_config_file are both empty; pass one of them')
    base = storage.absolute(args.model_base_path)
    if not storage.isdir(base):
        raise FlagError(f'--model_base_path {args.model_base_path}: no such folder; pass <push_dir>/<model> or a push '
                        'dir holding models.config')
    if storage.isfile(mc.models_config_path(base)) and args.model_name is None:
        # A push dir: its models.config changes on push and rollback, so it is followed unless told otherwise.
        poll = args.file_system_poll_wait_seconds if config_poll is None else config_poll
        return None, mc.models_config_path(base), poll
    return mc.single_model_config(base, args.model_name or DEFAULT_MODEL_NAME), None, 0


def _version_lines() -> str:
    from importlib import metadata
    return (f"TensorFlow ModelServer: tfx-tabular serve (TF Serving's API from tensorflow-serving-api "
            f"{metadata.version('tensorflow-serving-api')})\nTensorFlow Library: {metadata.version('tensorflow')}")


def cmd_serve(args) -> int:
    if args.version:
        print(_version_lines())
        return 0
    _quiet()
    # oneDNN's graph rewrite (_Mkl* kernels) costs more than Eigen's kernels on requests of tens of rows: 247 ->
    # 210 us of CPU per 64-row run here (docs/benchmarks.md). Read when TensorFlow is imported, hence here;
    # TF_ENABLE_ONEDNN_OPTS=1 in the environment keeps it.
    os.environ.setdefault('TF_ENABLE_ONEDNN_OPTS', '0')
    import logging
    import signal
    import threading
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(message)s', datefmt='%H:%M:%S')
    logging.getLogger('tensorflow').setLevel(logging.ERROR)
    from tfx_tabular.serving import model_config as mc
    from tfx_tabular.serving.flags import FlagError, server_options
    try:
        options = server_options(args)
        config, config_file, options.model_config_file_poll_wait_seconds = _server_source(args)
    except FlagError as e:
        return _fail('serve', str(e), EXIT_BAD_INPUT)
    if options.prometheus_path and not options.rest_api_port:
        print('warning: --monitoring_config_file has no effect without --rest_api_port (the metrics are served '
              'there)', file=sys.stderr)
    os.environ.setdefault('GRPC_VERBOSITY', 'NONE')  # failures reach the user as one line from this command
    import grpc
    from tfx_tabular.serving.errors import ServingError
    from tfx_tabular.serving.server import ModelServer, PortInUse
    server = ModelServer(options, config=config, config_file=config_file)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        server.start()
    except mc.ModelConfigError as e:  # a config file that does not parse
        server.stop(0)
        return _fail('serve', str(e), EXIT_BAD_INPUT)
    except ServingError as e:  # a config that cannot be served, or models that cannot load
        server.stop(0)
        code = EXIT_BAD_INPUT if e.code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION) \
            else EXIT_FAILED
        return _fail('serve', f'Failed to start server. Error: {e.code.name}: {" ".join(e.message.split())}', code)
    except PortInUse as e:
        server.stop(0)
        return _fail('serve', f'{e}; pick another --port / --rest_api_port, or stop the process using it',
                     EXIT_FAILED)
    for name in server.manager.model_names():
        if not server.manager.loaded_versions(name):
            print(f'warning: model {name} has no version yet; waiting for one to be pushed', file=sys.stderr)
    where = ', '.join(([f'{options.host}:{server.port}'] if server.port else []) +
                      ([f'unix:{options.grpc_socket_path}'] if options.grpc_socket_path else []))
    rest = f', REST on http://{options.host}:{server.rest_port}' if server.rest_port else ''
    models = ', '.join(f'{n} {server.manager.loaded_versions(n)}' for n in server.manager.model_names())
    print(f'Serving gRPC on {where}{rest}; models: {models or "none"}', flush=True)
    stop.wait()
    server.stop()
    print('Server stopped.', flush=True)
    return 0


# ---- predict -----------------------------------------------------------------------------------------------
def _client(args):
    from tfx_tabular.serving.client import ServingClient
    return ServingClient(args.target, timeout=args.timeout, retries=args.retries)


def _server_error(command: str, e, target: str) -> int:
    import grpc
    hints = {
        grpc.StatusCode.UNAVAILABLE: f'cannot reach {target}: start the server (tfx-tabular serve) or fix --target',
        grpc.StatusCode.DEADLINE_EXCEEDED: f'no answer from {target} in time: raise --timeout or check the server',
        grpc.StatusCode.NOT_FOUND: 'check --model and --version (tfx-tabular serving status lists them)',
        grpc.StatusCode.INVALID_ARGUMENT: 'fix the records (or --signature) named in the message',
    }
    message = ' '.join(str(e.message).split())
    return _fail(command, f'{e.code.name} from {target}: {message}; {hints.get(e.code, "see the server log")}',
                 EXIT_FAILED)


def _format_table(result) -> str:
    names = [label for label, _ in result.results[0]] if result.results else []
    width = max([len(n) for n in names] + [9])
    lines = [f'{result.model} version {result.version}, signature {result.signature}',
             f'{"row":<5}{"class":<{width + 2}}{"score":>8}  ' + ''.join(f'{n:>{width + 2}}' for n in names)]
    for i, (classes, (label, score)) in enumerate(zip(result.results, result.top()), start=1):
        lines.append(f'{i:<5}{label:<{width + 2}}{score:>8.4f}  ' + ''.join(f'{s:>{width + 2}.4f}' for _, s in classes))
    return '\n'.join(lines)


def cmd_predict(args) -> int:
    _quiet()
    import json
    from tfx_tabular.serving.errors import ServingError
    from tfx_tabular.serving.examples import RecordError, read_records
    try:
        records = read_records(args.input, args.format)
    except RecordError as e:
        return _fail('predict', str(e), EXIT_BAD_INPUT)
    with _client(args) as client:
        try:
            if args.api == 'classify':
                result = client.classify_records(args.model, records, args.version, args.signature)
            else:
                result = client.predict_records(args.model, records, args.version)
        except RecordError as e:
            return _fail('predict', str(e), EXIT_BAD_INPUT)
        except ServingError as e:
            return _server_error('predict', e, args.target)
    if args.output == 'json':
        for i, (classes, (label, score)) in enumerate(zip(result.results, result.top()), start=1):
            print(json.dumps({'row': i, 'class': label, 'score': round(score, 6), 'model': result.model,
                              'version': result.version, 'scores': {c: round(s, 6) for c, s in classes}}))
    else:
        print(_format_table(result))
    return 0


# ---- serving rollback / status / config --------------------------------------------------------------------
def _push_dir(args) -> str:
    if args.push_dir:
        return args.push_dir
    if args.config:
        from tfx_tabular.pipeline.core.config import load_config
        config = load_config(args.config, check_csv=False)
        args.model = args.model or config.serving.model_name
        return config.push_path
    return DEFAULT_PUSH_DIR


def cmd_rollback(args) -> int:
    from tfx_tabular.serving import model_config as mc
    from tfx_tabular.serving.push import resolve_model, rollback
    try:
        push_dir = _push_dir(args)
        model = resolve_model(push_dir, args.model)
        print(rollback(push_dir, model, args.to))
    except mc.ModelConfigError as e:
        return _fail('serving rollback', str(e), EXIT_BAD_INPUT)
    print('Servers that poll models.config (tfx-tabular serve, or tensorflow_model_server with '
          '--model_config_file_poll_wait_seconds) switch within their poll interval; undo with --to latest.')
    return 0


def cmd_status(args) -> int:
    _quiet()
    from tensorflow_serving.apis import get_model_status_pb2
    from tfx_tabular.serving.errors import ServingError
    states = get_model_status_pb2.ModelVersionStatus.State
    with _client(args) as client:
        try:
            statuses = client.status(args.model, args.version)
        except ServingError as e:
            return _server_error('serving status', e, args.target)
        try:
            version, signatures = client.metadata(args.model, args.version)
        except ServingError:  # no version available right now: the states say why
            version, signatures = None, {}
    print(f'{args.model} on {args.target}:')
    for s in statuses:
        error = f' ({s.status.error_message})' if s.status.error_message else ''
        print(f'  version {s.version}: {states.Name(s.state)}{error}')
    for name, signature in sorted(signatures.items()):
        if name.startswith('__'):
            continue
        inputs = ', '.join(sorted(signature.inputs))
        print(f'  signature {name} ({signature.method_name.rsplit("/", 1)[-1]}): {inputs} -> '
              f'{", ".join(sorted(signature.outputs))}')
    if version:
        print(f'  (signatures of version {version})')
    return 0


def cmd_config(args) -> int:
    from tfx_tabular.serving import model_config as mc
    from tfx_tabular.pipeline.core import storage
    try:
        push_dir = _push_dir(args)
        if not storage.isdir(push_dir):
            raise mc.ModelConfigError(f'{push_dir}: no such push directory; fix --push_dir or run the pipeline')
        config = mc.update_models_config(push_dir) if args.update else mc.read_models_config(
            mc.models_config_path(push_dir))
    except mc.ModelConfigError as e:
        return _fail('serving config', str(e), EXIT_BAD_INPUT)
    if args.base_path_root:
        config = mc.rerooted(config, args.base_path_root)
    sys.stdout.write(mc.format_models_config(config))
    return 0


# ---- registration ------------------------------------------------------------------------------------------
def _add_target(p) -> None:
    p.add_argument('--target', default='127.0.0.1:8500', help='the server, HOST:PORT (default 127.0.0.1:8500)')
    p.add_argument('--model', required=True, help='model name, as in models.config / --model_name')
    p.add_argument('--version', help='a version number or version label (default: the latest the server has)')
    p.add_argument('--timeout', type=float, default=10.0, help='seconds per call (default 10)')
    p.add_argument('--retries', type=int, default=3, help='extra tries when the server is UNAVAILABLE (default 3)')


def _add_push_dir(p) -> None:
    p.add_argument('--push_dir', help=f'the push directory (default: the config\'s serving.push_dir, else '
                                      f'{DEFAULT_PUSH_DIR})')
    p.add_argument('--config', help='pipeline YAML config: its serving.push_dir and serving.model_name')


def add_commands(subparsers) -> None:
    """Adds this area's subcommands; each sets `func` to a handler taking args and returning an exit code."""
    p = subparsers.add_parser(
        'serve', help="serve pushed models over TF Serving's gRPC (and REST) API",
        description="A local model server speaking TF Serving's API (PredictionService, ModelService, REST), for "
                    'machines without tensorflow_model_server. It takes tensorflow_model_server\'s flags, with the '
                    'same names, defaults and meaning; the few it cannot honour are refused unless left at their '
                    'defaults.')
    from tfx_tabular.serving.flags import add_flags
    add_flags(p)
    p.set_defaults(func=cmd_serve)

    p = subparsers.add_parser(
        'predict', help='classify CSV rows or JSON records on a TF Serving endpoint',
        description='Send raw records (CSV with a header row, or JSON objects) to a server speaking TF '
                    "Serving's gRPC API (tfx-tabular serve, or tensorflow_model_server) and print each record's "
                    "class and per-class scores. Records are typed from the model's serving_raw signature.")
    p.add_argument('input', help='CSV or JSON file of records (extra columns are ignored), or - for stdin')
    _add_target(p)
    p.add_argument('--api', choices=['classify', 'predict'], default='classify',
                   help='classify: Classify with tf.Examples (default); predict: Predict on serving_raw with '
                        'one tensor per column')
    p.add_argument('--signature', help='signature for --api classify (default serving_default)')
    p.add_argument('--format', choices=['csv', 'json'], help='input format (default: from the file extension)')
    p.add_argument('--output', choices=['table', 'json'], default='table',
                   help='table (default) or one JSON object per record')
    p.set_defaults(func=cmd_predict)

    p = subparsers.add_parser('serving', help='manage pushed models: rollback, status, config',
                              description='Manage the models the pipeline pushed for TF Serving.')
    sub = p.add_subparsers(dest='serving_command', required=True, metavar='SERVING_COMMAND')
    r = sub.add_parser('rollback', help='serve an earlier version (pin it in models.config), or unpin',
                       description="Pin a model to one of its pushed versions with TF Serving's `specific` "
                                   'version policy in <push_dir>/models.config; servers polling the file switch to '
                                   'it. The pin outlives later pushes; --to latest removes it.')
    r.add_argument('--to', required=True, metavar='VERSION', help='a pushed version number, or latest to unpin')
    r.add_argument('--model', help='the model (default: the config\'s, or the only one in the push dir)')
    _add_push_dir(r)
    r.set_defaults(func=cmd_rollback)

    s = sub.add_parser('status', help="a model's versions, states and signatures on a server",
                       description='GetModelStatus and GetModelMetadata of a model on a TF Serving endpoint.')
    _add_target(s)
    s.set_defaults(func=cmd_status)

    c = sub.add_parser('config', help='print models.config, e.g. re-rooted for a Kubernetes ConfigMap',
                       description='Print the push directory\'s models.config (ModelServerConfig text). With '
                                   '--base_path_root, base paths become <root>/<model>, as the TF Serving pod '
                                   'mounts the push directory (kubeflow/serving/).')
    _add_push_dir(c)
    c.add_argument('--model', help=argparse.SUPPRESS)
    c.add_argument('--base_path_root', help='rewrite base paths to <root>/<model> (e.g. /models)')
    c.add_argument('--update', action='store_true', help='first add pushed models missing from models.config')
    c.set_defaults(func=cmd_config)
