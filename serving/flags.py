"""`tfx-tabular serve`'s flags: every flag of tensorflow_model_server (model_servers/main.cc, same names, types,
defaults and meaning), and the two this server adds (--host, --max_message_mb).

A flag this server cannot honour (ALTS, TF-Lite, the profiler, custom platforms and thread pools) is accepted at
its default value and refused with one line naming it otherwise. Flags that only tune memory or hardware this
server does not use (file-system caches, TPU, TF-Lite pools, unload threads) are accepted and have nothing to do.
"""
import argparse
import os
import sys
from typing import Optional

from tfx_tabular.pipeline.core import storage

CPUS = os.cpu_count() or 1
DEFAULT_MODEL_NAME = 'default'


class FlagError(ValueError):
    """A flag value that cannot be served; the message is one line naming the flag."""


def tf_bool(text: str) -> bool:
    """TensorFlow's flag parser's booleans."""
    if text.lower() in ('true', '1'):
        return True
    if text.lower() in ('false', '0'):
        return False
    raise argparse.ArgumentTypeError(f'{text!r} is not true or false')


# (flag, type, default, help); type bool flags take `--flag`, `--flag=true` or `--flag=false`.
TF_SERVING_FLAGS = [
    ('port', int, 8500, 'TCP port to listen on for gRPC/HTTP API. Disabled if port set to zero.'),
    ('grpc_socket_path', str, '', 'If non-empty, listen to a UNIX socket for gRPC API on the given path.'),
    ('rest_api_port', int, 0, 'Port to listen on for HTTP/REST API. If set to zero HTTP/REST API will not be '
                              'exported. This port must be different than the one specified in --port.'),
    ('rest_api_num_threads', int, 4 * CPUS, 'Number of threads for HTTP/REST API processing.'),
    ('rest_api_timeout_in_ms', int, 30000, 'Timeout for HTTP/REST API calls.'),
    ('rest_api_enable_cors_support', bool, False, 'Enable CORS headers in response'),
    ('enable_batching', bool, False, 'enable batching'),
    ('allow_version_labels_for_unavailable_models', bool, False,
     'If true, allows assigning unused version labels to models that are not available yet.'),
    ('batching_parameters_file', str, '', 'If non-empty, read an ascii BatchingParameters protobuf from the supplied '
                                          'file name and use the contained values instead of the defaults.'),
    ('enable_per_model_batching_parameters', bool, False,
     'Read batching parameters from batching_params.pbtxt in each SavedModel folder instead of '
     '--batching_parameters_file. Only with --enable_batching.'),
    ('model_config_file', str, '', 'If non-empty, read an ascii ModelServerConfig protobuf from the supplied file '
                                   'name, and serve the models in that file. (If used, --model_name, '
                                   '--model_base_path are ignored.)'),
    ('model_config_file_poll_wait_seconds', float, None,
     'Interval in seconds between each poll of the filesystem for model_config_file. If unset or set to zero, '
     'poll will be done exactly once and not periodically. (Here, a push dir\'s models.config is followed at '
     '--file_system_poll_wait_seconds unless set.)'),
    ('model_name', str, None, 'name of model (ignored if --model_config_file flag is set) (default default)'),
    ('model_base_path', str, '', 'path to export (ignored if --model_config_file flag is set, otherwise required). '
                                 'Here it may also be a push dir holding models.config, which serves every model '
                                 'listed there.'),
    ('num_load_threads', int, 0, 'The number of threads in the thread-pool used to load servables. If set as 0, '
                                 'servable loads are performed serially.'),
    ('num_unload_threads', int, 0, 'The number of threads in the thread-pool used to unload servables. (Accepted; '
                                   'unloading never blocks requests here.)'),
    ('max_num_load_retries', int, 5, 'maximum number of times it retries loading a model after the first failure, '
                                     'before giving up. If set to 0, a load is attempted only once.'),
    ('load_retry_interval_micros', int, 60 * 1000 * 1000,
     'The interval, in microseconds, between each servable load retry. If set negative, it doesn\'t wait.'),
    ('file_system_poll_wait_seconds', float, 1.0,
     'Interval in seconds between each poll of the filesystem for new model version. If set to zero poll will be '
     'exactly done once and not periodically.'),
    ('flush_filesystem_caches', bool, True, 'Flush filesystem caches after loads. (Accepted; no cache to flush.)'),
    ('tensorflow_session_parallelism', int, 0, 'Number of threads to use for running a Tensorflow session. '
                                               'Auto-configured by default.'),
    ('tensorflow_session_config_file', str, '', 'If non-empty, read an ascii TensorFlow Session ConfigProto '
                                                'protobuf from the supplied file name.'),
    ('tensorflow_intra_op_parallelism', int, 0, 'Number of threads to use to parallelize the execution of an '
                                                'individual op. Auto-configured by default.'),
    ('tensorflow_inter_op_parallelism', int, 0, 'Controls the number of operators that can be executed '
                                                'simultaneously. Auto-configured by default.'),
    ('use_alts_credentials', bool, False, 'Use Google ALTS credentials'),
    ('ssl_config_file', str, '', 'If non-empty, read an ascii SSLConfig protobuf from the supplied file name and '
                                 'set up a secure gRPC channel'),
    ('platform_config_file', str, '', 'If non-empty, read an ascii PlatformConfigMap protobuf from the supplied '
                                      'file name, and use that platform config instead of the Tensorflow platform.'),
    ('per_process_gpu_memory_fraction', float, 0.0, 'Fraction that each process occupies of the GPU memory space.'),
    ('saved_model_tags', str, 'serve', 'Comma-separated set of tags corresponding to the meta graph def to load '
                                       'from SavedModel.'),
    ('grpc_channel_arguments', str, '', 'A comma separated list of arguments to be passed to the grpc server. (e.g. '
                                        'grpc.max_connection_age_ms=2000)'),
    ('grpc_max_threads', int, 4 * CPUS, 'Max grpc server threads to handle grpc messages.'),
    ('enable_model_warmup', bool, True, 'Enables model warmup, which triggers lazy initializations (such as TF '
                                        'optimizations) at load time, to reduce first request latency.'),
    ('num_request_iterations_for_warmup', int, 0, 'Number of times a request is iterated during warmup replay. '
                                                  'This value is used only if > 0.'),
    ('monitoring_config_file', str, '', 'If non-empty, read an ascii MonitoringConfig protobuf from the supplied '
                                        'file name'),
    ('remove_unused_fields_from_bundle_metagraph', bool, True, 'Removes unused fields from MetaGraphDef proto '
                                                               'message to save memory.'),
    ('prefer_tflite_model', bool, False, 'Prefer TensorFlow Lite model from `model.tflite` file in SavedModel '
                                         'directory.'),
    ('num_tflite_pools', int, CPUS, 'Number of TFLite interpreter pools. (Accepted; no TF-Lite here.)'),
    ('num_tflite_interpreters_per_pool', int, 1, 'Number of TFLite interpreters per pool. (Accepted; no TF-Lite '
                                                 'here.)'),
    ('enable_signature_method_name_check', bool, False, 'Enable method_name check for SignatureDef. Disable this if '
                                                        'serving native TF2 regression/classification models.'),
    ('xla_cpu_compilation_enabled', bool, False, 'Enable XLA:CPU JIT. (Accepted; TensorFlow here compiles the '
                                                 'functions a model marks for XLA either way.)'),
    ('xla_gpu_compilation_enabled', bool, False, 'Enable both XLA:CPU JIT and XLA:GPU JIT. (Accepted, as above.)'),
    ('enable_profiler', bool, True, 'Enable profiler service.'),
    ('thread_pool_factory_config_file', str, '', 'If non-empty, read an ascii ThreadPoolConfig protobuf from the '
                                                 'supplied file name.'),
    ('mixed_precision', str, '', 'specify mixed_precision mode (bfloat16)'),
    ('skip_initialize_tpu', bool, False, 'Whether to skip auto initializing TPU. (Accepted; no TPU here.)'),
    ('enable_grpc_healthcheck_service', bool, False, 'Enable the standard gRPC healthcheck service.'),
    ('enable_serialization_as_tensor_content', bool, False, 'Enable serialization of predict response as tensor '
                                                            'content.'),
    ('version', bool, False, 'Display version'),
]
# Flags asking for what this server does not have: (why, the one value accepted). Left out they are accepted too;
# --enable_profiler is true by default in TF Serving, and there is no profiler service here.
UNSUPPORTED = {
    'use_alts_credentials': ('ALTS credentials need Google infrastructure; use --ssl_config_file', False),
    'platform_config_file': ('only the tensorflow platform is served', ''),
    'prefer_tflite_model': ('TF-Lite models are not served', False),
    'thread_pool_factory_config_file': ('custom thread pool factories are not available', ''),
    'enable_profiler': ('there is no profiler service', False),
}


