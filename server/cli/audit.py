"""`custos audit ...`: verify the ledger, seal it, check proofs, export for SIEM tools, prune.

Long reads (verify, export) run batch by batch in short transactions. Export and prune
record their command's event; verify, seal, status and public-key read or seal the ledger
itself and add nothing to it; verify-proof touches no database at all. None of them
creates a keyring: a fresh key would make every block look forged.
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

app = typer.Typer(help="The audit ledger: verify, seal, status, proofs, export, prune.")


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
    from_block: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Start at this block, trusting nothing before it but its own signature.",
        ),
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Blocks read per batch.")] = 16,
) -> None:
    """Check entries, blocks, their chain and signatures; exit 1 naming the first bad one."""

    async def walk() -> bool:
        async with (
            _audit_command("audit verify", audited=False) as command,
            command.sessions() as session,
        ):
            with progress_bar() as bar:
                task = bar.add_task("verifying the audit ledger", total=None)
                report = await command.services.audit.verify(
                    session,
                    from_block=from_block,
                    batch_size=batch_size,
                    release_between_batches=True,
                    on_start=lambda total: bar.update(task, total=total),
                    on_progress=lambda n: bar.advance(task, n),
                )
            status = await command.services.audit.status(session, command.clock.now())
        if report.problem is not None:
            console.print(f"[red]audit ledger broken:[/red] {report.problem.describe()}")
            return False
        origin = f"block {report.start_block}" if from_block else "the first block"
        console.print(
            f"audit ledger verifies: {report.blocks_checked} signed blocks from {origin} "
            f"through block {report.last_block} (position {report.last_position}), "
            f"{report.checked} sealed entries, {report.unsealed_checked} not sealed yet "
            f"(seal lag {status.lag_seconds:.1f} s)"
        )
        return True

    if not run(walk()):
        raise typer.Exit(1)


@app.command()
def seal() -> None:
    """Seal every committed unsealed entry into signed blocks now (servers do it on their
    own every CUSTOS_AUDIT_SEAL_INTERVAL_SECONDS); waits if another sealer is running."""
    from server.audit.sealer import Sealer

    async def seal_all() -> tuple[int, int, int]:
        async with _audit_command("audit seal", audited=False) as command:
            sealer = Sealer(
                command.services.audit.keys,
                command.clock.now,
                block_size=command.settings.audit_block_size,
            )
            blocks = entries = last = 0
            while True:
                result = await sealer.seal_pending(command.sessions)
                blocks, entries = blocks + result.blocks, entries + result.entries
                last = result.last_block or last
                if not result.blocks:
                    return blocks, entries, last

    blocks, entries, last = run(seal_all())
    if blocks:
        console.print(f"sealed {entries} entries into {blocks} blocks (through block {last})")
    else:
        console.print("nothing to seal")


@app.command()
def status() -> None:
    """How far sealing has come: blocks, last position, unsealed entries and the seal lag."""

    async def read() -> str:
        async with (
            _audit_command("audit status", audited=False) as command,
            command.sessions() as session,
        ):
            s = await command.services.audit.status(session, command.clock.now())
        last = s.sealed_at.isoformat() if s.sealed_at else "never"
        return (
            f"blocks: {s.blocks}\nlast position: {s.last_position}\n"
            f"unsealed entries: {s.unsealed}\nseal lag: {s.lag_seconds:.3f} s\n"
            f"last sealed: {last}"
        )

    console.print(run(read()))


@app.command("public-key")
def public_key(
    version: Annotated[int | None, typer.Option(help="A signing key version.")] = None,
) -> None:
    """Print the Ed25519 public key block heads are signed with (base64), to publish for
    whoever checks proofs."""
    import base64

    async def key() -> tuple[int, bytes]:
        async with _audit_command("audit public-key", audited=False) as command:
            try:
                return command.services.audit.public_key(version)
            except KeyError:
                raise typer.BadParameter("no signing key of that version") from None

    found, raw = run(key())
    console.print(f"{base64.b64encode(raw).decode()} (key version {found})")


@app.command("verify-proof")
def verify_proof(
    file: Annotated[typer.FileText, typer.Argument(help="A proof (JSON) from auditProof.")],
    public_key: Annotated[
        str | None,
        typer.Option(help="The expected public key (base64); without it the proof's own."),
    ] = None,
) -> None:
    """Check an inclusion proof offline: no database, no keyring; exit 1 if it fails."""
    import base64
    import binascii

    from server.audit.proof import check_proof

    pinned = None
    if public_key is not None:
        try:
            pinned = base64.b64decode(public_key, validate=True)
        except binascii.Error:
            raise typer.BadParameter("--public-key is not base64") from None
    try:
        proof = orjson.loads(file.read())
    except orjson.JSONDecodeError:
        console.print("[red]the file is not JSON[/red]")
        raise typer.Exit(1) from None
    problems = check_proof(proof, public_key=pinned)
    if problems:
        for problem in problems:
            console.print(f"[red]proof fails:[/red] {problem}")
        raise typer.Exit(1)
    entry = proof["entry"]
    console.print(
        f"proof holds: entry {entry['id']} is at position {entry['position']} of block "
        f"{entry['block']}, whose head is signed by key {proof['public_key']}"
        + ("" if pinned else " (not compared with a published key: pass --public-key)")
    )


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
    """Delete the entries of blocks sealed before the cutoff, after signing the boundary."""
    cutoff = _when(before, "--before")

    async def drop() -> tuple[int | None, int, datetime]:
        async with _audit_command("audit prune", audited=True) as command:
            service = command.services.audit
            at = cutoff or service.retention_cutoff(command.clock.now())
            async with command.transaction() as session:
                result = await service.prune(session, cutoff=at, at=command.clock.now())
                command.detail = (
                    f"before {at.isoformat()} through block {result.boundary_block or 0}"
                )
            return result.boundary_block, result.removed_events, at

    boundary, removed, at = run(drop())
    if boundary is None:
        console.print(f"nothing to prune: no block sealed before {at.isoformat()}")
    else:
        console.print(
            f"pruned {removed} events (blocks through {boundary}, before {at.isoformat()}); "
            f"their signed block heads stay, with a signed prune boundary at block {boundary}"
        )
