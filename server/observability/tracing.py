"""Optional OpenTelemetry tracing: a server span per request when the OpenTelemetry API
is installed (it is not a dependency). Exporters and sampling are configured the
OpenTelemetry way (`opentelemetry-instrument`, `OTEL_*` variables); without an SDK the
API's no-op tracer makes this free."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from starlette.types import Scope

if TYPE_CHECKING:
    from server.observability.requests import RequestRecord

try:  # pragma: no cover - depends on what is installed
    from opentelemetry import trace as _trace

    _tracer: Any = _trace.get_tracer("custos")
except ImportError:  # pragma: no cover
    _tracer = None


def enabled() -> bool:
    return _tracer is not None


@contextlib.contextmanager
def request_span(scope: Scope, record: RequestRecord) -> Iterator[None]:
    """A span around one request, named after its operation once known. Attributes are
    names and numbers only (never a query's text or variables)."""
    if _tracer is None:
        yield
        return
    with _tracer.start_as_current_span(
        f"{scope['method']} {scope['path'] if scope['path'] in _KNOWN else 'other'}",
        kind=_trace.SpanKind.SERVER,
    ) as span:
        try:
            yield
        finally:
            span.set_attribute("http.request.method", scope["method"])
            span.set_attribute("http.response.status_code", record.status)
            span.set_attribute("custos.request_id", record.request_id)
            if record.operation_name:
                span.set_attribute("graphql.operation.name", record.operation_name)
                span.update_name(record.operation_name)
            if record.operation_type:
                span.set_attribute("graphql.operation.type", record.operation_type)
            if record.cost is not None:
                span.set_attribute("custos.cost", record.cost)


_KNOWN = frozenset({"/graphql", "/healthz", "/livez", "/readyz", "/metrics"})
