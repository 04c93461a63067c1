"""Runs the pipeline locally: LocalDagRunner, Beam DirectRunner, MLMD in SQLite, with progress and a summary.

Progress comes from LocalDagRunner's own log lines ("Component X is running/finished"); the full TFX, Beam
and TensorFlow log goes to `<run_dir>/run.log` so the terminal shows only what a person follows.
"""
import logging
import os
import sys
import time
from typing import Callable, Dict, Optional

from tfx_tabular.pipeline.core import storage
from tfx_tabular.pipeline.core.beam import resolve_running_mode
from tfx_tabular.pipeline.core.csv_checks import DataError, prepare_input

# TensorFlow, TFX and Beam are imported inside run_pipeline, once stderr goes to the run log: importing them
# prints pages of warnings.


class PipelineFailed(Exception):
    """A component failed; names the component and where its log is."""


class _Progress(logging.Handler):
    """Turns LocalDagRunner's log lines into one line per component start and finish."""

    def __init__(self, echo: Callable[[str], None]):
        super().__init__(logging.INFO)
        self.echo = echo
        self.current: Optional[str] = None
        self.started = 0.0
        self.index = 0
        self.cached = False

    def emit(self, record):
        if record.msg == 'Component %s is running.':
            self.current, self.started, self.cached = record.args[0], time.time(), False
            self.index += 1
            self.echo(f'[{self.index}] {self.current:<20} started {time.strftime("%H:%M:%S")}')
        elif str(record.msg).startswith('A cached execution'):
            self.cached = True
        elif record.msg == 'Component %s is finished.':
            how = 'reused from cache' if self.cached else f'done in {time.time() - self.started:.1f}s'
            self.echo(f'[{self.index}] {record.args[0]:<20} {how}')
            self.current = None


def _route_logs(log_path: str, progress: _Progress):
    """Sends absl (TFX), Python logging and stderr (Beam workers inherit it) to the run log.

    Only progress lines and Keras' per-epoch lines (stdout) reach the terminal.
    """
    sys.stderr.flush()
    saved_stderr = os.dup(2)
    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    os.dup2(log_fd, 2)
    os.close(log_fd)
    file_handler = logging.FileHandler(log_path)
    file_handler.setFormatter(logging.Formatter('%(asctime)s %(levelname)s %(name)s: %(message)s'))
    absl_logger = logging.getLogger('absl')
    root = logging.getLogger()
    saved = (absl_logger.level, absl_logger.propagate, list(root.handlers), root.level)
    absl_logger.setLevel(logging.INFO)
    # Importing TensorBoard (Trainer's callback does) sets absl's verbosity to WARNING, which would hide
    # LocalDagRunner's progress lines: pin INFO for the length of the run.
    absl_logger.setLevel = lambda level: None
    absl_logger.propagate = False
    absl_logger.addHandler(file_handler)
    absl_logger.addHandler(progress)
    root.handlers = [file_handler]
    root.setLevel(logging.INFO)

    def restore():
        absl_logger.removeHandler(file_handler)
        absl_logger.removeHandler(progress)
        del absl_logger.setLevel
        absl_logger.setLevel(saved[0])
        absl_logger.propagate = saved[1]
        root.handlers = saved[2]
        root.setLevel(saved[3])
        file_handler.close()
        sys.stderr.flush()
        os.dup2(saved_stderr, 2)
        os.close(saved_stderr)
    return restore


def _anomalies_in(error: BaseException):
    from tfx_tabular.components.anomaly_gate.executor import DataAnomaliesError
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, DataAnomaliesError):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


def run_pipeline(config, echo: Callable[[str], None] = print) -> Dict:
    """Checks the CSV, runs every component, and returns the run summary (also written to summary.json)."""
    scan, csv_pattern = prepare_input(config)  # checks every file; a normalised copy if CsvExampleGen would misread
    label_counts = scan.label_counts
    if config.label.classes and set(config.label.classes) != set(label_counts):
        raise DataError(f'label.classes {config.label.classes} differ from the values of column '
                        f'{config.label.column!r} in the data {sorted(label_counts)}; make them match')
    os.makedirs(config.run_path, exist_ok=True)
    log_path = os.path.join(config.run_path, 'run.log')
    progress = _Progress(echo)
    _, mode = resolve_running_mode(config.beam.args, config.csv_bytes)
    beam = {'in_memory': '; Beam runs in this process: small CSV',
            'multi_processing': '; Beam runs one worker process per CPU: large CSV'}.get(mode, '')
    echo(f'Running pipeline {config.name!r} ({sum(label_counts.values())} rows{beam}); full log: {log_path}')
    if csv_pattern != config.csv_pattern:
        why = sorted({reason for reasons in scan.rewrites.values() for reason in reasons})
        echo(f'CsvExampleGen reads a normalised copy of data.csv ({"; ".join(why)}): {os.path.dirname(csv_pattern)}')
    restore = _route_logs(log_path, progress)
    try:
        from tfx import v1 as tfx
        from tfx_tabular.pipeline.pipeline import create_pipeline
        from tfx_tabular.pipeline.results.summary import summarize
        tfx.orchestration.LocalDagRunner().run(create_pipeline(config, len(label_counts), csv_pattern=csv_pattern))
        summary = summarize(config, label_counts, log_path)
    except Exception as e:  # noqa: BLE001 - every failure becomes one readable message
        logging.getLogger('absl').exception('pipeline failed')
        anomalies = _anomalies_in(e)
        if anomalies:
            raise anomalies from None
        where = f'component {progress.current}' if progress.current else 'the pipeline'
        raise PipelineFailed(f'{where} failed: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ""}'
                             f' (full traceback in {log_path})') from e
    finally:
        restore()
    _copy_training_curves(summary, config.run_path)
    from tfx_tabular.pipeline.results.report import REPORT_FILE, write_report
    summary['report'] = write_report(summary, config, os.path.join(config.run_path, REPORT_FILE))
    from tfx_tabular.pipeline.results.summary import write_summary
    write_summary(summary, os.path.join(config.run_path, 'summary.json'))
    return summary


def _copy_training_curves(summary: Dict, run_dir: str) -> None:
    from tfx_tabular.components.trainer.curves import CURVES_FILE
    logdir = summary.get('tensorboard_logdir')
    if logdir and os.path.exists(os.path.join(logdir, CURVES_FILE)):
        target = os.path.join(run_dir, CURVES_FILE)
        storage.write_bytes(target, storage.read_bytes(os.path.join(logdir, CURVES_FILE)))
        summary['training_curves'] = target

