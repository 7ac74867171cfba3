"""The `custos` command: serve, migrate, demo data, tokens, schema, keys and audit."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from server.config import Settings, load_settings
from server.errors import CustosError

if TYPE_CHECKING:
    from server.imports.service import ImportReport

app = typer.Typer(help="Custos: privacy-first customer management.", no_args_is_help=True)
console = Console(stderr=True)
T = TypeVar("T")

DEFAULT_ROLES = ("admin", "manager", "agent", "support", "analyst", "compliance", "integrator")


def _settings() -> Settings:
    try:
        return load_settings()
    except CustosError as error:
        console.print(f"[red]error:[/red] {error.message}")
        raise typer.Exit(2) from None


def _run(coro: Awaitable[T]) -> T:
    try:
        return asyncio.run(coro)  # type: ignore[arg-type]
    except CustosError as error:
        console.print(f"[red]error:[/red] {error.message} ({error.code})")
        raise typer.Exit(1) from None


def progress_bar() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )


@app.command()
def migrate() -> None:
    """Upgrade the database to the newest schema."""
    from server.data.migrate import upgrade_to_head

    settings = _settings()
    upgrade_to_head(settings.database_url)
    console.print("database is at the newest migration")


async def _seed_demo(settings: Settings, customers: int, seed: int, only_if_empty: bool) -> int:
    from server.authz.authorizer import Authorizer
    from server.customer.repository import CustomerRepository
    from server.data.engine import create_engine, create_session_factory
    from server.demo import DemoBuilder
    from server.vault import LocalKeyring, Vault

    keyring = LocalKeyring.load(settings.keyring, create=settings.env == "dev")
    engine = create_engine(settings.database_url)
    sessions = create_session_factory(engine)
    try:
        async with sessions() as session, session.begin():
            await Authorizer().ensure_seeded(session)
            if only_if_empty and await CustomerRepository(session).any_exist():
                return 0
            builder = DemoBuilder(Vault(keyring), seed=seed)
            with progress_bar() as bar:
                task = bar.add_task("demo customers", total=customers)
                report = await builder.run(
                    session, customers, progress=lambda done: bar.update(task, completed=done)
                )
        console.print(
            f"created {report.customers} customers, {report.orders} orders, "
            f"{report.interactions} interactions, {report.complaints} complaints, "
            f"{report.referrals} referrals, {report.campaigns} campaigns with "
            f"{report.campaign_recipients} recipients"
        )
        return report.customers
    finally:
        await engine.dispose()


@app.command()
def demo(
    customers: Annotated[int, typer.Option(min=1, help="How many customers to create.")] = 1000,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same data.")] = 7,
) -> None:
    """Fill the database with realistic demo data."""
    from server.data.migrate import upgrade_to_head

    settings = _settings()
    upgrade_to_head(settings.database_url)
    _run(_seed_demo(settings, customers, seed, only_if_empty=False))


import_app = typer.Typer(help="Import customers or orders from a .csv or .xlsx file.")
app.add_typer(import_app, name="import")
IMPORT_SYSTEM_SUBJECT = "system:import"


async def _import(
    settings: Settings, kind: str, path: Path, batch_size: int, strict: bool
) -> ImportReport:
    from server.audit.recorder import AuditRecorder
    from server.auth.principal import Principal
    from server.authz.authorizer import Authorizer
    from server.data.engine import create_engine, create_session_factory
    from server.imports.reader import count_rows, open_rows
    from server.services import Services
    from server.vault import LocalKeyring

    keyring = LocalKeyring.load(settings.keyring, create=settings.env == "dev")
    services = Services.build(keyring, settings=settings)
    engine = create_engine(settings.database_url)
    sessions = create_session_factory(engine)
    principal = Principal(subject=IMPORT_SYSTEM_SUBJECT, roles=("system",))
    recorder = AuditRecorder(principal)
    total = count_rows(path)
    try:
        async with sessions() as session, session.begin():
            await Authorizer().ensure_seeded(session)
            with open_rows(path) as (header, rows), progress_bar() as bar:
                task = bar.add_task(f"importing {kind}", total=total)

                def advance(done: int) -> None:
                    bar.update(task, completed=done)

                if kind == "customers":
                    report = await services.imports.import_customers(
                        session,
                        header,
                        rows,
                        audit=recorder,
                        batch_size=batch_size,
                        strict=strict,
                        progress=advance,
                    )
                else:
                    report = await services.imports.import_orders(
                        session,
                        header,
                        rows,
                        audit=recorder,
                        batch_size=batch_size,
                        strict=strict,
                        progress=advance,
                    )
            # One audited CLI action: its event commits in the same transaction as the rows.
            await recorder.commit(
                session,
                operation_type="cli",
                operation_name=f"import {kind}",
                query=None,
                outcome="ok" if not report.rejected else "partial",
            )
        return report
    finally:
        await engine.dispose()


def _import_command(kind: str, path: Path, batch_size: int, strict: bool) -> None:
    from rich.table import Table

    from server.data.migrate import upgrade_to_head

    settings = _settings()
    upgrade_to_head(settings.database_url)
    report = _run(_import(settings, kind, path, batch_size, strict))
    if report.rejected:
        table = Table("row", "reason", title=f"{len(report.rejected)} rejected rows")
        for rejected in report.rejected:
            table.add_row(str(rejected.row), rejected.reason)
        console.print(table)
    if not report.written:
        console.print(f"[red]strict:[/red] {len(report.rejected)} bad rows, nothing was imported")
        raise typer.Exit(1)
    console.print(f"imported {report.accepted} {kind}, rejected {len(report.rejected)} rows")


BatchOption = Annotated[
    int, typer.Option("--batch-size", min=1, max=10_000, help="Rows per all-or-nothing batch.")
]
StrictOption = Annotated[
    bool, typer.Option("--strict", help="Import nothing at all if any row is bad.")
]
FileArgument = Annotated[Path, typer.Argument(help="A .csv or .xlsx file with a header row.")]


@import_app.command("customers")
def import_customers(
    file: FileArgument, batch_size: BatchOption = 500, strict: StrictOption = False
) -> None:
    """Import customer files; bad and duplicate rows are reported and skipped."""
    _import_command("customers", file, batch_size, strict)


@import_app.command("orders")
def import_orders(
    file: FileArgument, batch_size: BatchOption = 500, strict: StrictOption = False
) -> None:
    """Import orders: full rows (customer_ref, product_sku, quantity, date, ...) or the
    minimal analytical format (customer_ref, date, amount)."""
    _import_command("orders", file, batch_size, strict)


@app.command()
def token(
    role: Annotated[list[str], typer.Option("--role", help="Role claim; repeat for several.")],
    subject: Annotated[str, typer.Option("--subject", help="The `sub` claim.")],
    team: Annotated[str | None, typer.Option("--team")] = None,
    ttl: Annotated[int, typer.Option("--ttl", min=60, help="Lifetime in seconds.")] = 3600,
) -> None:
    """Print a signed access token (HS256 with the configured secret)."""
    from server.auth.tokens import issue_token

    settings = _settings()
    unknown = [r for r in role if r not in DEFAULT_ROLES]
    if unknown:
        console.print(
            f"[yellow]note:[/yellow] roles not in the default policy: {', '.join(unknown)}"
        )
    try:
        print(issue_token(settings, subject=subject, roles=list(role), team=team, ttl_seconds=ttl))
    except CustosError as error:
        console.print(f"[red]error:[/red] {error.message}")
        raise typer.Exit(2) from None


@app.command()
def schema() -> None:
    """Print the GraphQL schema (SDL)."""
    from schema.build import print_sdl

    sys.stdout.write(print_sdl())


@app.command()
def serve(
    seed_if_empty: Annotated[
        int, typer.Option(help="Seed this many demo customers when the database is empty.")
    ] = 0,
    reload: Annotated[bool, typer.Option(help="Reload on code changes (dev).")] = False,
) -> None:
    """Migrate (dev), seed demo data if asked and empty, then serve GraphQL over HTTP."""
    import uvicorn

    from server.auth.tokens import issue_token
    from server.data.migrate import upgrade_to_head

    settings = _settings()
    if settings.env == "dev":
        upgrade_to_head(settings.database_url)
    if seed_if_empty:
        _run(_seed_demo(settings, seed_if_empty, seed=7, only_if_empty=True))
    base = f"http://{settings.host}:{settings.port}"
    console.print(
        f"GraphQL endpoint: {base}/graphql"
        + (" (GraphiQL in a browser)" if settings.graphiql else "")
    )
    if settings.env == "dev":
        console.print(
            "Tokens for the default roles, valid 12 hours "
            "(send as 'Authorization: Bearer <token>'):"
        )
        for role in DEFAULT_ROLES:
            subject = "agent-1" if role == "agent" else f"demo-{role}"
            team = "east" if role in ("manager", "agent") else None
            token = issue_token(
                settings, subject=subject, roles=[role], team=team, ttl_seconds=43200
            )
            print(f"{role}: {token}", flush=True)
    uvicorn.run(
        "server.app:app_factory",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers if not reload else 1,
        log_level=settings.log_level,
        reload=reload,
        access_log=False,
    )


keys_app = typer.Typer(help="Key rotation and retirement.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


async def _with_rotation(settings: Settings, batch_size: int, pause: float, run: Any) -> Any:
    from server.clock import Clock
    from server.data.engine import create_engine, create_session_factory
    from server.vault import LocalKeyring, Vault
    from server.vault.rotation import KeyRotationService

    keyring = LocalKeyring.load(settings.keyring, create=settings.env == "dev")
    engine = create_engine(settings.database_url)
    try:
        service = KeyRotationService(
            Vault(keyring),
            create_session_factory(engine),
            Clock(),
            batch_size=batch_size,
            pause_seconds=pause,
        )
        return await run(service)
    finally:
        await engine.dispose()


@keys_app.command("rotate")
def keys_rotate(
    blind_index: Annotated[
        bool, typer.Option("--blind-index", help="Rotate the blind-index key instead of the KEK.")
    ] = False,
    batch_size: Annotated[int, typer.Option(min=1, help="Rows per committed batch.")] = 200,
    pause: Annotated[
        float, typer.Option(min=0.0, help="Seconds to wait between batches (eases load).")
    ] = 0.0,
) -> None:
    """Add a key version and rewrap every DEK (or recompute every blind index) online.

    Resumable: if a run is interrupted, running the command again continues it.
    """
    from server.vault.rotation import BLIND_INDEX, KEK, KeyRotationService, RotationReport

    kind = BLIND_INDEX if blind_index else KEK
    settings = _settings()

    async def run(service: KeyRotationService) -> RotationReport:
        with progress_bar() as bar:
            task = bar.add_task(f"rotating {kind}", total=None)
            return await service.rotate(
                kind, progress=lambda done, total: bar.update(task, completed=done, total=total)
            )

    report: RotationReport = _run(_with_rotation(settings, batch_size, pause, run))
    console.print(
        f"{kind} rotation to version {report.to_version} "
        f"{'resumed and ' if report.resumed else ''}finished: {report.updated} updated, "
        f"{report.skipped} skipped (erased)"
    )


@keys_app.command("retire")
def keys_retire(
    kek: Annotated[int | None, typer.Option("--kek", help="KEK version to retire.")] = None,
    blind_index: Annotated[
        int | None, typer.Option("--blind-index", help="Blind-index key version to retire.")
    ] = None,
) -> None:
    """Remove an old key version; refused while any customer still uses it."""
    from server.vault.rotation import BLIND_INDEX, KEK, KeyRotationService

    if (kek is None) == (blind_index is None):
        console.print("[red]error:[/red] give exactly one of --kek or --blind-index")
        raise typer.Exit(2)
    kind, version = (KEK, kek) if kek is not None else (BLIND_INDEX, blind_index)
    assert version is not None
    settings = _settings()

    async def run(service: KeyRotationService) -> None:
        await service.retire(kind, version)

    _run(_with_rotation(settings, 200, 0.0, run))
    console.print(f"{kind} version {version} retired")


retention_app = typer.Typer(help="Retention of personal data.", no_args_is_help=True)
app.add_typer(retention_app, name="retention")


@retention_app.command("run")
def retention_run(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only count what would be cleared.")
    ] = False,
) -> None:
    """Clear sealed values older than their retention (CUSTOS_RETENTION_*_DAYS)."""
    from server.clock import Clock
    from server.data.engine import create_engine, create_session_factory
    from server.privacy.retention import RetentionOutcome, run_retention

    settings = _settings()

    async def run() -> list[RetentionOutcome]:
        engine = create_engine(settings.database_url)
        try:
            async with create_session_factory(engine)() as session, session.begin():
                return await run_retention(session, settings, now=Clock().now(), dry_run=dry_run)
        finally:
            await engine.dispose()

    outcomes = _run(run())
    if not outcomes:
        console.print("no retention configured (set CUSTOS_RETENTION_*_DAYS)")
    for outcome in outcomes:
        verb = "would clear" if dry_run else "cleared"
        console.print(
            f"{outcome.table} ({', '.join(outcome.columns)}) older than {outcome.days} days: "
            f"{verb} {outcome.rows} rows"
        )


def _register_subcommands() -> None:
    from server.audit.cli import audit_app

    app.add_typer(audit_app, name="audit")


_register_subcommands()


segments_app = typer.Typer(help="Customer segments.", no_args_is_help=True)
app.add_typer(segments_app, name="segments")


async def _refresh_segments(settings: Settings, as_of: date | None) -> tuple[date, int]:
    import getpass

    from server.analytics.service import AnalyticsConfig, AnalyticsService
    from server.auth.principal import Principal
    from server.authz.authorizer import Authorizer
    from server.caller import caller_for
    from server.clock import Clock
    from server.data.engine import create_engine, create_session_factory

    day = as_of or Clock().now().date()
    # The operator acts with the manager role, so the policy and the audit trail apply.
    principal = Principal(subject=f"cli:{getpass.getuser()}", roles=("manager",))
    engine = create_engine(settings.database_url)
    try:
        async with create_session_factory(engine)() as session, session.begin():
            authorizer = Authorizer()
            await authorizer.ensure_seeded(session)
            await authorizer.refresh(session, force=True)
            caller = caller_for(principal, authorizer)
            service = AnalyticsService(AnalyticsConfig.from_settings(settings))
            updated = await service.refresh_segments(session, caller, day)
            await caller.audit.commit(
                session,
                operation_type="command",
                operation_name="segments refresh",
                query=None,
                outcome="ok",
            )
        return day, updated
    finally:
        await engine.dispose()


@segments_app.command("refresh")
def segments_refresh(
    as_of: Annotated[
        datetime | None,
        typer.Option("--as-of", formats=["%Y-%m-%d"], help="Day to segment as of (today)."),
    ] = None,
) -> None:
    """Write tier, lifecycle and need type onto every customer (set-based, audited)."""
    settings = _settings()
    day, updated = _run(_refresh_segments(settings, as_of.date() if as_of else None))
    console.print(f"segments as of {day.isoformat()} written onto {updated} customers")


def main() -> None:
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    app()


if __name__ == "__main__":
    main()
