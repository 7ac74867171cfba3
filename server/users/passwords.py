"""Argon2id password hashes (argon2-cffi, RFC 9106 parameters) and TOTP second factors.

A sign-in for an unknown name still verifies a password against a hash, so the answer
takes as long as for a known one: the timing tells nobody which names exist.
"""

from __future__ import annotations

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from server.errors import ValidationError

MIN_PASSWORD = 12
MAX_PASSWORD = 1024
_HASHER = PasswordHasher()  # Argon2id, RFC 9106 low-memory profile
_DECOY = _HASHER.hash("a decoy password that no account has")


def password_problem(password: str) -> str | None:
    """Why `password` cannot be an account's password, or None."""
    if len(password) < MIN_PASSWORD:
        return f"a password has at least {MIN_PASSWORD} characters"
    if len(password) > MAX_PASSWORD:
        return f"a password has at most {MAX_PASSWORD} characters"
    if not password.strip():
        return "a password is not only blanks"
    return None


def hash_password(password: str) -> str:
    problem = password_problem(password)
    if problem is not None:
        raise ValidationError(problem, code="WEAK_PASSWORD", field="password")
    return _HASHER.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    """Whether `password` matches `stored` (None: no such account, checked against a decoy)."""
    if len(password) > MAX_PASSWORD:
        return False
    try:
        return _HASHER.verify(stored or _DECOY, password) and stored is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    return _HASHER.check_needs_rehash(stored)


def new_totp_secret() -> str:
    return pyotp.random_base32()


def totp_uri(secret: str, username: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name="Custos")


def verify_totp(secret: str, code: str) -> bool:
    """A six-digit code of this 30-second step or the one on either side of it."""
    code = code.strip().replace(" ", "")
    return code.isdigit() and len(code) == 6 and pyotp.TOTP(secret).verify(code, valid_window=1)
