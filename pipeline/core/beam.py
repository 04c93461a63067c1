"""Beam profiles: named sets of `beam_pipeline_args` saying where the data-heavy components run.

A config picks a profile with `beam.profile` and fills its settings under `beam.settings`; each setting is the Beam
flag of the same name (`project: my-proj` becomes `--project=my-proj`). `beam.args` adds flags, and a flag given
there replaces the profile's flag of the same name. The result is what TFX hands every Beam-powered component
(ExampleGen, StatisticsGen, Transform, Evaluator), whether the pipeline runs locally or on Kubeflow Pipelines.

Kept free of heavy imports: `pipeline.config` expands profiles while loading a config.
"""
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Tuple, Union

Setting = Union[str, int]

AUTO_MODE = 'auto'
# `direct_running_mode: auto` runs Beam in this process up to this much CSV, in worker processes above. Measured
# with bench/scale.py on 2 cores (CsvExampleGen to Transform): worker processes cost about 80 s of start-up but
# run about 2x faster once started (1M rows: 349 s vs 762 s), so they pay off from about 190k attrition-shaped
# rows (32 MB). In this process the memory stays lower at every size (1M rows: 1.7 GB vs 6.2 GB peak).
IN_PROCESS_MAX_BYTES = 32 * 1024 * 1024
# TFX's Beam executors package TFX as an sdist for remote workers (a copy of the install and `setup.py sdist`, about
# 1 s per component: 4-5 s of the demo's 45) unless a flag says where the workers get their code. The DirectRunner's
# workers are this Python, so the direct profile says so with the flag that names no file (Beam reads it only for
# container runners).
LOCAL_WORKERS = '--sdk_container_image=local'


@dataclass(frozen=True)
class Profile:
    description: str
    fixed: Tuple[str, ...] = ()  # flags every use of the profile needs
    required: Tuple[str, ...] = ()
    defaults: Dict[str, Setting] = field(default_factory=dict)
    optional: Tuple[str, ...] = ()  # accepted settings without a default


PROFILES: Dict[str, Profile] = {
    'direct': Profile(
        description='Beam DirectRunner on this machine; the default, and what `tfx-tabular run` uses. '
                    'direct_running_mode auto: in this process for small CSVs, else one worker process per CPU '
                    '(direct_num_workers: 0)',
        fixed=(LOCAL_WORKERS,),
        defaults={'direct_running_mode': 'auto', 'direct_num_workers': 0}),
    'dataflow': Profile(
        description='Google Cloud Dataflow; workers run sdk_container_image (use the pipeline image: it has the '
                    'TFX stack the components need), temp_location must be a gs:// folder',
        fixed=('--runner=DataflowRunner', '--sdk_location=container'),
        required=('project', 'region', 'temp_location', 'sdk_container_image'),
        optional=('staging_location', 'max_num_workers', 'machine_type', 'service_account_email', 'network',
                  'subnetwork')),
    'portable': Profile(
        description='a portable Beam job server in front of Flink or Spark (job_endpoint host:port); workers run '
                    'environment_config: the pipeline image for DOCKER, a worker pool address for EXTERNAL',
        fixed=('--runner=PortableRunner',),
        required=('job_endpoint', 'environment_config'),
        defaults={'environment_type': 'DOCKER'},
        optional=('artifact_endpoint', 'sdk_worker_parallelism')),
}

ENVIRONMENT_TYPES = ('DOCKER', 'EXTERNAL', 'PROCESS')


class ProfileError(ValueError):
    """A profile setting is missing or wrong; the message names it and the fix."""


def _check(name: str, settings: Mapping[str, Setting]) -> Profile:
    if name not in PROFILES:
        raise ProfileError(f'profile: unknown profile {name!r}; use one of {", ".join(PROFILES)}')
    profile = PROFILES[name]
    known = set(profile.required) | set(profile.defaults) | set(profile.optional)
    for key in settings:
        if key not in known:
            raise ProfileError(f'settings.{key}: not a setting of profile {name} (it takes '
                               f'{", ".join(sorted(known))}); put other Beam flags in beam.args')
    missing = [k for k in profile.required if settings.get(k) in (None, '')]
    if missing:
        raise ProfileError(f'settings.{missing[0]}: required by profile {name}; add it '
                           f'(profile {name} needs {", ".join(profile.required)})')
    if name == 'dataflow':
        for key in ('temp_location', 'staging_location'):
            if key in settings and not str(settings[key]).startswith('gs://'):
                raise ProfileError(f'settings.{key}: Dataflow needs a gs:// folder, got {settings[key]!r}')
    if name == 'portable':
        kind = settings.get('environment_type', profile.defaults['environment_type'])
        if kind not in ENVIRONMENT_TYPES:
            raise ProfileError(f'settings.environment_type: must be one of {", ".join(ENVIRONMENT_TYPES)}, '
                               f'got {kind!r}')
    return profile


def _flag_name(arg: str) -> str:
    return arg.split('=', 1)[0] if arg.startswith('--') else ''


def merge_args(base: List[str], extra: List[str]) -> List[str]:
    """`base` then `extra`; a `--name=value` flag in `extra` drops `base`'s flag of the same name."""
    replaced = {_flag_name(a) for a in extra} - {''}
    return [a for a in base if _flag_name(a) not in replaced] + list(extra)


def profile_args(name: str, settings: Mapping[str, Setting]) -> List[str]:
    """The profile's Beam flags with these settings; raises ProfileError naming a missing or wrong setting."""
    profile = _check(name, settings)
    values = {**profile.defaults, **settings}
    ordered = list(profile.defaults) + [k for k in profile.required + profile.optional if k not in profile.defaults]
    return list(profile.fixed) + [f'--{k}={values[k]}' for k in ordered if k in values]


def pipeline_args(name: str, settings: Mapping[str, Setting], extra: List[str]) -> List[str]:
    return merge_args(profile_args(name, settings), extra)


def resolve_running_mode(args: List[str], input_bytes: Optional[int]) -> Tuple[List[str], Optional[str]]:
    """`args` with `--direct_running_mode=auto` made concrete for an input of `input_bytes` (None: unknown, as
    for object storage, counts as large). Returns the args and the mode chosen, or None when it was not auto."""
    flag = f'--direct_running_mode={AUTO_MODE}'
    if flag not in args:
        return list(args), None
    small = input_bytes is not None and input_bytes <= IN_PROCESS_MAX_BYTES
    mode = 'in_memory' if small else 'multi_processing'
    return [f'--direct_running_mode={mode}' if a == flag else a for a in args], mode


def runs_locally(args: List[str]) -> bool:
    """Beam's DirectRunner (the default runner), which keeps every shuffled element in memory."""
    from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
    runner = PipelineOptions(args or []).view_as(StandardOptions).runner
    return runner is None or 'direct' in str(runner).lower()


def runs_in_process(args: List[str]) -> bool:
    """The DirectRunner in this process (`direct_running_mode: in_memory`, what `auto` picks for a small CSV)."""
    from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions
    return runs_locally(args) and PipelineOptions(args or []).view_as(DirectOptions).direct_running_mode == 'in_memory'
