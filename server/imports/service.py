"""Spreadsheet imports of customers and orders, validated row by row.

Landing rule (documented in the README): rows are validated one by one and rejected rows
are reported (row number and reason, never the value) and excluded. The valid rows of each
batch of N are written inside a savepoint, so a batch lands whole or not at all; if the
database refuses a batch, all its rows are reported and nothing of it stays. With
`strict`, one rejected row rolls back the whole file. The audit records only rows that
landed. `import_customers`/`import_orders` run every batch in the caller's transaction;
`start` and `land` let a caller commit batch by batch (`custos import`).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal
from itertools import islice
from typing import Any

from sqlalchemy import ColumnElement, true
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from server.audit.recorder import AuditRecorder
from server.authz.authorizer import RowScope
from server.caller import Caller
from server.customer.fields import BLIND_INDEXED, IMPORTABLE, NORMALISERS, REQUIRED
from server.customer.repository import CustomerRepository, outside_scope
from server.customer.service import (
    DUPLICATE_FLAG,
    FLAG_FIELDS,
    CustomerService,
    NewCustomer,
    SealedCustomer,
)
from server.data.base import new_id
from server.data.customer_fields import CUSTOMER_FIELDS
from server.data.models import Customer
from server.errors import CustosError, ValidationError, VaultError
from server.imports.reader import SourceRow
from server.imports.repository import ImportRepository
from server.order.repository import OrderRepository, ProductRepository
from server.order.service import TRANSITIONS, money
from server.vault import FieldRef, Vault

# Customer columns, from the field registry (server/data/customer_fields.py).
CUSTOMER_COLUMNS = IMPORTABLE
REQUIRED_CUSTOMER_COLUMNS = IMPORTABLE & REQUIRED
MINIMAL_ORDER_COLUMNS = frozenset({"customer_ref", "date", "amount"})
FULL_ORDER_COLUMNS = frozenset(
    {"customer_ref", "product_sku", "quantity", "unit_price", "date", "order_ref", "status"}
)
DEFAULT_BATCH = 500
PLAIN_LIMITS: dict[str, int] = {
    f.name: f.max_length for f in CUSTOMER_FIELDS if f.importable and f.max_length is not None
}
ORDER_REF_LIMIT = 64
IMPORT_CHANNEL = "import"


@dataclass(frozen=True, slots=True)
class RejectedRow:
    row: int
    reason: str


@dataclass
class ImportReport:
    kind: str
    accepted: int = 0
    rejected: list[RejectedRow] = field(default_factory=list)
    written: bool = True
    created_ids: list[uuid.UUID] = field(default_factory=list)

    @property
    def seen(self) -> int:
        return self.accepted + len(self.rejected)


Progress = Callable[[int], None]


def _owner_and_team(
    row: SourceRow, default_owner: str | None, default_team: str | None
) -> tuple[str | None, str | None]:
    """The owner and team a customer row lands with: its own cells, else the defaults."""
    owner, team = (row.values.get(k) for k in ("owner_id", "team"))
    return (
        (cell_text(owner) if owner is not None else None) or default_owner,
        (cell_text(team) if team is not None else None) or default_team,
    )


@dataclass(frozen=True, slots=True)
class DuplicateRule:
    """When an imported row's contact already belongs to a file, whether the row may be
    refused for it: only for a file in `known` (the files the importer may know exist) on
    a field in `clear` (the contacts it reads in clear). Any other match lands the row
    and raises a duplicate flag, so a file of probe rows learns nothing it could not look
    up. The CLI operator holds the keyring and the database: everything is known to it."""

    known: ColumnElement[bool]
    clear: frozenset[str]


OPERATOR_RULE = DuplicateRule(known=true(), clear=frozenset(BLIND_INDEXED))


@dataclass
class ImportRun:
    """One file's import, batch after batch: the report so far and what earlier batches
    of the file used (contacts, order refs), so duplicates within the file are found
    whether the batches share a transaction or each commits on its own."""

    kind: str
    report: ImportReport
    default_owner: str | None = None
    default_team: str | None = None
    minimal: bool = False
    contacts: dict[tuple[str, str], int] = field(default_factory=dict)
    order_refs: dict[str, int] = field(default_factory=dict)
    # Which existing files may refuse a row (the importer's knowledge): see DuplicateRule.
    duplicates: DuplicateRule = OPERATOR_RULE
    # The importer and its customer/create row scope: every customer row lands inside it.
    within: tuple[Caller, RowScope] | None = None


def cell_text(value: Any) -> str:
    """A cell as text: spreadsheet numbers like 13812345678.0 lose the `.0`."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value).strip()


