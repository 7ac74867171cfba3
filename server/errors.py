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
    code = "BAD_USER_INPUT"


class ConflictError(CustosError):
    code = "CONFLICT"


class VaultError(CustosError):
    """A ciphertext that cannot be opened: wrong row, wrong column, shredded key."""

    code = "UNDECRYPTABLE"


class AuditWriteError(CustosError):
    code = "AUDIT_UNAVAILABLE"
