"""`custos users add|disable|enable|reset|list`: people's local accounts for the console.

A password is read from a prompt (twice, not echoed) or, with `--password-stdin`, from
the first line of standard input; never from the command line, where `ps` and shell
histories would keep it. The operator acts through the policy (`cli_operator`'s
`user`/`manage` rule) and each command is audited.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from server.cli.console import console
from server.cli.context import open_command, run

if TYPE_CHECKING:
    from server.cli.context import Command
    from server.config import Settings
    from server.data.models.user import User
    from server.users.service import Accounts

app = typer.Typer(help="People's accounts for the console.", no_args_is_help=True)

PasswordStdin = Annotated[
    bool,
    typer.Option("--password-stdin", help="Read the password from the first line of stdin."),
]
Totp = Annotated[
    bool,
    typer.Option("--totp", help="Turn on a TOTP second factor; prints its otpauth:// URI."),
]


def _password(from_stdin: bool) -> str:
    from server.users.passwords import password_problem

    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    problem = password_problem(password)
    if problem is not None:
        raise typer.BadParameter(problem, param_hint="password")
    return password


def _accounts(command: Command) -> Accounts:
    from server.users.service import Accounts

    return Accounts(command.clock, command.settings, command.vault)


def _print_totp(uri: str | None) -> None:
    if uri is not None:
        # Standard output: the one thing a script would capture (into an authenticator).
        print(uri)


@app.command("add")
def users_add(
    username: Annotated[str, typer.Option("--username", help="The name people sign in with.")],
    role: Annotated[list[str], typer.Option("--role", help="A role; repeat for several.")],
    team: Annotated[str | None, typer.Option("--team")] = None,
    password_stdin: PasswordStdin = False,
    totp: Totp = False,
) -> None:
    """Add an account."""
    password = _password(password_stdin)

    async def add() -> tuple[User, str | None]:
        async with open_command("users add") as command, command.transaction() as session:
            caller = await command.caller(session)
            accounts = _accounts(command)
            user = await accounts.add(
                session,
                caller,
                username=username,
                password=password,
                roles=role,
                team=team,
                totp=totp,
            )
            return user, await accounts.second_factors.uri(user)

    user, uri = run(add())
    console.print(f"account {user.username} added ({', '.join(user.roles)})")
    _print_totp(uri)


@app.command("disable")
def users_disable(username: Annotated[str, typer.Option("--username")]) -> None:
    """Disable an account; its sessions end at once."""

    async def disable() -> None:
        async with (
            open_command("users disable") as command,
            command.transaction() as session,
        ):
            caller = await command.caller(session)
            await _accounts(command).disable(session, caller, username)

    run(disable())
    console.print(f"account {username} disabled")


@app.command("enable")
def users_enable(username: Annotated[str, typer.Option("--username")]) -> None:
    """Enable a disabled account again."""

    async def enable() -> None:
        async with (
            open_command("users enable") as command,
            command.transaction() as session,
        ):
            caller = await command.caller(session)
            await _accounts(command).enable(session, caller, username)

    run(enable())
    console.print(f"account {username} enabled")


@app.command("reset")
def users_reset(
    username: Annotated[str, typer.Option("--username")],
    password_stdin: PasswordStdin = False,
    totp: Annotated[
        bool | None,
        typer.Option("--totp/--no-totp", help="A new second factor, or none (default: kept)."),
    ] = None,
) -> None:
    """Set a new password; every session of the account ends."""
    password = _password(password_stdin)

    async def reset() -> str | None:
        async with open_command("users reset") as command, command.transaction() as session:
            caller = await command.caller(session)
            accounts = _accounts(command)
            user = await accounts.reset(session, caller, username, password, totp=totp)
            return await accounts.second_factors.uri(user) if totp else None

    uri = run(reset())
    console.print(f"account {username}: password reset")
    _print_totp(uri)


@app.command("list")
def users_list() -> None:
    """Every account: name, roles, team, second factor, state, last sign-in."""

    async def listing() -> list[User]:
        async with open_command("users list") as command, command.transaction() as session:
            caller = await command.caller(session)
            return await _accounts(command).list(session, caller)

    for user in run(listing()):
        state = "disabled" if user.disabled_at else "active"
        last = user.last_sign_in_at.isoformat(timespec="seconds") if user.last_sign_in_at else "-"
        print(
            "\t".join(
                (
                    user.username,
                    ",".join(user.roles),
                    user.team or "-",
                    "totp" if user.has_second_factor else "-",
                    state,
                    last,
                )
            )
        )


# The dev console's accounts: one per default role, named like the dev tokens' subjects.
DEV_PASSWORD_FILE = "dev-console-password"  # noqa: S105 -- a file name


async def ensure_dev_users(settings: Settings) -> tuple[str, list[str]]:
    """In dev, an enabled account for each default role (added once, audited), all with
    one password kept in the home (mode 600). Answers the password and the usernames."""
    import secrets

    from server.auth.tokens import DEFAULT_ROLES, dev_subject
    from server.config import read_or_create_secret_file
    from server.users.repository import UserRepository

    password = read_or_create_secret_file(
        settings.home / DEV_PASSWORD_FILE, lambda: secrets.token_urlsafe(12)
    ).strip()
    names = []
    async with (
        open_command("users add dev", settings=settings) as command,
        command.transaction() as session,
    ):
        caller = await command.caller(session)
        accounts = _accounts(command)
        repo = UserRepository(session)
        for role in DEFAULT_ROLES:
            subject, team = dev_subject(role)
            names.append(subject)
            if await repo.by_username(subject) is None:
                await accounts.add(
                    session,
                    caller,
                    username=subject,
                    password=password,
                    roles=[role],
                    team=team,
                )
        if not command.audit.mark():
            command.skip_audit()
    return password, names