def cell_instant(value: Any, what: str) -> datetime:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime.combine(value, time())
    else:
        try:
            moment = datetime.fromisoformat(cell_text(value))
        except ValueError:
            raise ValidationError(
                f"{what} is not a date (YYYY-MM-DD)", code="INVALID_DATE"
            ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def cell_money(value: Any, what: str) -> Decimal:
    # str() of a float is its shortest repr, so 19.99 stays 19.99, never 19.989999…
    return money(cell_text(value), what)


def check_columns(header: Iterable[str], allowed: frozenset[str], required: set[str]) -> None:
    names = {h for h in header if h}
    unknown = sorted(names - allowed)
    if unknown:
        raise ValidationError(f"unknown columns: {', '.join(unknown)}", code="BAD_HEADER")
    missing = sorted(required - names)
    if missing:
        raise ValidationError(f"missing columns: {', '.join(missing)}", code="BAD_HEADER")


def batches(rows: Iterator[SourceRow], size: int) -> Iterator[list[SourceRow]]:
    while chunk := list(islice(rows, size)):
        yield chunk


def new_customer(text: dict[str, str], birthday: date | None, now: datetime) -> NewCustomer:
    """A row's cells (as text, the birthday parsed) as a new customer created `now`.
    `seal_new` takes the owner and team apart, where the importer's defaults apply."""
    return NewCustomer(
        name=text["name"],
        phone=text.get("phone"),
        email=text.get("email"),
        national_id=text.get("national_id"),
        bank_card=text.get("bank_card"),
        address=text.get("address"),
        birthday=birthday,
        gender=text.get("gender"),
        industry=text.get("industry"),
        company_size=text.get("company_size"),
        region=text.get("region"),
        occupation=text.get("occupation"),
        source=text.get("source"),
        owner_id=text.get("owner_id"),
        team=text.get("team"),
        tier=text.get("tier"),
        lifecycle=text.get("lifecycle"),
        created_at=now,
    )


class ImportService:
    def __init__(self, customers: CustomerService, vault: Vault, now: Callable[[], datetime]):
        self.customers = customers
        self.vault = vault
        self.now = now

    async def land_batch(
        self,
        session: AsyncSession,
        report: ImportReport,
        numbers: list[int],
        write: Callable[[], Awaitable[None]],
    ) -> bool:
        """Write one batch inside a savepoint: all of it or none of it."""
        if not numbers:
            return True
        try:
            async with session.begin_nested():
                await write()
        except SQLAlchemyError:
            report.rejected.extend(
                RejectedRow(n, "the database refused this row's batch; none of it was written")
                for n in numbers
            )
            return False
        report.accepted += len(numbers)
        return True

    def start(
        self,
        kind: str,
        header: list[str],
        *,
        default_owner: str | None = None,
        default_team: str | None = None,
        duplicates: DuplicateRule = OPERATOR_RULE,
        within: tuple[Caller, RowScope] | None = None,
    ) -> ImportRun:
        """Check the header of a `customers` or `orders` file and begin its import."""
        if kind == "customers":
            check_columns(header, CUSTOMER_COLUMNS, set(REQUIRED_CUSTOMER_COLUMNS))
            return ImportRun(
                "customers",
                ImportReport("customers"),
                default_owner=default_owner,
                default_team=default_team,
                duplicates=duplicates,
                within=within,
            )
        minimal = "product_sku" not in {h for h in header if h}
        if minimal:
            check_columns(header, MINIMAL_ORDER_COLUMNS | {"order_ref"}, set(MINIMAL_ORDER_COLUMNS))
        else:
            check_columns(
                header, FULL_ORDER_COLUMNS, {"customer_ref", "product_sku", "quantity", "date"}
            )
        return ImportRun("orders", ImportReport("orders"), minimal=minimal)

    async def land(
        self, session: AsyncSession, run: ImportRun, chunk: list[SourceRow], audit: AuditRecorder
    ) -> None:
        """Validate one batch of rows and write its valid rows in a savepoint (all of them
        or none); the rows that landed are noted on `audit`. The caller commits."""
        if run.kind == "customers":
            await self._customer_batch(session, run, chunk, audit)
        else:
            await self._order_batch(session, run, chunk, audit)
        run.report.rejected.sort(key=lambda r: r.row)

    async def land_all(
        self,
        session: AsyncSession,
        run: ImportRun,
        rows: Iterator[SourceRow],
        *,
        audit: AuditRecorder,
        batch_size: int,
        strict: bool,
        progress: Progress | None,
    ) -> ImportReport:
        """Every batch of `rows` inside `session`'s transaction; with `strict`, one
        rejected row rolls back the whole file and nothing is noted on `audit`."""
        report = run.report
        outer = await session.begin_nested()
        mark = audit.mark()
        try:
            for chunk in batches(rows, batch_size):
                await self.land(session, run, chunk, audit)
                if progress:
                    progress(report.seen)
        except CustosError:
            # A refused import (a row outside the importer's scope) writes nothing at all.
            await outer.rollback()
            audit.discard_changes_since(mark)
            raise
        if strict and report.rejected:
            await outer.rollback()
            audit.discard_changes_since(mark)
            report.written = False
            report.accepted = 0
            report.created_ids = []
            return report
        await outer.commit()
        return report

    # Customers ------------------------------------------------------------------------

    async def import_customers_as(
        self,
        session: AsyncSession,
        caller: Caller,
        rows: list[SourceRow],
        *,
        strict: bool,
        max_rows: int,
    ) -> ImportReport:
        """An upload by an API caller: needs import/create and customer/create. A caller whose
        row scope is `own` gets the rows as their own customers, like `createCustomer`, so
        the files stay visible to whoever imported them; a row for an owner or team outside
        the caller's create scope refuses the whole upload (OUT_OF_SCOPE)."""
        caller.gate.require("import", "create")
        if len(rows) > max_rows:
            raise ValidationError(f"at most {max_rows} rows per upload; use the CLI for more")
        header = sorted({k for r in rows for k in r.values} | {"name"})
        run = self.start_by(caller, "customers", header)
        return await self.land_all(
            session,
            run,
            iter(rows),
            audit=caller.audit,
            batch_size=DEFAULT_BATCH,
            strict=strict,
            progress=None,
        )

    def start_by(
        self,
        caller: Caller,
        kind: str,
        header: list[str],
        *,
        duplicates: DuplicateRule | None = None,
    ) -> ImportRun:
        """Begin an import by `caller` (the API's uploader, the CLI operator): it needs
        import/create, and customer rows land within its customer/create row scope,
        owned by the caller when that scope is `own` (as `createCustomer` does); a row for
        an owner or team outside it refuses the whole import (OUT_OF_SCOPE). `duplicates`
        defaults to what the caller may know exists."""
        caller.gate.require("import", "create")
        if kind != "customers":
            return self.start(kind, header)
        scope = caller.gate.row_scope("customer", "create")
        principal = caller.principal
        rule = duplicates or DuplicateRule(
            known=self.customers.known_scope(caller), clear=self.customers.clear_contacts(caller)
        )
        return self.start(
            "customers",
            header,
            default_owner=principal.subject if scope is RowScope.OWN else None,
            default_team=principal.team,
            duplicates=rule,
            within=(caller, scope),
        )

    async def import_customers(
        self,
        session: AsyncSession,
        header: list[str],
        rows: Iterator[SourceRow],
        *,
        audit: AuditRecorder,
        default_owner: str | None = None,
        default_team: str | None = None,
        batch_size: int = DEFAULT_BATCH,
        strict: bool = False,
        progress: Progress | None = None,
        duplicates: DuplicateRule = OPERATOR_RULE,
    ) -> ImportReport:
        """Import customer rows in the caller's one transaction."""
        run = self.start(
            "customers", header, default_owner=default_owner, default_team=default_team
        )
        return await self.land_all(
            session,
            run,
            rows,
            audit=audit,
            batch_size=batch_size,
            strict=strict,
            progress=progress,
        )

    async def _customer_batch(
        self, session: AsyncSession, run: ImportRun, chunk: list[SourceRow], audit: AuditRecorder
    ) -> None:
        report, seen = run.report, run.contacts
        valid: list[tuple[int, SealedCustomer]] = []
        # New customers' shred secrets are made durable together when sealing ends, before
        # anything refers to them (one key-store commit per batch, not one per row).
        with self.vault.keys.bulk():
            for row in chunk:
                if run.within is not None:
                    self._refuse_outside(run.within, row, run.default_owner, run.default_team)
                try:
                    sealed = self._seal_row(row, run.default_owner, run.default_team)
                except ValidationError as error:
                    report.rejected.append(RejectedRow(row.number, error.message))
                    continue
                duplicate = next(
                    (
                        (f, seen[(f, v)])
                        for f, v in sealed.contacts.items()
                        if v is not None and (f, v) in seen
                    ),
                    None,
                )
                if duplicate is not None:
                    report.rejected.append(
                        RejectedRow(
                            row.number,
                            f"duplicate {duplicate[0]} of row {duplicate[1]} in the file",
                        )
                    )
                    continue
                for f, v in sealed.contacts.items():
                    if v is not None:
                        seen[(f, v)] = row.number
                valid.append((row.number, sealed))
        existing = await self._existing_contacts(session, [s for _, s in valid])
        inside = await CustomerRepository(session).readable_ids(
            {m for ids in existing.values() for m in ids}, run.duplicates.known
        )
        landing: list[tuple[int, SealedCustomer]] = []
        flags: list[tuple[uuid.UUID, uuid.UUID, str]] = []
        for number, sealed in valid:
            taken: list[str] = []
            unseen: list[tuple[uuid.UUID, uuid.UUID, str]] = []
            for f, v in sealed.contacts.items():
                if v is None:
                    continue
                matches = sorted(existing.get((f, v), ()))
                audit.lookup(
                    "customer",
                    "duplicate_check",
                    f,
                    hit=bool(matches),
                    record_ids=matches or [sealed.customer.id],
                )
                for other in matches:
                    if f in run.duplicates.clear and other in inside:
                        taken.append(f)
                    else:
                        unseen.append((sealed.customer.id, other, f))
            if taken:
                report.rejected.append(
                    RejectedRow(number, f"a customer with this {taken[0]} already exists")
                )
            else:
                landing.append((number, sealed))
                flags += unseen
        flag_ids: list[uuid.UUID] = []

        async def write() -> None:
            await ImportRepository(session).add_customers(
                [
                    {c.key: getattr(s.customer, c.key) for c in Customer.__table__.columns}
                    for _, s in landing
                ],
                [
                    {
                        "customer_id": s.customer.id,
                        "wrapped_dek": s.key.wrapped_dek,
                        "kek_version": s.key.kek_version,
                        "created_at": s.customer.created_at,
                    }
                    for _, s in landing
                ],
                [t for _, s in landing for t in s.name_tokens],
            )
            flag_ids[:] = await self.customers.flag_duplicates(session, audit, flags)

        if await self.land_batch(session, report, [n for n, _ in landing], write):
            for _, s in landing:
                report.created_ids.append(s.customer.id)
                audit.change("customer", "import", s.customer.id, s.sealed_fields)
            for flag_id in flag_ids:
                audit.change(DUPLICATE_FLAG, "import", flag_id, list(FLAG_FIELDS))

    def _refuse_outside(
        self,
        within: tuple[Caller, RowScope],
        row: SourceRow,
        default_owner: str | None,
        default_team: str | None,
    ) -> None:
        """A row for an owner or team outside the importer's create scope is not a bad
        row to skip but a refused import (OUT_OF_SCOPE, naming the row's cell as
        `rows.<index>.<column>`): `land_all` then writes nothing of the file."""
        caller, scope = within
        owner, team = _owner_and_team(row, default_owner, default_team)
        outside = outside_scope(scope, caller.principal, owner_id=owner, team=team)
        if outside is not None:
            raise caller.gate.out_of_scope("customer", "create", f"rows.{row.number - 1}.{outside}")

    def _seal_row(
        self, row: SourceRow, default_owner: str | None, default_team: str | None
    ) -> SealedCustomer:
        values = {k: v for k, v in row.values.items() if k in CUSTOMER_COLUMNS}
        if "name" not in values:
            raise ValidationError("name is missing")
        birthday = values.pop("birthday", None)
        born: date | None = None
        if birthday is not None:
            born = cell_instant(birthday, "birthday").date()
        text = {k: cell_text(v) for k, v in values.items()}
        for name, value in text.items():
            # Plain columns have a length limit the database enforces (PostgreSQL): refuse
            # the row here rather than let one long value sink its whole batch.
            limit = PLAIN_LIMITS.get(name)
            if limit is not None and len(value) > limit:
                raise ValidationError(f"{name} is longer than {limit} characters")
        owner, team = _owner_and_team(row, default_owner, default_team)
        data = new_customer(text, born, self.now())
        return self.customers.seal_new(data, owner_id=owner, team=team)

    async def _existing_contacts(
        self, session: AsyncSession, sealed: list[SealedCustomer]
    ) -> dict[tuple[str, str], set[uuid.UUID]]:
        """The live files holding each (field, normalised value): blind index candidates
        in one query per field, confirmed by decrypting (indexes are truncated)."""
        wanted: dict[str, set[str]] = {}
        for s in sealed:
            for f, v in s.contacts.items():
                if v is not None:
                    wanted.setdefault(f, set()).add(v)
        found: dict[tuple[str, str], set[uuid.UUID]] = {}
        repo = ImportRepository(session)
        for f, values in wanted.items():
            indexes = {self.vault.blind_index(f, v) for v in values}
            for candidate in await repo.candidates(BLIND_INDEXED[f], indexes):
                text = self._reveal(candidate, f)
                if text is not None and NORMALISERS[f](text) in values:
                    found.setdefault((f, NORMALISERS[f](text)), set()).add(candidate.id)
        return found

    def _reveal(self, candidate: Any, f: str) -> str | None:
        if candidate.sealed is None:
            return None
        try:
            key = self.vault.open_data_key(
                candidate.id, candidate.kek_version, candidate.wrapped_dek
            )
            return self.vault.reveal(key, FieldRef("customers", f, candidate.id), candidate.sealed)
        except (VaultError, ValidationError):
            return None

    # Orders ---------------------------------------------------------------------------

    async def import_orders(
        self,
        session: AsyncSession,
        header: list[str],
        rows: Iterator[SourceRow],
        *,
        audit: AuditRecorder,
        batch_size: int = DEFAULT_BATCH,
        strict: bool = False,
        progress: Progress | None = None,
    ) -> ImportReport:
        """Full rows (customer_ref, product_sku, quantity, unit_price?, date, order_ref?,
        status?) make one single-item order each; minimal rows (customer_ref, date, amount)
        make an order without items for analysis. Imported orders earn no points. In the
        caller's one transaction."""
        run = self.start("orders", header)
        return await self.land_all(
            session,
            run,
            rows,
            audit=audit,
            batch_size=batch_size,
            strict=strict,
            progress=progress,
        )

    async def _order_batch(
        self, session: AsyncSession, run: ImportRun, chunk: list[SourceRow], audit: AuditRecorder
    ) -> None:
        report, refs_in_file, minimal = run.report, run.order_refs, run.minimal
        now = self.now()
        parsed: list[tuple[int, dict[str, Any]]] = []
        for row in chunk:
            try:
                parsed.append((row.number, self._order_row(row, minimal, now)))
            except ValidationError as error:
                report.rejected.append(RejectedRow(row.number, error.message))
        customers = await self._resolve_customers(session, [p["ref"] for _, p in parsed])
        for _, p in parsed:
            kind, _value = p["ref"]
            if kind != "id":
                # A customer found by a contact value: a lookup, audited hit or miss.
                found = customers.get(p["ref"])
                audit.lookup(
                    "customer",
                    "lookup",
                    kind,
                    hit=found is not None,
                    record_ids=[found] if found is not None else [],
                )
        products = await ProductRepository(session).by_skus(
            {p["sku"] for _, p in parsed if p.get("sku")}
        )
        taken = await OrderRepository(session).external_refs_taken(
            {p["order_ref"] for _, p in parsed if p.get("order_ref")}
        )
        orders: list[dict[str, Any]] = []
        items: list[dict[str, Any]] = []
        events: list[dict[str, Any]] = []
        numbers: list[int] = []
        for number, p in parsed:
            customer_id = customers.get(p["ref"])
            if customer_id is None:
                report.rejected.append(RejectedRow(number, "unknown customer"))
                continue
            order_ref = p.get("order_ref")
            if order_ref is not None and order_ref in refs_in_file:
                report.rejected.append(
                    RejectedRow(
                        number,
                        f"duplicate order_ref of row {refs_in_file[order_ref]} in the file",
                    )
                )
                continue
            if order_ref is not None and order_ref in taken:
                report.rejected.append(RejectedRow(number, "an order with this order_ref exists"))
                continue
            order_id = new_id()
            total, cost = p.get("amount"), Decimal("0.00")
            if not minimal:
                product = products.get(p["sku"])
                if product is None:
                    report.rejected.append(RejectedRow(number, "unknown product"))
                    continue
                price = p["unit_price"] if p["unit_price"] is not None else product.unit_price
                total = price * p["quantity"]
                cost = product.unit_cost * p["quantity"]
                items.append(
                    {
                        "id": new_id(),
                        "order_id": order_id,
                        "customer_id": customer_id,
                        "product_id": product.id,
                        "quantity": p["quantity"],
                        "unit_price": price,
                        "unit_cost": product.unit_cost,
                        "line_total": total,
                    }
                )
            if order_ref is not None:
                refs_in_file[order_ref] = number
            orders.append(
                {
                    "id": order_id,
                    "customer_id": customer_id,
                    "ordered_at": p["date"],
                    "status": p["status"],
                    "channel": IMPORT_CHANNEL,
                    "currency": "CNY",
                    "total": total,
                    "cost_total": cost,
                    "external_ref": order_ref,
                }
            )
            events.append(
                {
                    "id": new_id(),
                    "order_id": order_id,
                    "customer_id": customer_id,
                    "status": p["status"],
                    "at": p["date"],
                    "actor": audit.principal.subject,
                    "tracking_note": "imported",
                }
            )
            numbers.append(number)

        async def write() -> None:
            await ImportRepository(session).add_orders(orders, items, events)

        if await self.land_batch(session, report, numbers, write):
            for o in orders:
                report.created_ids.append(o["id"])
                audit.change("order", "import", o["id"], ["status", "total"])

    def _order_row(self, row: SourceRow, minimal: bool, now: datetime) -> dict[str, Any]:
        v = row.values
        if "customer_ref" not in v:
            raise ValidationError("customer_ref is missing")
        if "date" not in v:
            raise ValidationError("date is missing")
        moment = cell_instant(v["date"], "date")
        if moment > now:
            raise ValidationError("date is in the future", code="INVALID_DATE")
        parsed: dict[str, Any] = {
            "ref": self._customer_ref(cell_text(v["customer_ref"])),
            "date": moment,
            "order_ref": cell_text(v["order_ref"]) if "order_ref" in v else None,
            "status": cell_text(v.get("status", "delivered")).lower(),
        }
        if parsed["order_ref"] is not None and len(parsed["order_ref"]) > ORDER_REF_LIMIT:
            raise ValidationError(f"order_ref is longer than {ORDER_REF_LIMIT} characters")
        if parsed["status"] not in TRANSITIONS:
            raise ValidationError("status is not an order status")
        if minimal:
            if "amount" not in v:
                raise ValidationError("amount is missing")
            amount = cell_money(v["amount"], "amount")
            if amount <= 0:
                raise ValidationError("amount must be positive", code="INVALID_AMOUNT")
            parsed["amount"] = amount
            return parsed
        if "product_sku" not in v:
            raise ValidationError("product_sku is missing")
        parsed["sku"] = cell_text(v["product_sku"])
        try:
            quantity = int(cell_text(v.get("quantity", "")))
        except ValueError:
            raise ValidationError("quantity is not a whole number") from None
        if not 1 <= quantity <= 100_000:
            raise ValidationError("quantity must be 1 to 100000")
        parsed["quantity"] = quantity
        parsed["unit_price"] = (
            cell_money(v["unit_price"], "unit_price") if "unit_price" in v else None
        )
        return parsed

    def _customer_ref(self, text: str) -> tuple[str, str]:
        """A customer id, an email or a phone number, normalised for lookup."""
        try:
            return ("id", str(uuid.UUID(text)))
        except ValueError:
            pass
        try:
            if "@" in text:
                return ("email", NORMALISERS["email"](text))
            return ("phone", NORMALISERS["phone"](text))
        except ValidationError:
            raise ValidationError(
                "customer_ref is not a customer id, email or phone", code="INVALID_CUSTOMER_REF"
            ) from None

    async def _resolve_customers(
        self, session: AsyncSession, refs: list[tuple[str, str]]
    ) -> dict[tuple[str, str], uuid.UUID]:
        repo = ImportRepository(session)
        found: dict[tuple[str, str], uuid.UUID] = {}
        ids = {uuid.UUID(v) for k, v in refs if k == "id"}
        for customer_id in await repo.existing_ids(ids):
            found[("id", str(customer_id))] = customer_id
        for f in ("email", "phone"):
            values = {v for k, v in refs if k == f}
            if not values:
                continue
            indexes = {self.vault.blind_index(f, v) for v in values}
            matches: dict[str, set[uuid.UUID]] = {}
            for candidate in await repo.candidates(BLIND_INDEXED[f], indexes):
                text = self._reveal(candidate, f)
                if text is not None and NORMALISERS[f](text) in values:
                    matches.setdefault(NORMALISERS[f](text), set()).add(candidate.id)
            for value, owners in matches.items():
                if len(owners) == 1:  # an ambiguous contact matches nobody
                    found[(f, value)] = next(iter(owners))
        return found