def add_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("tensorflow_model_server's flags (same names, defaults and meaning)")
    for name, kind, default, help_text in TF_SERVING_FLAGS:
        shown = '' if default in (None, '') else f' (default {str(default).lower() if kind is bool else default})'
        if name in UNSUPPORTED:
            reason, accepted = UNSUPPORTED[name]
            help_text += f' [not supported: {reason}; only {str(accepted).lower() or "empty"} is accepted]'
            default = None  # to tell "left out" from "given"
        if kind is bool:
            group.add_argument(f'--{name}', type=tf_bool, nargs='?', const=True, default=default,
                               metavar='true|false', help=help_text + shown)
        else:
            group.add_argument(f'--{name}', type=kind, default=default, help=help_text + shown)
    extra = parser.add_argument_group('flags of this server only')
    extra.add_argument('--host', default='127.0.0.1',
                       help='address to bind (default 127.0.0.1; tensorflow_model_server binds every interface: '
                            'pass 0.0.0.0 for that)')
    extra.add_argument('--max_message_mb', type=int, default=64,
                       help='largest gRPC message or REST body in MB; larger get RESOURCE_EXHAUSTED (default 64; '
                            'tensorflow_model_server allows 2 GB)')


def _read_text(path: str, flag: str) -> str:
    if not storage.isfile(path):
        raise FlagError(f'--{flag} {path}: no such file')
    return storage.read_bytes(path).decode('utf-8')


