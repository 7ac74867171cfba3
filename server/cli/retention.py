"""`custos retention run`: clear sealed values past their retention."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from server.cli.console import console
from server.cli.context import open_command, run
from server.clock import Clock
from server.config import Settings, load_settings

if TYPE_CHECKING:
    from server.privacy.retention import RetentionOutcome

app = typer.Typer(help="Retention of personal data.", no_args_is_help=True)


@app.command("run")
def retention_run(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only count what would be cleared.")
    ] = False,
) -> None:
    """Clear sealed values older than their retention (CUSTOS_RETENTION_*_DAYS)."""
    outcomes = run(apply_retention(load_settings(), dry_run=dry_run))
    if not outcomes:
        console.print("no retention configured (set CUSTOS_RETENTION_*_DAYS)")
    for outcome in outcomes:
        verb = "would clear" if dry_run else "cleared"
        console.print(
            f"{outcome.table} ({', '.join(outcome.columns)}) older than {outcome.days} days: "
            f"{verb} {outcome.rows} rows"
        )


async def apply_retention(
    settings: Settings, *, dry_run: bool, clock: Clock | None = None
) -> list[RetentionOutcome]:
    """One retention run in one transaction with its audit event; a dry run only counts
    and records nothing."""
    from server.privacy.retention import run_retention

    async with (
        open_command("retention run", settings=settings, clock=clock, audited=not dry_run) as c,
        c.transaction() as session,
    ):
        return await run_retention(session, settings, c.audit, now=c.clock.now(), dry_run=dry_run)
