"""Executes a compiled package on this machine with kfp's own local orchestration (`kfp.local`, kfp 2.13).

kfp.local walks the pipeline's DAG, builds each task's executor input (parameters, and artifact URIs under
`<pipeline root>/<pipeline>-<time>/<task>/`), resolves the placeholders in the container's command and args,
and after the task reads its outputs from `executor_output.json` and hands them downstream, as KFP 2 does.
What it cannot do here is start a container: its SubprocessRunner runs lightweight Python components only and
its DockerRunner needs a Docker engine. The pipeline image is this package on the TFX stack, so this module's
task handler runs the container's command and args as a subprocess of this virtualenv (`python` is this
virtualenv's interpreter): the image's code, not the image. By default each task is a child forked from one
warm interpreter that imported TensorFlow, TFX and Beam once (warm_interpreter.py: about 6 s less per task);
`fresh_interpreters=True` (`--fresh-interpreters`) starts a new interpreter per task instead, as a container does.

Open-source KFP 2 runs no lifecycle hook (no backend code reads `lifecycle`), so neither does this; `compile`
leaves them out. Not exercised: Kubernetes, Argo, the KFP driver and launcher binaries, MLMD, object storage and
its credentials, the kfp-kubernetes platform spec (the Secret's env vars), and KFP's cache (every task runs).
"""
import collections
import contextlib
import functools
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Deque, Dict, List, Optional, TextIO, Tuple

from kfp import local
from kfp.local import (dag_orchestrator, executor_input_utils, placeholder_utils, status, subprocess_task_handler,
                       task_handler_interface, utils)

TAIL_LINES = 20  # log lines kept to show when a task fails
PYTHON_COMMANDS = ('python', 'python3', f'python3.{sys.version_info.minor}')


class RunLocalError(Exception):
    """The package cannot be executed here (bad package or pipeline root); the message says why and the fix."""


@dataclass
class TaskRun:
    name: str
    ok: bool
    seconds: float
    log: str  # the task's stdout and stderr
    exit_code: int
    tail: List[str] = field(default_factory=list)  # its last log lines


@dataclass
class LocalRun:
    pipeline: str
    run_dir: str  # <pipeline root>/<pipeline>-<time>: one folder per task, the artifacts inside
    tasks: List[TaskRun]
    outputs: Dict[str, Dict]  # task -> its executor_output.json
    seconds: float = 0.0

    @property
    def failed(self) -> Optional[TaskRun]:
        return next((t for t in self.tasks if not t.ok), None)

    def pushed_to(self) -> Optional[str]:
        """Where a TFX Pusher pushed the model (its PushedModel's `pushed_destination`), None if nothing was."""
        for output in self.outputs.values():
            for artifacts in output.get('artifacts', {}).values():
                for artifact in artifacts.get('artifacts', []):
                    metadata = artifact.get('metadata', {})
                    if metadata.get('pushed') == 1 and metadata.get('pushed_destination'):
                        return metadata['pushed_destination']
        return None


def local_command(full_command: List[str]) -> List[str]:
    """The container's command with its Python interpreter replaced by this virtualenv's."""
    if full_command and os.path.basename(full_command[0]) in PYTHON_COMMANDS:
        return [sys.executable] + full_command[1:]
    return list(full_command)


def executor_output_file(full_command: List[str]) -> Optional[str]:
    """The task's `outputs.outputFile`, read from the executor input ({{$}}) among the resolved args."""
    for arg in full_command:
        if arg.startswith('{'):
            try:
                output_file = json.loads(arg).get('outputs', {}).get('outputFile')
            except ValueError:
                continue
            if output_file:
                return output_file
    return None


class _Progress:
    """What the task handlers share within one run: the terminal, the task count and what each task did."""

    def __init__(self, out: TextIO, task_names: List[str], warm: Optional['_WarmInterpreter'] = None):
        self.out, self.total = out, len(task_names)
        self.width = max(map(len, task_names), default=0)
        self.tasks: List[TaskRun] = []
        self.outputs: Dict[str, Dict] = {}
        self.warm = warm


class _WarmInterpreter:
    """warm_interpreter.py as a subprocess: `run` hands it one `python -m` task and waits for the exit code."""

    def __init__(self, log_path: str):
        self._log = open(log_path, 'w', encoding='utf-8')  # pylint: disable=consider-using-with
        self._process = subprocess.Popen(  # pylint: disable=consider-using-with
            [sys.executable, '-m', 'tfx_tabular.kubeflow.warm_interpreter'], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=self._log, text=True, env=_task_env())

    def run(self, module: str, args: List[str], cwd: str, log: str) -> int:
        self._process.stdin.write(json.dumps({'module': module, 'args': args, 'cwd': cwd, 'log': log}) + '\n')
        self._process.stdin.flush()
        answer = self._process.stdout.readline()
        if not answer:
            raise RunLocalError(f'the warm interpreter stopped (exit code {self._process.wait()}); its log: '
                                f'{self._log.name}; rerun with --fresh-interpreters')
        return json.loads(answer)['exit_code']

    def close(self) -> None:
        self._process.stdin.close()
        self._process.wait()
        self._log.close()


def _task_env() -> Dict[str, str]:
    return {**os.environ, 'PYTHONUNBUFFERED': '1'}


def python_module_command(command: List[str]) -> Optional[Tuple[str, List[str]]]:
    """(module, args) of a `<this python> -m module args...` command, else None."""
    if len(command) >= 3 and command[0] == sys.executable and command[1] == '-m':
        return command[2], command[3:]
    return None


