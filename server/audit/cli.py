"""`custos audit ...`: verify the chain, sign checkpoints, export for SIEM tools, prune.

Long reads (verify, export) run batch by batch in short transactions, so they never hold
SQLite's write lock against the API. Export and prune record their own audit event.
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
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from server.audit.recorder import AuditRecorder, cli_principal, record_cli_action
from server.audit.service import EVENT_FIELDS, AuditService
from server.errors import CustosError

audit_app = typer.Typer(help="The audit trail: verify, checkpoint, export, prune.")


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
async def _open() -> AsyncIterator[tuple[AsyncSession, AuditService]]:
    from server.cli import _settings
    from server.data.engine import create_engine, create_session_factory
    from server.vault import LocalKeyring

    settings = _settings()
    # Never create a keyring here: a fresh key would make every checkpoint look forged.
    keyring = LocalKeyring.load(settings.keyring, create=False)
    service = AuditService.build(keyring)
    service.configure(
        retention_days=settings.audit_retention_days,
        checkpoint_every=settings.audit_checkpoint_every,
    )
    engine = create_engine(settings.database_url, null_pool=True)
    try:
        async with create_session_factory(engine)() as session:
            yield session, service
    except SQLAlchemyError as exc:
        # A message, not a traceback: the database error may quote SQL and parameters.
        raise CustosError(
            f"the database is unavailable ({type(exc).__name__})", code="DATABASE_UNAVAILABLE"
        ) from None
    finally:
        await engine.dispose()


@audit_app.command()
def verify(
    from_checkpoint: Annotated[
        str | None,
        typer.Option(help="Start at the checkpoint with this seq, or 'latest'."),
    ] = None,
    batch_size: Annotated[int, typer.Option(min=10, help="Entries read per batch.")] = 500,
) -> None:
    """Walk the chain; exit 1 naming the first altered, removed or reordered entry."""
    from server.cli import _run, console, progress_bar

    start: int | None = None
    if from_checkpoint is not None:
        if from_checkpoint == "latest":
            start = -1
        elif from_checkpoint.isdigit():
            start = int(from_checkpoint)
        else:
            raise typer.BadParameter("--from-checkpoint is a seq number or 'latest'")

    async def run() -> bool:
        async with _open() as (session, service):
            with progress_bar() as bar:
                task = bar.add_task("verifying audit chain", total=None)
                report = await service.verify(
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
        console.print(
            f"audit chain verifies: {report.checked} entries from {origin} "
            f"through seq {report.last_seq}; {report.checkpoints_checked} signed checkpoints"
        )
        return True

    if not _run(run()):
        raise typer.Exit(1)


@audit_app.command()
def checkpoint() -> None:
    """Sign a checkpoint of the chain tip now."""
    from server.cli import _run, console

    async def run() -> int:
        async with _open() as (session, service), session.begin():
            return await service.checkpoint(session)

    seq = _run(run())
    console.print(f"checkpoint signed at seq {seq}" if seq else "the chain is empty")


@audit_app.command()
def export(
    format: Annotated[ExportFormat, typer.Option("--format", help="jsonl or csv.")] = (
        ExportFormat.jsonl
    ),
    since: Annotated[str | None, typer.Option(help="From this ISO time (inclusive).")] = None,
    until: Annotated[str | None, typer.Option(help="Before this ISO time (exclusive).")] = None,
) -> None:
    """Stream audit events to stdout (JSON Lines or CSV) for SIEM tools."""
    from server.cli import _run

    since_at, until_at = _when(since, "--since"), _when(until, "--until")

    async def run() -> None:
        async with _open() as (session, service):
            # The export is itself recorded, and committed before any line is written.
            recorder = AuditRecorder(cli_principal())
            recorder.read("audit_event", [], {name: "clear" for name in EVENT_FIELDS})
            async with session.begin():
                await record_cli_action(
                    session,
                    f"audit export {format.value} since={since or '-'} until={until or '-'}",
                    recorder=recorder,
                    checkpoints=service.signer,
                )
            out = sys.stdout
            writer = csv.writer(out) if format is ExportFormat.csv else None
            if writer is not None:
                writer.writerow([*EVENT_FIELDS, "accesses"])
            async for record in service.stream(
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

    _run(run())


def _csv_cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    return str(value)


@audit_app.command()
def prune(
    before: Annotated[
        str | None,
        typer.Option(help="Prune events before this ISO time (default: now minus retention)."),
    ] = None,
) -> None:
    """Delete events past retention, after signing a checkpoint at the boundary."""
    from server.cli import _run, console

    cutoff = _when(before, "--before")

    async def run() -> tuple[int | None, int, datetime]:
        async with _open() as (session, service), session.begin():
            at = cutoff or service.retention_cutoff(datetime.now(UTC))
            result = await service.prune(session, cutoff=at)
            await record_cli_action(
                session,
                f"audit prune before {at.isoformat()} through seq {result.boundary_seq or 0}",
                outcome="ok",
                checkpoints=service.signer,
            )
            return result.boundary_seq, result.removed_events, at

    boundary, removed, at = _run(run())
    if boundary is None:
        console.print(f"nothing to prune: no event before {at.isoformat()}")
    else:
        console.print(
            f"pruned {removed} events (through seq {boundary}, before {at.isoformat()}); "
            f"the chain now starts at the signed checkpoint at seq {boundary}"
        )
