"""`custos segments refresh`: tier, lifecycle and need type onto every customer."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

import typer

from server.cli.console import console
from server.cli.context import open_command, run
from server.clock import Clock
from server.config import Settings, load_settings

app = typer.Typer(help="Customer segments.", no_args_is_help=True)


@app.command("refresh")
def segments_refresh(
    as_of: Annotated[
        datetime | None,
        typer.Option("--as-of", formats=["%Y-%m-%d"], help="Day to segment as of (today)."),
    ] = None,
) -> None:
    """Write tier, lifecycle and need type onto every customer (set-based, audited)."""
    day, updated = run(refresh_segments(load_settings(), as_of.date() if as_of else None))
    console.print(f"segments as of {day.isoformat()} written onto {updated} customers")


async def refresh_segments(
    settings: Settings, as_of: date | None, *, clock: Clock | None = None
) -> tuple[date, int]:
    """The operator refreshes segments through the analytics service, so the policy (the
    `cli_operator` role's `segment`/`manage` rule) and the audit trail apply."""
    async with open_command("segments refresh", settings=settings, clock=clock) as command:
        day = as_of or command.clock.now().date()
        async with command.transaction() as session:
            caller = await command.caller(session)
            updated = await command.services.analytics.refresh_segments(session, caller, day)
        return day, updated
