"""The `custos` command: one module per command group, every data command run through
`server.cli.context`.

Exit codes: 0 success; 1 an operational failure (a refused operation, a broken audit
chain, an unavailable database); 2 a usage or configuration error (a bad option, a bad
`CUSTOS_*` variable, a missing keyring or JWT secret in prod). A failure is one line on
stderr naming the problem, never a traceback.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

import typer

from server.cli import (
    audit,
    demo,
    documents,
    imports,
    keys,
    migrate,
    retention,
    schema,
    segments,
    serve,
    users,
)
from server.cli import token as token_command
from server.cli.console import console, error_line
from server.errors import ConfigError, CustosError

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2

app = typer.Typer(
    help="Custos: privacy-first customer management.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.command()(migrate.migrate)
app.command()(demo.demo)
app.add_typer(imports.app, name="import")
app.command()(token_command.token)
app.command()(schema.schema)
app.command()(serve.serve)
app.add_typer(keys.app, name="keys")
app.add_typer(retention.app, name="retention")
app.add_typer(audit.app, name="audit")
app.add_typer(segments.app, name="segments")
app.add_typer(documents.app, name="documents")
app.add_typer(users.app, name="users")


def invoke(args: Sequence[str] | None = None) -> int:
    """Run `custos` with these arguments and return its exit code."""
    command = typer.main.get_command(app)
    try:
        result = command.main(
            args=list(args) if args is not None else None, prog_name="custos", standalone_mode=False
        )
    except typer.Abort:
        return 130
    except ConfigError as error:
        error_line(error.message)
        return EXIT_USAGE
    except CustosError as error:
        error_line(f"{error.message} ({error.code})")
        return EXIT_FAILURE
    except Exception as error:  # every failure becomes one line and an exit code
        usage = _usage_error(error)
        if usage is not None:
            return usage
        error_line(describe_failure(error))
        return EXIT_FAILURE
    return result if isinstance(result, int) else EXIT_OK


def _usage_error(error: Exception) -> int | None:
    """A bad command line (click's exceptions, which typer may vendor): one line naming
    the problem, or the help when a group was called without a command."""
    code, describe = getattr(error, "exit_code", None), getattr(error, "format_message", None)
    if not isinstance(code, int) or describe is None:
        return None
    message = str(describe())
    if not message.strip() or "\n" in message:
        # The help, for a group called without a command (rich has printed it already).
        if message.strip():
            console.print(message, markup=False, highlight=False)
        return code
    ctx = getattr(error, "ctx", None)
    path = getattr(ctx, "command_path", None)
    error_line(message + (f" (see '{path} --help')" if path else ""))
    return code


def describe_failure(error: Exception) -> str:
    """A line for an unexpected failure: what kind and where, never the exception's
    message (a database error may quote SQL and its parameters)."""
    from sqlalchemy.exc import SQLAlchemyError

    from server.graphql_http import describe_unexpected

    if isinstance(error, SQLAlchemyError | ConnectionError | TimeoutError):
        return f"the database is unavailable ({type(error).__name__})"
    if isinstance(error, OSError) and error.filename is not None:
        return f"{error.strerror or type(error).__name__}: {error.filename}"
    return f"unexpected failure: {describe_unexpected(error)}"


def main() -> None:
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(invoke())
