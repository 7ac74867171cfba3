"""The `custos` command: serve, migrate, demo data, tokens, schema, keys and audit."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable
from datetime import date, datetime
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from server.config import Settings, load_settings
from server.errors import CustosError

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
    from sqlalchemy import func, select

    from server.authz.authorizer import Authorizer
    from server.data.engine import create_engine, create_session_factory
    from server.data.models import Customer
    from server.demo import DemoBuilder
    from server.vault import LocalKeyring, Vault

    keyring = LocalKeyring.load(settings.keyring, create=settings.env == "dev")
    engine = create_engine(settings.database_url)
    sessions = create_session_factory(engine)
    try:
        async with sessions() as session, session.begin():
            await Authorizer().ensure_seeded(session)
            existing = int(await session.scalar(select(func.count()).select_from(Customer)) or 0)
            if only_if_empty and existing:
                return 0
            builder = DemoBuilder(Vault(keyring), seed=seed)
            with progress_bar() as bar:
                task = bar.add_task("demo customers", total=customers)
                report = await builder.run(
                    session, customers, progress=lambda done: bar.update(task, completed=done)
                )
        console.print(
            f"created {report.customers} customers, {report.orders} orders, "
            f"{report.interactions} interactions, {report.complaints} complaints"
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


segments_app = typer.Typer(help="Customer segments.", no_args_is_help=True)
app.add_typer(segments_app, name="segments")


async def _refresh_segments(settings: Settings, as_of: date | None) -> tuple[date, int]:
    import getpass

    from server.analytics.service import AnalyticsConfig, AnalyticsService
    from server.audit.recorder import AuditRecorder
    from server.auth.principal import Principal
    from server.authz.authorizer import Authorizer
    from server.caller import Caller
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
            caller = Caller(principal, authorizer.decisions(principal), AuditRecorder(principal))
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
