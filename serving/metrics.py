"""The metrics TF Serving exports to Prometheus, under its names, and the page `--monitoring_config_file` serves.

TF Serving keeps TensorFlow's process-wide monitoring registry and prints it in Prometheus' text format at
`prometheus_config.path` on the REST port (util/prometheus_exporter.cc). Kept here, with TF Serving's names,
labels and buckets:
  :tensorflow:serving:request_count{model_name,status}           every Predict/Classify/Regress, gRPC and REST
  :tensorflow:serving:request_latency{model_name,API,entrypoint}  histogram, microseconds, successful requests
  :tensorflow:serving:runtime_latency{model_name,API,runtime}     histogram, microseconds, the model run alone
  :tensorflow:serving:request_example_counts{model}               histogram, tf.Examples per request
  :tensorflow:serving:request_example_count_total{model}
  :tensorflow:cc:saved_model:load_attempt_count{model_path,status}  status: success or fail
  :tensorflow:cc:saved_model:load_latency{model_path}              microseconds of successful loads
TF Serving has no gauge of model states; this server adds one under its own prefix:
  :tfx_tabular:serving:model_version_state{model_name,version,state}  1 for each version's current state
"""
import collections
import threading
import weakref
from typing import Dict, List, Tuple

PROMETHEUS_PATH = '/monitoring/prometheus/metrics'
# monitoring::Buckets::Exponential(10, 1.8, 33): microseconds from 10 up to about 20 minutes.
LATENCY_BUCKETS = tuple(10 * 1.8 ** i for i in range(33))
EXAMPLE_BUCKETS = tuple(2.0 ** i for i in range(15))  # Exponential(1, 2, 15)


def _number(value: float) -> str:
    """absl::StrCat of a double: six significant digits."""
    return f'{value:g}'


def _labels(names: Tuple[str, ...], values: Tuple[str, ...]) -> List[str]:
    escape = lambda v: str(v).replace('\\', '\\\\').replace('"', '\\"')  # noqa: E731
    return [f'{n}="{escape(v)}"' for n, v in zip(names, values)]


class _Counter:
    def __init__(self, name: str, labels: Tuple[str, ...]):
        self.name, self.labels = name, labels
        self.cells: Dict[tuple, int] = collections.defaultdict(int)

    def add(self, values: tuple, amount: int = 1) -> None:
        self.cells[values] += amount

    def render(self) -> List[str]:
        lines = [f'# TYPE {self.name} counter']
        for values, count in sorted(self.cells.items()):
            lines.append(f'{self.name}{{{",".join(_labels(self.labels, values))}}} {count}')
        return lines


class _Histogram:
    def __init__(self, name: str, labels: Tuple[str, ...], buckets: Tuple[float, ...]):
        self.name, self.labels, self.buckets = name, labels, buckets
        self.cells: Dict[tuple, list] = {}

    def add(self, values: tuple, value: float) -> None:
        cell = self.cells.get(values)
        if cell is None:
            cell = self.cells[values] = [[0] * (len(self.buckets) + 1), 0.0]
        index = next((i for i, limit in enumerate(self.buckets) if value < limit), len(self.buckets))
        cell[0][index] += 1
        cell[1] += value

    def render(self) -> List[str]:
        lines = [f'# TYPE {self.name} histogram']
        for values, (counts, total) in sorted(self.cells.items()):
            labels = _labels(self.labels, values)
            prefix = f'{self.name}_bucket{{' + ''.join(f'{label},' for label in labels)
            cumulative = 0
            for i, count in enumerate(counts):
                cumulative += count
                limit = _number(self.buckets[i]) if i < len(self.buckets) else '+Inf'
                lines.append(f'{prefix}le="{limit}"}} {cumulative}')
            lines.append(f'{self.name}_sum{{{",".join(labels)}}} {_number(total)}')
            lines.append(f'{self.name}_count{{{",".join(labels)}}} {cumulative}')
        return lines


class Registry:
    """The process-wide metrics, as TensorFlow's CollectionRegistry is process-wide."""

    def __init__(self):
        self._lock = threading.Lock()
        self.request_count = _Counter(':tensorflow:serving:request_count', ('model_name', 'status'))
        self.request_latency = _Histogram(':tensorflow:serving:request_latency', ('model_name', 'API', 'entrypoint'),
                                          LATENCY_BUCKETS)
        self.runtime_latency = _Histogram(':tensorflow:serving:runtime_latency', ('model_name', 'API', 'runtime'),
                                          LATENCY_BUCKETS)
        self.example_counts = _Histogram(':tensorflow:serving:request_example_counts', ('model',), EXAMPLE_BUCKETS)
        self.example_total = _Counter(':tensorflow:serving:request_example_count_total', ('model',))
        self.load_attempts = _Counter(':tensorflow:cc:saved_model:load_attempt_count', ('model_path', 'status'))
        self.load_latency = _Counter(':tensorflow:cc:saved_model:load_latency', ('model_path',))
        self._state_sources: 'weakref.WeakSet' = weakref.WeakSet()

    def request(self, model: str, api: str, entrypoint: str, status: str, micros: float) -> None:
        """One request answered; its latency counts only when it succeeded, as in TF Serving."""
        with self._lock:
            self.request_count.add((model, status))
            if status == 'OK':
                self.request_latency.add((model, api, entrypoint), micros)

    def runtime(self, model: str, api: str, micros: float) -> None:
        with self._lock:
            self.runtime_latency.add((model, api, 'TF1'), micros)

    def examples(self, model: str, count: int) -> None:
        with self._lock:
            self.example_counts.add((model,), count)
            self.example_total.add((model,), count)

    def load_attempt(self, path: str, ok: bool, micros: float) -> None:
        with self._lock:
            self.load_attempts.add((path, 'success' if ok else 'fail'))
            if ok:
                self.load_latency.add((path,), int(micros))

    def watch_states(self, source) -> None:
        """`source.version_states()` yields (model, version, state name) for the state gauge."""
        self._state_sources.add(source)

    def value(self, name: str) -> int:
        """The first point of a counter (HandleReloadConfigRequest's metric increases), 0 if none."""
        with self._lock:
            for metric in (self.request_count, self.example_total, self.load_attempts, self.load_latency):
                if metric.name.strip(':').replace(':', '/') == name.strip('/') and metric.cells:
                    return next(iter(metric.cells.values()))
        return 0

    def render(self) -> str:
        """The Prometheus page: `# TYPE` then one line per point, as TF Serving's exporter prints it."""
        with self._lock:
            lines = []
            for metric in (self.load_attempts, self.load_latency, self.example_counts, self.example_total,
                           self.request_count, self.request_latency, self.runtime_latency):
                if metric.cells:
                    lines += metric.render()
        states = [s for source in list(self._state_sources) for s in source.version_states()]
        if states:
            name = ':tfx_tabular:serving:model_version_state'
            lines.append(f'# TYPE {name} gauge')
            for model, version, state in sorted(states):
                labels = ','.join(_labels(('model_name', 'version', 'state'), (model, version, state)))
                lines.append(f'{name}{{{labels}}} 1')
        return '\n'.join(lines) + '\n'


REGISTRY = Registry()
