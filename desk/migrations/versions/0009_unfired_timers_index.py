"""unfired timers index

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-24 06:45:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_sla_timers_unfired",
        "sla_timers",
        ["due_at", "level", "id"],
        postgresql_where=sa.text("fired_at IS NULL"),
        sqlite_where=sa.text("fired_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_sla_timers_unfired", table_name="sla_timers")
