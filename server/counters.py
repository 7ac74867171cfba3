"""In-process counters, named and labelled like Prometheus counters.

A counter only grows; `value()` and `samples()` read this process's count. Once the
process's Prometheus metrics are on (`server/observability/metrics.py`), every count also
goes to a prometheus-client counter of the same name, so `/metrics` sums it over the
workers with the rest.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from typing import Any

from server.observability import metrics

_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*_total$")


class Counter:
    """A monotonically increasing count per combination of label values."""

    def __init__(self, name: str, documentation: str, labels: tuple[str, ...] = ()) -> None:
        if not _NAME.match(name):
            raise ValueError(f"counter names are Prometheus names ending in _total: {name!r}")
        self.name = name
        self.documentation = documentation
        self.labels = labels
        self._values: dict[tuple[str, ...], int] = {}
        self._lock = threading.Lock()
        self._shared: Any = None

    def inc(self, *values: str, amount: int = 1) -> None:
        if len(values) != len(self.labels):
            raise ValueError(f"{self.name} takes labels {self.labels}")
        if amount < 0:
            raise ValueError("a counter never decreases")
        with self._lock:
            self._values[values] = self._values.get(values, 0) + amount
            if self._shared is None:
                self._shared = metrics.counter(self.name, self.documentation, self.labels)
        if self._shared is not None:
            (self._shared.labels(*values) if values else self._shared).inc(amount)

    def value(self, *values: str) -> int:
        return self._values.get(values, 0)

    def samples(self) -> Iterator[tuple[dict[str, str], int]]:
        with self._lock:
            items = sorted(self._values.items())
        for values, count in items:
            yield dict(zip(self.labels, values, strict=True)), count


REGISTRY: dict[str, Counter] = {}


def counter(name: str, documentation: str, labels: tuple[str, ...] = ()) -> Counter:
    """The process's counter of this name, made on first use."""
    found = REGISTRY.get(name)
    if found is None:
        found = REGISTRY[name] = Counter(name, documentation, labels)
    return found


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def exposition() -> str:
    """Every counter in the Prometheus text format (version 0.0.4)."""
    lines: list[str] = []
    for name in sorted(REGISTRY):
        item = REGISTRY[name]
        lines.append(f"# HELP {name} {item.documentation}")
        lines.append(f"# TYPE {name} counter")
        for labels, count in item.samples():
            text = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
            lines.append(f"{name}{{{text}}} {count}" if text else f"{name} {count}")
    return "\n".join(lines) + "\n"


AUTHENTICATION_FAILURES = counter(
    "custos_authentication_failures_total",
    "Requests refused before authentication succeeded, by error code.",
    ("code",),
)
BAD_PURPOSES = counter(
    "custos_bad_purpose_total", "Requests refused because X-Purpose named no known purpose."
)
