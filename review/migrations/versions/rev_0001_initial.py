"""The first release's review schema: charts, their codes and actions, the audit log, coding jobs.

The tables are those of the three SQLite files the release before kept (``queue.sqlite``,
``audit/audit.sqlite``, ``copilot_jobs.sqlite``), in one database; the audit tables are renamed
``audit_records`` and ``audit_head``. The audit log is append-only: triggers refuse ``UPDATE`` and
``DELETE`` on ``audit_records`` and let the head only move forward one record at a time (SQLite
triggers, or plpgsql trigger functions on PostgreSQL).

Revision ID: 0001
Revises: (none)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

GENESIS_HASH = "0" * 64
APPEND_ONLY = "the audit log is append-only"
FORWARD_ONLY = "the audit head only moves forward"

_SQLITE_TRIGGERS = [
    "CREATE TRIGGER audit_records_no_update BEFORE UPDATE ON audit_records "
    f"BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY}'); END",
    "CREATE TRIGGER audit_records_no_delete BEFORE DELETE ON audit_records "
    f"BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY}'); END",
    "CREATE TRIGGER audit_head_forward BEFORE UPDATE ON audit_head WHEN NEW.seq != OLD.seq + 1 "
    f"BEGIN SELECT RAISE(ABORT, '{FORWARD_ONLY}'); END",
]
_POSTGRESQL_TRIGGERS = [
    "CREATE FUNCTION audit_records_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
    f"BEGIN RAISE EXCEPTION '{APPEND_ONLY}'; END $$",
    "CREATE TRIGGER audit_records_no_update BEFORE UPDATE ON audit_records "
    "FOR EACH ROW EXECUTE FUNCTION audit_records_append_only()",
    "CREATE TRIGGER audit_records_no_delete BEFORE DELETE ON audit_records "
    "FOR EACH ROW EXECUTE FUNCTION audit_records_append_only()",
    "CREATE TRIGGER audit_records_no_truncate BEFORE TRUNCATE ON audit_records "
    "FOR EACH STATEMENT EXECUTE FUNCTION audit_records_append_only()",
    "CREATE FUNCTION audit_head_forward_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
    f"BEGIN IF NEW.seq <> OLD.seq + 1 THEN RAISE EXCEPTION '{FORWARD_ONLY}'; END IF; RETURN NEW; END $$",
    "CREATE TRIGGER audit_head_forward BEFORE UPDATE ON audit_head "
    "FOR EACH ROW EXECUTE FUNCTION audit_head_forward_only()",
]


def upgrade() -> None:
    op.create_table(
        "meta",
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.create_table(
        "charts",
        sa.Column("chart_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("note_id", sa.Text),
        sa.Column("note_sha256", sa.Text, nullable=False),
        sa.Column("note_text", sa.Text, nullable=False),
        sa.Column("note_type", sa.Text),
        sa.Column("setting", sa.Text, nullable=False),
        sa.Column("date_of_service", sa.Text),
        sa.Column("result_sha256", sa.Text, nullable=False),
        sa.Column("decision_json", sa.Text, nullable=False),
        sa.Column("routing", sa.Text, nullable=False),
        sa.Column("reasons_json", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("assigned_to", sa.Text),
        sa.Column("created_at", sa.Text, nullable=False),
        sa.Column("updated_at", sa.Text, nullable=False),
        sa.Column("finalised_at", sa.Text),
        sa.Column("finalised_by", sa.Text),
        sa.CheckConstraint("routing IN ('auto', 'review')", name="charts_routing"),
        sa.CheckConstraint("status IN ('pending', 'coding', 'in_review', 'finalised')", name="charts_status_value"),
        sqlite_autoincrement=True,
    )
    op.create_index("charts_status", "charts", ["status", "created_at"])
    op.create_index("charts_result", "charts", ["note_sha256", "result_sha256"])
    op.create_table(
        "chart_codes",
        sa.Column("chart_id", sa.Integer, sa.ForeignKey("charts.chart_id"), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("code", sa.Text, nullable=False),
        sa.Column("code_key", sa.Text, nullable=False),
        sa.Column("description", sa.Text),
        sa.Column("chapter", sa.Text),
        sa.Column("origin", sa.Text, nullable=False),
        sa.Column("proposed_status", sa.Text),
        sa.Column("confidence", sa.Float),
        sa.Column("rules_json", sa.Text, nullable=False),
        sa.Column("warnings_json", sa.Text, nullable=False),
        sa.Column("evidence_json", sa.Text, nullable=False),
        sa.Column("decision", sa.Text, nullable=False),
        sa.Column("prefilled", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("replaced_by", sa.Text),
        sa.Column("replaces", sa.Text),
        sa.Column("decided_by", sa.Text),
        sa.Column("decided_at", sa.Text),
        sa.Column("reason", sa.Text),
        sa.PrimaryKeyConstraint("chart_id", "position"),
        sa.CheckConstraint("origin IN ('proposed', 'added')", name="chart_codes_origin"),
        sa.CheckConstraint("proposed_status IN ('accepted', 'rejected')", name="chart_codes_proposed_status"),
        sa.CheckConstraint("decision IN ('pending', 'accepted', 'rejected', 'replaced')", name="chart_codes_decision"),
    )
    op.create_index("chart_codes_key", "chart_codes", ["chart_id", "code_key"])
    op.create_table(
        "actions",
        sa.Column("action_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("chart_id", sa.Integer, sa.ForeignKey("charts.chart_id"), nullable=False),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("code", sa.Text),
        sa.Column("new_code", sa.Text),
        sa.Column("user", sa.Text, nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("from_status", sa.Text),
        sa.Column("to_status", sa.Text),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("at", sa.Text, nullable=False),
        sa.Column("audit_seq", sa.Integer, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("actions_chart", "actions", ["chart_id", "action_id"])
    op.create_table(
        "audit_records",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("ts", sa.Text, nullable=False),
        sa.Column("event_type", sa.Text, nullable=False),
        sa.Column("chart_id", sa.Integer),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("prev_hash", sa.Text, nullable=False),
        sa.Column("hash", sa.Text, nullable=False),
    )
    op.create_index("audit_records_chart", "audit_records", ["chart_id"])
    head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("hash", sa.Text, nullable=False),
        sa.CheckConstraint("id = 1", name="audit_head_one_row"),
    )
    op.bulk_insert(head, [{"id": 1, "seq": 0, "hash": GENESIS_HASH}])
    op.create_table(
        "jobs",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("job_id", sa.Text, nullable=False, unique=True),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("note_id", sa.Text, nullable=False),
        sa.Column("note_type", sa.Text),
        sa.Column("note_json", sa.Text),
        sa.Column("proposer", sa.Text, nullable=False),
        sa.Column("created_at", sa.Text, nullable=False),
        sa.Column("started_at", sa.Text),
        sa.Column("finished_at", sa.Text),
        sa.Column("chart_id", sa.Integer),
        sa.Column("error_type", sa.Text),
        sa.Column("error_message", sa.Text),
        sa.Column("result_json", sa.Text),
        sa.CheckConstraint("status IN ('queued', 'running', 'done', 'failed')", name="jobs_status_value"),
        sqlite_autoincrement=True,
    )
    op.create_index("jobs_status", "jobs", ["status", "seq"])
    dialect = op.get_context().dialect.name
    if dialect == "sqlite":
        triggers = _SQLITE_TRIGGERS
    elif dialect == "postgresql":
        triggers = _POSTGRESQL_TRIGGERS
    else:
        raise RuntimeError(
            f"the review store's append-only audit triggers exist for sqlite and postgresql, not {dialect}"
        )
    for statement in triggers:
        op.execute(statement)


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS audit_records_append_only() CASCADE")
        op.execute("DROP FUNCTION IF EXISTS audit_head_forward_only() CASCADE")
    for table in ("jobs", "audit_head", "audit_records", "actions", "chart_codes", "charts", "meta"):
        op.drop_table(table)
