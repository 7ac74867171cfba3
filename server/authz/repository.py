"""Policy rules and the policy version in the database."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from server.data.base import utcnow
from server.data.models import PolicyRule, PolicyVersion, RoleAssignment

Rule = tuple[str, ...]


def rule_values(rule: PolicyRule) -> Rule:
    values = (rule.v0, rule.v1, rule.v2, rule.v3, rule.v4, rule.v5)
    return (rule.ptype, *[v for v in values if v != ""])


class PolicyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def all_rules(self) -> list[Rule]:
        rows = (await self.session.scalars(select(PolicyRule).order_by(PolicyRule.id))).all()
        return [rule_values(row) for row in rows]

    async def count(self) -> int:
        return int(await self.session.scalar(select(func.count()).select_from(PolicyRule)) or 0)

    async def add(self, rules: Iterable[Rule]) -> None:
        for ptype, *values in rules:
            padded = [*values, "", "", "", "", "", ""][:6]
            self.session.add(PolicyRule(ptype=ptype, **{f"v{i}": v for i, v in enumerate(padded)}))
        await self.session.flush()

    async def remove(self, rule: Rule) -> int:
        ptype, *values = rule
        padded = [*values, "", "", "", "", "", ""][:6]
        conditions = [PolicyRule.ptype == ptype]
        conditions += [getattr(PolicyRule, f"v{i}") == v for i, v in enumerate(padded)]
        result = await self.session.execute(delete(PolicyRule).where(*conditions))
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def version(self) -> int:
        return int(
            await self.session.scalar(select(PolicyVersion.version).where(PolicyVersion.id == 1))
            or 0
        )

    async def bump_version(self) -> None:
        await self.session.execute(
            update(PolicyVersion)
            .where(PolicyVersion.id == 1)
            .values(version=PolicyVersion.version + 1, changed_at=utcnow())
        )

    async def assigned_roles(self, subject: str) -> Sequence[str]:
        rows = await self.session.scalars(
            select(RoleAssignment.role).where(RoleAssignment.subject == subject)
        )
        return rows.all()

    async def rules_with_ids(self, ptype: str = "p") -> list[tuple[int, Rule]]:
        rows = await self.session.scalars(
            select(PolicyRule).where(PolicyRule.ptype == ptype).order_by(PolicyRule.id)
        )
        return [(row.id, rule_values(row)) for row in rows]

    async def find(self, rule: Rule) -> int | None:
        ptype, *values = rule
        padded = [*values, "", "", "", "", "", ""][:6]
        conditions = [PolicyRule.ptype == ptype]
        conditions += [getattr(PolicyRule, f"v{i}") == v for i, v in enumerate(padded)]
        found = await self.session.scalar(select(PolicyRule.id).where(*conditions))
        return int(found) if found is not None else None


class RoleAssignmentRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def list(self, subject: str | None = None) -> Sequence[RoleAssignment]:
        query = select(RoleAssignment).order_by(RoleAssignment.subject, RoleAssignment.role)
        if subject is not None:
            query = query.where(RoleAssignment.subject == subject)
        return (await self.session.scalars(query)).all()

    async def find(self, subject: str, role: str) -> RoleAssignment | None:
        return await self.session.scalar(
            select(RoleAssignment).where(
                RoleAssignment.subject == subject, RoleAssignment.role == role
            )
        )

    async def add(self, assignment: RoleAssignment) -> None:
        self.session.add(assignment)
        await self.session.flush()

    async def remove(self, assignment: RoleAssignment) -> None:
        await self.session.delete(assignment)
        await self.session.flush()
