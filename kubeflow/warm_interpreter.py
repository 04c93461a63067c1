"""A Python interpreter with the task image's heavy modules already imported, that forks one child per task.

Every compiled task runs `python -m tfx_tabular.kubeflow.entrypoint <args>`, which imports TensorFlow, TFX (its
entrypoint imports all of `tfx.components`), Beam and the executor's libraries before any work: about 6 s a task
on this 2-core machine, more than half of a small pipeline's `run-local`. This process imports them once
(`PRELOAD`, nothing initialised: no TensorFlow runtime, no thread of Python's own), then for each task forks a child
that runs the task's module as `__main__` with the task's arguments, working directory and log file, as
`python -m` would, and exits with its exit code. Each task is still a process of its own, as a container is.

Protocol, one JSON object per line: run_local.py writes `{"module", "args", "cwd", "log"}` to stdin, this answers
`{"exit_code": n}` on stdout when the child has exited.

    python -m tfx_tabular.kubeflow.warm_interpreter
"""
import json
import os
import runpy
import sys
import traceback
from typing import Any, Dict

# What the entrypoint and the executors import; each is still imported by the task as usual (a no-op then).
PRELOAD = (
    'tfx_tabular.kubeflow.entrypoint',
    'tensorflow_transform.beam',
    'tfx.components.transform.executor',
    'tensorflow_data_validation',
    'tensorflow_model_analysis',
)


def _run_task(request: Dict[str, Any], answers_fd: int) -> None:
    """In the forked child: the task's module as `python -m` runs it; never returns."""
    code = 1
    try:
        os.close(answers_fd)
        log = os.open(request['log'], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)  # the request pipe is the parent's
        os.close(devnull)
        sys.stdin = open(0, encoding='utf-8', closefd=False)
        os.chdir(request['cwd'])
        sys.argv = [request['module']] + list(request['args'])
        runpy.run_module(request['module'], run_name='__main__', alter_sys=True)
        code = 0
    except SystemExit as e:
        if e.code is None or isinstance(e.code, int):
            code = e.code or 0
        else:
            print(e.code, file=sys.stderr)
    except BaseException:  # pylint: disable=broad-except
        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # pylint: disable=broad-except
                pass
        os._exit(code)  # pylint: disable=protected-access


def main() -> int:
    import importlib
    answers = os.fdopen(os.dup(1), 'w', encoding='utf-8')
    os.dup2(2, 1)  # whatever the imports print goes to this process's log, not into the answers
    for module in PRELOAD:
        importlib.import_module(module)
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _run_task(request, answers.fileno())
        _, wait_status = os.waitpid(pid, 0)
        answers.write(json.dumps({'exit_code': os.waitstatus_to_exitcode(wait_status)}) + '\n')
        answers.flush()
    return 0


if __name__ == '__main__':
    sys.exit(main())
