"""Operations: request ids, one log line per request, Prometheus metrics, readiness,
optional tracing. Nothing here reads a value a client sent or a record holds."""
