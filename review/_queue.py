"""The review queue: charts waiting for (or finished by) a human coder, in SQLite.

``<data_dir>/queue.sqlite`` is the working store. It holds note text (PHI: the file is created
owner-only), the coding decision, each code's pre-filled suggestion and the coder's decisions,
and an ``actions`` table. The audit log database is attached to the same connection, so every
change and its audit event are written in one ``BEGIN IMMEDIATE`` transaction: a change
without its audit record cannot be committed (across the two files SQLite's WAL mode makes each
file's commit atomic, not the pair; a crash between the two commits is the remaining window).

Chart life cycle: ``pending`` -> ``coding`` (first coder action, or ``set_status``) <->
``in_review`` -> ``finalised`` (terminal). A chart routed ``auto`` is stored already
``finalised`` by ``auto``. Every change bumps ``version``; callers pass the version they read
(``expected_version``) and get ``ChartConflictError`` when someone else changed the chart first.

At finalisation an undecided code takes its pre-filled value: accepted when the validators
accepted it, rejected otherwise. Accepting a code the validators rejected needs a reason.
"""

from __future__ import annotations

import builtins
import datetime as dt
import json
import sqlite3
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from medcode.agent._routing import reason_kind
from medcode.codesets import normalize_icd10cm
from medcode.config import Settings
from medcode.errors import ChartConflictError, ChartNotFoundError, InputError, StoreError
from medcode.review._audit import (
    AuditRecord,
    CodingDecision,
    ThreadConnections,
    append_record,
    audit_db_path,
    canonical_json,
    decision_payload,
    init_audit_schema,
    open_db,
    write_transaction,
)
from medcode.validators import Evidence

__all__ = [
    "CHART_STATUSES",
    "Chart",
    "ChartAction",
    "ChartCode",
    "ChartStatus",
    "ChartSummary",
    "CodeAction",
    "QueueMetrics",
    "RateGroup",
    "ReviewQueue",
    "queue_db_path",
]

ChartStatus = Literal["pending", "coding", "in_review", "finalised"]
CodeAction = Literal["accept", "reject", "replace", "add"]
CodeDecision = Literal["pending", "accepted", "rejected", "replaced"]
CHART_STATUSES: tuple[ChartStatus, ...] = ("pending", "coding", "in_review", "finalised")
CODE_ACTIONS: tuple[CodeAction, ...] = ("accept", "reject", "replace", "add")
AUTO_USER = "auto"
SCHEMA_VERSION = "1"
_TRANSITIONS: dict[str, frozenset[str]] = {
    "pending": frozenset({"coding", "in_review"}),
    "coding": frozenset({"pending", "in_review"}),
    "in_review": frozenset({"pending", "coding"}),
    "finalised": frozenset(),
}
_MAX_USER = 100
_MAX_REASON = 1_000

