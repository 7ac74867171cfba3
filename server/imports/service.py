"""Spreadsheet imports of customers, orders and products, validated row by row.

Landing rule (documented in the README): rows are validated one by one and rejected rows
are reported (row number and reason, never the value) and excluded. The valid rows of each
batch of N are written inside a savepoint, so a batch lands whole or not at all; if the
database refuses a batch, all its rows are reported and nothing of it stays. With
`strict`, one rejected row rolls back the whole file; a dry run rolls back everything and
reports what would have happened. The audit records only rows that landed. Re-importing
a file is idempotent: customers are matched by customer number (a row that differs
updates its file through the customer service, within the importer's update scope),
orders by order number (or, without one, by customer, date and amount), products by SKU.
A customer row's landline, WeChat, contact person and note columns land as contact
points and a note, sealed by the contact and note services. `import_customers` /
`import_orders` run every batch in the caller's transaction; `start` and `land` let a
caller commit batch by batch (`custos import`).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Awaitable, Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from itertools import islice
from typing import Any, cast

from sqlalchemy import ColumnElement, true
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from server.audit.recorder import AuditRecorder
from server.authz.authorizer import RowScope
from server.caller import Caller
from server.contact.repository import ContactPointRepository
from server.contact.service import AUDITED as CONTACT_POINT
from server.contact.service import (
    CONTACT_PERSON,
    LANDLINE,
    MAX_PERSON_NAME,
    MAX_POINTS,
    WECHAT,
    ContactPointService,
    NewContactPoint,
    canonical,
)
from server.customer.fields import (
    BLIND_INDEXED,
    CHOICES,
    EDITABLE,
    IMPORTABLE,
    NORMALISERS,
    REQUIRED,
    SEALED_CUSTOMER_FIELDS,
)
from server.customer.repository import CustomerRepository, outside_scope, scope_predicate
from server.customer.service import (
    DUPLICATE_FLAG,
    FLAG_FIELDS,
    CustomerChanges,
    CustomerService,
    NewCustomer,
    SealedCustomer,
)
from server.data.base import new_id
from server.data.customer_fields import CUSTOMER_FIELDS
from server.data.models import Customer
from server.errors import CustosError, ForbiddenError, ValidationError, VaultError
from server.imports.columns import (
    CONSENT_COLUMNS,
    CUSTOMERS,
    ORDERS,
    PRODUCTS,
    ColumnPlan,
    OwnerBook,
    cell_flag,
    cell_instant,
    cell_money,
    cell_segment,
    cell_status,
    cell_text,
    plan_columns,
    require_columns,
)
from server.imports.reader import SheetRow, SourceRow
from server.imports.repository import ImportRepository
from server.note.repository import NoteRepository
from server.note.service import MAX_BODY, MAX_NOTES, NoteService, note_body
from server.note.service import OBJECT as CUSTOMER_NOTE
from server.order.repository import OrderRepository, ProductRepository
from server.vault import FieldRef, Vault

__all__ = ["cell_instant", "cell_money", "cell_text"]

# Customer columns, from the field registry (server/data/customer_fields.py).
CUSTOMER_COLUMNS = IMPORTABLE
REQUIRED_CUSTOMER_COLUMNS = IMPORTABLE & REQUIRED
MINIMAL_ORDER_COLUMNS = frozenset({"customer_ref", "date", "amount"})
FULL_ORDER_COLUMNS = frozenset({"customer_ref", "product_sku", "date"})
DEFAULT_BATCH = 500
PLAIN_LIMITS: dict[str, int] = {
    f.name: f.max_length for f in CUSTOMER_FIELDS if f.importable and f.max_length is not None
}
ORDER_REF_LIMIT = 64
IMPORT_CHANNEL = "import"
CONSENT_SOURCE_LIMIT = 64
# Orders without an order number get one derived from what they are (customer, time,
# amount and how many such orders came before in the file), so a re-import finds them.
DERIVED_REF_PREFIX = "auto:"


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
    existing: int = 0
    """Rows that matched what is already there (a re-import): left as they are."""
    ignored_columns: list[str] = field(default_factory=list)
    """Headers of the file that no import column takes (unknown or mapped to ignore)."""
    unchecked: list[int] = field(default_factory=list)
    """Rows that landed with no contact and no customer number: nothing to tell a
    duplicate by, so possible duplicates of files already there (or of each other)."""
    created_customers: int = 0
    """Customers an order import created for unknown customer numbers."""
    updated: int = 0
    """Rows that changed what is already there: products matched by SKU, customers by
    customer number (fields the row gives that differ, new contact points or a new note).
    Counted in `accepted` too."""
    dry_run: bool = False

    @property
    def seen(self) -> int:
        return self.accepted + self.existing + len(self.rejected)


Progress = Callable[[int], None]
CUSTOMER_NUMBER_LIMIT = PLAIN_LIMITS["customer_number"]


def _owner_and_team(
    row: SourceRow, default_owner: str | None, default_team: str | None
) -> tuple[str | None, str | None]:
    """The owner and team a customer row lands with: its own cells, else the defaults."""
    owner, team = (row.values.get(k) for k in ("owner_id", "team"))
    return (
        (cell_text(owner) if owner is not None else None) or default_owner,
        (cell_text(team) if team is not None else None) or default_team,
    )


def _new_ref_column(ref: str) -> str:
    """What an unknown customer_ref becomes on a customer `--create-customers` makes:
    its phone if it is a valid phone number, else its customer number."""
    try:
        NORMALISERS["phone"](ref)
    except ValidationError:
        return "customer_number"
    return "phone"


def _earliest(orders: list[dict[str, Any]]) -> dict[uuid.UUID, datetime]:
    """Each customer's earliest order among `orders`."""
    first: dict[uuid.UUID, datetime] = {}
    for order in orders:
        cid, at = order["customer_id"], order["ordered_at"]
        if cid not in first or at < first[cid]:
            first[cid] = at
    return first


@dataclass(frozen=True, slots=True)
class DuplicateRule:
    """When an imported row's contact already belongs to a file, whether the row may be
    refused for it: only for a file in `known` (the files the importer may know exist) on
    a field in `clear` (the contacts it reads in clear). Any other match lands the row
    and raises a duplicate flag, so a file of probe rows learns nothing it could not look
    up. A re-import likewise compares a row with its file (fields, contact points, the
    note) only where the importer reads them in clear, unless `compare_all`. The CLI
    operator holds the keyring and the database: everything is known to it."""

    known: ColumnElement[bool]
    clear: frozenset[str]
    compare_all: bool = False


