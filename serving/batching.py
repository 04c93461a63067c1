"""Server-side batching: concurrent requests to one signature run as one call of the model.

Like TF Serving's batching (max_batch_size, batch_timeout_micros, num_batch_threads, max_enqueued_batches):
requests queue up; a batch thread takes as many rows as fit in max_batch_size, waiting at most the timeout
after the oldest request for more, concatenates the inputs along dimension 0, runs once and slices each
request's rows out of the outputs. With a timeout of 0 a thread takes whatever is queued, so a lone request
never waits and batches form from the requests that arrive while the model is busy. A request that fills a
batch by itself (max_batch_size rows or more) runs at once in its own thread: there is nothing to merge it with.

A batch that fails is re-run request by request, so one bad request never fails the others it was merged with.
"""
import collections
import dataclasses
import threading
import time
from concurrent.futures import Future
from typing import Callable, Dict, List

import grpc
import numpy as np

from serving.errors import ServingError

Arrays = Dict[str, np.ndarray]


@dataclasses.dataclass(frozen=True)
class BatchingOptions:
    max_batch_size: int = 64
    batch_timeout_micros: int = 0
    num_batch_threads: int = 2
    max_enqueued_batches: int = 100


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
        self.batch_sizes: collections.Counter = collections.Counter()  # rows per model call, for tests and stats
        self._threads = [threading.Thread(target=self._loop, name=f'{name}-{i}', daemon=True)
                         for i in range(max(1, options.num_batch_threads))]
        for thread in self._threads:
            thread.start()

    def submit(self, inputs: Arrays) -> Future:
        rows = len(next(iter(inputs.values()))) if inputs else 0
        future: Future = Future()
        with self._cond:
            if not self._closed and 0 < rows < self._options.max_batch_size:
                if len(self._queue) >= self._options.max_enqueued_batches * self._options.max_batch_size:
                    raise ServingError(grpc.StatusCode.UNAVAILABLE,
                                       f'The batch scheduling queue of {self._name} is full; retry later')
                self._queue.append(_Task(inputs, rows, future, time.monotonic()))
                self._queued_rows += rows
                self._cond.notify()
                return future
        # A full batch already, empty, or the servable is being unloaded: run it alone, in the caller's thread.
        self._execute([_Task(inputs, rows, future, time.monotonic())])
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
        max_rows = self._options.max_batch_size
        timeout = self._options.batch_timeout_micros / 1e6
        with self._cond:
            while not self._queue and not self._closed:
                self._cond.wait()
            if not self._queue:
                return []
            deadline = self._queue[0].enqueued + timeout
            while self._queued_rows < max_rows and not self._closed:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            batch, rows = [], 0
            while self._queue and rows + self._queue[0].rows <= max_rows:
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

    def _execute(self, batch: List[_Task]) -> None:
        try:
            if len(batch) == 1:
                self._run_one(batch[0])
                return
            total = sum(t.rows for t in batch)
            try:
                merged = {k: np.concatenate([t.inputs[k] for t in batch]) for k in batch[0].inputs}
                outputs = self._run(merged)
                if any(np.ndim(v) == 0 or len(v) != total for v in outputs.values()):
                    raise ValueError('an output is not batch-major')
            except Exception:  # noqa: BLE001 - find the request at fault by running each alone
                for task in batch:
                    self._run_one(task)
                return
            self.batch_sizes[total] += 1
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
            outputs = self._run(task.inputs)
        except Exception as e:  # noqa: BLE001 - the caller turns it into a status
            task.future.set_exception(e)
            return
        self.batch_sizes[task.rows] += 1
        task.future.set_result(outputs)
