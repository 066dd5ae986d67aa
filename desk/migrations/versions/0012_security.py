"""security: failed sign-ins and account locks, the customer audit log, erased customers

Only new tables: altering ``customers`` on SQLite would rebuild it, and with
foreign keys on, dropping the old table cascades to its phones, tickets and
surveys.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-24 11:31:20.297301
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import desk.db

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "login_failures",
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("failed_at", sa.JSON(), nullable=False),
        sa.Column("locked_until", desk.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", desk.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("username", name=op.f("pk_login_failures")),
    )
    op.create_index(
        op.f("ix_login_failures_updated_at"), "login_failures", ["updated_at"], unique=False
    )
    op.create_table(
        "customer_audit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("at", desk.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer_audit")),
    )
    op.create_index(
        "ix_customer_audit_customer_at", "customer_audit", ["customer_id", "at"], unique=False
    )
    op.create_table(
        "customer_erasures",
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("erased_at", desk.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("erased_by", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_customer_erasures_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_customer_erasures")),
    )


def downgrade() -> None:
    op.drop_table("customer_erasures")
    op.drop_index("ix_customer_audit_customer_at", table_name="customer_audit")
    op.drop_table("customer_audit")
    op.drop_index(op.f("ix_login_failures_updated_at"), table_name="login_failures")
    op.drop_table("login_failures")