OPERATOR_RULE = DuplicateRule(known=true(), clear=frozenset(BLIND_INDEXED), compare_all=True)


@dataclass
class ImportRun:
    """One file's import, batch after batch: the report so far and what earlier batches
    of the file used (contacts, customer and order numbers), so duplicates within the
    file are found whether the batches share a transaction or each commits on its own."""

    kind: str
    report: ImportReport
    plan: ColumnPlan
    default_owner: str | None = None
    default_team: str | None = None
    minimal: bool = False
    contacts: dict[tuple[str, str], int] = field(default_factory=dict)
    numbers: dict[str, int] = field(default_factory=dict)
    order_refs: dict[str, int] = field(default_factory=dict)
    # How many orders without a number had each (customer, time, amount) so far.
    derived: dict[str, int] = field(default_factory=dict)
    # Which existing files may refuse a row (the importer's knowledge): see DuplicateRule.
    duplicates: DuplicateRule = OPERATOR_RULE
    # The importer and its customer/create row scope: every customer row lands inside it.
    within: tuple[Caller, RowScope] | None = None
    # Orders: the customers orders may be imported for (the importer's order/create
    # scope) and whether unknown customer numbers become new customers.
    order_scope: ColumnElement[bool] = field(default_factory=true)
    create_customers: bool = False
    # Owners named in the sheet → users (loaded from the database on the first batch).
    owners: OwnerBook | None = None
    owner_names: dict[str, str] = field(default_factory=dict)
    owner_logins: dict[str, str | None] = field(default_factory=dict)
    consent_by: str | None = None
    # The importer's customer/update row scope, asked once (None: it may not update).
    update_scope: RowScope | None = None
    update_asked: bool = False

    def source_rows(self, rows: Iterator[SheetRow]) -> Iterator[SourceRow]:
        """A sheet's rows as cells by import column (ignored columns left out)."""
        for row in rows:
            values = self.plan.rename(row.cells)
            if values:
                yield SourceRow(row.number, values)


def batches(rows: Iterator[SourceRow], size: int) -> Iterator[list[SourceRow]]:
    while chunk := list(islice(rows, size)):
        yield chunk


def order_batches(rows: Iterator[SourceRow], size: int) -> Iterator[list[SourceRow]]:
    """Batches of about `size` rows that never split the lines of one order: a batch
    grows past `size` while the next row carries the same order number as the last."""
    chunk: list[SourceRow] = []
    for row in rows:
        if len(chunk) >= size and _order_key(row) != _order_key(chunk[-1]):
            yield chunk
            chunk = []
        chunk.append(row)
    if chunk:
        yield chunk


def _order_key(row: SourceRow) -> str | None:
    ref = row.values.get("order_ref")
    return None if ref is None else cell_text(ref)


