"""The governance room: blinded audit batches, tasks and answers, and autonomy grants.

``audit_batches`` are samples drawn by ``medcode audit sample``; each sampled chart becomes one
``audit_tasks`` row (a chart is audited at most once) that auditors code blind
(``audit_answers``, one per auditor, immutable) until it holds a gold label, by agreement or by
an adjudicator. ``autonomy_grants`` holds every grant of earned autonomy to a case type, with
the threshold and evidence it was granted on and how it ended (suspended or revoked). An index
on ``audit_records(event_type, seq)`` lets routing find new ``drift_alert`` events cheaply.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_index("audit_records_event", "audit_records", ["event_type", "seq"])
    op.create_table(
        "audit_batches",
        sa.Column("batch_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("created_at", sa.Text, nullable=False),
        sa.Column("created_by", sa.Text, nullable=False),
        sa.Column("seed", sa.Integer, nullable=False),
        sa.Column("policy_version", sa.Text, nullable=False),
        sa.Column("policy_sha256", sa.Text, nullable=False),
        sa.Column("params_json", sa.Text, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "audit_tasks",
        sa.Column("task_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("batch_id", sa.Integer, sa.ForeignKey("audit_batches.batch_id"), nullable=False),
        sa.Column("chart_id", sa.Integer, sa.ForeignKey("charts.chart_id"), nullable=False, unique=True),
        sa.Column("case_type", sa.Text),
        sa.Column("stratum", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("created_at", sa.Text, nullable=False),
        sa.Column("gold_codes_json", sa.Text),
        sa.Column("gold_source", sa.Text),
        sa.Column("gold_by", sa.Text),
        sa.Column("gold_at", sa.Text),
        sa.CheckConstraint("stratum IN ('auto', 'review')", name="audit_tasks_stratum"),
        sa.CheckConstraint("status IN ('open', 'disputed', 'gold')", name="audit_tasks_status"),
        sa.CheckConstraint("gold_source IN ('agreement', 'adjudication', 'single')", name="audit_tasks_gold_source"),
        sqlite_autoincrement=True,
    )
    op.create_index("audit_tasks_status", "audit_tasks", ["status", "task_id"])
    op.create_index("audit_tasks_case_type", "audit_tasks", ["case_type", "status"])
    op.create_table(
        "audit_answers",
        sa.Column("task_id", sa.Integer, sa.ForeignKey("audit_tasks.task_id"), nullable=False),
        sa.Column("auditor", sa.Text, nullable=False),
        sa.Column("codes_json", sa.Text, nullable=False),
        sa.Column("at", sa.Text, nullable=False),
        sa.Column("audit_seq", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("task_id", "auditor"),
    )
    op.create_table(
        "autonomy_grants",
        sa.Column("grant_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("case_type", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("threshold", sa.Float, nullable=False),
        sa.Column("case_type_sha256", sa.Text, nullable=False),
        sa.Column("policy_version", sa.Text, nullable=False),
        sa.Column("policy_sha256", sa.Text, nullable=False),
        sa.Column("granted_by", sa.Text, nullable=False),
        sa.Column("granted_at", sa.Text, nullable=False),
        sa.Column("evidence_json", sa.Text, nullable=False),
        sa.Column("ended_at", sa.Text),
        sa.Column("ended_by", sa.Text),
        sa.Column("end_json", sa.Text),
        sa.Column("audit_seq", sa.Integer, nullable=False),
        sa.CheckConstraint("status IN ('active', 'suspended', 'revoked')", name="autonomy_grants_status"),
        sqlite_autoincrement=True,
    )
    op.create_index("autonomy_grants_case_type", "autonomy_grants", ["case_type", "grant_id"])


def downgrade() -> None:
    for table in ("autonomy_grants", "audit_answers", "audit_tasks", "audit_batches"):
        op.drop_table(table)
    op.drop_index("audit_records_event", "audit_records")
