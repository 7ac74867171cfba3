"""Domain errors: a stable code and a message safe to show a client.

Messages never carry a personal value, a key, a SQL string or a stack trace; one
handler in the GraphQL layer renders them into `extensions.code`.
"""

from __future__ import annotations


class CustosError(Exception):
    """An expected failure with a stable machine-readable code."""

    code = "INTERNAL"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class ConfigError(CustosError):
    code = "CONFIG_INVALID"


class AuthenticationError(CustosError):
    code = "UNAUTHENTICATED"


class NotFoundError(CustosError):
    code = "NOT_FOUND"


class ForbiddenError(CustosError):
    code = "FORBIDDEN"


class ValidationError(CustosError):
    """Bad input. `field` names the input field concerned by its domain (snake_case)
    name, or a dotted path into a list (`items.0.quantity`); None when the error is
    about the input as a whole."""

    code = "BAD_USER_INPUT"

    def __init__(self, message: str, *, code: str | None = None, field: str | None = None) -> None:
        super().__init__(message, code=code)
        self.field = field


class ConflictError(CustosError):
    code = "CONFLICT"


# The failures a caller can act on: bad input, a conflict with the current state, an
# unknown or out-of-scope record. A mutation answers them with a `UserError` result
# (after rolling its savepoint back); every other error reaches the edge as a GraphQL
# error, FORBIDDEN at the field's path and anything unexpected rolling the request back.
EXPECTED_ERRORS: tuple[type[CustosError], ...] = (ValidationError, ConflictError, NotFoundError)


class VaultError(CustosError):
    """A ciphertext that cannot be opened: wrong row, wrong column, shredded key."""

    code = "UNDECRYPTABLE"


class AuditWriteError(CustosError):
    code = "AUDIT_UNAVAILABLE"


class RequestTimeout(CustosError):
    """The operation ran past the request deadline and was cancelled: nothing changed."""

    code = "REQUEST_TIMEOUT"


class DatabaseBusy(CustosError):
    """The database is up but could not take this request in time (write lock held by
    others, every pooled connection in use). Answered 503 with `Retry-After`."""

    code = "DATABASE_BUSY"

    def __init__(
        self, message: str = "the database is busy; nothing was done, retry shortly"
    ) -> None:
        super().__init__(message)
