"""audit ledger: appends without the chain-head lock, sealed and signed blocks

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30 15:40:00

Entries no longer chain to each other when written: `seq` comes from a sequence on
PostgreSQL (no row lock), `prev_hash` stays only on the entries written before, and a
sealer later gives each entry its `block` and `position`. Blocks hold a Merkle root, the
previous block's hash and an Ed25519 signature. The existing chain is left as it is: the
sealer seals it first, in its order, and `verify` still walks its links; the chain head
row is kept, frozen, as the tip that chain must reach. Entries stay append-only except
for being sealed once.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

EVENT_COLUMNS = (
    "id, seq, occurred_at, subject, roles, api_key_id, purpose, operation_type, "
    "operation_name, query_hash, client_addr, user_agent, request_id, outcome, prev_hash, hash"
)
RAISE = "BEGIN SELECT RAISE(ABORT, 'audit rows are append-only'); END"


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    op.create_table(
        "audit_blocks",
        sa.Column("number", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("first_position", sa.BigInteger(), nullable=False),
        sa.Column("last_position", sa.BigInteger(), nullable=False),
        sa.Column("merkle_root", sa.String(length=64), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("sealed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("key_version", sa.Integer(), nullable=False),
        sa.Column("signature", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("number", name=op.f("pk_audit_blocks")),
    )
    op.create_table(
        "audit_sealer",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sealed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_sealer")),
    )
    op.execute("INSERT INTO audit_sealer (id, sealed_at) VALUES (1, NULL)")
    with op.batch_alter_table("audit_events") as batch:
        batch.add_column(sa.Column("block", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("position", sa.BigInteger(), nullable=True))
        batch.alter_column("prev_hash", existing_type=sa.String(length=64), nullable=True)
        batch.create_unique_constraint(op.f("uq_audit_events_position"), ["position"])
        batch.create_index("ix_audit_events_block_seq", ["block", "seq"], unique=False)
    if postgres:
        op.execute("CREATE SEQUENCE audit_events_seq_seq OWNED BY audit_events.seq")
        op.execute(
            "SELECT setval('audit_events_seq_seq', "
            "(SELECT coalesce(max(seq), 0) + 1 FROM audit_events), false)"
        )
        op.execute(
            "ALTER TABLE audit_events ALTER COLUMN seq SET DEFAULT nextval('audit_events_seq_seq')"
        )
        op.execute(
            """
            CREATE OR REPLACE FUNCTION custos_audit_append_only() RETURNS trigger AS $$
            BEGIN
                IF TG_OP = 'DELETE'
                   AND TG_TABLE_NAME NOT IN ('audit_checkpoints', 'audit_blocks')
                   AND current_setting('custos.audit_prune', true) = 'on' THEN
                    RETURN OLD;
                END IF;
                IF TG_OP = 'UPDATE' AND TG_TABLE_NAME = 'audit_events' THEN
                    -- Sealing, once: only `block` and `position` change, from NULL.
                    IF OLD.block IS NULL AND OLD.position IS NULL
                       AND (to_jsonb(NEW) - 'block' - 'position')
                           = (to_jsonb(OLD) - 'block' - 'position') THEN
                        RETURN NEW;
                    END IF;
                END IF;
                RAISE EXCEPTION 'audit rows are append-only'
                    USING ERRCODE = 'insufficient_privilege';
            END;
            $$ LANGUAGE plpgsql
            """
        )
        op.execute(
            "CREATE TRIGGER audit_blocks_append_only BEFORE UPDATE OR DELETE "
            "ON audit_blocks FOR EACH ROW EXECUTE FUNCTION custos_audit_append_only()"
        )
    else:
        # The batch rebuild dropped the table's triggers: put them back, letting the
        # sealer set `block` and `position` once.
        op.execute("DROP TRIGGER IF EXISTS audit_events_no_update")
        op.execute("DROP TRIGGER IF EXISTS audit_events_no_delete")
        op.execute(
            f"CREATE TRIGGER audit_events_no_update BEFORE UPDATE OF {EVENT_COLUMNS} "
            f"ON audit_events {RAISE}"
        )
        op.execute(
            "CREATE TRIGGER audit_events_sealed_once BEFORE UPDATE OF block, position "
            "ON audit_events WHEN OLD.block IS NOT NULL OR OLD.position IS NOT NULL "
            f"{RAISE}"
        )
        op.execute(f"CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events {RAISE}")
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_blocks_no_{verb.lower()} BEFORE {verb} "
                f"ON audit_blocks {RAISE}"
            )


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        op.execute("DROP TRIGGER IF EXISTS audit_blocks_append_only ON audit_blocks")
        op.execute(
            """
            CREATE OR REPLACE FUNCTION custos_audit_append_only() RETURNS trigger AS $$
            BEGIN
                IF TG_OP = 'DELETE'
                   AND TG_TABLE_NAME <> 'audit_checkpoints'
                   AND current_setting('custos.audit_prune', true) = 'on' THEN
                    RETURN OLD;
                END IF;
                RAISE EXCEPTION 'audit rows are append-only'
                    USING ERRCODE = 'insufficient_privilege';
            END;
            $$ LANGUAGE plpgsql
            """
        )
        op.execute("ALTER TABLE audit_events ALTER COLUMN seq DROP DEFAULT")
        op.execute("DROP SEQUENCE IF EXISTS audit_events_seq_seq")
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_events_sealed_once")
    # `prev_hash` stays nullable: entries written without a chain cannot go back into one.
    with op.batch_alter_table("audit_events") as batch:
        batch.drop_index("ix_audit_events_block_seq")
        batch.drop_constraint(op.f("uq_audit_events_position"), type_="unique")
        batch.drop_column("position")
        batch.drop_column("block")
    if not postgres:
        for verb in ("UPDATE", "DELETE"):
            op.execute(f"DROP TRIGGER IF EXISTS audit_events_no_{verb.lower()}")
            op.execute(
                f"CREATE TRIGGER audit_events_no_{verb.lower()} BEFORE {verb} "
                f"ON audit_events {RAISE}"
            )
    op.drop_table("audit_sealer")
    op.drop_table("audit_blocks")
