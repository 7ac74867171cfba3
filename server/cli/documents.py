"""`custos documents add|list`: the trusted documents (README "Persisted documents")."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from server.cli.console import console
from server.cli.context import open_command, run
from server.config import Settings, load_settings

app = typer.Typer(help="Trusted GraphQL documents.", no_args_is_help=True)


@app.command("add")
def documents_add(
    files: Annotated[
        list[Path],
        typer.Argument(
            help="Manifests (.json: {hash: document}, Apollo's manifest, or a list) or "
            "GraphQL files (one document each).",
            exists=True,
            dir_okay=False,
            readable=True,
        ),
    ],
) -> None:
    """Register documents: with CUSTOS_TRUSTED_DOCUMENTS=true only registered ones run."""
    added, known = run(add_documents(load_settings(), files))
    console.print(f"{added} documents registered ({known} were already)")


@app.command("list")
def documents_list() -> None:
    """The registered documents: SHA-256, operation name, when registered."""
    for digest, name, at in run(list_documents(load_settings())):
        print(f"{digest}\t{name or '-'}\t{at.isoformat(timespec='seconds')}")


async def add_documents(settings: Settings, files: list[Path]) -> tuple[int, int]:
    from server.documents import service
    from server.documents.manifest import documents_of

    documents: dict[str, str] = {}
    for path in files:
        documents.update(documents_of(path))
    async with (
        open_command("documents add", settings=settings) as command,
        command.transaction() as session,
    ):
        caller = await command.caller(session)
        return await service.register(session, caller, documents, at=command.clock.now())


async def list_documents(settings: Settings) -> list[tuple[str, str | None, datetime]]:
    from server.documents import service

    async with (
        open_command("documents list", settings=settings) as command,
        command.transaction() as session,
    ):
        caller = await command.caller(session)
        return list(await service.listed(session, caller))
