"""surveys: templates, surveys and their answers, low-score follow-ups, opt-outs;
an HTML alternative for outbox mail

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-24 08:06:25.813917
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import desk.db

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox_messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("html_body", sa.Text(), nullable=True))
    op.create_table(
        "survey_opt_outs",
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("opted_out_at", desk.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_survey_opt_outs_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_survey_opt_outs")),
    )
    op.create_table(
        "survey_templates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=True),
        sa.Column("channel", sa.String(length=16), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("current_version", sa.Integer(), nullable=False),
        sa.Column("created_at", desk.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", desk.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["team_id"],
            ["teams.id"],
            name=op.f("fk_survey_templates_team_id_teams"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_survey_templates")),
        sa.UniqueConstraint("name", name=op.f("uq_survey_templates_name")),
    )
    op.create_table(
        "survey_template_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("template_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("questions", sa.JSON(), nullable=False),
        sa.Column("created_at", desk.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["users.id"],
            name=op.f("fk_survey_template_versions_created_by_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["template_id"],
            ["survey_templates.id"],
            name=op.f("fk_survey_template_versions_template_id_survey_templates"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_survey_template_versions")),
        sa.UniqueConstraint(
            "template_id", "version", name=op.f("uq_survey_template_versions_template_id")
        ),
    )
    op.create_table(
        "surveys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("template_version_id", sa.Integer(), nullable=False),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("recipient", sa.String(length=320), nullable=False),
        sa.Column("language", sa.String(length=10), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=True),
        sa.Column("call_id", sa.Integer(), nullable=True),
        sa.Column("agent_id", sa.Integer(), nullable=True),
        sa.Column("team_id", sa.Integer(), nullable=True),
        sa.Column("queue", sa.String(length=80), nullable=True),
        sa.Column("source_channel", sa.String(length=16), nullable=False),
        sa.Column("tier", sa.String(length=20), nullable=False),
        sa.Column("created_at", desk.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("send_at", desk.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", desk.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("withdrawn_at", desk.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("withdrawn_reason", sa.String(length=64), nullable=True),
        sa.Column("answered_at", desk.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("changed_at", desk.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("csat", sa.Integer(), nullable=True),
        sa.Column("nps", sa.Integer(), nullable=True),
        sa.Column("ces", sa.Integer(), nullable=True),
        sa.Column("answers", sa.JSON(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("may_contact", sa.Boolean(), nullable=True),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["users.id"], name=op.f("fk_surveys_agent_id_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["call_id"], ["calls.id"], name=op.f("fk_surveys_call_id_calls"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_surveys_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["team_id"], ["teams.id"], name=op.f("fk_surveys_team_id_teams"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["template_version_id"],
            ["survey_template_versions.id"],
            name=op.f("fk_surveys_template_version_id_survey_template_versions"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["tickets.id"],
            name=op.f("fk_surveys_ticket_id_tickets"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_surveys")),
    )
    with op.batch_alter_table("surveys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_surveys_answered_at"), ["answered_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_surveys_call_id"), ["call_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_surveys_created_at"), ["created_at"], unique=False)
        batch_op.create_index(
            "ix_surveys_customer_answered", ["customer_id", "answered_at"], unique=False
        )
        batch_op.create_index(
            "ix_surveys_customer_created", ["customer_id", "created_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_surveys_ticket_id"), ["ticket_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_surveys_send_at"), ["send_at"], unique=False)

    op.create_table(
        "survey_follow_ups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("survey_id", sa.Integer(), nullable=False),
        sa.Column("raised_at", desk.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("reopened_ticket", sa.Boolean(), nullable=False),
        sa.Column("lead_user_id", sa.Integer(), nullable=True),
        sa.Column("acknowledged_at", desk.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_by", sa.Integer(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["acknowledged_by"],
            ["users.id"],
            name=op.f("fk_survey_follow_ups_acknowledged_by_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["lead_user_id"],
            ["users.id"],
            name=op.f("fk_survey_follow_ups_lead_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["survey_id"],
            ["surveys.id"],
            name=op.f("fk_survey_follow_ups_survey_id_surveys"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_survey_follow_ups")),
        sa.UniqueConstraint("survey_id", name=op.f("uq_survey_follow_ups_survey_id")),
    )
    with op.batch_alter_table("survey_follow_ups", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_survey_follow_ups_acknowledged_at"), ["acknowledged_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("survey_follow_ups", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_survey_follow_ups_acknowledged_at"))

    op.drop_table("survey_follow_ups")
    with op.batch_alter_table("surveys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_surveys_ticket_id"))
        batch_op.drop_index("ix_surveys_customer_created")
        batch_op.drop_index("ix_surveys_customer_answered")
        batch_op.drop_index(batch_op.f("ix_surveys_created_at"))
        batch_op.drop_index(batch_op.f("ix_surveys_call_id"))
        batch_op.drop_index(batch_op.f("ix_surveys_answered_at"))

    # Added to this revision after some databases had run it: dropped if there.
    op.drop_index("ix_surveys_send_at", table_name="surveys", if_exists=True)
    op.drop_table("surveys")
    op.drop_table("survey_template_versions")
    op.drop_table("survey_templates")
    op.drop_table("survey_opt_outs")
    with op.batch_alter_table("outbox_messages", schema=None) as batch_op:
        batch_op.drop_column("html_body")
