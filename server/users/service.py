"""Accounts (add, disable, enable, reset, list: `user`/`manage`) and console sessions.

A session is a random cookie value of which only the SHA-256 is stored, with a CSRF
token for the forms of that session alone. It ends when its user signs out, after
`CUSTOS_SESSION_IDLE_SECONDS` without use, after `CUSTOS_SESSION_MAX_SECONDS` in any
case, and at once when its account is disabled or its password reset.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from server.auth.principal import CLI_OPERATOR_ROLE, PrincipalKind, subject_name_problem
from server.caller import Caller
from server.clock import Clock
from server.config import Settings
from server.data.base import new_id
from server.data.models.user import User, UserSession
from server.errors import ConflictError, NotFoundError, ValidationError, VaultError
from server.users.passwords import (
    hash_password,
    needs_rehash,
    new_totp_secret,
    totp_uri,
    verify_password,
    verify_totp,
)
from server.users.repository import UserRepository
from server.vault import Vault

MAX_ROLE = 64
MAX_TEAM = 64


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class SignedIn:
    """A new session: the cookie value (shown to the browser once) and its CSRF token."""

    user: User
    token: str
    csrf_token: str
    purpose: str | None


@dataclass(frozen=True, slots=True)
class ActiveSession:
    """A live session as a request finds it."""

    user: User
    token_hash: str
    csrf_token: str
    purpose: str | None

    def csrf_matches(self, presented: str | None) -> bool:
        return presented is not None and hmac.compare_digest(
            presented.encode(), self.csrf_token.encode()
        )


def _check_account(username: str, roles: list[str], team: str | None) -> None:
    problem = subject_name_problem(username)
    if problem is not None:
        raise ValidationError(f"{problem}", code="BAD_USERNAME", field="username")
    if not roles:
        raise ValidationError("an account holds at least one role", field="role")
    for role in roles:
        if role == CLI_OPERATOR_ROLE or subject_name_problem(role) or len(role) > MAX_ROLE:
            raise ValidationError("not a role an account may hold", field="role")
    if team is not None and (subject_name_problem(team) or len(team) > MAX_TEAM):
        raise ValidationError("not a team name", field="team")


def _factor_owner(user: User) -> str:
    # The wrap is bound to the account: a sealed secret copied to another row does not open.
    return f"user:{user.id}"


class SecondFactors:
    """Accounts' TOTP secrets, wrapped under the key-encryption key like a customer's data
    key (and bound to the account's id): neither a dump nor a backup of the database
    alone mints a code, and a KEK rotation rewraps them with the rest."""

    def __init__(self, vault: Vault) -> None:
        self.vault = vault

    async def seal(self, user: User, secret: str | None) -> None:
        """Set the account's secret (None: no second factor)."""
        if secret is None:
            user.totp_sealed = user.totp_kek_version = user.totp_secret = None
            return
        version, wrapped = await self.vault.wrap_secret(_factor_owner(user), secret.encode())
        user.totp_sealed, user.totp_kek_version, user.totp_secret = wrapped, version, None

    async def secret(self, user: User) -> str | None:
        """The account's secret in clear, for checking a code or showing it once."""
        if user.totp_sealed is None or user.totp_kek_version is None:
            return user.totp_secret
        opened = await self.vault.unwrap_secret(
            _factor_owner(user), user.totp_kek_version, user.totp_sealed
        )
        return opened.decode()

    async def reseal(self, user: User) -> bool:
        """Wrap the account's secret under the current KEK (and seal one still in clear);
        False when there was nothing to do."""
        if not user.has_second_factor:
            return False
        if user.totp_secret is None and user.totp_kek_version == self.vault.current_kek_version():
            return False
        await self.seal(user, await self.secret(user))
        return True

    async def uri(self, user: User) -> str | None:
        """The otpauth:// URI to enrol an authenticator with: shown once, on enrolment."""
        secret = await self.secret(user)
        return totp_uri(secret, user.username) if secret is not None else None


class Accounts:
    """People's accounts and their console sessions."""

    def __init__(self, clock: Clock, settings: Settings, vault: Vault) -> None:
        self.clock = clock
        self.settings = settings
        self.second_factors = SecondFactors(vault)

    # --- administration (user/manage) ------------------------------------------------

    async def add(
        self,
        session: AsyncSession,
        caller: Caller,
        *,
        username: str,
        password: str,
        roles: list[str],
        team: str | None = None,
        totp: bool = False,
    ) -> User:
        caller.gate.require("user", "manage")
        _check_account(username, roles, team)
        if caller.principal.kind is not PrincipalKind.CLI_OPERATOR:
            # The host's operator sets up accounts; anyone else grants only what the
            # policy lets them grant, and never to themselves.
            caller.gate.require_grant(roles, to_subject=username)
        repo = UserRepository(session)
        if await repo.by_username(username) is not None:
            raise ConflictError("an account with this username exists", code="USERNAME_TAKEN")
        now = self.clock.now()
        user = User(
            id=new_id(),
            username=username,
            password_hash=hash_password(password),
            roles=list(dict.fromkeys(roles)),
            team=team,
            created_at=now,
            password_changed_at=now,
        )
        await self.second_factors.seal(user, new_totp_secret() if totp else None)
        await repo.add(user)
        caller.audit.change("user", "create", user.id, ("username", "roles", "team"))
        return user

    async def _existing(self, session: AsyncSession, caller: Caller, username: str) -> User:
        caller.gate.require("user", "manage")
        user = await UserRepository(session).by_username(username)
        if user is None:
            raise NotFoundError("no such account", code="NOT_FOUND")
        return user

    async def disable(self, session: AsyncSession, caller: Caller, username: str) -> User:
        user = await self._existing(session, caller, username)
        if user.disabled_at is None:
            user.disabled_at = self.clock.now()
        await UserRepository(session).end_sessions_of(user.id)
        caller.audit.change("user", "update", user.id, ("disabled_at",))
        return user

    async def enable(self, session: AsyncSession, caller: Caller, username: str) -> User:
        user = await self._existing(session, caller, username)
        user.disabled_at = None
        caller.audit.change("user", "update", user.id, ("disabled_at",))
        return user

    async def reset(
        self,
        session: AsyncSession,
        caller: Caller,
        username: str,
        password: str,
        *,
        totp: bool | None = None,
    ) -> User:
        """A new password (and, with `totp`, a new second factor or none); every session
        of the account ends."""
        user = await self._existing(session, caller, username)
        user.password_hash = hash_password(password)
        user.password_changed_at = self.clock.now()
        if totp is not None:
            await self.second_factors.seal(user, new_totp_secret() if totp else None)
        elif user.totp_secret is not None:
            await self.second_factors.reseal(user)
        await UserRepository(session).end_sessions_of(user.id)
        caller.audit.change("user", "update", user.id, ("password_hash", "totp_sealed"))
        return user

    async def list(self, session: AsyncSession, caller: Caller) -> list[User]:
        caller.gate.require("user", "manage")
        return await UserRepository(session).all()

    # --- signing in --------------------------------------------------------------------

    async def sign_in(
        self,
        session: AsyncSession,
        *,
        username: str,
        password: str,
        code: str | None,
        purposes: Mapping[str, str],
    ) -> tuple[SignedIn | None, User | None]:
        """A new session for the account if name, password (and code, when the account
        has a second factor) are right and it is enabled; else None, and the account
        when the name named one (for its audit). The session starts with the purpose
        `purposes` gives the first of the account's roles it names."""
        repo = UserRepository(session)
        user = await repo.by_username(username) if subject_name_problem(username) is None else None
        right = verify_password(user.password_hash if user else None, password)
        if user is None or not right or user.disabled_at is not None:
            return None, user
        if user.has_second_factor:
            try:
                secret = await self.second_factors.secret(user)
            except VaultError:
                # A secret that does not open (copied from another account, or under a
                # retired key) is a failed sign-in, not a crash.
                return None, user
            if secret is None or not verify_totp(secret, code or ""):
                return None, user
            if user.totp_secret is not None:
                # An account from before sealing: its secret is sealed now, cleared in clear.
                await self.second_factors.reseal(user)
        now = self.clock.now()
        if needs_rehash(user.password_hash):
            user.password_hash = hash_password(password)
        user.last_sign_in_at = now
        await repo.end_expired(now)
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        purpose = next((purposes[r] for r in user.roles if r in purposes), None)
        await repo.open_session(
            UserSession(
                token_hash=token_hash(token),
                user_id=user.id,
                csrf_token=csrf,
                purpose=purpose,
                created_at=now,
                expires_at=now + timedelta(seconds=self.settings.session_max_seconds),
                last_seen_at=now,
            )
        )
        return SignedIn(user=user, token=token, csrf_token=csrf, purpose=purpose), user

    async def active(self, session: AsyncSession, token: str | None) -> ActiveSession | None:
        """The live session of this cookie value, or None (unknown, expired, idle too
        long, or its account disabled). A live session's idle clock restarts."""
        if not token or len(token) > 128:
            return None
        repo = UserRepository(session)
        hashed = token_hash(token)
        found = await repo.session_by_hash(hashed)
        if found is None:
            return None
        row, user = found
        now = self.clock.now()
        idle = timedelta(seconds=self.settings.session_idle_seconds)
        if row.expires_at <= now or row.last_seen_at + idle <= now or user.disabled_at:
            await repo.end_session(hashed)
            return None
        await repo.touch_session(hashed, now)
        return ActiveSession(
            user=user, token_hash=hashed, csrf_token=row.csrf_token, purpose=row.purpose
        )

    async def choose_purpose(
        self, session: AsyncSession, active: ActiveSession, purpose: str | None
    ) -> None:
        await UserRepository(session).set_purpose(active.token_hash, purpose)

    async def sign_out(self, session: AsyncSession, active: ActiveSession) -> None:
        await UserRepository(session).end_session(active.token_hash)
