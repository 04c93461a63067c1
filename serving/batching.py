"""Server-side batching, as TF Serving's BatchingSession does it: concurrent runs of one signature become one run.

`--enable_batching` turns it on; `--batching_parameters_file` sets TF Serving's BatchingParameters (defaults:
those of its SharedBatchScheduler). Requests queue up; a batch thread takes as many rows as fit in one execution,
waiting at most `batch_timeout_micros` after the oldest request for more, concatenates the inputs along
dimension 0 (padded with copies of the first row up to the next `allowed_batch_sizes` entry), runs once and
slices each request's rows out of the outputs. With a timeout of 0 a thread takes whatever is queued, so a lone
request never waits and batches form from the requests that arrive while the model is busy. Refusals carry TF
Serving's messages: inputs without a common 0th dimension, a request over `max_batch_size` rows (unless
`enable_large_batch_splitting`, which runs it in chunks), a full queue (UNAVAILABLE).

One difference, on purpose: a batch that fails is re-run request by request, so one bad request never fails the
others it was merged with (TF Serving fails them all).
"""
import collections
import dataclasses
import os
import threading
import time
from concurrent.futures import Future
from typing import Callable, Dict, List, Tuple

import numpy as np

from tfx_tabular.serving.errors import invalid_argument, unavailable

Arrays = Dict[str, np.ndarray]


class BatchingConfigError(ValueError):
    """BatchingParameters this server cannot apply; the message names the field."""


@dataclasses.dataclass(frozen=True)
class BatchingOptions:
    """TF Serving's BatchingParameters; the defaults are its SharedBatchScheduler's."""
    max_batch_size: int = 1000
    batch_timeout_micros: int = 0
    max_enqueued_batches: int = 10
    num_batch_threads: int = os.cpu_count() or 1
    allowed_batch_sizes: Tuple[int, ...] = ()
    enable_large_batch_splitting: bool = False
    max_execution_batch_size: int = 0  # with splitting; 0: max_batch_size

    @property
    def execution_batch_size(self) -> int:
        """The most rows one model run takes."""
        if self.enable_large_batch_splitting and self.max_execution_batch_size:
            return self.max_execution_batch_size
        return self.max_batch_size

    @classmethod
    def from_parameters(cls, params) -> 'BatchingOptions':
        """From a BatchingParameters message (serving/protos.py), checked as TF Serving checks it."""
        if params.pad_variable_length_inputs:
            raise BatchingConfigError('pad_variable_length_inputs is not supported by this server; remove it from '
                                      'the batching parameters')
        defaults = cls()
        options = cls(
            max_batch_size=params.max_batch_size.value if params.HasField('max_batch_size') else
            defaults.max_batch_size,
            batch_timeout_micros=params.batch_timeout_micros.value,
            max_enqueued_batches=params.max_enqueued_batches.value if params.HasField('max_enqueued_batches') else
            defaults.max_enqueued_batches,
            num_batch_threads=params.num_batch_threads.value if params.HasField('num_batch_threads') else
            defaults.num_batch_threads,
            allowed_batch_sizes=tuple(params.allowed_batch_sizes),
            enable_large_batch_splitting=params.enable_large_batch_splitting.value,
            max_execution_batch_size=params.max_execution_batch_size.value)
        sizes = options.allowed_batch_sizes
        if sizes and sizes[-1] != options.execution_batch_size:
            raise BatchingConfigError(f'Last entry in allowed_batch_sizes must match max_batch_size; last entry was '
                                      f'{sizes[-1]}; expected {options.execution_batch_size}')
        if any(b <= a for a, b in zip(sizes, sizes[1:])) or any(s <= 0 for s in sizes):
            raise BatchingConfigError('allowed_batch_sizes entries must be positive and monotonically increasing')
        if options.max_batch_size <= 0 or options.num_batch_threads <= 0 or options.max_enqueued_batches <= 0:
            raise BatchingConfigError('max_batch_size, num_batch_threads and max_enqueued_batches must be positive')
        return options


def batch_size(inputs: Arrays) -> int:
    """The rows of one request: every input's 0th dimension, which must agree (TF Serving's checks and messages)."""
    if not inputs:
        raise invalid_argument('Batching session Run() must have at least one input tensor')
    sizes = set()
    for array in inputs.values():
        if np.ndim(array) == 0:
            raise invalid_argument('Batching session Run() input tensors must have at least one dimension')
        sizes.add(len(array))
    if len(sizes) > 1:
        raise invalid_argument('Batching session Run() input tensors must have equal 0th-dimension size')
    return sizes.pop()


@dataclasses.dataclass
class _Task:
    inputs: Arrays
    rows: int
    future: Future
    enqueued: float


