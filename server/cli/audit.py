"""`custos audit ...`: verify the chain, sign checkpoints, export for SIEM tools, prune.

Long reads (verify, export) run batch by batch in short transactions, so they never hold
SQLite's write lock against the API. Export and prune record their command's event;
verify and checkpoint read and sign the trail itself and add nothing to it. None of them
creates a keyring: a fresh key would make every checkpoint look forged.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

import orjson
import typer

from server.cli.console import console, progress_bar
from server.cli.context import Command, open_command, run

app = typer.Typer(help="The audit trail: verify, checkpoint, export, prune.")


class ExportFormat(StrEnum):
    jsonl = "jsonl"
    csv = "csv"


def _when(value: str | None, option: str) -> datetime | None:
    """ISO date or date-time; a value without a zone is UTC."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{option} must be an ISO date or date-time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@asynccontextmanager
async def _audit_command(name: str, *, audited: bool) -> AsyncIterator[Command]:
    async with open_command(name, audited=audited, create_keyring=False, null_pool=True) as c:
        yield c


@app.command()
def verify(
    from_checkpoint: Annotated[
        str | None,
        typer.Option(
            help="Start at the checkpoint with this seq, or 'latest' (the whole chain while "
            "no checkpoint is signed)."
        ),
    ] = None,
    batch_size: Annotated[int, typer.Option(min=10, help="Entries read per batch.")] = 500,
) -> None:
    """Walk the chain; exit 1 naming the first altered, removed or reordered entry."""
    start: int | None = None
    if from_checkpoint is not None:
        if from_checkpoint == "latest":
            start = -1
        elif from_checkpoint.isdigit():
            start = int(from_checkpoint)
        else:
            raise typer.BadParameter("--from-checkpoint is a seq number or 'latest'")

    async def walk() -> bool:
        async with (
            _audit_command("audit verify", audited=False) as command,
            command.sessions() as session,
        ):
            with progress_bar() as bar:
                task = bar.add_task("verifying audit chain", total=None)
                report = await command.services.audit.verify(
                    session,
                    from_checkpoint=start,
                    batch_size=batch_size,
                    release_between_batches=True,
                    on_start=lambda total: bar.update(task, total=total),
                    on_progress=lambda n: bar.advance(task, n),
                )
        if report.problem is not None:
            console.print(f"[red]audit chain broken:[/red] {report.problem.describe()}")
            return False
        origin = f"checkpoint seq {report.start_seq}" if report.start_seq else "the genesis"
        if start == -1 and not report.start_seq:
            origin += " (no checkpoint signed yet)"
        console.print(
            f"audit chain verifies: {report.checked} entries from {origin} "
            f"through seq {report.last_seq}; {report.checkpoints_checked} signed checkpoints"
        )
        return True

    if not run(walk()):
        raise typer.Exit(1)


@app.command("query")
def query_of(
    event_id: Annotated[str, typer.Argument(help="The audit event's id.")],
) -> None:
    """Check a query text (on stdin) against an event's keyed query hash; exit 1 if not it."""
    import uuid

    try:
        target = uuid.UUID(event_id)
    except ValueError:
        raise typer.BadParameter("EVENT_ID is not an event id") from None
    text = sys.stdin.read()

    async def check() -> bool | None:
        async with (
            _audit_command("audit query", audited=False) as command,
            command.sessions() as session,
        ):
            return await command.services.audit.query_matches(session, target, text)

    matches = run(check())
    if matches is None:
        console.print(f"[red]no audit event {target}[/red]")
        raise typer.Exit(1)
    if not matches:
        console.print("the text is not the query this event hashed")
        raise typer.Exit(1)
    console.print("the text is the query this event hashed")


@app.command()
def checkpoint() -> None:
    """Sign a checkpoint of the chain tip now."""

    async def sign() -> int:
        async with (
            _audit_command("audit checkpoint", audited=False) as command,
            command.sessions() as session,
            session.begin(),
        ):
            return await command.services.audit.checkpoint(session, at=command.clock.now())

    seq = run(sign())
    console.print(f"checkpoint signed at seq {seq}" if seq else "the chain is empty")


@app.command()
def export(
    format: Annotated[ExportFormat, typer.Option("--format", help="jsonl or csv.")] = (
        ExportFormat.jsonl
    ),
    since: Annotated[str | None, typer.Option(help="From this ISO time (inclusive).")] = None,
    until: Annotated[str | None, typer.Option(help="Before this ISO time (exclusive).")] = None,
) -> None:
    """Stream audit events to stdout (JSON Lines or CSV) for SIEM tools."""
    from server.audit.service import EVENT_FIELDS

    since_at, until_at = _when(since, "--since"), _when(until, "--until")

    async def stream() -> None:
        async with _audit_command("audit export", audited=True) as command:
            command.detail = f"{format.value} since={since or '-'} until={until or '-'}"
            # The export is itself recorded, and committed before any line is written.
            async with command.transaction():
                command.audit.read("audit_event", [], {name: "clear" for name in EVENT_FIELDS})
            out = sys.stdout
            writer = csv.writer(out) if format is ExportFormat.csv else None
            if writer is not None:
                writer.writerow([*EVENT_FIELDS, "accesses"])
            async with command.sessions() as session:
                async for record in command.services.audit.stream(
                    session, since=since_at, until=until_at, release_between_batches=True
                ):
                    if writer is None:
                        out.write(orjson.dumps(record).decode() + "\n")
                    else:
                        writer.writerow(
                            [
                                *(_csv_cell(record[name]) for name in EVENT_FIELDS),
                                orjson.dumps(record["accesses"]).decode(),
                            ]
                        )
            out.flush()

    run(stream())


def _csv_cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    return str(value)


@app.command()
def prune(
    before: Annotated[
        str | None,
        typer.Option(help="Prune events before this ISO time (default: now minus retention)."),
    ] = None,
) -> None:
    """Delete events past retention, after signing a checkpoint at the boundary."""
    cutoff = _when(before, "--before")

    async def drop() -> tuple[int | None, int, datetime]:
        async with _audit_command("audit prune", audited=True) as command:
            service = command.services.audit
            at = cutoff or service.retention_cutoff(command.clock.now())
            async with command.transaction() as session:
                result = await service.prune(session, cutoff=at, at=command.clock.now())
                command.detail = f"before {at.isoformat()} through seq {result.boundary_seq or 0}"
            return result.boundary_seq, result.removed_events, at

    boundary, removed, at = run(drop())
    if boundary is None:
        console.print(f"nothing to prune: no event before {at.isoformat()}")
    else:
        console.print(
            f"pruned {removed} events (through seq {boundary}, before {at.isoformat()}); "
            f"the chain now starts at the signed checkpoint at seq {boundary}"
        )