_QUEUE_SCHEMA = [
    "CREATE TABLE IF NOT EXISTS main.meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    f"INSERT OR IGNORE INTO main.meta (key, value) VALUES ('schema_version', '{SCHEMA_VERSION}')",
    """CREATE TABLE IF NOT EXISTS main.charts (
        chart_id INTEGER PRIMARY KEY AUTOINCREMENT,
        note_id TEXT,
        note_sha256 TEXT NOT NULL,
        note_text TEXT NOT NULL,
        note_type TEXT,
        setting TEXT NOT NULL,
        date_of_service TEXT,
        result_sha256 TEXT NOT NULL,
        decision_json TEXT NOT NULL,
        routing TEXT NOT NULL CHECK (routing IN ('auto', 'review')),
        reasons_json TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('pending', 'coding', 'in_review', 'finalised')),
        version INTEGER NOT NULL,
        assigned_to TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        finalised_at TEXT,
        finalised_by TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS main.charts_status ON charts (status, created_at)",
    "CREATE INDEX IF NOT EXISTS main.charts_result ON charts (note_sha256, result_sha256)",
    """CREATE TABLE IF NOT EXISTS main.chart_codes (
        chart_id INTEGER NOT NULL REFERENCES charts (chart_id),
        position INTEGER NOT NULL,
        code TEXT NOT NULL,
        code_key TEXT NOT NULL,
        description TEXT,
        chapter TEXT,
        origin TEXT NOT NULL CHECK (origin IN ('proposed', 'added')),
        proposed_status TEXT CHECK (proposed_status IN ('accepted', 'rejected')),
        confidence REAL,
        rules_json TEXT NOT NULL,
        warnings_json TEXT NOT NULL,
        evidence_json TEXT NOT NULL,
        decision TEXT NOT NULL CHECK (decision IN ('pending', 'accepted', 'rejected', 'replaced')),
        prefilled INTEGER NOT NULL DEFAULT 0,
        replaced_by TEXT,
        replaces TEXT,
        decided_by TEXT,
        decided_at TEXT,
        reason TEXT,
        PRIMARY KEY (chart_id, position)
    )""",
    "CREATE INDEX IF NOT EXISTS main.chart_codes_key ON chart_codes (chart_id, code_key)",
    """CREATE TABLE IF NOT EXISTS main.actions (
        action_id INTEGER PRIMARY KEY AUTOINCREMENT,
        chart_id INTEGER NOT NULL REFERENCES charts (chart_id),
        action TEXT NOT NULL,
        code TEXT,
        new_code TEXT,
        user TEXT NOT NULL,
        reason TEXT,
        from_status TEXT,
        to_status TEXT,
        version INTEGER NOT NULL,
        at TEXT NOT NULL,
        audit_seq INTEGER NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS main.actions_chart ON actions (chart_id, action_id)",
]


def queue_db_path(settings: Settings) -> Path:
    """Where the review queue lives: ``<data_dir>/queue.sqlite``."""
    return settings.data_dir / "queue.sqlite"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _iso(moment: dt.datetime) -> str:
    return moment.isoformat(timespec="microseconds")


def _code_key(code: str) -> str:
    return "".join(code.split()).upper().replace(".", "")


def _check_user(user: object) -> str:
    if not isinstance(user, str) or not user.strip():
        raise InputError("a user name is required (who made the change)")
    cleaned = user.strip()
    if len(cleaned) > _MAX_USER or not cleaned.isprintable():
        raise InputError(f"user name must be printable and at most {_MAX_USER} characters")
    if cleaned == AUTO_USER:
        raise InputError(f"user name {AUTO_USER!r} is reserved for automatic finalisation")
    return cleaned


def _check_reason(reason: str | None) -> str | None:
    if reason is None:
        return None
    cleaned = reason.strip()
    if len(cleaned) > _MAX_REASON:
        raise InputError(f"reason is longer than {_MAX_REASON} characters")
    return cleaned or None


def _canonical_code(raw: str) -> str:
    """Canonical dotted ICD-10-CM form of a code a coder typed; ``MalformedCodeError`` (exit 2) otherwise."""
    return normalize_icd10cm(raw)


# -- models ------------------------------------------------------------------------


class ChartCode(BaseModel):
    """One code on a chart: the proposal, the validators' verdict and the coder's decision."""

    position: int
    code: str
    description: str | None = None
    chapter: str | None = None
    origin: Literal["proposed", "added"]
    proposed_status: Literal["accepted", "rejected"] | None = Field(
        default=None, description="The validators' verdict; None for codes a coder added."
    )
    confidence: float | None = None
    rules: list[str] = Field(default_factory=list, description="Rule ids that rejected the code.")
    warnings: list[str] = Field(default_factory=list, description="Rule ids that warned.")
    evidence: list[Evidence] = Field(default_factory=list)
    decision: CodeDecision = "pending"
    prefilled: bool = Field(default=False, description="The decision came from the suggestion at finalisation.")
    replaced_by: str | None = None
    replaces: str | None = None
    decided_by: str | None = None
    decided_at: str | None = None
    reason: str | None = None

    @property
    def selected(self) -> bool:
        """Would this code be billed if the chart were finalised now (explicit decision, else the suggestion)."""
        if self.decision == "pending":
            return self.proposed_status == "accepted"
        return self.decision == "accepted"


class ChartAction(BaseModel):
    """One recorded change to a chart (also written to the audit log as ``audit_seq``)."""

    action_id: int
    action: str
    code: str | None = None
    new_code: str | None = None
    user: str
    reason: str | None = None
    from_status: str | None = None
    to_status: str | None = None
    version: int = Field(description="The chart's version after the change.")
    at: str
    audit_seq: int


class ChartSummary(BaseModel):
    """A chart as listed in the queue (no note text)."""

    chart_id: int
    note_id: str | None
    note_type: str | None
    setting: str
    status: ChartStatus
    routing: Literal["auto", "review"]
    reasons: list[str]
    version: int
    n_codes: int
    n_rejected: int
    assigned_to: str | None
    created_at: str
    updated_at: str
    age_seconds: float


class Chart(ChartSummary):
    """A whole chart. ``note_text`` is None when it was not asked for."""

    note_sha256: str
    note_text: str | None = None
    date_of_service: dt.date | None = None
    finalised_at: str | None = None
    finalised_by: str | None = None
    codes: list[ChartCode]
    actions: list[ChartAction]
    decision: dict[str, Any] = Field(description="The coding decision (versions, candidates, raw LLM output).")

    @property
    def selected_codes(self) -> list[str]:
        """Codes that are (or would be, if finalised now) on the claim, in chart order."""
        return [c.code for c in self.codes if c.selected]

    def to_display(self, *, show_text: bool) -> dict[str, Any]:
        """JSON-ready view; without ``show_text`` no note text, evidence quote or raw model output."""
        data = self.model_dump(mode="json")
        data["selected_codes"] = self.selected_codes
        if not show_text:
            data.pop("note_text", None)
            data["decision"].pop("raw_llm_output", None)
            for item in [*data["codes"], *data["decision"].get("verdicts", [])]:
                item["evidence"] = [
                    {"start": e["start"], "end": e["end"], "chars": len(e["text"])} for e in item["evidence"]
                ]
        return data


class RateGroup(BaseModel):
    """Coder-vs-machine counts over finalised, human-reviewed charts (auto charts excluded).

    acceptance_rate = kept / suggested (suggested = codes the validators accepted);
    override_rate = (rejected_by_coder + replaced + guardrail_overrides) / (suggested + proposed_rejected);
    edit_rate = edited_charts / charts (a chart is edited when any code was rejected, replaced,
    added, or accepted against the validators). For a chapter, a chart counts when it has a code
    in that chapter and is edited when one of those codes was.
    """

    charts: int = 0
    edited_charts: int = 0
    suggested: int = 0
    kept: int = 0
    rejected_by_coder: int = 0
    replaced: int = 0
    proposed_rejected: int = 0
    guardrail_overrides: int = 0
    added: int = 0

    @property
    def acceptance_rate(self) -> float | None:
        return self.kept / self.suggested if self.suggested else None

    @property
    def override_rate(self) -> float | None:
        total = self.suggested + self.proposed_rejected
        return (self.rejected_by_coder + self.replaced + self.guardrail_overrides) / total if total else None

    @property
    def edit_rate(self) -> float | None:
        return self.edited_charts / self.charts if self.charts else None

    def as_dict(self) -> dict[str, Any]:
        data = self.model_dump()
        data.update(acceptance_rate=self.acceptance_rate, override_rate=self.override_rate, edit_rate=self.edit_rate)
        return data


class QueueMetrics(BaseModel):
    """Queue and coder metrics; see ``RateGroup`` for the rate definitions."""

    generated_at: str
    charts: int
    routing: dict[str, int] = Field(description="Charts by routing decision (auto / review).")
    open_by_status: dict[str, int]
    oldest_open_age_s: float | None
    median_open_age_s: float | None
    overall: RateGroup
    by_chapter: dict[str, RateGroup]
    by_note_type: dict[str, RateGroup]
    validator_rejections: dict[str, int] = Field(description="Rule id -> rejected proposed codes.")
    routing_reasons: dict[str, int] = Field(description="Reason kind -> charts sent to review with it.")

    @property
    def auto_share(self) -> float | None:
        total = sum(self.routing.values())
        return self.routing.get("auto", 0) / total if total else None

    @property
    def open_charts(self) -> int:
        return sum(self.open_by_status.values())

    def as_dict(self) -> dict[str, Any]:
        data = self.model_dump(exclude={"overall", "by_chapter", "by_note_type"})
        data.update(
            auto_share=self.auto_share,
            open_charts=self.open_charts,
            overall=self.overall.as_dict(),
            by_chapter={k: v.as_dict() for k, v in self.by_chapter.items()},
            by_note_type={k: v.as_dict() for k, v in self.by_note_type.items()},
        )
        return data


# -- the queue ---------------------------------------------------------------------

_SUMMARY_COLUMNS = (
    "c.chart_id, c.note_id, c.note_type, c.setting, c.status, c.routing, c.reasons_json, c.version, "
    "(SELECT COUNT(*) FROM chart_codes k WHERE k.chart_id = c.chart_id), "
    "(SELECT COUNT(*) FROM chart_codes k WHERE k.chart_id = c.chart_id AND k.proposed_status = 'rejected'), "
    "c.assigned_to, c.created_at, c.updated_at"
)
_CODE_COLUMNS = (
    "position, code, description, chapter, origin, proposed_status, confidence, rules_json, warnings_json, "
    "evidence_json, decision, prefilled, replaced_by, replaces, decided_by, decided_at, reason"
)


def _chapter_order(chapter: str) -> tuple[int, int, str]:
    return (0, int(chapter), chapter) if chapter.isdigit() else (1, 0, chapter)


def _age(created_at: str, now: dt.datetime) -> float:
    return max(0.0, (now - dt.datetime.fromisoformat(created_at)).total_seconds())


def _summary(row: Sequence[Any], now: dt.datetime) -> dict[str, Any]:
    (
        chart_id,
        note_id,
        note_type,
        setting,
        status,
        routing,
        reasons,
        version,
        n_codes,
        n_rejected,
        assigned_to,
        created_at,
        updated_at,
    ) = row
    return {
        "chart_id": chart_id,
        "note_id": note_id,
        "note_type": note_type,
        "setting": setting,
        "status": status,
        "routing": routing,
        "reasons": json.loads(reasons),
        "version": version,
        "n_codes": n_codes,
        "n_rejected": n_rejected,
        "assigned_to": assigned_to,
        "created_at": created_at,
        "updated_at": updated_at,
        "age_seconds": _age(created_at, now),
    }


def _code(row: Sequence[Any]) -> ChartCode:
    (
        position,
        code,
        description,
        chapter,
        origin,
        proposed_status,
        confidence,
        rules,
        warnings,
        evidence,
        decision,
        prefilled,
        replaced_by,
        replaces,
        decided_by,
        decided_at,
        reason,
    ) = row
    return ChartCode(
        position=position,
        code=code,
        description=description,
        chapter=chapter,
        origin=origin,
        proposed_status=proposed_status,
        confidence=confidence,
        rules=json.loads(rules),
        warnings=json.loads(warnings),
        evidence=[Evidence.model_validate(e) for e in json.loads(evidence)],
        decision=decision,
        prefilled=bool(prefilled),
        replaced_by=replaced_by,
        replaces=replaces,
        decided_by=decided_by,
        decided_at=decided_at,
        reason=reason,
    )


class ReviewQueue:
    """The review queue of one data directory. Safe across threads and processes.

    ``create=False`` raises ``InputError`` instead of creating a missing queue (the CLI uses it).
    Raises ``StoreError`` for an unusable database file. Every mutating method takes the
    chart version the caller read and raises ``ChartConflictError`` if it is stale, or if the
    chart is already finalised; ``ChartNotFoundError`` for an unknown chart id; ``InputError``
    for bad user names, codes or actions.
    """

    def __init__(self, settings: Settings, *, create: bool = True) -> None:
        self.path = queue_db_path(settings)
        self.audit_path = audit_db_path(settings)
        self.store_note_text = settings.audit_store_note_text
        self._timeout = settings.db_busy_timeout_s
        self._what = f"review queue {self.path}"
        if create or self.path.is_file():
            open_db(self.audit_path, self._timeout, create=True, what="audit log").close()
        open_db(self.path, self._timeout, create=create, what="review queue").close()
        self._conns = ThreadConnections(self._open)
        conn = self._conns.get()
        init_audit_schema(conn, "audit", f"audit log {self.audit_path}", self._timeout)
        try:
            with write_transaction(conn, self._what, self._timeout):
                for statement in _QUEUE_SCHEMA:
                    conn.execute(statement)
                row = conn.execute("SELECT value FROM main.meta WHERE key = 'schema_version'").fetchone()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self._what} cannot be initialised ({exc})") from exc
        if row is None or row[0] != SCHEMA_VERSION:
            raise StoreError(f"{self._what} has schema {row[0] if row else '?'}, this medcode needs {SCHEMA_VERSION}")

    def _open(self) -> sqlite3.Connection:
        conn = open_db(self.path, self._timeout, create=False, what="review queue")
        try:
            conn.execute("ATTACH DATABASE ? AS audit", (str(self.audit_path),))
            conn.execute("PRAGMA audit.journal_mode=WAL")
            conn.execute("PRAGMA audit.synchronous=FULL")
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise StoreError(f"audit log {self.audit_path} cannot be attached ({exc})") from exc
        return conn

    def __enter__(self) -> ReviewQueue:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close this thread's connection."""
        self._conns.close()

    def _audit(self, conn: sqlite3.Connection, event: str, payload: Mapping[str, Any], chart_id: int) -> AuditRecord:
        return append_record(conn, "audit", event, payload, chart_id=chart_id, allow_text=self.store_note_text)

    # -- writing ---------------------------------------------------------------------

    def enqueue(self, decision: CodingDecision, *, allow_duplicate: bool = False) -> int:
        """Store a coded note as a chart and audit the decision (event ``coding_decision``); returns its id.

        A ``review`` decision lands ``pending``; an ``auto`` one lands ``finalised`` by ``auto``
        (event ``chart_finalised``), so metrics see every note. The same note with the same
        result (``CodingDecision.result_sha256``) returns the existing chart id unless
        ``allow_duplicate``; the repeated decision is still audited (``deduplicated: true``).
        """
        now = _now()
        at = _iso(now)
        result_sha = decision.result_sha256()
        auto = decision.routing.decision == "auto"
        conn = self._conns.get()
        with write_transaction(conn, self._what, self._timeout):
            if not allow_duplicate:
                row = conn.execute(
                    "SELECT chart_id FROM charts WHERE note_sha256 = ? AND result_sha256 = ? ORDER BY chart_id LIMIT 1",
                    (decision.sha256, result_sha),
                ).fetchone()
                if row is not None:
                    chart_id = int(row[0])
                    payload = decision_payload(decision, store_text=self.store_note_text, chart_id=chart_id)
                    payload["deduplicated"] = True
                    self._audit(conn, "coding_decision", payload, chart_id)
                    return chart_id
            stored = decision.model_dump(mode="json", exclude={"note_text"})
            cursor = conn.execute(
                "INSERT INTO charts (note_id, note_sha256, note_text, note_type, setting, date_of_service, "
                "result_sha256, decision_json, routing, reasons_json, status, version, created_at, updated_at, "
                "finalised_at, finalised_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?)",
                (
                    decision.note_id,
                    decision.sha256,
                    decision.note_text,
                    decision.note_type,
                    decision.setting,
                    decision.date_of_service.isoformat() if decision.date_of_service else None,
                    result_sha,
                    canonical_json(stored),
                    decision.routing.decision,
                    json.dumps(decision.routing.reasons),
                    "finalised" if auto else "pending",
                    at,
                    at,
                    at if auto else None,
                    AUTO_USER if auto else None,
                ),
            )
            chart_id = int(cursor.lastrowid or 0)
            for position, verdict in enumerate(decision.verdicts):
                code = verdict.canonical or verdict.code
                chapter = decision.chapters.get(code) or decision.chapters.get(verdict.code)
                conn.execute(
                    f"INSERT INTO chart_codes (chart_id, {_CODE_COLUMNS}, code_key) "
                    "VALUES (?, ?, ?, ?, ?, 'proposed', ?, ?, ?, ?, ?, ?, ?, NULL, NULL, NULL, ?, NULL, ?)",
                    (
                        chart_id,
                        position,
                        code,
                        verdict.description,
                        chapter,
                        verdict.status,
                        verdict.confidence,
                        json.dumps(verdict.rules),
                        json.dumps([w.rule for w in verdict.warnings]),
                        json.dumps([e.model_dump(mode="json") for e in verdict.evidence]),
                        verdict.status if auto else "pending",
                        1 if auto else 0,
                        at if auto else None,
                        _code_key(code),
                    ),
                )
            payload = decision_payload(decision, store_text=self.store_note_text, chart_id=chart_id)
            self._audit(conn, "coding_decision", payload, chart_id)
            if auto:
                final = [v.canonical or v.code for v in decision.verdicts if v.status == "accepted"]
                self._audit(
                    conn,
                    "chart_finalised",
                    {"chart_id": chart_id, "user": AUTO_USER, "version": 1, "final_codes": final, "prefilled": final},
                    chart_id,
                )
        return chart_id

    def _locked_chart(self, conn: sqlite3.Connection, chart_id: int, expected_version: int) -> tuple[str, str | None]:
        """Inside a write transaction: check existence, finalisation and version; returns (status, assigned_to)."""
        if not isinstance(expected_version, int) or isinstance(expected_version, bool) or expected_version < 1:
            raise InputError(f"expected_version must be a positive integer, got {expected_version!r}")
        row = conn.execute(
            "SELECT status, version, assigned_to, finalised_by, finalised_at FROM charts WHERE chart_id = ?",
            (chart_id,),
        ).fetchone()
        if row is None:
            raise ChartNotFoundError(f"no chart {chart_id} in the review queue")
        status, version, assigned_to, finalised_by, finalised_at = row
        if status == "finalised":
            raise ChartConflictError(
                f"chart {chart_id} was already finalised by {finalised_by} at {finalised_at}",
                chart_id=chart_id,
                current_version=version,
            )
        if version != expected_version:
            raise ChartConflictError(
                f"chart {chart_id} changed since you read it (you had version {expected_version}, it is now "
                f"{version}); re-read it and try again",
                chart_id=chart_id,
                current_version=version,
            )
        return str(status), assigned_to

    def _log_action(
        self, conn: sqlite3.Connection, chart_id: int, event: str, payload: dict[str, Any], *, at: str
    ) -> None:
        record = self._audit(conn, event, payload, chart_id)
        conn.execute(
            "INSERT INTO actions (chart_id, action, code, new_code, user, reason, from_status, to_status, version, at, "
            "audit_seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                chart_id,
                payload["action"],
                payload.get("code"),
                payload.get("new_code"),
                payload["user"],
                payload.get("reason"),
                payload.get("from_status"),
                payload.get("to_status"),
                payload["version"],
                at,
                record.seq,
            ),
        )

    def _rows_for(self, conn: sqlite3.Connection, chart_id: int, code: str) -> builtins.list[tuple[Any, ...]]:
        rows: builtins.list[tuple[Any, ...]] = conn.execute(
            "SELECT position, code, proposed_status, decision, rules_json FROM chart_codes "
            "WHERE chart_id = ? AND code_key = ? ORDER BY position",
            (chart_id, _code_key(code)),
        ).fetchall()
        if not rows:
            present = [r[0] for r in conn.execute("SELECT code FROM chart_codes WHERE chart_id = ?", (chart_id,))]
            raise InputError(f"code {code!r} is not on chart {chart_id} (its codes: {', '.join(present) or 'none'})")
        return rows

    def _insert_added(
        self,
        conn: sqlite3.Connection,
        chart_id: int,
        code: str,
        *,
        user: str,
        at: str,
        reason: str | None,
        replaces: str | None,
        description: str | None,
        chapter: str | None,
    ) -> None:
        exists = conn.execute(
            "SELECT code FROM chart_codes WHERE chart_id = ? AND code_key = ?", (chart_id, _code_key(code))
        ).fetchone()
        if exists:
            raise InputError(f"code {code} is already on chart {chart_id}; accept it instead")
        position = conn.execute(
            "SELECT COALESCE(MAX(position), -1) + 1 FROM chart_codes WHERE chart_id = ?", (chart_id,)
        ).fetchone()[0]
        conn.execute(
            f"INSERT INTO chart_codes (chart_id, {_CODE_COLUMNS}, code_key) "
            "VALUES (?, ?, ?, ?, ?, 'added', NULL, NULL, '[]', '[]', '[]', 'accepted', 0, NULL, ?, ?, ?, ?, ?)",
            (chart_id, position, code, description, chapter, replaces, user, at, reason, _code_key(code)),
        )

    def _apply(
        self,
        conn: sqlite3.Connection,
        chart_id: int,
        action: str,
        code: str,
        new_code: str | None,
        *,
        user: str,
        reason: str | None,
        at: str,
        description: str | None,
        chapter: str | None,
    ) -> dict[str, Any]:
        """Apply one code action; returns the audit payload (without version)."""
        if action not in CODE_ACTIONS:
            raise InputError(f"unknown action {action!r}; expected one of {', '.join(CODE_ACTIONS)}")
        if not isinstance(code, str) or not code.strip():
            raise InputError(f"action {action!r} needs a code")
        payload: dict[str, Any] = {"chart_id": chart_id, "action": action, "user": user, "reason": reason}
        if action == "add":
            canonical = _canonical_code(code)
            self._insert_added(
                conn,
                chart_id,
                canonical,
                user=user,
                at=at,
                reason=reason,
                replaces=None,
                description=description,
                chapter=chapter,
            )
            payload["code"] = canonical
            return payload
        rows = self._rows_for(conn, chart_id, code)
        payload["code"] = rows[0][1]
        if action == "accept":
            overridden = [r for r in rows if r[2] == "rejected" and r[3] != "accepted"]
            if overridden and reason is None:
                rules = ", ".join(json.loads(overridden[0][4])) or "a validator rule"
                raise InputError(
                    f"code {rows[0][1]} was rejected by the validators ({rules}); accepting it needs a reason"
                )
            payload["guardrail_override"] = bool(overridden)
            decision, replaced_by = "accepted", None
        elif action == "reject":
            decision, replaced_by = "rejected", None
        else:  # replace
            if new_code is None or not new_code.strip():
                raise InputError("replace needs the new code (OLD=NEW)")
            replacement = _canonical_code(new_code)
            if _code_key(replacement) == _code_key(code):
                raise InputError(f"cannot replace {code} with itself")
            self._insert_added(
                conn,
                chart_id,
                replacement,
                user=user,
                at=at,
                reason=reason,
                replaces=rows[0][1],
                description=description,
                chapter=chapter,
            )
            payload["new_code"] = replacement
            decision, replaced_by = "replaced", replacement
        conn.execute(
            "UPDATE chart_codes SET decision = ?, replaced_by = ?, prefilled = 0, decided_by = ?, decided_at = ?, "
            "reason = ? WHERE chart_id = ? AND code_key = ?",
            (decision, replaced_by, user, at, reason, chart_id, _code_key(code)),
        )
        return payload

    def _bump(self, conn: sqlite3.Connection, chart_id: int, *, status: str, assigned_to: str | None, at: str) -> int:
        conn.execute(
            "UPDATE charts SET status = ?, assigned_to = ?, version = version + 1, updated_at = ? WHERE chart_id = ?",
            (status, assigned_to, at, chart_id),
        )
        return int(conn.execute("SELECT version FROM charts WHERE chart_id = ?", (chart_id,)).fetchone()[0])

    def record_action(
        self,
        chart_id: int,
        action: CodeAction,
        code: str,
        *,
        user: str,
        expected_version: int,
        new_code: str | None = None,
        reason: str | None = None,
        description: str | None = None,
        chapter: str | None = None,
    ) -> Chart:
        """Record one coder action and audit it (event ``code_action``); returns the updated chart.

        ``accept``/``reject``/``replace`` name a code on the chart (any spelling); ``replace``
        and ``add`` take the new code (``new_code`` for replace, ``code`` for add) as ICD-10-CM,
        checked for shape only: check existence with the code set before calling (the CLI does).
        ``description``/``chapter`` describe an added code. A ``pending`` chart moves to
        ``coding`` and is assigned to the user.
        """
        return self.resolve(
            chart_id,
            user=user,
            expected_version=expected_version,
            actions=[(action, code, new_code)],
            reason=reason,
            details={_code_key(new_code or code): (description, chapter)},
        )

    def resolve(
        self,
        chart_id: int,
        *,
        user: str,
        expected_version: int,
        actions: Iterable[tuple[str, str, str | None]] = (),
        reason: str | None = None,
        finalise: bool = False,
        details: Mapping[str, tuple[str | None, str | None]] | None = None,
    ) -> Chart:
        """Apply several ``(action, code, new_code)`` in order, then optionally finalise; one transaction.

        The whole call bumps the version once and all-or-nothing: a bad action leaves the chart
        unchanged. ``details`` maps a new code (no dot, upper case) to ``(description, chapter)``.
        Raises ``InputError`` when there is nothing to do.
        """
        user = _check_user(user)
        reason = _check_reason(reason)
        steps = builtins.list(actions)
        if not steps and not finalise:
            raise InputError("nothing to do: give at least one action or finalise")
        details = details or {}
        conn = self._conns.get()
        at = _iso(_now())
        with write_transaction(conn, self._what, self._timeout):
            status, assigned_to = self._locked_chart(conn, chart_id, expected_version)
            payloads = []
            for action, code, new_code in steps:
                description, chapter = details.get(_code_key(new_code or code), (None, None))
                payloads.append(
                    self._apply(
                        conn,
                        chart_id,
                        action,
                        code,
                        new_code,
                        user=user,
                        reason=reason,
                        at=at,
                        description=description,
                        chapter=chapter,
                    )
                )
            new_status = "coding" if steps and status == "pending" else status
            version = self._bump(conn, chart_id, status=new_status, assigned_to=assigned_to or user, at=at)
            for payload in payloads:
                self._log_action(conn, chart_id, "code_action", {**payload, "version": version}, at=at)
            if new_status != status:
                self._log_action(
                    conn,
                    chart_id,
                    "chart_status",
                    {
                        "chart_id": chart_id,
                        "action": "status",
                        "user": user,
                        "from_status": status,
                        "to_status": new_status,
                        "version": version,
                    },
                    at=at,
                )
            if finalise:
                self._finalise_locked(conn, chart_id, user=user, status=new_status, version=version, at=at)
        return self.get(chart_id)

    def _finalise_locked(
        self, conn: sqlite3.Connection, chart_id: int, *, user: str, status: str, version: int, at: str
    ) -> None:
        prefilled = [
            r[0]
            for r in conn.execute(
                "SELECT code FROM chart_codes WHERE chart_id = ? AND decision = 'pending' AND proposed_status = 'accepted'",
                (chart_id,),
            )
        ]
        conn.execute(
            "UPDATE chart_codes SET decision = CASE WHEN proposed_status = 'accepted' THEN 'accepted' ELSE 'rejected' END, "
            "prefilled = 1 WHERE chart_id = ? AND decision = 'pending'",
            (chart_id,),
        )
        conn.execute(
            "UPDATE charts SET status = 'finalised', finalised_at = ?, finalised_by = ?, updated_at = ? WHERE chart_id = ?",
            (at, user, at, chart_id),
        )
        final = [
            r[0]
            for r in conn.execute(
                "SELECT code FROM chart_codes WHERE chart_id = ? AND decision = 'accepted' ORDER BY position",
                (chart_id,),
            )
        ]
        self._log_action(
            conn,
            chart_id,
            "chart_finalised",
            {
                "chart_id": chart_id,
                "action": "finalise",
                "user": user,
                "from_status": status,
                "to_status": "finalised",
                "version": version,
                "final_codes": final,
                "prefilled": prefilled,
            },
            at=at,
        )

    def finalise(self, chart_id: int, *, user: str, expected_version: int) -> Chart:
        """Finalise a chart (undecided codes take their suggestion); audited as ``chart_finalised``.

        Raises ``ChartConflictError`` when it is already finalised or the version is stale.
        """
        user = _check_user(user)
        conn = self._conns.get()
        at = _iso(_now())
        with write_transaction(conn, self._what, self._timeout):
            status, assigned_to = self._locked_chart(conn, chart_id, expected_version)
            version = self._bump(conn, chart_id, status=status, assigned_to=assigned_to or user, at=at)
            self._finalise_locked(conn, chart_id, user=user, status=status, version=version, at=at)
        return self.get(chart_id)

    def set_status(self, chart_id: int, status: ChartStatus, *, user: str, expected_version: int) -> Chart:
        """Move a chart between ``pending``, ``coding`` and ``in_review`` (use ``finalise`` to finish).

        Moving to ``coding`` assigns the chart to the user, to ``pending`` unassigns it.
        Raises ``InputError`` for a transition that is not allowed.
        """
        user = _check_user(user)
        if status not in CHART_STATUSES or status == "finalised":
            raise InputError(f"cannot set status {status!r}; use one of pending, coding, in_review (or finalise)")
        conn = self._conns.get()
        at = _iso(_now())
        with write_transaction(conn, self._what, self._timeout):
            current, assigned_to = self._locked_chart(conn, chart_id, expected_version)
            if status not in _TRANSITIONS[current]:
                raise InputError(f"chart {chart_id} is {current}; it cannot move to {status}")
            assignee = user if status == "coding" else (None if status == "pending" else assigned_to)
            version = self._bump(conn, chart_id, status=status, assigned_to=assignee, at=at)
            self._log_action(
                conn,
                chart_id,
                "chart_status",
                {
                    "chart_id": chart_id,
                    "action": "status",
                    "user": user,
                    "from_status": current,
                    "to_status": status,
                    "version": version,
                },
                at=at,
            )
        return self.get(chart_id)

    # -- reading ---------------------------------------------------------------------

    def get(self, chart_id: int, *, include_text: bool = True) -> Chart:
        """One chart with its codes and actions. Raises ``ChartNotFoundError``."""
        conn = self._conns.get()
        now = _now()
        conn.execute("BEGIN")
        try:
            row = conn.execute(
                f"SELECT {_SUMMARY_COLUMNS}, c.note_sha256, c.note_text, c.date_of_service, c.finalised_at, "
                "c.finalised_by, c.decision_json FROM charts c WHERE c.chart_id = ?",
                (chart_id,),
            ).fetchone()
            if row is None:
                raise ChartNotFoundError(f"no chart {chart_id} in the review queue")
            codes = [
                _code(r)
                for r in conn.execute(
                    f"SELECT {_CODE_COLUMNS} FROM chart_codes WHERE chart_id = ? ORDER BY position", (chart_id,)
                )
            ]
            actions = [
                ChartAction(
                    action_id=r[0],
                    action=r[1],
                    code=r[2],
                    new_code=r[3],
                    user=r[4],
                    reason=r[5],
                    from_status=r[6],
                    to_status=r[7],
                    version=r[8],
                    at=r[9],
                    audit_seq=r[10],
                )
                for r in conn.execute(
                    "SELECT action_id, action, code, new_code, user, reason, from_status, to_status, version, at, "
                    "audit_seq FROM actions WHERE chart_id = ? ORDER BY action_id",
                    (chart_id,),
                )
            ]
        finally:
            conn.execute("COMMIT")
        note_sha256, note_text, dos, finalised_at, finalised_by, decision_json = row[13:]
        return Chart(
            **_summary(row[:13], now),
            note_sha256=note_sha256,
            note_text=note_text if include_text else None,
            date_of_service=dt.date.fromisoformat(dos) if dos else None,
            finalised_at=finalised_at,
            finalised_by=finalised_by,
            codes=codes,
            actions=actions,
            decision=json.loads(decision_json),
        )

    def list_charts(
        self,
        status: ChartStatus | None = None,
        limit: int = 100,
        *,
        offset: int = 0,
        note_type: str | None = None,
        routing: Literal["auto", "review"] | None = None,
    ) -> builtins.list[ChartSummary]:
        """Charts, oldest first, without note text. Raises ``InputError`` for a bad filter."""
        if status is not None and status not in CHART_STATUSES:
            raise InputError(f"unknown status {status!r}; expected one of {', '.join(CHART_STATUSES)}")
        if limit < 1 or offset < 0:
            raise InputError("limit must be at least 1 and offset not negative")
        sql = f"SELECT {_SUMMARY_COLUMNS} FROM charts c WHERE 1 = 1"
        params: builtins.list[Any] = []
        for column, value in (("status", status), ("note_type", note_type), ("routing", routing)):
            if value is not None:
                sql += f" AND c.{column} = ?"
                params.append(value)
        sql += " ORDER BY c.created_at, c.chart_id LIMIT ? OFFSET ?"
        params += [limit, offset]
        now = _now()
        return [ChartSummary(**_summary(row, now)) for row in self._conns.get().execute(sql, params)]

    list = list_charts

    def find(self, note_sha256: str) -> builtins.list[int]:
        """Chart ids for a note's sha256, oldest first."""
        return [
            int(r[0])
            for r in self._conns.get().execute(
                "SELECT chart_id FROM charts WHERE note_sha256 = ? ORDER BY chart_id", (note_sha256.lower(),)
            )
        ]

    # -- metrics ---------------------------------------------------------------------

    def metrics(self, *, since: dt.datetime | None = None, note_type: str | None = None) -> QueueMetrics:
        """Routing share, queue size and age, coder acceptance/edit/override rates, rejection reasons.

        ``since`` (timezone-aware) restricts to charts created then or later.
        Raises ``InputError`` for a naive ``since``.
        """
        if since is not None and since.tzinfo is None:
            raise InputError("since must be timezone-aware")
        where, params = "WHERE 1 = 1", builtins.list[str]()
        if since is not None:
            where += " AND c.created_at >= ?"
            params.append(_iso(since.astimezone(dt.UTC)))
        if note_type is not None:
            where += " AND c.note_type = ?"
            params.append(note_type)
        conn = self._conns.get()
        now = _now()
        conn.execute("BEGIN")
        try:
            charts = conn.execute(
                f"SELECT c.chart_id, c.routing, c.status, c.note_type, c.reasons_json, c.created_at, c.finalised_by "
                f"FROM charts c {where}",
                params,
            ).fetchall()
            codes = conn.execute(
                "SELECT k.chart_id, k.chapter, k.origin, k.proposed_status, k.decision, k.replaces, k.rules_json "
                f"FROM chart_codes k JOIN charts c ON c.chart_id = k.chart_id {where}",
                params,
            ).fetchall()
        finally:
            conn.execute("COMMIT")
        routing: Counter[str] = Counter()
        open_by_status: Counter[str] = Counter()
        ages: builtins.list[float] = []
        reasons: Counter[str] = Counter()
        reviewed: dict[int, str] = {}
        for chart_id, route, status, ntype, reasons_json, created_at, finalised_by in charts:
            routing[route] += 1
            if route == "review":
                reasons.update({reason_kind(r) for r in json.loads(reasons_json)})
            if status != "finalised":
                open_by_status[status] += 1
                ages.append(_age(created_at, now))
            elif finalised_by != AUTO_USER:
                reviewed[chart_id] = ntype or "unknown"
        rejections: Counter[str] = Counter()
        overall = RateGroup()
        by_chapter: defaultdict[str, RateGroup] = defaultdict(RateGroup)
        by_type: defaultdict[str, RateGroup] = defaultdict(RateGroup)
        chart_groups: dict[tuple[str, int], bool] = {}  # (group key, chart) -> edited
        for chart_id, chapter, origin, proposed, decision, replaces, rules_json in codes:
            if origin == "proposed" and proposed == "rejected":
                rejections.update(json.loads(rules_json) or ["UNSPECIFIED"])
            if chart_id not in reviewed or (origin == "added" and replaces is not None):
                continue  # a replacement is counted once, on the code it replaced
            edited = False
            targets = (overall, by_chapter[chapter or "unknown"], by_type[reviewed[chart_id]])
            for group in targets:
                if origin == "added":
                    group.added += 1
                    edited = True
                elif proposed == "accepted":
                    group.suggested += 1
                    if decision == "accepted":
                        group.kept += 1
                    elif decision == "rejected":
                        group.rejected_by_coder += 1
                        edited = True
                    elif decision == "replaced":
                        group.replaced += 1
                        edited = True
                else:
                    group.proposed_rejected += 1
                    if decision == "accepted":
                        group.guardrail_overrides += 1
                        edited = True
            for key in ("overall", f"chapter:{chapter or 'unknown'}", f"type:{reviewed[chart_id]}"):
                chart_groups[(key, chart_id)] = chart_groups.get((key, chart_id), False) or edited
        for chart_id in reviewed:  # charts with no codes still count overall
            chart_groups.setdefault(("overall", chart_id), False)
            chart_groups.setdefault((f"type:{reviewed[chart_id]}", chart_id), False)
        for (key, _chart), edited in chart_groups.items():
            if key == "overall":
                group = overall
            elif key.startswith("chapter:"):
                group = by_chapter[key.removeprefix("chapter:")]
            else:
                group = by_type[key.removeprefix("type:")]
            group.charts += 1
            group.edited_charts += int(edited)
        return QueueMetrics(
            generated_at=_iso(now),
            charts=len(charts),
            routing=dict(routing),
            open_by_status=dict(open_by_status),
            oldest_open_age_s=max(ages) if ages else None,
            median_open_age_s=statistics.median(ages) if ages else None,
            overall=overall,
            by_chapter=dict(sorted(by_chapter.items(), key=lambda kv: _chapter_order(kv[0]))),
            by_note_type=dict(sorted(by_type.items())),
            validator_rejections=dict(rejections.most_common()),
            routing_reasons=dict(reasons.most_common()),
        )
