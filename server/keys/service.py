"""Online, resumable key rotation: rewrap every DEK under a new KEK version, or recompute
every blind index (the customers' contact columns and name tokens, and their contact
points') under a new blind-index key version. A service above the vault: it uses
the vault's keys and repository and records each rotation and retirement in the audit.

A rotation is a background job, not a request: it owns its transactions and commits one
short batch at a time, recording its cursor in `key_rotations` in the same transaction
as the batch. Killed half-way, the next run finds the unfinished row and carries on from
the cursor; nothing is done twice wrongly (each row update is a compare-and-set) and
nothing is lost. Servers keep working throughout: every kept key version still opens,
and lookups match each row under the blind-index version it was written with.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.audit.recorder import JobAudit
from server.clock import Clock
from server.data.models import CustomerNameToken
from server.errors import ConflictError, ValidationError, VaultError
from server.users.repository import UserRepository
from server.users.service import SecondFactors
from server.vault.normalise import CUSTOMER_NORMALISERS
from server.vault.repository import CONTACT_COLUMNS, KeyRepository
from server.vault.vault import FieldRef, Vault

KEK = "kek"
CONTACT_POINTS = "customer_contact_points"
BLIND_INDEX = "blind_index"
KINDS = (KEK, BLIND_INDEX)

Progress = Callable[[int, int], None]


@dataclass
class RotationReport:
    kind: str
    to_version: int
    resumed: bool
    updated: int = 0
    skipped: int = 0
    batches: int = 0
    finished: bool = False


class KeyRotationService:
    def __init__(
        self,
        vault: Vault,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        *,
        batch_size: int = 200,
        pause_seconds: float = 0.0,
        propagation_seconds: float = 2.0,
        audit: JobAudit | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValidationError("batch size must be at least 1")
        self.vault = vault
        self.sessions = sessions
        self.clock = clock
        self.batch_size = batch_size
        self.pause_seconds = pause_seconds
        # Running servers re-read the key provider at least once a second; a new version
        # is used for rows only after they all know it, so lookups never miss a row.
        self.propagation_seconds = propagation_seconds
        # The command's audit: a finished rotation or a retirement is its one event,
        # appended in the transaction that finishes the job.
        self.audit = audit

    async def rotate(
        self,
        kind: str,
        *,
        progress: Progress | None = None,
        stop_after_batches: int | None = None,
    ) -> RotationReport:
        """Start a rotation of `kind`, or resume the unfinished one, and run it to the end.

        `stop_after_batches` ends the run early (as a crash would, minus the crash);
        the rotation stays unfinished and the next call resumes it.
        """
        if kind not in KINDS:
            raise ValidationError("key kind is kek or blind_index")
        async with self.sessions() as session, session.begin():
            repo = KeyRepository(session)
            rotation = await repo.unfinished_rotation(kind)
            resumed = rotation is not None
            if rotation is None:
                keys = self.vault.keys
                previous = (
                    keys.current_kek_version()
                    if kind == KEK
                    else keys.current_blind_index_version()
                )
                to_version = keys.add_version(kind)
                rotation = await repo.start_rotation(kind, previous, to_version, self.clock.now())
                # Audited as it starts, with the row that starts it: a run killed before
                # the end has already left its event (keys are rewrapped from the next
                # batch on), and the finished rotation gets its own.
                await self._record(session, "rotate_start", f"{kind}:{to_version}", "started")
            rotation_id, to_version = rotation.id, rotation.to_version
            cursor, passes = rotation.cursor, int((rotation.detail or {}).get("passes", 0))
            total = await (
                repo.count_keys_not_at(to_version)
                if kind == KEK
                else repo.count_indexed_not_at(to_version)
            )
        report = RotationReport(kind, to_version, resumed)
        if not resumed and self.propagation_seconds:
            await asyncio.sleep(self.propagation_seconds)
        step = self._rewrap_batch if kind == KEK else self._reindex_batch
        while True:
            if stop_after_batches is not None and report.batches >= stop_after_batches:
                return report
            async with self.sessions() as session, session.begin():
                repo = KeyRepository(session)
                last, updated, skipped = await step(repo, to_version, cursor)
                if last is None:
                    # End of the table. Rows written meanwhile by a server still on the old
                    # version (or behind the cursor) need one more pass.
                    remaining = await (
                        repo.count_keys_not_at(to_version)
                        if kind == KEK
                        else repo.count_indexed_not_at(to_version)
                    )
                    if remaining > report.skipped and passes < 5:
                        passes += 1
                        cursor = None
                        await repo.advance(rotation_id, None, 0, passes)
                        continue
                    if kind == KEK:
                        report.updated += await self._reseal_second_factors(session)
                    await repo.finish(rotation_id, self.clock.now())
                    await self._record(session, "rotate", f"{kind}:{to_version}")
                    report.finished = True
                    return report
                cursor = last
                await repo.advance(rotation_id, cursor, updated, passes)
            report.updated += updated
            report.skipped += skipped
            report.batches += 1
            if progress is not None:
                progress(report.updated + report.skipped, max(total, report.updated))
            if self.pause_seconds:
                await asyncio.sleep(self.pause_seconds)

    async def _rewrap_batch(
        self, repo: KeyRepository, to_version: int, cursor: uuid.UUID | None
    ) -> tuple[uuid.UUID | None, int, int]:
        rows = await repo.keys_to_rewrap(to_version, cursor, self.batch_size)
        if not rows:
            return None, 0, 0
        updated = skipped = 0
        for row in rows:
            if row.kek_version == to_version:
                continue
            try:
                key = self.vault.open_data_key(row.customer_id, row.kek_version, row.wrapped_dek)
                rewrapped = self.vault.rewrap(key)
            except VaultError:
                # Shredded at the key provider (erasure in flight): nothing to keep.
                skipped += 1
                continue
            if rewrapped.kek_version != to_version:
                raise ConflictError(
                    "another KEK version was added during this rotation; run it again",
                    code="ROTATION_RACE",
                )
            if await repo.replace_wrapped_key(
                row.customer_id, row.wrapped_dek, to_version, rewrapped.wrapped, self.clock.now()
            ):
                updated += 1
        return rows[-1].customer_id, updated, skipped

    async def _reseal_second_factors(self, session: AsyncSession) -> int:
        """Console accounts' TOTP secrets under the new KEK, in the transaction that ends
        the rotation (a handful of rows, not worth batches); any still in clear are sealed."""
        factors = SecondFactors(self.vault)
        resealed = 0
        for user in await UserRepository(session).with_second_factor():
            if await factors.reseal(user):
                resealed += 1
        return resealed

    async def _reindex_batch(
        self, repo: KeyRepository, to_version: int, cursor: uuid.UUID | None
    ) -> tuple[uuid.UUID | None, int, int]:
        rows = await repo.customers_to_reindex(cursor, self.batch_size)
        if not rows:
            return None, 0, 0
        updated = skipped = 0
        for row in rows:
            if row.bidx_key_version == to_version:
                continue
            found = self._indexes(row, to_version)
            if found is None:
                skipped += 1
                continue
            indexes, name_tokens = found
            if await repo.replace_blind_indexes(row, to_version, indexes, name_tokens):
                updated += 1
        # The batch's contact points, whatever their customer's own version: a point added
        # by a server still on the old version is caught by the next pass.
        owners = {row.id: row for row in rows}
        for point in await repo.points_to_reindex(list(owners), to_version):
            try:
                index = self._point_index(owners[point.customer_id], point, to_version)
            except VaultError:
                skipped += 1
                continue
            if await repo.replace_point_index(point, to_version, index):
                updated += 1
        return rows[-1].id, updated, skipped

    def _point_index(self, owner: Any, point: Any, version: int) -> int | None:
        """A contact point's index under `version` (None for a point without a value);
        VaultError when its customer's data key no longer opens."""
        if point.value is None:
            return None
        key = self.vault.open_data_key(owner.id, owner.kek_version, owner.wrapped_dek)
        text = self.vault.reveal(key, FieldRef(CONTACT_POINTS, "value", point.id), point.value)
        return self.vault.contact_point_index(text, version)

    def _indexes(
        self, row: Any, version: int
    ) -> tuple[dict[str, int | None], list[dict[str, Any]]] | None:
        """The row's contact indexes and name-token rows under `version`; None when its
        data key no longer opens."""
        indexes: dict[str, int | None] = dict.fromkeys(CONTACT_COLUMNS)
        try:
            key = self.vault.open_data_key(row.id, row.kek_version, row.wrapped_dek)
            name = self.vault.reveal(key, FieldRef("customers", "name", row.id), row.name)
            name_tokens = CustomerNameToken.rows(
                row.id, self.vault.name_tokens(name, version), version
            )
            for column in CONTACT_COLUMNS:
                ciphertext = getattr(row, column)
                if ciphertext is None:
                    continue
                text = self.vault.reveal(key, FieldRef("customers", column, row.id), ciphertext)
                indexes[column] = self.vault.blind_index(
                    column, CUSTOMER_NORMALISERS[column](text), version
                )
        except (VaultError, ValidationError):
            return None
        return indexes, name_tokens

    async def retire(self, kind: str, version: int) -> None:
        """Remove a key version from the provider; refused while anything still uses it."""
        if kind not in KINDS:
            raise ValidationError("key kind is kek or blind_index")
        keys = self.vault.keys
        versions = keys.kek_versions() if kind == KEK else keys.blind_index_versions()
        if version not in versions:
            raise ValidationError(f"{kind} version {version} is not in the key provider")
        current = keys.current_kek_version() if kind == KEK else keys.current_blind_index_version()
        if version == current:
            raise ConflictError("the newest key version cannot be retired", code="KEY_IN_USE")
        async with self.sessions() as session, session.begin():
            repo = KeyRepository(session)
            unfinished = await repo.unfinished_rotation(kind)
            if unfinished is not None:
                raise ConflictError(
                    f"a {kind} rotation is unfinished; run `custos keys rotate` first",
                    code="ROTATION_UNFINISHED",
                )
            in_use = await (
                repo.count_keys_at(version) if kind == KEK else repo.count_indexed_at(version)
            )
            if kind == KEK:
                in_use += sum(
                    user.totp_kek_version == version
                    for user in await UserRepository(session).with_second_factor()
                )
            if in_use:
                raise ConflictError(
                    f"{kind} version {version} is still used by {in_use} customers",
                    code="KEY_IN_USE",
                )
            keys.retire_version(kind, version)
            await self._record(session, "retire", f"{kind}:{version}")

    async def _record(
        self, session: AsyncSession, action: str, key: str, step: str | None = None
    ) -> None:
        if self.audit is not None:
            self.audit.audit.change("key", action, None, [key])
            if step is None:
                await self.audit.record(session)
            else:
                await self.audit.record_step(session, step)
