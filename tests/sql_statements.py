"""Counting the SQL statements a request sends, for N+1 guards."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

from server.app import AppState


@contextmanager
def count_statements(state: AppState) -> Iterator[list[str]]:
    statements: list[str] = []

    def record(*args: Any) -> None:
        # The policy-version poll is throttled by wall time, not driven by the query.
        if "policy_version" not in args[2]:
            statements.append(args[2])

    engine = state.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)
