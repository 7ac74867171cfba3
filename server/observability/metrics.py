"""Prometheus metrics, one set per process, summed over the workers at scrape time.

prometheus-client's multiprocess mode: each worker writes its counters and histograms to
memory-mapped files in one directory (`PROMETHEUS_MULTIPROC_DIR`, set by `custos serve`
to `CUSTOS_METRICS_DIR`, by default `metrics/` in the state directory, and emptied at
start), and whichever process answers `/metrics` reads them all. Label values are names,
codes and statuses, never a value a client sent: operation names are GraphQL names, and
past `MAX_OPERATIONS` distinct ones a process counts the rest as `other`.
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from server.observability.requests import RequestRecord

ENVIRONMENT = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST
MAX_OPERATIONS = 500
_OPERATION = re.compile(r"[_A-Za-z][_0-9A-Za-z]{0,63}")
# The endpoints a request is counted under; anything else (404s, probes of other paths)
# is `other`, so a scan of random paths cannot grow the label set.
ENDPOINTS = {
    "/graphql": "graphql",
    "/healthz": "healthz",
    "/livez": "livez",
    "/readyz": "readyz",
    "/metrics": "metrics",
}
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class _Metrics:
    def __init__(self) -> None:
        labels = ("endpoint", "operation", "status")
        self.requests = Counter(
            "custos_http_requests", "HTTP requests answered", labels, registry=None
        )
        self.latency = Histogram(
            "custos_http_request_duration_seconds",
            "Time from the request's arrival to its answer",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=None,
        )
        self.errors = Counter(
            "custos_errors", "Errors answered, by code (GraphQL and HTTP)", ("code",), registry=None
        )
        self.rate_limited = Counter(
            "custos_rate_limit_rejections",
            "Requests refused by a rate limit (429), by code",
            ("code",),
            registry=None,
        )
        self.pool = Gauge(
            "custos_db_pool_connections",
            "Database connections of the workers' pools, by state",
            ("state",),
            multiprocess_mode="livesum",
            registry=None,
        )
        self.operations: set[str] = set()


_lock = threading.Lock()
_metrics: _Metrics | None = None
_pools: list[Any] = []


def directory() -> Path | None:
    raw = os.environ.get(ENVIRONMENT)
    return Path(raw) if raw else None


def prepare_directory(path: Path) -> None:
    """Empty the metrics directory before the workers start (`custos serve`): counters
    start again with the server, and no dead process's files linger."""
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True, mode=0o700)
    os.environ[ENVIRONMENT] = str(path)


def setup(default_directory: Path) -> None:
    """Turn this process's metrics on, in `$PROMETHEUS_MULTIPROC_DIR` if the server set
    it, else in `default_directory`. Once per process: later calls keep the first."""
    global _metrics
    with _lock:
        if _metrics is not None:
            return
        path = directory()
        if path is None:
            path = default_directory
            os.environ[ENVIRONMENT] = str(path)
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]
        _metrics = _Metrics()
        # A worker going away: its live gauges (pool connections) stop counting.
        atexit.register(_process_exit, path)


def counter(name: str, documentation: str, labels: tuple[str, ...]) -> Counter | None:
    """A counter summed over the workers, for `server/counters.py` (`name` ends in
    `_total`); None while this process's metrics are off."""
    if _metrics is None:
        return None
    return Counter(name.removesuffix("_total"), documentation, labels, registry=None)


def watch_pool(pool: Any) -> None:
    """Report this connection pool's state in `custos_db_pool_connections`."""
    if hasattr(pool, "checkedout") and hasattr(pool, "checkedin"):
        _pools.append(pool)


def _process_exit(path: Path) -> None:
    multiprocess.mark_process_dead(os.getpid(), str(path))  # type: ignore[no-untyped-call]


def operation_label(name: str | None) -> str:
    if name is None or _metrics is None:
        return "anonymous"
    if not _OPERATION.fullmatch(name):
        return "other"
    if name not in _metrics.operations:
        if len(_metrics.operations) >= MAX_OPERATIONS:
            return "other"
        _metrics.operations.add(name)
    return name


def observe_request(record: RequestRecord, duration: float) -> None:
    metrics = _metrics
    if metrics is None:
        return
    endpoint = ENDPOINTS.get(record.path, "other")
    operation = operation_label(record.operation_name) if endpoint == "graphql" else ""
    status = str(record.status)
    metrics.requests.labels(endpoint, operation, status).inc()
    metrics.latency.labels(endpoint, operation, status).observe(duration)
    for code in record.error_codes:
        metrics.errors.labels(code).inc()
    first = record.error_codes[0] if record.error_codes else "UNKNOWN"
    if record.status == 429:
        metrics.rate_limited.labels(first).inc()
    _observe_pools(metrics)


def _observe_pools(metrics: _Metrics) -> None:
    if not _pools:
        return
    checked_out = sum(pool.checkedout() for pool in _pools)
    idle = sum(pool.checkedin() for pool in _pools)
    metrics.pool.labels("checked_out").set(checked_out)
    metrics.pool.labels("idle").set(idle)


class _Families(Collector):
    def __init__(self, families: Iterable[Metric]) -> None:
        self.families = list(families)

    def collect(self) -> Iterator[Metric]:
        yield from self.families


def gauge(name: str, documentation: str, value: float) -> Metric:
    """A gauge computed at scrape time (not per worker), e.g. the audit's age."""
    family = GaugeMetricFamily(name, documentation)
    family.add_metric([], value)
    return family


def exposition(extra: Iterable[Metric] = ()) -> bytes:
    """Every worker's metrics, summed, and `extra` gauges: the `/metrics` body."""
    registry = CollectorRegistry()
    path = directory()
    if _metrics is not None:
        _observe_pools(_metrics)
    if path is not None:
        multiprocess.MultiProcessCollector(registry, path=str(path))  # type: ignore[no-untyped-call]
    registry.register(_Families(extra))
    return generate_latest(registry)
