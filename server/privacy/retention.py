"""Retention: sealed values past their configured age are cleared, once per run.

Rules are per data class and table (interaction notes, complaint texts, complaint event
notes), configured in settings (`CUSTOS_RETENTION_*_DAYS`; unset keeps forever). The
rows themselves stay (times, statuses, amounts) so metrics keep working; only the
personal text goes. The rows a run clears are noted on the command's audit recorder (one
CLI event, appended by the command in its transaction).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from server.audit.recorder import AuditRecorder
from server.config import Settings
from server.data.base import Base
from server.privacy.repository import PrivacyRepository


@dataclass(frozen=True, slots=True)
class RetentionRule:
    setting: str  # the Settings attribute holding the age in days
    object_type: str
    table: str
    columns: tuple[str, ...]
    age_column: str  # the row's age is counted from this timestamp


RULES = (
    RetentionRule(
        "retention_interaction_notes_days",
        "interaction",
        "interactions",
        ("subject", "notes"),
        "occurred_at",
    ),
    # A complaint's texts age from its closing: an open complaint keeps them.
    RetentionRule(
        "retention_complaint_texts_days",
        "complaint",
        "complaints",
        ("description", "resolution"),
        "closed_at",
    ),
    RetentionRule(
        "retention_complaint_event_notes_days",
        "complaint_event",
        "complaint_events",
        ("note",),
        "at",
    ),
)


@dataclass(frozen=True, slots=True)
class RetentionOutcome:
    table: str
    columns: tuple[str, ...]
    days: int
    cutoff: datetime
    rows: int


async def run_retention(
    session: AsyncSession,
    settings: Settings,
    audit: AuditRecorder,
    *,
    now: datetime,
    dry_run: bool,
) -> list[RetentionOutcome]:
    """Clear expired sealed values (or, with `dry_run`, only count them)."""
    repo = PrivacyRepository(session)
    outcomes: list[RetentionOutcome] = []
    for rule in RULES:
        days = getattr(settings, rule.setting)
        if days is None:
            continue
        table = Base.metadata.tables[rule.table]
        if rule.age_column not in table.c:
            continue
        cutoff = now - timedelta(days=days)
        ids = await repo.expired(table, rule.columns, rule.age_column, cutoff)
        if not dry_run and ids:
            await repo.clear_values(table, rule.columns, ids)
            for record_id in ids:
                audit.change(rule.object_type, "retention", record_id, rule.columns)
        outcomes.append(RetentionOutcome(rule.table, rule.columns, days, cutoff, len(ids)))
    return outcomes
