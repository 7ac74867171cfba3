"""`custos import customers|orders FILE`: spreadsheets validated row by row, reported."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from server.cli.console import console, progress_bar
from server.cli.context import open_command, run
from server.clock import Clock
from server.config import Settings, load_settings

if TYPE_CHECKING:
    from server.imports.service import ImportReport

app = typer.Typer(help="Import customers or orders from a .csv or .xlsx file.")

# Rows per committed step of a non-strict import (rounded to whole batches).
COMMIT_EVERY = 2000

BatchOption = Annotated[
    int, typer.Option("--batch-size", min=1, max=10_000, help="Rows per all-or-nothing batch.")
]
StrictOption = Annotated[
    bool, typer.Option("--strict", help="Import nothing at all if any row is bad.")
]
FileArgument = Annotated[Path, typer.Argument(help="A .csv or .xlsx file with a header row.")]


@app.command("customers")
def import_customers(
    file: FileArgument, batch_size: BatchOption = 500, strict: StrictOption = False
) -> None:
    """Import customer files; bad and duplicate rows are reported and skipped."""
    _import_command("customers", file, batch_size, strict)


@app.command("orders")
def import_orders(
    file: FileArgument, batch_size: BatchOption = 500, strict: StrictOption = False
) -> None:
    """Import orders: full rows (customer_ref, product_sku, quantity, date, ...) or the
    minimal analytical format (customer_ref, date, amount)."""
    _import_command("orders", file, batch_size, strict)


def _import_command(kind: str, path: Path, batch_size: int, strict: bool) -> None:
    from rich.table import Table

    from server.data.migrate import upgrade_to_head

    settings = load_settings()
    upgrade_to_head(settings.database_url)
    report = run(import_file(settings, kind, path, batch_size, strict))
    if report.rejected:
        table = Table("row", "reason", title=f"{len(report.rejected)} rejected rows")
        for rejected in report.rejected:
            table.add_row(str(rejected.row), rejected.reason)
        console.print(table)
    if not report.written:
        console.print(f"[red]strict:[/red] {len(report.rejected)} bad rows, nothing was imported")
        raise typer.Exit(1)
    console.print(f"imported {report.accepted} {kind}, rejected {len(report.rejected)} rows")


async def import_file(
    settings: Settings,
    kind: str,
    path: Path,
    batch_size: int,
    strict: bool,
    *,
    clock: Clock | None = None,
    commit_every: int = COMMIT_EVERY,
) -> ImportReport:
    """Import one file. Batches of `batch_size` rows land whole or not at all; they are
    committed together about every `commit_every` rows, each commit with its own audit
    event (`import customers rows 2-2001`; a file done in one commit has one event named
    `import customers`). A strict import is one transaction with one event, outcome
    `error` if it refused the file."""
    from server.imports.reader import count_rows, open_rows
    from server.imports.service import OPERATOR_RULE, batches

    async with open_command(f"import {kind}", settings=settings, clock=clock) as command:
        imports = command.services.imports
        total = count_rows(path)
        with open_rows(path) as (header, rows), progress_bar() as bar:
            # The operator imports through the policy, as an API uploader does: customers
            # land within its customer/create scope. It holds the keyring and the
            # database, so every existing contact may refuse a row (OPERATOR_RULE).
            async with command.sessions() as session, session.begin():
                caller = await command.caller(session)
            job = imports.start_by(caller, kind, header, duplicates=OPERATOR_RULE)
            task = bar.add_task(f"importing {kind}", total=total)
            if strict:
                async with command.transaction() as session:
                    report = await imports.land_all(
                        session,
                        job,
                        rows,
                        audit=command.audit,
                        batch_size=batch_size,
                        strict=True,
                        progress=lambda done: bar.update(task, completed=done),
                    )
                    command.outcome = "ok" if report.written else "error"
                return report
            per_commit = max(1, commit_every // batch_size) * batch_size
            one_commit = total is not None and total <= per_commit
            for group in batches(rows, per_commit):
                detail = None if one_commit else f"rows {group[0].number}-{group[-1].number}"
                async with command.step(detail) as session:
                    for chunk in batches(iter(group), batch_size):
                        await imports.land(session, job, chunk, command.audit)
                        bar.update(task, completed=job.report.seen)
            return job.report
