"""audit: a guarded prune path, append-only checkpoints, wider access actions

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 02:55:00

On PostgreSQL the append-only trigger now lets a DELETE through only inside a
transaction that set `custos.audit_prune = 'on'` (only `custos audit prune` does);
UPDATE stays refused always. Checkpoints become append-only on both databases.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # SQLite does not enforce VARCHAR lengths; PostgreSQL refused "lookup:national_id".
        op.alter_column(
            "audit_accesses", "action", type_=sa.String(64), existing_type=sa.String(16)
        )
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
        op.execute(
            "CREATE TRIGGER audit_checkpoints_append_only BEFORE UPDATE OR DELETE "
            "ON audit_checkpoints FOR EACH ROW EXECUTE FUNCTION custos_audit_append_only()"
        )
    else:
        _set_sqlite_action_width(64)
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_checkpoints_no_{verb.lower()} BEFORE {verb} "
                "ON audit_checkpoints BEGIN SELECT RAISE(ABORT, 'audit rows are append-only'); END"
            )


def _set_sqlite_action_width(width: int) -> None:
    """SQLite ignores VARCHAR lengths, but the declared type should match the model. The
    batch rebuild copies the table, which drops its append-only triggers: put them back."""
    with op.batch_alter_table("audit_accesses") as batch:
        batch.alter_column("action", type_=sa.String(width), existing_nullable=False)
    for verb in ("UPDATE", "DELETE"):
        op.execute(f"DROP TRIGGER IF EXISTS audit_accesses_no_{verb.lower()}")
        op.execute(
            f"CREATE TRIGGER audit_accesses_no_{verb.lower()} BEFORE {verb} ON audit_accesses "
            "BEGIN SELECT RAISE(ABORT, 'audit rows are append-only'); END"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column(
            "audit_accesses", "action", type_=sa.String(16), existing_type=sa.String(64)
        )
        op.execute("DROP TRIGGER IF EXISTS audit_checkpoints_append_only ON audit_checkpoints")
        op.execute(
            """
            CREATE OR REPLACE FUNCTION custos_audit_append_only() RETURNS trigger AS $$
            BEGIN
                RAISE EXCEPTION 'audit rows are append-only' USING ERRCODE = 'insufficient_privilege';
            END;
            $$ LANGUAGE plpgsql
            """
        )
    else:
        for verb in ("update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS audit_checkpoints_no_{verb}")
        _set_sqlite_action_width(16)