class Batcher:
    """Merges concurrent `submit` calls of one function `run(inputs) -> outputs` (every tensor batch-major)."""

    def __init__(self, run: Callable[[Arrays], Arrays], options: BatchingOptions, name: str = 'batcher'):
        self._run = run
        self._options = options
        self._name = name
        self._queue: collections.deque = collections.deque()
        self._queued_rows = 0
        self._cond = threading.Condition()
        self._closed = False
        self.batch_sizes: collections.Counter = collections.Counter()  # rows per model run, for tests and stats
        self._threads = [threading.Thread(target=self._loop, name=f'{name}-{i}', daemon=True)
                         for i in range(max(1, options.num_batch_threads))]
        for thread in self._threads:
            thread.start()

    def submit(self, inputs: Arrays) -> Future:
        """Queues one request; raises TF Serving's INVALID_ARGUMENT or UNAVAILABLE at once if it cannot queue."""
        rows = batch_size(inputs)
        options = self._options
        if rows > options.max_batch_size:
            raise invalid_argument(f'Task size {rows} is larger than maximum input batch size '
                                   f'{options.max_batch_size}')
        future: Future = Future()
        task = _Task(inputs, rows, future, time.monotonic())
        with self._cond:
            if not self._closed and rows > 0:
                if self._queued_rows + rows > options.max_enqueued_batches * options.execution_batch_size:
                    raise unavailable('The batch scheduling queue to which this task was submitted is full')
                self._queue.append(task)
                self._queued_rows += rows
                self._cond.notify()
                return future
        # Empty, or the servable is being unloaded: run it alone, in the caller's thread.
        self._execute([task])
        return future

    def close(self) -> None:
        """Stops taking requests; the threads finish what is queued, then exit."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def join(self, timeout: float = None) -> None:
        for thread in self._threads:
            thread.join(timeout)

    def _take_batch(self) -> List[_Task]:
        """Waits for a first task, then for more until the batch is full or the timeout passes."""
        limit = self._options.execution_batch_size
        timeout = self._options.batch_timeout_micros / 1e6
        with self._cond:
            while not self._queue and not self._closed:
                self._cond.wait()
            if not self._queue:
                return []
            deadline = self._queue[0].enqueued + timeout
            while self._queued_rows < limit and not self._closed:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            first = self._queue.popleft()
            batch, rows = [first], first.rows
            while self._queue and rows + self._queue[0].rows <= limit:
                task = self._queue.popleft()
                batch.append(task)
                rows += task.rows
            self._queued_rows -= rows
            return batch

    def _loop(self) -> None:
        while True:
            batch = self._take_batch()
            if not batch:
                return
            self._execute(batch)

    def _padded_size(self, rows: int) -> int:
        return next((size for size in self._options.allowed_batch_sizes if size >= rows), rows)

    def _run_rows(self, inputs: Arrays, rows: int) -> Arrays:
        """One model run on `rows` rows, padded to an allowed batch size; in chunks if splitting allows."""
        limit = self._options.execution_batch_size
        if rows > limit:  # only with enable_large_batch_splitting: submit refuses it otherwise
            parts = [self._run_rows({k: v[i:i + limit] for k, v in inputs.items()}, min(limit, rows - i))
                     for i in range(0, rows, limit)]
            return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        padded = self._padded_size(rows)
        if padded > rows:
            inputs = {k: np.concatenate([v, np.repeat(v[:1], padded - rows, axis=0)]) for k, v in inputs.items()}
        outputs = self._run(inputs)
        if any(np.ndim(v) == 0 or len(v) != padded for v in outputs.values()):
            raise invalid_argument("Batched output tensor's 0th dimension does not equal the sum of the 0th "
                                   'dimension sizes of the input tensors')
        self.batch_sizes[padded] += 1
        return {k: v[:rows] for k, v in outputs.items()} if padded > rows else outputs

    def _execute(self, batch: List[_Task]) -> None:
        try:
            if len(batch) == 1:
                self._run_one(batch[0])
                return
            total = sum(t.rows for t in batch)
            try:
                merged = {k: np.concatenate([t.inputs[k] for t in batch]) for k in batch[0].inputs}
                outputs = self._run_rows(merged, total)
            except Exception:  # noqa: BLE001 - find the request at fault by running each alone
                for task in batch:
                    self._run_one(task)
                return
            start = 0
            for task in batch:
                task.future.set_result({k: v[start:start + task.rows] for k, v in outputs.items()})
                start += task.rows
        except BaseException as e:  # never leave a caller waiting
            for task in batch:
                if not task.future.done():
                    task.future.set_exception(e)
            if not isinstance(e, Exception):
                raise

    def _run_one(self, task: _Task) -> None:
        try:
            outputs = self._run_rows(task.inputs, task.rows) if task.rows else self._run(task.inputs)
        except Exception as e:  # noqa: BLE001 - the caller turns it into a status
            task.future.set_exception(e)
            return
        task.future.set_result(outputs)
