"""`custos serve`: migrate (dev), seed demo data if asked and empty, serve over HTTP."""

from __future__ import annotations

from typing import Annotated

import typer

from server.cli.console import console
from server.cli.context import run
from server.cli.demo import seed_demo
from server.cli.token import DEFAULT_ROLES
from server.config import Settings, load_settings


def serve(
    seed_if_empty: Annotated[
        int, typer.Option(help="Seed this many demo customers when the database is empty.")
    ] = 0,
    reload: Annotated[bool, typer.Option(help="Reload on code changes (dev).")] = False,
) -> None:
    """Migrate (dev), seed demo data if asked and empty, then serve GraphQL over HTTP."""
    import uvicorn

    from server.data.migrate import upgrade_to_head

    settings = load_settings()
    check_serving_config(settings)
    if settings.env == "dev":
        upgrade_to_head(settings.database_url)
    if seed_if_empty:
        run(seed_demo(settings, seed_if_empty, seed=7, only_if_empty=True))
    base = f"http://{settings.host}:{settings.port}"
    console.print(
        f"GraphQL endpoint: {base}/graphql"
        + (" (GraphiQL in a browser)" if settings.graphiql else "")
    )
    if settings.env == "dev":
        _print_dev_tokens(settings)
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


def check_serving_config(settings: Settings) -> None:
    """What every worker needs, checked once up front: a missing keyring or JWT secret
    is one line and exit 2 here, not a traceback from each worker."""
    from server.auth.tokens import TokenVerifier
    from server.vault import LocalKeyring

    LocalKeyring.load(settings.keyring, create=settings.env == "dev")
    TokenVerifier(settings)  # an unreadable key file is a ConfigError naming the variable


def _print_dev_tokens(settings: Settings) -> None:
    from server.auth.tokens import issue_token

    console.print(
        "Tokens for the default roles, valid 12 hours (send as 'Authorization: Bearer <token>'):"
    )
    for role in DEFAULT_ROLES:
        subject = "agent-1" if role == "agent" else f"demo-{role}"
        team = "east" if role in ("manager", "agent") else None
        token = issue_token(settings, subject=subject, roles=[role], team=team, ttl_seconds=43200)
        print(f"{role}: {token}", flush=True)
