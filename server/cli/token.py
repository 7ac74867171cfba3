"""`custos token`: a signed access token for dev and tests."""

from __future__ import annotations

from typing import Annotated

import typer

from server.auth.principal import CLI_OPERATOR_ROLE, subject_name_problem
from server.auth.tokens import DEFAULT_ROLES
from server.cli.console import console
from server.config import load_settings


def token(
    role: Annotated[list[str], typer.Option("--role", help="Role claim; repeat for several.")],
    subject: Annotated[str, typer.Option("--subject", help="The `sub` claim.")],
    team: Annotated[str | None, typer.Option("--team")] = None,
    ttl: Annotated[int, typer.Option("--ttl", min=60, help="Lifetime in seconds.")] = 3600,
) -> None:
    """Print a signed access token (HS256 with the configured secret) on one line.

    For a shell: export MANAGER_TOKEN=$(custos token --role manager --subject m1 --team east)
    """
    from server.auth.tokens import issue_token

    problem = subject_name_problem(subject)
    if problem is not None:
        # Exit 2 like any bad option: a token names a person, never another kind of
        # principal (`apikey:…`, `cli:…`) and nothing a server would refuse.
        raise typer.BadParameter(
            f"{problem}; a subject is 1-128 visible characters without spaces, : or ,",
            param_hint="--subject",
        )
    if CLI_OPERATOR_ROLE in role:
        raise typer.BadParameter(
            f"{CLI_OPERATOR_ROLE} is the CLI operator's role; a token gets nothing from it",
            param_hint="--role",
        )
    settings = load_settings()
    if ttl > settings.max_token_lifetime_seconds:
        raise typer.BadParameter(
            f"at most {settings.max_token_lifetime_seconds} seconds "
            "(CUSTOS_MAX_TOKEN_LIFETIME_SECONDS); a longer token would be refused",
            param_hint="--ttl",
        )
    unknown = [r for r in role if r not in DEFAULT_ROLES]
    if unknown:
        console.print(
            f"[yellow]note:[/yellow] roles not in the default policy: {', '.join(unknown)}"
        )
    print(issue_token(settings, subject=subject, roles=list(role), team=team, ttl_seconds=ttl))