def _parse_file(path: str, message_class, flag: str):
    from tfx_tabular.serving import protos
    try:
        return protos.parse_text(_read_text(path, flag), message_class, path)
    except protos.ProtoTextError as e:
        raise FlagError(f'--{flag}: {e}') from None


def check_unsupported(args) -> None:
    for name, (reason, accepted) in UNSUPPORTED.items():
        if getattr(args, name) not in (None, accepted):
            raise FlagError(f'--{name} is not supported by this server ({reason}); leave it out')
    if args.mixed_precision not in ('', 'bfloat16'):
        raise FlagError(f'--mixed_precision {args.mixed_precision!r} is not supported; the only mode is bfloat16')


def session_config(args):
    """The session ConfigProto TF Serving builds from its flags (server.cc), in the same order."""
    from tensorflow.core.protobuf import config_pb2, rewriter_config_pb2
    config = config_pb2.ConfigProto()
    if args.tensorflow_session_config_file:
        config = _parse_file(args.tensorflow_session_config_file, config_pb2.ConfigProto,
                             'tensorflow_session_config_file')
    config.gpu_options.per_process_gpu_memory_fraction = args.per_process_gpu_memory_fraction
    intra, inter, both = (args.tensorflow_intra_op_parallelism, args.tensorflow_inter_op_parallelism,
                          args.tensorflow_session_parallelism)
    if intra > 0 and inter > 0 and both > 0:
        raise FlagError('Either configure --tensorflow_session_parallelism or (--tensorflow_intra_op_parallelism, '
                        '--tensorflow_inter_op_parallelism) separately. You cannot configure all.')
    if intra > 0 or inter > 0:
        config.intra_op_parallelism_threads, config.inter_op_parallelism_threads = intra, inter
    else:
        config.intra_op_parallelism_threads = config.inter_op_parallelism_threads = both
    if not (intra or inter or both) and not args.enable_batching:
        # "Auto-configured" here: each request runs its ops in its own thread (servable.py) and concurrent requests
        # fill the cores, so an op is not split over an intra-op pool too. Splitting cost more than it saved:
        # every 64-row ParseExample wakes the pool's threads (context switches, spinning), 247 -> 162 us of CPU
        # per run (docs/benchmarks.md). The pool is process-wide; merged batches (--enable_batching) keep it.
        config.intra_op_parallelism_threads = 1
    if args.mixed_precision == 'bfloat16':
        config.graph_options.rewrite_options.auto_mixed_precision_onednn_bfloat16 = rewriter_config_pb2.RewriterConfig.ON
    return config


