"""`custos import customers|orders|products FILE`: spreadsheets as businesses keep them,
their headers matched to import columns, validated row by row, reported.

Exit codes: 0 when every row landed (or matched what a re-import finds there), 1 when any
row was rejected (the others landed, unless `--strict`) or the file was refused, 2 for a
bad option (an unknown mapping target, a mapping file that cannot be read).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from server.cli.console import console, progress_bar
from server.cli.context import open_command, run
from server.clock import Clock
from server.config import Settings, load_settings
from server.errors import ValidationError

if TYPE_CHECKING:
    from server.imports.service import ImportReport

app = typer.Typer(help="Import customers, orders or products from a .csv or .xlsx file.")

# Rows per committed step of a non-strict import (rounded to whole batches).
COMMIT_EVERY = 2000

BatchOption = Annotated[
    int, typer.Option("--batch-size", min=1, max=10_000, help="Rows per all-or-nothing batch.")
]
StrictOption = Annotated[
    bool, typer.Option("--strict", help="Import nothing at all if any row is bad.")
]
DryRunOption = Annotated[
    bool,
    typer.Option("--dry-run", help="Check every row and report; write nothing."),
]
MapOption = Annotated[
    list[str] | None,
    typer.Option(
        "--map",
        help="'SHEET COLUMN=import_column' (repeatable; '=ignore' drops a column).",
    ),
]
MappingFileOption = Annotated[
    Path | None,
    typer.Option("--mapping", help="A file of 'SHEET COLUMN=import_column' lines."),
]
OwnerOption = Annotated[
    list[str] | None,
    typer.Option(
        "--owner",
        help="'NAME IN THE SHEET=login' or '=login@team' (repeatable): who owns the files.",
    ),
]
OwnersFileOption = Annotated[
    Path | None,
    typer.Option("--owners", help="A file of 'NAME IN THE SHEET=login[@team]' lines."),
]
FileArgument = Annotated[Path, typer.Argument(help="A .csv or .xlsx file with a header row.")]


@dataclass(frozen=True)
class ImportOptions:
    """How a sheet is read: column mapping, owners, and what the run may do."""

    batch_size: int = 500
    strict: bool = False
    dry_run: bool = False
    mapping: tuple[str, ...] = ()
    owners: tuple[str, ...] = ()
    create_customers: bool = False


@app.command("customers")
def import_customers(
    file: FileArgument,
    batch_size: BatchOption = 500,
    strict: StrictOption = False,
    dry_run: DryRunOption = False,
    map_: MapOption = None,
    mapping: MappingFileOption = None,
    owner: OwnerOption = None,
    owners: OwnersFileOption = None,
) -> None:
    """Import customer files (Chinese or English headers); bad and duplicate rows are
    reported and skipped; files already there (same customer number) get what the row
    changes, rows that change nothing are left alone."""
    options = ImportOptions(
        batch_size=batch_size,
        strict=strict,
        dry_run=dry_run,
        mapping=_entries(map_, mapping, "--mapping"),
        owners=_entries(owner, owners, "--owners"),
    )
    _import_command("customers", file, options)


@app.command("orders")
def import_orders(
    file: FileArgument,
    batch_size: BatchOption = 500,
    strict: StrictOption = False,
    dry_run: DryRunOption = False,
    map_: MapOption = None,
    mapping: MappingFileOption = None,
    create_customers: Annotated[
        bool,
        typer.Option(
            "--create-customers",
            help="Create a customer for each customer number no file has yet.",
        ),
    ] = False,
) -> None:
    """Import orders: lines (customer_ref, product_sku, quantity, date, order_ref, ...;
    the lines of one order_ref make one order) or the minimal analytical format
    (customer_ref, date, amount). Orders already imported are left alone."""
    options = ImportOptions(
        batch_size=batch_size,
        strict=strict,
        dry_run=dry_run,
        mapping=_entries(map_, mapping, "--mapping"),
        create_customers=create_customers,
    )
    _import_command("orders", file, options)


@app.command("products")
def import_products(
    file: FileArgument,
    batch_size: BatchOption = 500,
    strict: StrictOption = False,
    dry_run: DryRunOption = False,
    map_: MapOption = None,
    mapping: MappingFileOption = None,
) -> None:
    """Import the product catalogue by SKU: new SKUs are added, known ones updated
    (`active` no deactivates a product)."""
    options = ImportOptions(
        batch_size=batch_size,
        strict=strict,
        dry_run=dry_run,
        mapping=_entries(map_, mapping, "--mapping"),
    )
    _import_command("products", file, options)


def _entries(given: list[str] | None, path: Path | None, option: str) -> tuple[str, ...]:
    """Entries given as options and the lines of a file, in that order."""
    entries = list(given or ())
    if path is not None:
        try:
            entries += path.read_text(encoding="utf-8-sig").splitlines()
        except (OSError, UnicodeDecodeError):
            raise typer.BadParameter("cannot be read as UTF-8 text", param_hint=option) from None
    return tuple(entries)


def _import_command(kind: str, path: Path, options: ImportOptions) -> None:
    from rich.table import Table

    from server.data.migrate import upgrade_to_head
    from server.imports.columns import parse_mapping, parse_owner_entries

    try:
        parse_mapping(options.mapping, kind)
        parse_owner_entries(options.owners)
    except ValidationError as error:
        raise typer.BadParameter(error.message, param_hint="--map/--owner") from None
    settings = load_settings()
    upgrade_to_head(settings.database_url)
    report = run(import_file(settings, kind, path, options=options))
    if report.ignored_columns:
        console.print(
            f"ignored columns (no import column takes them): {', '.join(report.ignored_columns)}",
            markup=False,
        )
    if report.rejected:
        table = Table("row", "reason", title=f"{len(report.rejected)} rejected rows")
        for rejected in report.rejected:
            table.add_row(str(rejected.row), rejected.reason)
        console.print(table)
    if report.unchecked:
        rows = ", ".join(str(n) for n in report.unchecked[:20])
        more = " …" if len(report.unchecked) > 20 else ""
        console.print(
            f"possible duplicates: {len(report.unchecked)} rows have no phone, email, "
            f"national ID or customer number to check them by (rows {rows}{more})"
        )
    console.print(_summary(kind, report))
    if report.rejected or (not report.written and not report.dry_run):
        raise typer.Exit(1)


def _summary(kind: str, report: ImportReport) -> str:
    if report.dry_run:
        head = f"dry run, nothing written: would import {report.accepted} rows"
    elif not report.written:
        return f"strict: {len(report.rejected)} bad rows, nothing was imported"
    else:
        head = f"imported {report.accepted} {kind} rows"
    parts = [head]
    if kind == "orders":
        parts.append(f"{len(report.created_ids)} orders")
    if report.created_customers:
        parts.append(f"{report.created_customers} new customers")
    if report.updated:
        parts.append(f"{report.updated} {'products' if kind == 'products' else 'files'} updated")
    parts.append(f"{report.existing} already there")
    parts.append(f"rejected {len(report.rejected)} rows")
    return ", ".join(parts)


async def import_file(
    settings: Settings,
    kind: str,
    path: Path,
    batch_size: int = 500,
    strict: bool = False,
    *,
    options: ImportOptions | None = None,
    clock: Clock | None = None,
    commit_every: int = COMMIT_EVERY,
) -> ImportReport:
    """Import one file. Batches of `batch_size` rows land whole or not at all; they are
    committed together about every `commit_every` rows, each commit with its own audit
    event (`import customers rows 2-2001`; a file done in one commit has one event named
    `import customers`). A strict import is one transaction with one event, outcome
    `error` if it refused the file; a dry run is one transaction rolled back, its event
    (`import customers dry run`) holding only the lookups it made."""
    from server.imports.columns import parse_mapping, parse_owner_entries
    from server.imports.reader import count_rows, open_rows
    from server.imports.service import OPERATOR_RULE, batches, order_batches

    options = options or ImportOptions(batch_size=batch_size, strict=strict)
    mapping = parse_mapping(options.mapping, kind)
    owner_names, owner_logins = parse_owner_entries(options.owners)
    name = f"import {kind}" + (" dry run" if options.dry_run else "")
    split = order_batches if kind == "orders" else batches
    async with open_command(name, settings=settings, clock=clock) as command:
        imports = command.services.imports
        total = count_rows(path)
        with open_rows(path) as (header, sheet), progress_bar() as bar:
            # The operator imports through the policy, as an API uploader does: customers
            # land within its customer/create scope. It holds the keyring and the
            # database, so every existing contact may refuse a row (OPERATOR_RULE).
            async with command.sessions() as session, session.begin():
                caller = await command.caller(session)
            job = imports.start_by(
                caller,
                kind,
                header,
                duplicates=OPERATOR_RULE,
                mapping=mapping,
                create_customers=options.create_customers,
                owners=owner_names,
                owner_logins=owner_logins,
            )
            rows = job.source_rows(sheet)
            task = bar.add_task(f"importing {kind}", total=total)
            if options.strict or options.dry_run:
                async with command.transaction() as session:
                    report = await imports.land_all(
                        session,
                        job,
                        rows,
                        audit=command.audit,
                        batch_size=options.batch_size,
                        strict=options.strict,
                        dry_run=options.dry_run,
                        progress=lambda done: bar.update(task, completed=done),
                    )
                    command.outcome = "ok" if report.written or report.dry_run else "error"
                if report.written and report.accepted and not report.dry_run:
                    async with command.sessions() as session, session.begin():
                        await imports.refresh_statistics(session)
                return report
            per_commit = max(1, commit_every // options.batch_size) * options.batch_size
            one_commit = total is not None and total <= per_commit
            for group in split(rows, per_commit):
                detail = None if one_commit else f"rows {group[0].number}-{group[-1].number}"
                async with command.step(detail) as session:
                    for chunk in split(iter(group), options.batch_size):
                        await imports.land(session, job, chunk, command.audit)
                        bar.update(task, completed=job.report.seen)
            if job.report.accepted:
                async with command.sessions() as session, session.begin():
                    await imports.refresh_statistics(session)
            return job.report