class VenvTaskHandler(task_handler_interface.ITaskHandler):
    """Runs the container's command and args, placeholders resolved by kfp, as a subprocess of this virtualenv.
    Its output goes to `<task folder>/task.log`; the terminal gets one line per task."""

    def __init__(self, image: str, full_command: List[str], pipeline_root: str, runner: local.SubprocessRunner,
                 progress: _Progress):
        super().__init__(image, full_command, pipeline_root, runner)
        self.image, self.pipeline_root = image, pipeline_root
        self.command = local_command(full_command)
        self.progress = progress

    def run(self) -> status.Status:
        output_file = executor_output_file(self.command)
        if not output_file:
            raise RunLocalError(f'a task of image {self.image} gets no executor input ({{{{$}}}} in its args), so its '
                                'outputs cannot be collected; compile the package with `tfx-tabular kubeflow compile`')
        task_dir = os.path.dirname(output_file)  # kfp's task folder, named after the task
        name = os.path.basename(task_dir)
        os.makedirs(task_dir, exist_ok=True)
        log_path = os.path.join(task_dir, 'task.log')
        progress = self.progress
        progress.out.write(f'[{len(progress.tasks) + 1:>2}/{progress.total}] {name:<{progress.width}}  ')
        progress.out.flush()
        tail: Deque[str] = collections.deque(maxlen=TAIL_LINES)
        start = time.monotonic()
        module_command = python_module_command(self.command)
        if progress.warm and module_command:
            exit_code = progress.warm.run(*module_command, cwd=task_dir, log=log_path)
            with open(log_path, encoding='utf-8', errors='replace') as log:
                tail.extend(line.rstrip('\n') for line in log if line.strip())
        else:
            with open(log_path, 'w', encoding='utf-8') as log, subprocess.Popen(
                    self.command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors='replace',
                    cwd=task_dir, env=_task_env()) as process:
                for line in process.stdout:
                    log.write(line)
                    if line.strip():
                        tail.append(line.rstrip('\n'))
                exit_code = process.wait()
        seconds = time.monotonic() - start
        ok = exit_code == 0
        progress.tasks.append(TaskRun(name=name, ok=ok, seconds=seconds, log=log_path, exit_code=exit_code,
                                      tail=list(tail)))
        if ok and os.path.exists(output_file):
            with open(output_file, encoding='utf-8') as f:
                progress.outputs[name] = json.load(f)
        progress.out.write(f'ok {seconds:7.1f} s\n' if ok else f'FAILED after {seconds:.1f} s (exit {exit_code})\n')
        progress.out.flush()
        return status.Status.SUCCESS if ok else status.Status.FAILURE


@contextlib.contextmanager
def _handled_by(progress: _Progress):
    """kfp 2.13 picks the handler class from a map it builds inside `task_dispatcher` on each task, keyed by the
    runner's type, so its only seam is the module attribute for the SubprocessRunner's handler."""
    original = subprocess_task_handler.SubprocessTaskHandler
    subprocess_task_handler.SubprocessTaskHandler = functools.partial(VenvTaskHandler, progress=progress)
    try:
        yield
    finally:
        subprocess_task_handler.SubprocessTaskHandler = original


def read_spec(package: str):
    """The package's PipelineSpec, parsed strictly by kfp's Client reader (as `submit` does)."""
    from tfx_tabular.kubeflow.submit import SubmitError, read_package
    try:
        return read_package(package).pipeline_spec
    except SubmitError as e:
        raise RunLocalError(str(e)) from None


def run_local(package: str, pipeline_root: str, out: Optional[TextIO] = None,
              fresh_interpreters: bool = False) -> LocalRun:
    """Runs every task of the package in kfp's local DAG orchestration; stops at the first failed task.
    `out` (default stdout) gets one line per task. Tasks are forked from a warm interpreter unless
    `fresh_interpreters`."""
    spec = read_spec(package)
    if '://' in pipeline_root:
        raise RunLocalError(f'--pipeline-root {pipeline_root}: run-local writes to a local folder; pass a path '
                            '(object storage is for runs on the cluster)')
    pipeline_root = os.path.abspath(pipeline_root)
    name = spec.pipeline_info.name
    resource_name = executor_input_utils.get_local_pipeline_resource_name(name)
    run_dir = os.path.join(pipeline_root, resource_name)
    os.makedirs(run_dir, exist_ok=True)
    executors = {label: utils.struct_to_executor_spec(executor)
                 for label, executor in spec.deployment_spec['executors'].items()}
    start = time.monotonic()
    warm = None if fresh_interpreters else _WarmInterpreter(os.path.join(run_dir, 'warm_interpreter.log'))
    progress = _Progress(out or sys.stdout, list(spec.root.dag.tasks), warm)
    # kfp.local logs each task (inputs, outputs) to stdout; that goes to a file, the terminal gets the progress.
    with open(os.path.join(run_dir, 'kfp_local.log'), 'w', encoding='utf-8') as kfp_log, \
            contextlib.redirect_stdout(kfp_log), _handled_by(progress), \
            (contextlib.closing(warm) if warm else contextlib.nullcontext()):
        try:
            dag_orchestrator.run_dag(
                pipeline_resource_name=resource_name, dag_component_spec=spec.root, executors=executors,
                components=dict(spec.components.items()), dag_arguments={}, pipeline_root=pipeline_root,
                runner=local.SubprocessRunner(use_venv=False), unique_pipeline_id=placeholder_utils.make_random_id(),
                fail_stack=[])
        except (ValueError, NotImplementedError, KeyError) as e:
            after = f' after task {progress.tasks[-1].name}' if progress.tasks else ''
            raise RunLocalError(f'kfp\'s local orchestration cannot run this package{after}: '
                                f'{str(e).splitlines()[0]}') from None
    return LocalRun(pipeline=name, run_dir=run_dir, tasks=progress.tasks, outputs=progress.outputs,
                    seconds=time.monotonic() - start)
