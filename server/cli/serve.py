"""`custos serve`: migrate (dev), seed demo data if asked and empty, serve over HTTP."""

from __future__ import annotations

import os
import shutil
import sys
from contextlib import suppress
from pathlib import Path
from typing import Annotated

import typer

from server.cli.console import console
from server.cli.context import run
from server.cli.demo import seed_demo
from server.config import Settings, load_settings

# In the home, mode 600: `source` it to get $MANAGER_TOKEN and the others.
DEV_TOKENS_FILE = "dev-tokens.env"


def serve(
    seed_if_empty: Annotated[
        int, typer.Option(help="Seed this many demo customers when the database is empty.")
    ] = 0,
    reload: Annotated[bool, typer.Option(help="Reload on code changes (dev).")] = False,
) -> None:
    """Migrate (dev), seed demo data if asked and empty, then serve GraphQL over HTTP."""
    import uvicorn

    from server.data.migrate import upgrade_to_head
    from server.observability import metrics
    from server.observability.logs import uvicorn_log_config

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
    console.print(f"State: {settings.home} (CUSTOS_HOME)")
    _note_old_layout(settings)
    cli = _how_to_run_the_cli()
    if cli:
        console.print(cli)
    if settings.env == "dev":
        _print_dev_tokens(settings)
        _print_dev_users(settings, base)
    # The workers' metric files: one directory, emptied now, named to every worker.
    metrics.prepare_directory(settings.metrics_path)
    if settings.metrics_port is not None:
        _serve_metrics(settings)
    uvicorn.run(
        "server.app:app_factory",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers if not reload else 1,
        log_level=settings.log_level,
        log_config=uvicorn_log_config(json=settings.json_logs, level=settings.log_level),
        reload=reload,
        # One line per request comes from the app (request id, operation, status, cost).
        access_log=False,
        # X-Forwarded-* are read by the app, from CUSTOS_TRUSTED_PROXIES only: uvicorn's
        # own default would believe any local process.
        proxy_headers=False,
        forwarded_allow_ips="",
    )


def _serve_metrics(settings: Settings) -> None:
    """`/metrics` without a token on `CUSTOS_METRICS_PORT`, from this (the supervising)
    process: it reads every worker's metric files, so one listener serves them all."""
    import threading

    import uvicorn

    from server.app import create_metrics_app

    assert settings.metrics_port is not None
    config = uvicorn.Config(
        create_metrics_app(settings),
        host=settings.host,
        port=settings.metrics_port,
        log_level="warning",
        access_log=False,
        proxy_headers=False,
        lifespan="on",
    )
    server = uvicorn.Server(config)
    threading.Thread(target=server.run, name="custos-metrics", daemon=True).start()
    console.print(f"Metrics: http://{settings.host}:{settings.metrics_port}/metrics")


def _short(path: Path) -> str:
    """A path as typed from here: relative below the working directory, else absolute."""
    relative = os.path.relpath(path.absolute())
    return relative if not relative.startswith("..") else str(path.absolute())


def _note_old_layout(settings: Settings) -> None:
    """State used to live in the working directory: say so when such files are here but
    are not the ones in use."""
    here = Path.cwd()
    unused = []
    if (here / ".custos").is_dir() and (here / ".custos").resolve() != settings.home.resolve():
        unused.append(".custos/")
    database = here / "custos.db"
    if database.exists() and not settings.database_url.endswith(str(database.resolve())):
        unused.append("custos.db")
    if unused:
        console.print(
            f"[yellow]note:[/yellow] {' and '.join(unused)} in this directory are not used: "
            f"state lives in {settings.home} (CUSTOS_HOME). To keep using them, move them "
            "there (.custos/* and custos.db*), or set CUSTOS_HOME."
        )


def check_serving_config(settings: Settings) -> None:
    """What every worker needs, checked once up front: a missing keyring or JWT secret
    is one line and exit 2 here, not a traceback from each worker."""
    from server.auth.tokens import TokenVerifier
    from server.vault import LocalKeyring

    LocalKeyring.load(settings.keyring, create=settings.env == "dev")
    TokenVerifier(settings)  # an unreadable key file is a ConfigError naming the variable


def _print_dev_tokens(settings: Settings) -> None:
    """The dev tokens, whole and shell-ready on stdout, and in a file to `source`."""
    from server.auth.tokens import DEFAULT_ROLES, dev_token
    from server.config import read_or_create_secret_file

    lines = [f"export {role.upper()}_TOKEN={dev_token(settings, role)}" for role in DEFAULT_ROLES]
    path = settings.home / DEV_TOKENS_FILE
    with suppress(OSError):
        path.unlink(missing_ok=True)
        read_or_create_secret_file(path, lambda: "\n".join(lines) + "\n")
    console.print(
        "Dev tokens for the default roles, valid 12 hours "
        f"(in your shell: source {path}, or paste a line below):"
    )
    print("\n".join(lines), flush=True)


def _print_dev_users(settings: Settings, base: str) -> None:
    """The console's address and a ready account per default role (dev only)."""
    from server.cli.users import DEV_PASSWORD_FILE, ensure_dev_users

    password, names = run(ensure_dev_users(settings))
    console.print(
        f"Console: {base}/console. Dev accounts, one per default role, password "
        f"{password} (in {settings.home / DEV_PASSWORD_FILE}):"
    )
    print("  " + "  ".join(names), flush=True)


def _how_to_run_the_cli() -> str:
    """Where `custos` is when it is not on PATH (a virtualenv not activated)."""
    program = Path(sys.argv[0])
    if program.name != "custos" or shutil.which("custos") == str(program.absolute()):
        return ""
    activate = program.parent / "activate"
    hint = f" or `source {_short(activate)}`" if activate.exists() else ""
    where = _short(program)
    return f"The CLI from another shell: {where}{hint}; it reads the same state."
