"""The context every `custos` command that touches data runs in.

`open_command` reads the settings and opens the database; the `Command` it yields holds
the keyring, the services and the one CLI principal (the operator: OS user and host),
builds the operator's `Caller`, and records the command's one audit event (operation type
`cli`, outcome `ok` or `error`) in the command's transaction. A long command (demo data,
imports) instead commits in steps, each step's changes with its own event
(`Command.step`), so no committed change is ever without its event and no transaction
grows with the whole run. Commands import the heavy parts (database, services) only when
they run, so `custos --help` stays quick.
"""

from __future__ import annotations

import asyncio
import getpass
import socket
import uuid
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from server.auth.principal import CLI_OPERATOR_ROLE, Principal, PrincipalKind
from server.clock import Clock
from server.config import Settings, load_settings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from server.audit.recorder import AuditRecorder
    from server.caller import Caller
    from server.services import Services
    from server.vault import LocalKeyring, Vault

T = TypeVar("T")
OPERATION_TYPE = "cli"


def operator() -> Principal:
    """The one principal of every `custos` command: the OS user on this host. It holds
    only the `cli_operator` role, whose rules are in policies/policy.csv."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return Principal(
        subject=f"cli:{user}"[:128],
        roles=(CLI_OPERATOR_ROLE,),
        client_addr=socket.gethostname()[:64],
        user_agent="custos-cli",
        kind=PrincipalKind.CLI_OPERATOR,
    )


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a command's coroutine; its failures reach `main`, which picks the exit code."""
    return asyncio.run(coro)


@dataclass(eq=False)
class Command:
    """One run of a command: settings, clock, database, keys and services, the operator,
    and the command's audit event.

    `name` is the command (`import customers`); `detail`, if set, is appended to it in
    the event's operation name (`audit prune before …`). What the command's services
    touch is noted on `audit`; `record` appends it as the one event.
    """

    name: str
    settings: Settings
    clock: Clock
    principal: Principal
    audit: AuditRecorder
    sessions: async_sessionmaker[AsyncSession]
    audited: bool = True
    outcome: str = "ok"
    detail: str | None = None
    event_id: uuid.UUID | None = None
    create_keyring: bool = True
    # Events of the committed steps of a stepped command, in order.
    step_events: list[uuid.UUID] = field(default_factory=list)
    # Whether what is noted on `audit` still awaits its event.
    _pending: bool = field(default=True, repr=False)
    _keyring: LocalKeyring | None = field(default=None, repr=False)
    _services: Services | None = field(default=None, repr=False)

    @property
    def keyring(self) -> LocalKeyring:
        """The keyring; in dev it is created the first time, unless the command may not
        (a fresh signing key would make every audit checkpoint look forged)."""
        if self._keyring is None:
            from server.vault import LocalKeyring

            create = self.create_keyring and self.settings.env == "dev"
            self._keyring = LocalKeyring.load(self.settings.keyring, create=create)
        return self._keyring

    @property
    def services(self) -> Services:
        """The domain services, configured from the settings and reading this clock."""
        if self._services is None:
            from server.services import Services

            self._services = Services.build(self.keyring, clock=self.clock, settings=self.settings)
        return self._services

    @property
    def vault(self) -> Vault:
        return self.services.vault

    async def caller(self, session: AsyncSession) -> Caller:
        """The operator as the caller of domain services: the policy decides on its
        `cli_operator` role, and what the services touch lands on the command's event."""
        from server.caller import caller_for

        authorizer = self.services.authorizer
        await authorizer.ensure_seeded(session)
        await authorizer.refresh(session, force=True)
        return caller_for(self.principal, authorizer, self.audit)

    def skip_audit(self) -> None:
        """The command found nothing to do and touched nothing: no event."""
        self.audited = False

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """The command's transaction: its changes and its audit event commit together,
        or neither does."""
        recorded = False
        async with self.sessions() as session:
            try:
                async with session.begin():
                    yield session
                    if self.audited:
                        await self.record(session)
                        recorded = True
            except BaseException:
                if recorded:
                    # The commit failed: the event was rolled back.
                    self.event_id, self._pending = None, True
                raise

    @asynccontextmanager
    async def step(self, detail: str | None) -> AsyncIterator[AsyncSession]:
        """One committed step of a long command: what the step notes on `audit` and its
        changes commit together with the step's own event (`<name> <detail>`, or the
        plain name for a command done in one step); the next step notes on a fresh
        recorder. A step that fails rolls back alone and the command records an `error`
        event for it; the steps before it stay committed, each with its event."""
        name = f"{self.name} {detail}" if detail else self.name
        try:
            async with self.sessions() as session, session.begin():
                yield session
                event = await self._append(session, name)
        except BaseException:
            self.detail = detail  # the `error` event names the step that failed
            raise
        self._stepped(event)

    async def record_step(self, session: AsyncSession, detail: str) -> uuid.UUID:
        """A step's event inside a transaction the command runs itself (a job that owns
        its transactions, like key rotation); what follows notes on a fresh recorder."""
        event = await self._append(session, f"{self.name} {detail}")
        self._stepped(event)
        return event

    def _stepped(self, event: uuid.UUID) -> None:
        from server.audit.recorder import AuditRecorder

        self.step_events.append(event)
        self.event_id = event
        self.audit = AuditRecorder(self.principal)
        self._pending = True

    async def record(self, session: AsyncSession) -> uuid.UUID:
        """Append the command's one audit event inside `session`'s transaction: the one
        way a `custos` command writes to the audit trail."""
        if not self._pending:
            raise RuntimeError(f"`custos {self.name}` has already recorded its audit event")
        name = f"{self.name} {self.detail}" if self.detail else self.name
        self.event_id = await self._append(session, name)
        self._pending = False
        return self.event_id

    async def _append(self, session: AsyncSession, name: str) -> uuid.UUID:
        return await self.audit.commit(
            session,
            operation_type=OPERATION_TYPE,
            operation_name=name[:128],
            query=None,
            outcome=self.outcome,
            occurred_at=self.clock.now(),
            keys=self.services.audit.keys,
        )

    async def _record_alone(self) -> None:
        async with self.sessions() as session, session.begin():
            await self.record(session)


@asynccontextmanager
async def open_command(
    name: str,
    *,
    settings: Settings | None = None,
    clock: Clock | None = None,
    audited: bool = True,
    create_keyring: bool = True,
    null_pool: bool = False,
) -> AsyncIterator[Command]:
    """Open a command's context; on the way out an audited command has exactly one event
    (a stepped command: one per committed step, and one for a step that failed).

    A command that fails before its event is recorded gets an event with outcome `error`
    (its data changes rolled back, so only what it read is claimed); one that ends
    without recording gets its event then.
    """
    from server.audit.recorder import AuditRecorder
    from server.data.engine import create_engine, create_session_factory

    settings = settings or load_settings()
    principal = operator()
    engine = create_engine(settings.database_url, pool=settings.pool, null_pool=null_pool)
    command = Command(
        name=name,
        settings=settings,
        clock=clock or Clock(),
        principal=principal,
        audit=AuditRecorder(principal),
        sessions=create_session_factory(engine),
        audited=audited,
        create_keyring=create_keyring,
    )
    try:
        try:
            yield command
        except Exception:
            if command.audited and command._pending:
                command.audit.discard_changes()
                command.outcome = "error"
                # The failure itself is what the operator must see, even if the audit
                # trail cannot take the event either (e.g. the database is down).
                with suppress(Exception):
                    await command._record_alone()
            raise
        if command.audited and command.event_id is None:
            await command._record_alone()
    finally:
        await engine.dispose()