def new_customer(text: dict[str, str], birthday: date | None, now: datetime) -> NewCustomer:
    """A row's cells (as text, the birthday parsed) as a new customer created `now`.
    `seal_new` takes the owner and team apart, where the importer's defaults apply."""
    return NewCustomer(
        name=text["name"],
        customer_number=text.get("customer_number"),
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


@dataclass(frozen=True, slots=True)
class CustomerRow:
    """A customer row ready to land: its sealed file and the consents it brings."""

    number: int
    sealed: SealedCustomer
    consents: tuple[tuple[str, datetime, str], ...] = ()
    extras: RowExtras | None = None


@dataclass(frozen=True, slots=True)
class RowExtras:
    """What a customer row brings for the stores next to the file: contact points (each
    as given and in its stored form, to tell a re-import's repeat) and a note."""

    points: tuple[tuple[NewContactPoint, tuple[str, str | None, str | None]], ...] = ()
    note: str | None = None

    def __bool__(self) -> bool:
        return bool(self.points) or self.note is not None


@dataclass(frozen=True, slots=True)
class MatchedRow:
    """A row whose customer number is a file already there (a re-import)."""

    number: int
    customer_id: uuid.UUID
    row: SourceRow
    extras: RowExtras


class ImportService:
    def __init__(
        self,
        customers: CustomerService,
        vault: Vault,
        now: Callable[[], datetime],
        *,
        contacts: ContactPointService | None = None,
        notes: NoteService | None = None,
    ):
        self.customers = customers
        self.vault = vault
        self.now = now
        self.contacts = contacts or ContactPointService(vault)
        self.notes = notes or NoteService(vault)

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
        mapping: Mapping[str, str] | None = None,
        default_owner: str | None = None,
        default_team: str | None = None,
        duplicates: DuplicateRule = OPERATOR_RULE,
        within: tuple[Caller, RowScope] | None = None,
        order_scope: ColumnElement[bool] | None = None,
        create_customers: bool = False,
        owners: Mapping[str, str] | None = None,
        owner_logins: Mapping[str, str | None] | None = None,
    ) -> ImportRun:
        """Match the header of a `customers`, `orders` or `products` file to import
        columns (synonyms, or `mapping`: header key → column) and begin its import.
        Columns no import column takes are reported, not refused; a missing required
        column refuses the file (BAD_HEADER)."""
        plan = plan_columns(kind, header, mapping)
        report = ImportReport(kind, ignored_columns=list(plan.ignored))
        run = ImportRun(
            kind,
            report,
            plan,
            default_owner=default_owner,
            default_team=default_team,
            duplicates=duplicates,
            within=within,
            create_customers=create_customers,
            owner_names=dict(owners or {}),
            owner_logins=dict(owner_logins or {}),
        )
        if order_scope is not None:
            run.order_scope = order_scope
        if kind == CUSTOMERS:
            require_columns(plan, REQUIRED_CUSTOMER_COLUMNS)
        elif kind == ORDERS:
            run.minimal = "product_sku" not in plan.present
            require_columns(plan, MINIMAL_ORDER_COLUMNS if run.minimal else FULL_ORDER_COLUMNS)
        elif kind == PRODUCTS:
            require_columns(plan, {"sku"})
        else:
            raise ValidationError("imports are of customers, orders or products")
        return run

    async def land(
        self, session: AsyncSession, run: ImportRun, chunk: list[SourceRow], audit: AuditRecorder
    ) -> None:
        """Validate one batch of rows and write its valid rows in a savepoint (all of them
        or none); the rows that landed are noted on `audit`. The caller commits."""
        if run.kind == CUSTOMERS:
            await self._customer_batch(session, run, chunk, audit)
        elif run.kind == ORDERS:
            await self._order_batch(session, run, chunk, audit)
        else:
            await self._product_batch(session, run, chunk, audit)
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
        dry_run: bool = False,
    ) -> ImportReport:
        """Every batch of `rows` inside `session`'s transaction; with `strict`, one
        rejected row rolls back the whole file and nothing is noted on `audit`; a dry run
        rolls back whatever it did and reports what would have landed."""
        report = run.report
        outer = await session.begin_nested()
        mark = audit.mark()
        split = order_batches if run.kind == ORDERS else batches
        try:
            for chunk in split(rows, batch_size):
                await self.land(session, run, chunk, audit)
                if progress:
                    progress(report.seen)
        except CustosError:
            # A refused import (a row outside the importer's scope) writes nothing at all.
            await outer.rollback()
            audit.discard_changes_since(mark)
            raise
        if dry_run:
            await outer.rollback()
            audit.discard_changes_since(mark)
            report.written = False
            report.dry_run = True
            report.created_ids = []
            return report
        if strict and report.rejected:
            await outer.rollback()
            audit.discard_changes_since(mark)
            report.written = False
            report.accepted = 0
            report.created_ids = []
            return report
        await outer.commit()
        return report

    def start_by(
        self,
        caller: Caller,
        kind: str,
        header: list[str],
        *,
        duplicates: DuplicateRule | None = None,
        mapping: Mapping[str, str] | None = None,
        create_customers: bool = False,
        owners: Mapping[str, str] | None = None,
        owner_logins: Mapping[str, str | None] | None = None,
    ) -> ImportRun:
        """Begin an import by `caller` (the API's uploader, the CLI operator): it needs
        import/create. Customer rows (and customers an order import creates) land within
        its customer/create row scope, owned by the caller when that scope is `own` (as
        `createCustomer` does); a row for an owner or team outside it refuses the whole
        import (OUT_OF_SCOPE). Orders need order/create and land only for customers in
        that scope; products need product/manage. `duplicates` defaults to what the caller
        may know exists."""
        caller.gate.require("import", "create")
        principal = caller.principal
        common: dict[str, Any] = {
            "mapping": mapping,
            "owners": owners,
            "owner_logins": owner_logins,
        }
        if kind == PRODUCTS:
            caller.gate.require("product", "manage")
            return self.start(kind, header, **common)
        within: tuple[Caller, RowScope] | None = None
        default_owner: str | None = None
        if kind == CUSTOMERS or create_customers:
            scope = caller.gate.row_scope("customer", "create")
            within = (caller, scope)
            default_owner = principal.subject if scope is RowScope.OWN else None
        order_scope = None
        if kind == ORDERS:
            order_scope = scope_predicate(caller.gate.row_scope("order", "create"), principal)
        rule = duplicates or DuplicateRule(
            known=self.customers.known_scope(caller), clear=self.customers.clear_contacts(caller)
        )
        run = self.start(
            kind,
            header,
            default_owner=default_owner,
            default_team=principal.team,
            duplicates=rule,
            within=within,
            order_scope=order_scope,
            create_customers=create_customers,
            **common,
        )
        return run

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
        run = self.start_by(caller, CUSTOMERS, header)
        return await self.land_all(
            session,
            run,
            iter(rows),
            audit=caller.audit,
            batch_size=DEFAULT_BATCH,
            strict=strict,
            progress=None,
        )

    async def refresh_statistics(self, session: AsyncSession) -> None:
        """After a bulk load: let the planner see what landed (`custos import`)."""
        await ImportRepository(session).refresh_statistics()

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
        run = self.start(CUSTOMERS, header, default_owner=default_owner, default_team=default_team)
        return await self.land_all(
            session,
            run,
            rows,
            audit=audit,
            batch_size=batch_size,
            strict=strict,
            progress=progress,
        )

    async def _owner_book(self, session: AsyncSession, run: ImportRun) -> OwnerBook:
        """The users a sheet's owner cells may name: those the database knows (console
        users, owners of files, holders of role assignments) and those the import's owner
        mapping names."""
        if run.owners is None:
            known, disabled = await ImportRepository(session).known_users()
            # A mapping's `=login` without `@team` names a user, not a team: the team the
            # database knows for that login stays.
            mapped = {
                login: team if team is not None else known.get(login)
                for login, team in run.owner_logins.items()
            }
            run.owners = OwnerBook(
                logins={**known, **mapped}, names=run.owner_names, disabled=disabled
            )
        return run.owners

    def _resolve_owner(self, book: OwnerBook, row: SourceRow) -> SourceRow:
        """The row with its owner cell read as a user's login and, when the row names no
        team, the team of that user. An owner who is no known user refuses the row:
        a file is never stored for an owner nobody signs in as."""
        cell = row.values.get("owner_id")
        if cell is None:
            return row
        found = book.resolve(cell_text(cell))
        if found is None:
            raise ValidationError("owner is not a known user (map it with --owner)")
        login, team = found
        values = {**row.values, "owner_id": login}
        if values.get("team") is None and team is not None:
            values["team"] = team
        return SourceRow(row.number, values)

    async def _customer_batch(
        self, session: AsyncSession, run: ImportRun, chunk: list[SourceRow], audit: AuditRecorder
    ) -> None:
        report, seen = run.report, run.contacts
        book = await self._owner_book(session, run)
        if any(k in run.plan.present for k in CONSENT_COLUMNS) and run.within is not None:
            # Consents an import records are the importer's statements, as a grant is.
            run.within[0].gate.require("consent", "create")
        numbers_given = {
            cell_text(r.values["customer_number"]) for r in chunk if "customer_number" in r.values
        }
        known_numbers = await CustomerRepository(session).ids_by_number(
            numbers_given, run.duplicates.known
        )
        all_numbers = await CustomerRepository(session).ids_by_number(numbers_given, true())
        valid: list[CustomerRow] = []
        matched: list[MatchedRow] = []
        # New customers' shred secrets are made durable together when sealing ends, before
        # anything refers to them (one key-store commit per batch, not one per row).
        with self.vault.keys.bulk():
            for source in chunk:
                try:
                    row = self._resolve_owner(book, source)
                except ValidationError as error:
                    report.rejected.append(RejectedRow(source.number, error.message))
                    continue
                if run.within is not None:
                    self._refuse_outside(run.within, row, run.default_owner, run.default_team)
                try:
                    data, owner, team = self._row_data(row, run.default_owner, run.default_team)
                    given = (data.customer_number or "").strip()
                    if given in known_numbers and given not in run.numbers:
                        # A re-import: the file is there already; what the row changes
                        # is an update (`_update_matched`). Checked as a new file would
                        # be, without making a data key nothing will use.
                        self.customers.check_new(data)
                        self._consents(row, data.created_at or self.now(), run)
                        extras = self._row_extras(row)
                        run.numbers[given] = row.number
                        matched.append(MatchedRow(row.number, known_numbers[given], row, extras))
                        continue
                    sealed = self.customers.seal_new(data, owner_id=owner, team=team)
                    consents = self._consents(row, sealed.customer.created_at, run)
                    extras = self._row_extras(row)
                except ValidationError as error:
                    report.rejected.append(RejectedRow(row.number, error.message))
                    continue
                number = sealed.customer.customer_number
                if number is not None:
                    if number in run.numbers:
                        report.rejected.append(
                            RejectedRow(
                                row.number,
                                f"duplicate customer number of row {run.numbers[number]} "
                                "in the file",
                            )
                        )
                        continue
                    if number in all_numbers:
                        report.rejected.append(
                            RejectedRow(row.number, "this customer number is already in use")
                        )
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
                if sealed.customer.owner_id in book.disabled:
                    report.rejected.append(
                        RejectedRow(row.number, "the owner's console account is disabled")
                    )
                    continue
                if number is not None:
                    run.numbers[number] = row.number
                valid.append(CustomerRow(row.number, sealed, consents, extras))
        await self._land_customers(session, run, valid, audit)
        await self._update_matched(session, run, matched, audit)

    async def _land_customers(
        self,
        session: AsyncSession,
        run: ImportRun,
        valid: list[CustomerRow],
        audit: AuditRecorder,
    ) -> None:
        """Check new files' contacts against the database and write those that pass (with
        their consents) in one savepoint."""
        report = run.report
        existing = await self._existing_contacts(session, [c.sealed for c in valid])
        inside = await CustomerRepository(session).readable_ids(
            {m for ids in existing.values() for m in ids}, run.duplicates.known
        )
        landing: list[CustomerRow] = []
        flags: list[tuple[uuid.UUID, uuid.UUID, str]] = []
        for candidate in valid:
            sealed = candidate.sealed
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
                    RejectedRow(candidate.number, f"a customer with this {taken[0]} already exists")
                )
            else:
                landing.append(candidate)
                flags += unseen
        flag_ids: list[uuid.UUID] = []
        consents: list[dict[str, Any]] = [
            {
                "id": new_id(),
                "customer_id": c.sealed.customer.id,
                "purpose": purpose,
                "granted_at": at,
                "source": source,
                "recorded_by": run.consent_by or "import",
            }
            for c in landing
            for purpose, at, source in c.consents
        ]

        by = audit.principal.subject
        now = self.now()
        points: list[dict[str, Any]] = []
        notes: list[dict[str, Any]] = []
        for c in landing:
            if c.extras:
                p, n = self._sealed_extras(
                    c.sealed.data_key, c.sealed.customer.id, c.extras, by=by, at=now
                )
                points += p
                notes += n

        async def write() -> None:
            await ImportRepository(session).add_customers(
                [
                    {
                        col.key: getattr(c.sealed.customer, col.key)
                        for col in Customer.__table__.columns
                    }
                    for c in landing
                ],
                [
                    {
                        "customer_id": c.sealed.customer.id,
                        "wrapped_dek": c.sealed.key.wrapped_dek,
                        "kek_version": c.sealed.key.kek_version,
                        "created_at": c.sealed.customer.created_at,
                    }
                    for c in landing
                ],
                [t for c in landing for t in c.sealed.name_tokens],
                consents,
            )
            await ContactPointRepository(session).add_many(points)
            await NoteRepository(session).add_many(notes)
            flag_ids[:] = await self.customers.flag_duplicates(session, audit, flags)

        if await self.land_batch(session, report, [c.number for c in landing], write):
            for c in landing:
                report.created_ids.append(c.sealed.customer.id)
                audit.change("customer", "import", c.sealed.customer.id, c.sealed.sealed_fields)
                if c.sealed.customer.customer_number is None and not any(
                    c.sealed.contacts.values()
                ):
                    report.unchecked.append(c.number)
            for consent in consents:
                audit.change("consent", "import", consent["id"], ["purpose", "source"])
            self._audit_extras(audit, points, notes)
            for flag_id in flag_ids:
                audit.change(DUPLICATE_FLAG, "import", flag_id, list(FLAG_FIELDS))

    def _row_extras(self, row: SourceRow) -> RowExtras:
        """A row's contact points and note, checked as the contact and note services
        check them; a bad cell refuses the row with a message that never repeats it."""
        v = row.values
        checks: list[tuple[NewContactPoint, str, str]] = []
        if "landline" in v:
            point = NewContactPoint(LANDLINE, value=cell_text(v["landline"]))
            checks.append((point, "landline is not a valid landline number", "INVALID_PHONE"))
        if "wechat" in v:
            point = NewContactPoint(WECHAT, value=cell_text(v["wechat"]))
            checks.append(
                (
                    point,
                    "wechat is not a WeChat ID (6 to 20 letters, digits, _ or -, "
                    "starting with a letter)",
                    "INVALID_WECHAT_ID",
                )
            )
        person = cell_text(v["contact_person"]) if "contact_person" in v else None
        phone = cell_text(v["contact_person_phone"]) if "contact_person_phone" in v else None
        if phone is not None and person is None:
            raise ValidationError("contact person phone needs a contact person")
        if person is not None:
            if len(person) > MAX_PERSON_NAME:
                raise ValidationError(f"contact person is longer than {MAX_PERSON_NAME} characters")
            point = NewContactPoint(CONTACT_PERSON, value=phone, person_name=person)
            checks.append(
                (point, "contact person phone is not a valid phone number", "INVALID_PHONE")
            )
        checked = []
        for point, message, code in checks:
            try:
                checked.append((point, canonical(point)))
            except ValidationError:
                raise ValidationError(message, code=code) from None
        note: str | None = None
        if "note" in v:
            try:
                note = note_body(cell_text(v["note"]))
            except ValidationError:
                raise ValidationError(f"note is longer than {MAX_BODY} characters") from None
        return RowExtras(tuple(checked), note)

    def _sealed_extras(
        self,
        key: Any,
        customer_id: uuid.UUID,
        extras: RowExtras,
        *,
        by: str,
        at: datetime,
        skip_points: Collection[tuple[str, str | None, str | None]] = (),
        skip_notes: Collection[str] = (),
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """A row's points and note sealed by the contact and note services, as rows for a
        batch insert; those already on the file (`skip_*`, a re-import) left out."""
        points = [
            self.contacts.sealed_row(key, customer_id, point, created_by=by, at=at)
            for point, stored in extras.points
            if stored not in skip_points
        ]
        notes = (
            [self.notes.sealed_row(key, customer_id, extras.note, written_by=by, at=at)]
            if extras.note is not None and extras.note not in skip_notes
            else []
        )
        return points, notes

    @staticmethod
    def _audit_extras(
        audit: AuditRecorder, points: list[dict[str, Any]], notes: list[dict[str, Any]]
    ) -> None:
        for point in points:
            written = [c for c in ("value", "person_name") if point[c] is not None]
            audit.change(CONTACT_POINT, "import", point["id"], sorted([*written, "kind"]))
        for note in notes:
            audit.change(CUSTOMER_NOTE, "import", note["id"], ["body"])

    def _update_scope(self, run: ImportRun, caller: Caller) -> RowScope | None:
        """The importer's customer/update row scope, asked of the gate once per import
        (a refusal is audited once); None when it may not update customers."""
        if not run.update_asked:
            run.update_asked = True
            try:
                run.update_scope = caller.gate.row_scope("customer", "update")
            except ForbiddenError:
                run.update_scope = None
        return run.update_scope

    async def _update_matched(
        self,
        session: AsyncSession,
        run: ImportRun,
        matched: list[MatchedRow],
        audit: AuditRecorder,
    ) -> None:
        """Rows of files already there (by customer number, among those the importer may
        know exist): the fields a row gives that differ are changed through the customer
        service's update (validated, resealed, name tokens refreshed, audited by field
        name), within the importer's customer/update scope; contact points and a note the
        file does not have yet are added. A row that changes nothing counts as existing.
        Without customer/update, or for a file outside that scope, the row is refused:
        never a silent update, never one around the policy."""
        if not matched:
            return
        report = run.report
        if run.within is None:
            report.existing += len(matched)
            return
        caller = run.within[0]
        scope = self._update_scope(run, caller)
        if scope is None:
            report.rejected.extend(
                RejectedRow(m.number, "changing a customer already there needs customer/update")
                for m in matched
            )
            return
        predicate = scope_predicate(scope, caller.principal)
        files = await ImportRepository(session).files_with_keys(
            {m.customer_id for m in matched}, predicate
        )
        inside = set(files)
        stored_points: dict[uuid.UUID, list[Any]] = {}
        for point_row in await ContactPointRepository(session).of_customers(inside, predicate):
            stored_points.setdefault(point_row[0].customer_id, []).append(point_row[0])
        stored_notes: dict[uuid.UUID, list[Any]] = {}
        for note_row in await NoteRepository(session).of_customers(inside, predicate):
            stored_notes.setdefault(note_row[0].customer_id, []).append(note_row[0])
        book = run.owners or OwnerBook()
        by = audit.principal.subject
        # A row is reported as already there only if the importer reads in clear all it
        # gives: a row giving a field (or a point, a note) it may not see is reported as
        # an update whether or not the value differs, or the answer would confirm a
        # guess of the hidden value. What is written is still only what differs.
        every = run.duplicates.compare_all
        unseen = frozenset(
            f for f in EDITABLE if not every and not self.customers.reads_in_clear(caller, f)
        )
        points_unseen = not every and not self.contacts.reads_in_clear(caller)
        notes_unseen = not every and not self.notes.reads_in_clear(caller)
        for m in matched:
            if m.customer_id not in inside:
                # A file the importer may know exists but not change: refused, recorded.
                caller.gate.not_found("customer", "update", m.customer_id)
                report.rejected.append(
                    RejectedRow(m.number, "this customer is outside your scope to update")
                )
                continue
            customer, stored = files[m.customer_id]
            key = self.vault.open_data_key(customer.id, stored.kek_version, stored.wrapped_dek)
            try:
                changes = self._changes(m.row, customer, key)
            except (ValidationError, VaultError):
                report.rejected.append(RejectedRow(m.number, "this customer cannot be updated"))
                continue
            if changes.get("owner_id") in book.disabled:
                report.rejected.append(
                    RejectedRow(m.number, "the owner's console account is disabled")
                )
                continue
            have_points = {
                opened
                for point in stored_points.get(customer.id, [])
                if (opened := self.contacts.opened(key, point)) is not None
            }
            now = self.now()
            points, notes = self._sealed_extras(
                key,
                customer.id,
                m.extras,
                by=by,
                at=now,
                skip_points=have_points,
                skip_notes=self.notes.current_texts(key, stored_notes.get(customer.id, [])),
            )
            if len(stored_points.get(customer.id, [])) + len(points) > MAX_POINTS:
                report.rejected.append(
                    RejectedRow(m.number, f"a customer has at most {MAX_POINTS} contact points")
                )
                continue
            if notes and len({n.note_id for n in stored_notes.get(customer.id, [])}) >= MAX_NOTES:
                report.rejected.append(
                    RejectedRow(m.number, f"a customer has at most {MAX_NOTES} notes")
                )
                continue
            if not changes and not points and not notes:
                given = set(m.row.values) | ({"phone"} if "landline" in m.row.values else set())
                if (
                    given & unseen
                    or (points_unseen and m.extras.points)
                    or (notes_unseen and m.extras.note is not None)
                ):
                    report.accepted += 1
                    report.updated += 1
                else:
                    report.existing += 1
                continue
            mark = audit.mark()
            try:
                # One savepoint per row: the customer service may refuse one row's change
                # (a contact another file has, an owner outside the update scope) alone.
                async with session.begin_nested():
                    if changes:
                        await self.customers.update(
                            session, caller, customer.id, cast(CustomerChanges, changes)
                        )
                    await ContactPointRepository(session).add_many(points)
                    await NoteRepository(session).add_many(notes)
            except CustosError as error:
                audit.discard_changes_since(mark)
                report.rejected.append(RejectedRow(m.number, error.message))
                continue
            except SQLAlchemyError:
                audit.discard_changes_since(mark)
                report.rejected.append(
                    RejectedRow(m.number, "the database refused this row's change")
                )
                continue
            self._audit_extras(audit, points, notes)
            report.accepted += 1
            report.updated += 1

    def _changes(self, row: SourceRow, customer: Customer, key: Any) -> dict[str, Any]:
        """The editable fields `row` gives whose value differs from the file's, in the
        form `CustomerService.update` takes. Blank cells change nothing; a landline fills
        the phone only of a file that has none; customer since, tier, lifecycle and
        consents are set when a file is created, never by a re-import."""
        values = {k: v for k, v in row.values.items() if k in EDITABLE}
        if "phone" not in values and "landline" in row.values and customer.phone is None:
            values["phone"] = row.values["landline"]
        changes: dict[str, Any] = {}
        for name, cell in values.items():
            given: Any
            if name == "birthday":
                given = cell_instant(cell, "birthday").date()
            else:
                given = cell_text(cell)
                if name in NORMALISERS:
                    given = NORMALISERS[name](given)
                elif name in CHOICES:
                    given = given.lower()
            current: Any = getattr(customer, name)
            if name in SEALED_CUSTOMER_FIELDS and current is not None:
                current = self.vault.reveal(key, FieldRef("customers", name, customer.id), current)
                if name == "birthday":
                    current = date.fromisoformat(current)
            if given != current:
                changes[name] = given
        return changes

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
        data, owner, team = self._row_data(row, default_owner, default_team)
        return self.customers.seal_new(data, owner_id=owner, team=team)

    def _row_data(
        self, row: SourceRow, default_owner: str | None, default_team: str | None
    ) -> tuple[NewCustomer, str | None, str | None]:
        """A row's cells as a new customer with the owner and team it lands with; a bad
        cell refuses the row."""
        values = {k: v for k, v in row.values.items() if k in CUSTOMER_COLUMNS}
        if "name" not in values:
            raise ValidationError("name is missing")
        if "phone" not in values and "landline" in row.values:
            values["phone"] = row.values["landline"]
        born: date | None = None
        if (birthday := values.pop("birthday", None)) is not None:
            born = cell_instant(birthday, "birthday").date()
        now = self.now()
        since = now
        if (written := values.pop("created_at", None)) is not None:
            since = cell_instant(written, "customer since")
            if since > now:
                raise ValidationError("customer since is in the future", code="INVALID_DATE")
        for name in ("tier", "lifecycle"):
            if name in values:
                values[name] = cell_segment(name, values[name])
        text = {k: cell_text(v) for k, v in values.items()}
        for name, value in text.items():
            # Plain columns have a length limit the database enforces (PostgreSQL): refuse
            # the row here rather than let one long value sink its whole batch.
            limit = PLAIN_LIMITS.get(name)
            if limit is not None and len(value) > limit:
                raise ValidationError(f"{name} is longer than {limit} characters")
        owner, team = _owner_and_team(row, default_owner, default_team)
        return new_customer(text, born, since), owner, team

    def _consents(
        self, row: SourceRow, since: datetime, run: ImportRun
    ) -> tuple[tuple[str, datetime, str], ...]:
        """The purposes a row's consent columns grant, each with its proof: when (the
        consent time column, else when the file became a customer's) and where (the
        consent source column, else `import`). A "no" records nothing."""
        v = row.values
        granted = [
            purpose
            for column, purpose in CONSENT_COLUMNS.items()
            if column in v and cell_flag(v[column], column)
        ]
        if not granted:
            return ()
        at = since
        if "consent_at" in v:
            at = cell_instant(v["consent_at"], "consent time")
            if at > self.now():
                raise ValidationError("consent time is in the future", code="INVALID_DATE")
        source = cell_text(v["consent_source"]) if "consent_source" in v else "import"
        if not 1 <= len(source) <= CONSENT_SOURCE_LIMIT:
            raise ValidationError(f"consent source is 1 to {CONSENT_SOURCE_LIMIT} characters")
        if run.within is not None:
            run.consent_by = run.within[0].principal.subject
        return tuple((purpose, at, source) for purpose in granted)

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
        """Full rows (customer_ref, product_sku, quantity?, unit_price?, date, order_ref?,
        status?) make orders, the lines of one order_ref one order; minimal rows
        (customer_ref, date, amount) make an order without items for analysis. Imported
        orders earn no points. In the caller's one transaction."""
        run = self.start(ORDERS, header)
        return await self.land_all(
            session,
            run,
            rows,
            audit=audit,
            batch_size=batch_size,
            strict=strict,
            progress=progress,
        )

    async def import_orders_as(
        self,
        session: AsyncSession,
        caller: Caller,
        rows: list[SourceRow],
        *,
        strict: bool,
        create_customers: bool,
        max_rows: int,
    ) -> ImportReport:
        """An order upload by an API caller: import/create and order/create, customers
        found (and, with `create_customers`, created) only within its scope."""
        caller.gate.require("import", "create")
        if len(rows) > max_rows:
            raise ValidationError(f"at most {max_rows} rows per upload; use the CLI for more")
        header = sorted({k for r in rows for k in r.values})
        run = self.start_by(caller, ORDERS, header, create_customers=create_customers)
        return await self.land_all(
            session,
            run,
            iter(rows),
            audit=caller.audit,
            batch_size=DEFAULT_BATCH,
            strict=strict,
            progress=None,
        )

    async def _order_batch(
        self, session: AsyncSession, run: ImportRun, chunk: list[SourceRow], audit: AuditRecorder
    ) -> None:
        report, minimal = run.report, run.minimal
        now = self.now()
        parsed: list[tuple[int, dict[str, Any]]] = []
        for row in chunk:
            try:
                parsed.append((row.number, self._order_row(row, minimal, now)))
            except ValidationError as error:
                report.rejected.append(RejectedRow(row.number, error.message))
        for _, p in parsed:
            if p["order_ref"] is None:
                p["order_ref"] = self._derived_ref(run, p)
        customers = await self._resolve_customers(
            session, [p["ref"] for _, p in parsed], run.order_scope
        )
        for _, p in parsed:
            kind, _value = p["ref"]
            if kind != "id":
                # A customer found by a contact value or number: a lookup, hit or miss.
                found = customers.get(p["ref"])
                audit.lookup(
                    "customer",
                    "lookup",
                    "customer_number" if kind == "number" else kind,
                    hit=found is not None,
                    record_ids=[found] if found is not None else [],
                )
        if run.create_customers:
            await self._create_missing(session, run, parsed, customers, audit)
        products = await ProductRepository(session).by_skus(
            {p["sku"] for _, p in parsed if p.get("sku")}
        )
        taken = await OrderRepository(session).external_refs_taken(
            {p["order_ref"] for _, p in parsed}
        )
        drafts: dict[str, dict[str, Any]] = {}
        for number, p in parsed:
            customer_id = customers.get(p["ref"])
            order_ref: str = p["order_ref"]
            if order_ref in run.order_refs:
                report.rejected.append(
                    RejectedRow(
                        number,
                        f"order_ref of an order of row {run.order_refs[order_ref]} "
                        "(lines of one order go together)",
                    )
                )
                continue
            if order_ref in taken:
                # Imported before (this file again, or a file overlapping it): kept as is.
                report.existing += 1
                continue
            if customer_id is None:
                report.rejected.append(RejectedRow(number, "unknown customer"))
                continue
            line: dict[str, Any] | None = None
            if not minimal:
                product = products.get(p["sku"])
                if product is None:
                    report.rejected.append(RejectedRow(number, "unknown product"))
                    continue
                price = p["unit_price"] if p["unit_price"] is not None else product.unit_price
                line = {
                    "id": new_id(),
                    "customer_id": customer_id,
                    "product_id": product.id,
                    "quantity": p["quantity"],
                    "unit_price": price,
                    "unit_cost": product.unit_cost,
                    "line_total": price * p["quantity"],
                }
            draft = drafts.get(order_ref)
            if draft is None:
                draft = drafts[order_ref] = {
                    "id": new_id(),
                    "customer_id": customer_id,
                    "date": p["date"],
                    "status": p["status"],
                    "amount": p.get("amount"),
                    "items": [],
                    "rows": [],
                    "first": number,
                }
            elif (draft["customer_id"], draft["status"]) != (customer_id, p["status"]):
                report.rejected.append(
                    RejectedRow(
                        number,
                        f"a line of the order of row {draft['first']} with another customer "
                        "or status",
                    )
                )
                continue
            elif minimal:
                report.rejected.append(
                    RejectedRow(number, f"duplicate order_ref of row {draft['first']} in the file")
                )
                continue
            if line is not None:
                draft["items"].append(line)
            draft["rows"].append(number)
        orders: list[dict[str, Any]] = []
        items: list[dict[str, Any]] = []
        events: list[dict[str, Any]] = []
        numbers: list[int] = []
        for order_ref, draft in drafts.items():
            order_id = draft["id"]
            total, cost = draft["amount"], Decimal("0.00")
            if not minimal:
                total = sum((i["line_total"] for i in draft["items"]), Decimal("0.00"))
                cost = sum(
                    (i["unit_cost"] * i["quantity"] for i in draft["items"]), Decimal("0.00")
                )
                items += [{**i, "order_id": order_id} for i in draft["items"]]
            orders.append(
                {
                    "id": order_id,
                    "customer_id": draft["customer_id"],
                    "ordered_at": draft["date"],
                    "status": draft["status"],
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
                    "customer_id": draft["customer_id"],
                    "status": draft["status"],
                    "at": draft["date"],
                    "actor": audit.principal.subject,
                    "tracking_note": "imported",
                }
            )
            numbers += draft["rows"]
        since = _earliest(orders)
        moved: list[uuid.UUID] = []

        async def write() -> None:
            repo = ImportRepository(session)
            await repo.add_orders(orders, items, events)
            moved[:] = await repo.customers_since(since)

        if await self.land_batch(session, report, numbers, write):
            for order_ref, draft in drafts.items():
                run.order_refs[order_ref] = draft["first"]
            for o in orders:
                report.created_ids.append(o["id"])
                audit.change("order", "import", o["id"], ["status", "total"])
            for customer_id in moved:
                audit.change("customer", "import", customer_id, ["created_at"])

    def _derived_ref(self, run: ImportRun, p: dict[str, Any]) -> str:
        """The order number of an order the file gives none: what the order is (customer,
        time, amount or product and quantity) and how many such orders the file had
        before it, hashed. The same file imported again derives the same numbers."""
        what = "|".join(
            str(x)
            for x in (
                *p["ref"],
                p["date"].isoformat(),
                p.get("amount"),
                p.get("sku"),
                p.get("quantity"),
                p.get("unit_price"),
            )
        )
        seen = run.derived.get(what, 0)
        run.derived[what] = seen + 1
        digest = hashlib.sha256(f"{what}#{seen}".encode()).hexdigest()[:40]
        return DERIVED_REF_PREFIX + digest

    async def _create_missing(
        self,
        session: AsyncSession,
        run: ImportRun,
        parsed: list[tuple[int, dict[str, Any]]],
        customers: dict[tuple[str, str], uuid.UUID],
        audit: AuditRecorder,
    ) -> None:
        """New customers for the customer numbers (or phones) of a purchase log that no
        file has: named by the row's customer name, else by the number; customers since
        their first order in the batch; within the importer's customer/create scope."""
        wanted: dict[tuple[str, str], tuple[int, str | None, datetime]] = {}
        for number, p in parsed:
            ref = p["ref"]
            if ref in customers or ref[0] not in ("number", "phone"):
                continue
            first = wanted.get(ref)
            if first is None or p["date"] < first[2]:
                name = p.get("customer_name") or (first[1] if first else None)
                wanted[ref] = (first[0] if first else number, name, p["date"])
        if not wanted:
            return
        if run.within is not None:
            run.within[0].gate.require("customer", "create")
        rows = [
            SourceRow(
                number,
                {"name": name or value, _new_ref_column(value): value, "created_at": since},
            )
            for (kind, value), (number, name, since) in wanted.items()
        ]
        # The new files are checked and landed as a customer import's rows are, with a
        # report of their own: a purchase log's rows are reported as orders.
        sub = ImportReport(CUSTOMERS)
        shadow = ImportRun(
            CUSTOMERS,
            sub,
            run.plan,
            duplicates=run.duplicates,
            within=run.within,
            contacts=run.contacts,
            numbers=run.numbers,
        )
        with self.vault.keys.bulk():
            valid = []
            for row in rows:
                if run.within is not None:
                    self._refuse_outside(run.within, row, run.default_owner, run.default_team)
                try:
                    valid.append(
                        CustomerRow(
                            row.number,
                            self._seal_row(row, run.default_owner, run.default_team),
                        )
                    )
                except ValidationError as error:
                    sub.rejected.append(RejectedRow(row.number, error.message))
        await self._land_customers(session, shadow, valid, audit)
        by_ref = {(kind, value): number for (kind, value), (number, _n, _s) in wanted.items()}
        created = {c.number: c.sealed.customer.id for c in valid}
        landed = set(sub.created_ids)
        for ref, number in by_ref.items():
            customer_id = created.get(number)
            if customer_id is not None and customer_id in landed:
                customers[ref] = customer_id
        run.report.created_customers += len(landed)

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
            "status": cell_status(v["status"]) if "status" in v else "delivered",
            "customer_name": cell_text(v["customer_name"]) if "customer_name" in v else None,
        }
        if parsed["order_ref"] is not None and len(parsed["order_ref"]) > ORDER_REF_LIMIT:
            raise ValidationError(f"order_ref is longer than {ORDER_REF_LIMIT} characters")
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
            quantity = int(cell_text(v.get("quantity", "1")))
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
        """A customer id, an email, or a customer number or phone (which of the two is
        decided by what the database holds: a number first)."""
        try:
            return ("id", str(uuid.UUID(text)))
        except ValueError:
            pass
        if "@" in text:
            try:
                return ("email", NORMALISERS["email"](text))
            except ValidationError:
                raise ValidationError(
                    "customer_ref is not a customer id, number, email or phone",
                    code="INVALID_CUSTOMER_REF",
                ) from None
        if not text or len(text) > CUSTOMER_NUMBER_LIMIT:
            raise ValidationError(
                "customer_ref is not a customer id, number, email or phone",
                code="INVALID_CUSTOMER_REF",
            )
        return ("number", text)

    async def _resolve_customers(
        self,
        session: AsyncSession,
        refs: list[tuple[str, str]],
        scope: ColumnElement[bool],
    ) -> dict[tuple[str, str], uuid.UUID]:
        """The customers `refs` name, among the live files inside `scope`. A `number`
        ref no file has as its customer number is tried as a phone; the answer is keyed
        by the ref as given (`("number", "13812345678")` found by phone included)."""
        repo = ImportRepository(session)
        found: dict[tuple[str, str], uuid.UUID] = {}
        ids = {uuid.UUID(v) for k, v in refs if k == "id"}
        for customer_id in await repo.existing_ids(ids, scope):
            found[("id", str(customer_id))] = customer_id
        numbers = {v for k, v in refs if k == "number"}
        by_number = await CustomerRepository(session).ids_by_number(numbers, scope)
        for number, customer_id in by_number.items():
            found[("number", number)] = customer_id
        phones: dict[str, set[str]] = {}
        for number in numbers - by_number.keys():
            try:
                phones.setdefault(NORMALISERS["phone"](number), set()).add(number)
            except ValidationError:
                continue
        emails = {v: {v} for k, v in refs if k == "email"}
        for f, wanted in (("email", emails), ("phone", phones)):
            if not wanted:
                continue
            indexes = {self.vault.blind_index(f, v) for v in wanted}
            matches: dict[str, set[uuid.UUID]] = {}
            for candidate in await repo.candidates(BLIND_INDEXED[f], indexes, scope):
                text = self._reveal(candidate, f)
                if text is not None and NORMALISERS[f](text) in wanted:
                    matches.setdefault(NORMALISERS[f](text), set()).add(candidate.id)
            for value, owners in matches.items():
                if len(owners) == 1:  # an ambiguous contact matches nobody
                    for given in wanted[value]:
                        found[("email" if f == "email" else "number", given)] = next(iter(owners))
        return found

    # Products -------------------------------------------------------------------------

    async def _product_batch(
        self, session: AsyncSession, run: ImportRun, chunk: list[SourceRow], audit: AuditRecorder
    ) -> None:
        """Products by SKU: a new SKU adds a product (name, category, unit price and cost
        required), a known one changes the cells the row gives (a re-import changes
        nothing). `active` 否/no deactivates: the product stays on past orders."""
        report = run.report
        repo = ProductRepository(session)
        skus = {cell_text(r.values["sku"]) for r in chunk if "sku" in r.values}
        known = await repo.by_skus(skus)
        seen: dict[str, int] = {}
        new_rows: list[dict[str, Any]] = []
        changes: list[tuple[int, uuid.UUID, dict[str, Any]]] = []
        for row in chunk:
            try:
                values = self._product_row(row)
            except ValidationError as error:
                report.rejected.append(RejectedRow(row.number, error.message))
                continue
            sku = values["sku"]
            if sku in seen:
                report.rejected.append(
                    RejectedRow(row.number, f"duplicate sku of row {seen[sku]} in the file")
                )
                continue
            seen[sku] = row.number
            product = known.get(sku)
            if product is None:
                missing = [
                    c for c in ("name", "category", "unit_price", "unit_cost") if c not in values
                ]
                if missing:
                    report.rejected.append(
                        RejectedRow(row.number, f"a new product needs {', '.join(missing)}")
                    )
                    continue
                is_new = values.get("is_new", False)
                new_rows.append(
                    {
                        "id": new_id(),
                        "is_new": is_new,
                        "active": values.get("active", True),
                        "launched_at": values.get("launched_at", self.now() if is_new else None),
                        **{k: v for k, v in values.items() if k not in ("is_new", "active")},
                        "row": row.number,
                    }
                )
                continue
            changed = {k: v for k, v in values.items() if getattr(product, k) != v}
            if not changed:
                report.existing += 1
            else:
                changes.append((row.number, product.id, changed))

        async def write() -> None:
            await repo.add_many([{k: v for k, v in r.items() if k != "row"} for r in new_rows])
            for _, product_id, changed in changes:
                await repo.change(product_id, changed)

        numbers = [r["row"] for r in new_rows] + [n for n, _, _ in changes]
        if await self.land_batch(session, report, numbers, write):
            for r in new_rows:
                report.created_ids.append(r["id"])
                audit.change("product", "import", r["id"], ["sku", "unit_price", "unit_cost"])
            for _, product_id, changed in changes:
                report.updated += 1
                audit.change("product", "import", product_id, sorted(changed))

    def _product_row(self, row: SourceRow) -> dict[str, Any]:
        v = row.values
        if "sku" not in v:
            raise ValidationError("sku is missing")
        values: dict[str, Any] = {}
        for name, limit in (("sku", 64), ("name", 200), ("category", 64)):
            if name in v:
                text = cell_text(v[name])
                if not 1 <= len(text) <= limit:
                    raise ValidationError(f"{name} is 1 to {limit} characters")
                values[name] = text
        for name in ("unit_price", "unit_cost"):
            if name in v:
                values[name] = cell_money(v[name], name)
        for name in ("is_new", "active"):
            if name in v:
                values[name] = cell_flag(v[name], name)
        if "launched_at" in v:
            values["launched_at"] = cell_instant(v["launched_at"], "launched_at")
        return values
