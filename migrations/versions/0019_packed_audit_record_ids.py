"""audit ledger: record ids packed on their access instead of a row per id

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-30 19:30:00

Every record id an access touched was a row of `audit_access_records` (~100 bytes an
id with its indexes, 99% of a 1,000-row list's audit). The ids move onto the access:
`record_ids uuid[]` with a GIN index on PostgreSQL, a BLOB of 16 bytes an id on SQLite
with `audit_record_keys` (an 8-byte key of each id, its access and its place, without a
rowid) as the index. Entry hashes cover the ids as a sorted list of strings, so the
move changes no hash: the ledger verifies the same before and after. The old table held
no order, so an access's ids are packed in id order. Both steps rewrite audit rows: the
append-only triggers are lifted for the copy inside this migration's transaction and put
back before it ends.
"""

from collections.abc import Sequence
from itertools import islice

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RAISE = "BEGIN SELECT RAISE(ABORT, 'audit rows are append-only'); END"
PG_APPEND_ONLY = "FOR EACH ROW EXECUTE FUNCTION custos_audit_append_only()"
BATCH = 5_000


def _key(record_id: bytes) -> int:
    """`server.data.models.audit.record_key`, fixed here as the migration wrote it."""
    return int.from_bytes(record_id[8:], "big", signed=True)


def _sqlite_triggers(table: str) -> None:
    for verb in ("UPDATE", "DELETE"):
        op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{verb.lower()}")
        op.execute(f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} {RAISE}")


def _batches(rows: sa.CursorResult[tuple[int, bytes]]) -> "Sequence[list[tuple[int, bytes]]]":
    """(access id, packed ids) per access, grouped from rows ordered by access then id."""
    out: list[list[tuple[int, bytes]]] = []
    current: int | None = None
    ids: list[bytes] = []
    batch: list[tuple[int, bytes]] = []
    for access_id, record_id in rows:
        if access_id != current:
            if current is not None:
                batch.append((current, b"".join(ids)))
            current, ids = access_id, []
        ids.append(bytes.fromhex(record_id))
    if current is not None:
        batch.append((current, b"".join(ids)))
    iterator = iter(batch)
    while chunk := list(islice(iterator, BATCH)):
        out.append(chunk)
    return out


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.add_column(
            "audit_accesses",
            sa.Column(
                "record_ids",
                postgresql.ARRAY(sa.Uuid()),
                nullable=False,
                server_default=sa.text("'{}'::uuid[]"),
            ),
        )
        op.execute("ALTER TABLE audit_accesses DISABLE TRIGGER audit_accesses_append_only")
        op.execute(
            "UPDATE audit_accesses AS a SET record_ids = r.ids FROM ("
            "SELECT access_id, array_agg(record_id ORDER BY record_id) AS ids "
            "FROM audit_access_records GROUP BY access_id) AS r WHERE a.id = r.access_id"
        )
        op.execute("ALTER TABLE audit_accesses ENABLE TRIGGER audit_accesses_append_only")
        op.alter_column("audit_accesses", "record_ids", server_default=None)
        # fastupdate off: new ids go straight into the index as they are written, not
        # into a pending list that waits for a vacuum (or 4 MB of them) to be merged.
        op.execute(
            "CREATE INDEX ix_audit_accesses_record_ids ON audit_accesses "
            "USING gin (record_ids) WITH (fastupdate = off)"
        )
        op.drop_table("audit_access_records")
        return

    op.execute("ALTER TABLE audit_accesses ADD COLUMN record_ids BLOB NOT NULL DEFAULT x''")
    op.create_table(
        "audit_record_keys",
        sa.Column("record_key", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("access_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("ordinal", sa.Integer(), autoincrement=False, nullable=False),
        sa.PrimaryKeyConstraint(
            "record_key", "access_id", "ordinal", name=op.f("pk_audit_record_keys")
        ),
        sqlite_with_rowid=False,
    )
    rows = bind.execute(
        sa.text("SELECT access_id, record_id FROM audit_access_records ORDER BY access_id, record_id")
    )
    op.execute("DROP TRIGGER IF EXISTS audit_accesses_no_update")
    for chunk in _batches(rows):
        bind.execute(
            sa.text("UPDATE audit_accesses SET record_ids = :ids WHERE id = :access_id"),
            [{"ids": packed, "access_id": access_id} for access_id, packed in chunk],
        )
        bind.execute(
            sa.text(
                "INSERT INTO audit_record_keys (record_key, access_id, ordinal) "
                "VALUES (:key, :access_id, :ordinal)"
            ),
            [
                {"key": _key(packed[i : i + 16]), "access_id": access_id, "ordinal": i // 16}
                for access_id, packed in chunk
                for i in range(0, len(packed), 16)
            ],
        )
    _sqlite_triggers("audit_accesses")
    _sqlite_triggers("audit_record_keys")
    op.drop_table("audit_access_records")


def downgrade() -> None:
    bind = op.get_bind()
    postgres = bind.dialect.name == "postgresql"
    op.create_table(
        "audit_access_records",
        sa.Column("access_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("record_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["access_id"],
            ["audit_accesses.id"],
            name=op.f("fk_audit_access_records_access_id_audit_accesses"),
        ),
        sa.PrimaryKeyConstraint("access_id", "record_id", name=op.f("pk_audit_access_records")),
    )
    op.create_index(
        op.f("ix_audit_access_records_record_id"), "audit_access_records", ["record_id"]
    )
    if postgres:
        op.execute(
            "INSERT INTO audit_access_records (access_id, record_id) "
            "SELECT DISTINCT id, unnest(record_ids) FROM audit_accesses"
        )
        op.execute(
            "CREATE TRIGGER audit_access_records_append_only BEFORE UPDATE OR DELETE "
            f"ON audit_access_records {PG_APPEND_ONLY}"
        )
        op.drop_index("ix_audit_accesses_record_ids", table_name="audit_accesses")
        op.drop_column("audit_accesses", "record_ids")
        return

    rows = bind.execute(sa.text("SELECT id, record_ids FROM audit_accesses WHERE record_ids != x''"))
    pairs = {
        (access_id, bytes(packed[i : i + 16]).hex())
        for access_id, packed in rows
        for i in range(0, len(packed), 16)
    }
    if pairs:
        bind.execute(
            sa.text("INSERT INTO audit_access_records (access_id, record_id) VALUES (:a, :r)"),
            [{"a": a, "r": r} for a, r in sorted(pairs)],
        )
    _sqlite_triggers("audit_access_records")
    op.drop_table("audit_record_keys")
    op.execute("ALTER TABLE audit_accesses DROP COLUMN record_ids")