def batching_options(args):
    """--enable_batching with TF Serving's defaults, or --batching_parameters_file; None when off."""
    from tfx_tabular.serving.batching import BatchingConfigError, BatchingOptions
    if not args.enable_batching:
        if args.batching_parameters_file:
            raise FlagError('--batching_parameters_file is set without setting --enable_batching to true')
        return None
    if not args.batching_parameters_file:
        return BatchingOptions()
    from tfx_tabular.serving import protos
    params = _parse_file(args.batching_parameters_file, protos.BatchingParameters, 'batching_parameters_file')
    try:
        return BatchingOptions.from_parameters(params)
    except BatchingConfigError as e:
        raise FlagError(f'--batching_parameters_file {args.batching_parameters_file}: {e}') from None


def prometheus_path(args) -> Optional[str]:
    if not args.monitoring_config_file:
        return None
    from tfx_tabular.serving import protos
    config = _parse_file(args.monitoring_config_file, protos.MonitoringConfig, 'monitoring_config_file')
    if not config.prometheus_config.enable:
        return None
    from tfx_tabular.serving.metrics import PROMETHEUS_PATH
    return config.prometheus_config.path or PROMETHEUS_PATH


def ssl_config(args):
    if not args.ssl_config_file:
        return None
    from tfx_tabular.serving import protos
    config = _parse_file(args.ssl_config_file, protos.SSLConfig, 'ssl_config_file')
    if not config.server_key or not config.server_cert:
        raise FlagError(f'--ssl_config_file {args.ssl_config_file}: server_key and server_cert are both needed')
    if config.client_verify and not config.custom_ca:
        raise FlagError(f'--ssl_config_file {args.ssl_config_file}: client_verify needs custom_ca here (the CA that '
                        'signs client certificates)')
    return config


def server_options(args):
    """ServerOptions from parsed flags; raises FlagError with one line naming the flag."""
    from tfx_tabular.serving.manager import ManagerOptions
    from tfx_tabular.serving.server import MB, ServerOptions, parse_channel_arguments
    from tfx_tabular.serving.servable import ServableOptions
    check_unsupported(args)
    if args.enable_per_model_batching_parameters and not args.enable_batching:
        raise FlagError('--enable_per_model_batching_parameters is only applicable with --enable_batching')
    tags = tuple(t for t in args.saved_model_tags.split(',') if t)
    if not tags:
        raise FlagError('--saved_model_tags is empty; pass the tags of the MetaGraphDef to load (default serve)')
    try:
        channel_arguments = parse_channel_arguments(args.grpc_channel_arguments)
    except ValueError as e:
        raise FlagError(str(e)) from None
    servable = ServableOptions(tags=tags, session_config=session_config(args), batching=batching_options(args),
                               per_model_batching=args.enable_per_model_batching_parameters,
                               warmup=args.enable_model_warmup,
                               warmup_iterations=max(1, args.num_request_iterations_for_warmup))
    manager = ManagerOptions(servable=servable, max_num_load_retries=max(0, args.max_num_load_retries),
                             load_retry_interval_seconds=max(0.0, args.load_retry_interval_micros / 1e6),
                             num_load_threads=max(0, args.num_load_threads),
                             allow_version_labels_for_unavailable_models=args.allow_version_labels_for_unavailable_models)
    for flag in ('port', 'rest_api_port'):
        if not 0 <= getattr(args, flag) <= 65535:
            raise FlagError(f'--{flag} {getattr(args, flag)} is not a TCP port (0 to 65535)')
    rest_port = args.rest_api_port
    if rest_port and rest_port == args.port:
        print('warning: --rest_api_port cannot be the same as --port; the REST API is not exported (as '
              'tensorflow_model_server does)', file=sys.stderr)
        rest_port = 0
    return ServerOptions(
        host=args.host, port=args.port, grpc_socket_path=args.grpc_socket_path, rest_api_port=rest_port,
        rest_api_num_threads=args.rest_api_num_threads, rest_api_timeout_in_ms=args.rest_api_timeout_in_ms,
        rest_api_enable_cors_support=args.rest_api_enable_cors_support,
        file_system_poll_wait_seconds=args.file_system_poll_wait_seconds,
        max_message_bytes=args.max_message_mb * MB, grpc_max_threads=max(1, args.grpc_max_threads),
        grpc_channel_arguments=channel_arguments, ssl_config=ssl_config(args),
        enable_grpc_healthcheck_service=args.enable_grpc_healthcheck_service, prometheus_path=prometheus_path(args),
        enable_serialization_as_tensor_content=args.enable_serialization_as_tensor_content,
        enable_signature_method_name_check=args.enable_signature_method_name_check, manager=manager)
