"""An append-only, hash-chained audit log of every coding decision and every coder action.

Storage: the ``audit_records`` table of the review database (``medcode.review._store``: one
database per data directory, SQLite by default, PostgreSQL by URL), next to the review queue, so
a chart change and its audit record commit in one transaction. Appends serialise across
processes (SQLite ``BEGIN IMMEDIATE``; a row lock on the head on PostgreSQL). Each record holds

    seq, ts, event_type, chart_id, payload (canonical JSON), prev_hash, hash

where ``hash = sha256(canonical JSON of {v, ts, event, chart_id, payload, prev})`` and ``prev_hash``
is the previous record's hash (64 zeros for the first). A one-row ``audit_head`` table, updated in
the same transaction, anchors the last record, so removing records from the end is detected too.
Triggers refuse ``UPDATE``/``DELETE`` on ``audit_records`` (a guard against accidents, not attackers).

``verify`` detects a record whose content was edited, records removed (inside the log or at its
end), and records reordered or inserted. Limits, honestly: someone with write access to the
database can drop the triggers, rewrite every record, recompute every hash and move the head, and
the log will verify. To catch that, copy the head hash (``medcode audit verify --json`` prints it)
somewhere they cannot write (a ticket, a WORM store, a signed email) and pass it back with
``--expect-head``: a rewritten log will not contain it. Records appended by several processes are
never lost or half-written (database transactions), but the clock in ``ts`` is each writer's wall
clock; ``seq`` is the order.

PHI: payloads never hold note text unless ``audit_store_note_text`` is set. ``append`` refuses a
payload with a non-null ``note_text``, ``raw_llm_output`` or ``text`` key anywhere in it, and
``decision_payload`` stores hashes and offsets of the note, of evidence quotes and of the raw
model output instead of the texts themselves.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import to_jsonable_python
from sqlalchemy import Connection, select

from medcode.agent import CodingRun, NoteMetadata, RoutingDecision, sha256_text
from medcode.config import Settings
from medcode.errors import AuditTamperedError, InputError, StoreError
from medcode.review._store import GENESIS_HASH, ReviewStore, audit_head, audit_records
from medcode.validators import CodeVerdict, ProcedureVerdict, Setting

__all__ = [
    "GENESIS_HASH",
    "PHI_KEYS",
    "AuditLog",
    "AuditRecord",
    "CodingDecision",
    "VerifyResult",
    "canonical_json",
    "decision_payload",
    "sha256_text",
]

RECORD_FORMAT = 1
PHI_KEYS = frozenset({"note_text", "raw_llm_output", "text"})
_EVENT_TYPE = re.compile(r"^[a-z][a-z0-9_.]{0,63}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_RECORD_COLUMNS = (
    audit_records.c.seq,
    audit_records.c.ts,
    audit_records.c.event_type,
    audit_records.c.chart_id,
    audit_records.c.payload,
    audit_records.c.prev_hash,
    audit_records.c.hash,
)


# -- helpers -----------------------------------------------------------------------


def canonical_json(value: Any) -> str:
    """Deterministic JSON: sorted keys, no spaces, UTF-8, no NaN. Raises ``ValueError`` otherwise."""
    return json.dumps(
        to_jsonable_python(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def _utcnow() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")


def _record_hash(ts: str, event_type: str, chart_id: int | None, payload: Any, prev: str) -> str:
    body = {"v": RECORD_FORMAT, "ts": ts, "event": event_type, "chart_id": chart_id, "payload": payload, "prev": prev}
    return hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()


def _find_phi(value: Any, path: str = "") -> str | None:
    """Dotted path of the first non-null PHI key in a JSON-like value, else None."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if key in PHI_KEYS and item is not None:
                return where
            found = _find_phi(item, where)
            if found:
                return found
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found = _find_phi(item, f"{path}[{index}]")
            if found:
                return found
    return None


# -- models ------------------------------------------------------------------------


class AuditRecord(BaseModel):
    """One audit record as stored."""

    model_config = ConfigDict(frozen=True)

    seq: int
    ts: str
    event_type: str
    chart_id: int | None
    payload: dict[str, Any]
    prev_hash: str
    hash: str


Problem = Literal["edited", "removed", "reordered", "truncated", "corrupt", "head_mismatch", "anchor_missing"]


class VerifyResult(BaseModel):
    """Outcome of ``AuditLog.verify``: ``ok`` or the first bad record and why."""

    ok: bool
    records: int = Field(description="Records read.")
    last_seq: int = 0
    last_hash: str = GENESIS_HASH
    first_bad_seq: int | None = None
    problem: Problem | None = None
    message: str = "audit log verifies"

    def raise_for_problem(self) -> None:
        """Raise ``AuditTamperedError`` with the message when the log did not verify."""
        if not self.ok:
            raise AuditTamperedError(self.message)


class CodingDecision(BaseModel):
    """Everything about one note's coding run: the orchestrator's hand-off to the queue and audit.

    ``note_sha256`` is computed from ``note_text`` when omitted; a given one must match.
    ``chapters`` maps a code (as in ``canonical`` or ``code``) to its ICD-10-CM chapter id, for
    metrics by chapter. ``procedures`` are the procedure codes' verdicts when procedure coding was on
    (stored in the chart's decision JSON; no column of their own). The note text goes to the review queue
    (the PHI working store), never to the audit log unless ``audit_store_note_text`` is set.
    """

    model_config = ConfigDict(extra="forbid")

    note_text: str = Field(min_length=1)
    note_sha256: str | None = None
    note_id: str | None = Field(default=None, max_length=200)
    note_type: str | None = Field(default=None, max_length=100)
    setting: Setting = "outpatient"
    date_of_service: dt.date | None = None
    metadata: NoteMetadata = Field(
        default_factory=NoteMetadata, description="Provider, department, payer, encounter date."
    )
    verdicts: list[CodeVerdict] = Field(default_factory=list)
    procedures: list[ProcedureVerdict] = Field(default_factory=list)
    chapters: dict[str, str] = Field(default_factory=dict)
    routing: RoutingDecision
    llm_model: str | None = None
    prompt_version: str | None = None
    codeset_version: str | None = None
    rules_version: str | None = None
    index_version: str | None = None
    candidates: list[str] = Field(default_factory=list, description="Codes offered to the model.")
    raw_llm_output: str | None = None
    errors: list[str] = Field(default_factory=list, description="Error messages (never note text).")
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None

    @field_validator("note_text")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("note text is blank")
        return value

    @model_validator(mode="after")
    def _hash(self) -> CodingDecision:
        actual = sha256_text(self.note_text)
        if self.note_sha256 is None:
            self.note_sha256 = actual
        elif self.note_sha256.lower() != actual:
            raise ValueError("note_sha256 does not match the sha256 of note_text")
        else:
            self.note_sha256 = actual
        if self.routing.decision == "auto":  # defence in depth: never auto-finalise what failed a rule
            bad = [
                v.canonical or v.code
                for v in [*self.verdicts, *self.procedures]
                if v.status != "accepted" or v.warnings
            ]
            if bad or not self.verdicts or self.errors:
                raise ValueError(
                    "routing 'auto' needs at least one code, every code accepted without warnings and no errors"
                    + (f" (not so: {', '.join(bad)})" if bad else "")
                )
        return self

    @classmethod
    def from_run(cls, run: CodingRun) -> CodingDecision:
        """The decision of one finished coding run (what the coder hands to the review stage)."""
        note, result = run.note, run.result
        return cls(
            note_text=note.text,
            note_id=note.id,
            note_type=note.note_type,
            setting=note.setting,
            date_of_service=note.date_of_service,
            metadata=note.metadata,
            routing=result.routing,
            verdicts=run.verdicts,
            procedures=run.procedures,
            chapters={c.code: c.chapter for c in result.codes if c.chapter},
            llm_model=result.versions.get("model"),
            prompt_version=result.versions.get("prompt"),
            codeset_version=result.versions.get("codeset"),
            rules_version=result.versions.get("rules"),
            index_version=result.versions.get("index"),
            candidates=result.candidates,
            raw_llm_output=run.raw_llm_output,
            errors=result.errors,
            started_at=run.started_at,
            finished_at=run.finished_at,
        )

    @property
    def sha256(self) -> str:
        """The note's sha256 (always set after validation)."""
        assert self.note_sha256 is not None
        return self.note_sha256

    def result_sha256(self) -> str:
        """Fingerprint of the outcome (codes, routing, versions); equal results are enqueued once."""
        body = {
            "note_sha256": self.note_sha256,
            "note_type": self.note_type,
            "setting": self.setting,
            "date_of_service": self.date_of_service,
            "verdicts": [v.model_dump(mode="json") for v in self.verdicts],
            "routing": self.routing.model_dump(mode="json"),
            "versions": [
                self.llm_model,
                self.prompt_version,
                self.codeset_version,
                self.rules_version,
                self.index_version,
            ],
        }
        if not self.metadata.is_empty():  # absent when empty: fingerprints of notes without metadata are unchanged
            body["metadata"] = self.metadata.model_dump(mode="json")
        if self.procedures:  # likewise: fingerprints of runs without procedure coding are unchanged
            body["procedures"] = [v.model_dump(mode="json") for v in self.procedures]
        return hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()


def _digest(text: str) -> dict[str, Any]:
    return {"sha256": sha256_text(text), "chars": len(text)}


def _verdict_for_audit(verdict: CodeVerdict, store_text: bool) -> dict[str, Any]:
    data = verdict.model_dump(mode="json")
    if not store_text:
        for key in ("evidence", "rejected_evidence"):
            data[key] = [{"start": ev.start, "end": ev.end, **_digest(ev.text)} for ev in getattr(verdict, key)]
    return data


def decision_payload(decision: CodingDecision, *, store_text: bool, chart_id: int | None = None) -> dict[str, Any]:
    """The audit payload of a coding decision: hashes and offsets, texts only when ``store_text``."""
    payload: dict[str, Any] = {
        "chart_id": chart_id,
        "note_id": decision.note_id,
        "note_sha256": decision.note_sha256,
        "note_chars": len(decision.note_text),
        "note_type": decision.note_type,
        "setting": decision.setting,
        "date_of_service": decision.date_of_service,
        "metadata": None if decision.metadata.is_empty() else decision.metadata.model_dump(mode="json"),
        "llm_model": decision.llm_model,
        "prompt_version": decision.prompt_version,
        "codeset_version": decision.codeset_version,
        "rules_version": decision.rules_version,
        "index_version": decision.index_version,
        "candidates": list(decision.candidates),
        "raw_llm_output_digest": None if decision.raw_llm_output is None else _digest(decision.raw_llm_output),
        "verdicts": [_verdict_for_audit(v, store_text) for v in decision.verdicts],
        **(
            {"procedures": [_verdict_for_audit(v, store_text) for v in decision.procedures]}
            if decision.procedures
            else {}
        ),
        "routing": decision.routing.model_dump(mode="json"),
        "errors": list(decision.errors),
        "started_at": decision.started_at,
        "finished_at": decision.finished_at,
        "result_sha256": decision.result_sha256(),
    }
    if store_text:
        payload["note_text"] = decision.note_text
        payload["raw_llm_output"] = decision.raw_llm_output
    return payload


# -- append / verify on any connection ------------------------------------------------------


def append_record(
    store: ReviewStore,
    conn: Connection,
    event_type: str,
    payload: Mapping[str, Any],
    *,
    chart_id: int | None,
    allow_text: bool,
) -> AuditRecord:
    """Append one record inside the caller's write transaction on ``store``.

    Raises ``StoreError`` for a bad event type, a payload that is not JSON-serialisable or
    that holds note text when that is not allowed; ``AuditTamperedError`` when the head anchor
    does not match the last record (refusing to extend a truncated or rewritten log).
    """
    if not _EVENT_TYPE.match(event_type):
        raise StoreError(f"bad audit event type {event_type!r} (lowercase letters, digits, '_' or '.')")
    if not allow_text:
        where = _find_phi(payload)
        if where:
            raise StoreError(
                f"audit payload field {where!r} would store note text; the audit log keeps hashes and offsets "
                "(set audit_store_note_text=true to store texts)"
            )
    try:
        text = canonical_json(dict(payload))
    except (ValueError, TypeError) as exc:
        raise StoreError(f"audit payload is not JSON-serialisable: {exc}") from exc
    stored: dict[str, Any] = json.loads(text)
    head = store.lock_audit_head(conn)  # first: on PostgreSQL this row lock orders concurrent appends
    last = conn.execute(
        select(audit_records.c.seq, audit_records.c.hash).order_by(audit_records.c.seq.desc()).limit(1)
    ).first()
    last_seq, last_hash = (int(last[0]), str(last[1])) if last else (0, GENESIS_HASH)
    if head != (last_seq, last_hash):
        raise AuditTamperedError(
            f"the audit head anchor (record {head[0] if head else '?'}) does not match the last record "
            f"({last_seq}); refusing to append; run 'medcode audit verify'"
        )
    ts = _utcnow()
    seq = last_seq + 1
    digest = _record_hash(ts, event_type, chart_id, stored, last_hash)
    conn.execute(
        audit_records.insert().values(
            seq=seq, ts=ts, event_type=event_type, chart_id=chart_id, payload=text, prev_hash=last_hash, hash=digest
        )
    )
    conn.execute(audit_head.update().where(audit_head.c.id == 1).values(seq=seq, hash=digest))
    return AuditRecord(
        seq=seq, ts=ts, event_type=event_type, chart_id=chart_id, payload=stored, prev_hash=last_hash, hash=digest
    )


def _row_to_record(row: Sequence[Any]) -> AuditRecord:
    seq, ts, event_type, chart_id, payload, prev_hash, digest = row
    try:
        data = json.loads(payload)
    except (TypeError, ValueError):
        data = {"_corrupt_payload": str(payload)[:200]}
    if not isinstance(data, dict):
        data = {"_corrupt_payload": str(payload)[:200]}
    return AuditRecord(
        seq=seq, ts=ts, event_type=event_type, chart_id=chart_id, payload=data, prev_hash=prev_hash, hash=digest
    )


def verify_chain(conn: Connection, expected_head: str | None = None) -> VerifyResult:
    """Walk the chain from the first record; report the first problem (see ``AuditLog.verify``)."""
    if expected_head is not None and not _SHA256.match(expected_head.lower()):
        raise InputError(f"--expect-head must be a 64-character hex sha256, got {expected_head[:80]!r}")
    by_hash: dict[str, int] = {
        str(h): int(s) for s, h in conn.execute(select(audit_records.c.seq, audit_records.c.hash))
    }
    expected_seq, prev, count = 1, GENESIS_HASH, 0

    def bad(seq: int | None, problem: Problem, message: str) -> VerifyResult:
        return VerifyResult(
            ok=False,
            records=count,
            last_seq=expected_seq - 1,
            last_hash=prev,
            first_bad_seq=seq,
            problem=problem,
            message=message,
        )

    rows = conn.execute(select(*_RECORD_COLUMNS).order_by(audit_records.c.seq))
    for seq, ts, event_type, chart_id, payload, prev_hash, stored_hash in rows:
        count += 1
        try:
            data = json.loads(payload)
            computed = _record_hash(ts, event_type, chart_id, data, prev_hash)
        except (TypeError, ValueError) as exc:
            return bad(seq, "corrupt", f"record {seq} is unreadable ({exc})")
        if computed != stored_hash:
            return bad(seq, "edited", f"record {seq} was edited: its content does not match its hash")
        if seq != expected_seq:
            missing = f"{expected_seq}" if seq == expected_seq + 1 else f"{expected_seq}..{seq - 1}"
            return bad(expected_seq, "removed", f"record(s) {missing} were removed (next present record is {seq})")
        if prev_hash != prev:
            origin = by_hash.get(prev_hash)
            if origin is not None and origin != seq - 1:
                return bad(
                    seq,
                    "reordered",
                    f"record {seq} follows record {origin} in the chain but sits at position {seq}: records were reordered",
                )
            return bad(
                seq, "removed", f"record {seq} does not follow record {seq - 1}: records were removed or inserted"
            )
        prev, expected_seq = stored_hash, expected_seq + 1
    head = conn.execute(select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1)).first()
    last_seq = expected_seq - 1
    if head is None:
        return bad(None, "head_mismatch", "the audit head anchor is missing")
    head_seq, head_hash = int(head[0]), str(head[1])
    if head_seq > last_seq:
        return bad(
            last_seq + 1,
            "truncated",
            f"records {last_seq + 1}..{head_seq} were removed from the end (the head anchor says {head_seq})",
        )
    if head_seq != last_seq or head_hash != prev:
        return bad(
            None, "head_mismatch", f"the head anchor (record {head_seq}) does not match the last record ({last_seq})"
        )
    if expected_head is not None and expected_head.lower() not in by_hash:
        return bad(
            None,
            "anchor_missing",
            "the expected head hash is not in the log: the log was rewritten or truncated since it was taken",
        )
    return VerifyResult(ok=True, records=count, last_seq=last_seq, last_hash=prev)


# -- public class ------------------------------------------------------------------


class AuditLog:
    """The audit log of one review database. Safe to share between threads and processes.

    ``create=False`` raises ``InputError`` instead of creating a missing store (used by the CLI).
    Raises ``StoreError`` when the database cannot be opened (see ``ReviewStore``).
    """

    def __init__(self, settings: Settings, *, create: bool = True) -> None:
        self.store = ReviewStore(settings, create=create, what="audit log")
        self.where = self.store.where
        self.store_note_text = settings.audit_store_note_text

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the store's connections."""
        self.store.close()

    def append(self, event_type: str, payload: Mapping[str, Any], *, chart_id: int | None = None) -> AuditRecord:
        """Append one event; returns the stored record. Raises like ``append_record``."""
        with self.store.write() as conn:
            return append_record(
                self.store, conn, event_type, payload, chart_id=chart_id, allow_text=self.store_note_text
            )

    def append_decision(self, decision: CodingDecision, *, chart_id: int | None = None) -> AuditRecord:
        """Record a coding decision (event ``coding_decision``) without enqueuing a chart."""
        payload = decision_payload(decision, store_text=self.store_note_text, chart_id=chart_id)
        return self.append("coding_decision", payload, chart_id=chart_id)

    def records(
        self,
        *,
        start_seq: int = 1,
        chart_id: int | None = None,
        event_type: str | None = None,
        limit: int | None = None,
    ) -> list[AuditRecord]:
        """Records in order, optionally for one chart or one event type."""
        query = select(*_RECORD_COLUMNS).where(audit_records.c.seq >= start_seq)
        if chart_id is not None:
            query = query.where(audit_records.c.chart_id == chart_id)
        if event_type is not None:
            query = query.where(audit_records.c.event_type == event_type)
        query = query.order_by(audit_records.c.seq)
        if limit is not None:
            query = query.limit(limit)
        with self.store.read() as conn:
            return [_row_to_record(row) for row in conn.execute(query)]

    def tail(self, n: int = 10) -> list[AuditRecord]:
        """The last ``n`` records, oldest first. Raises ``InputError`` for ``n < 1``."""
        if n < 1:
            raise InputError(f"-n must be at least 1, got {n}")
        with self.store.read() as conn:
            rows = conn.execute(select(*_RECORD_COLUMNS).order_by(audit_records.c.seq.desc()).limit(n)).all()
        return [_row_to_record(row) for row in reversed(rows)]

    def head(self) -> tuple[int, str]:
        """``(seq, hash)`` of the head anchor: ``(0, GENESIS_HASH)`` for an empty log."""
        with self.store.read() as conn:
            row = conn.execute(select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1)).first()
        return (int(row[0]), str(row[1])) if row else (0, GENESIS_HASH)

    def verify(self, expected_head: str | None = None) -> VerifyResult:
        """Check every record's hash, the chain, the sequence and the head anchor.

        Returns the first problem found: ``edited`` (content changed), ``removed`` (a gap or a
        broken link), ``reordered`` (a record links to one that is not its predecessor),
        ``truncated`` (records missing after the last one), ``head_mismatch``, ``corrupt``, or
        ``anchor_missing`` (``expected_head`` is not in the log). Never raises for tampering;
        call ``raise_for_problem`` on the result for that. Raises ``InputError`` for a
        malformed ``expected_head`` and ``StoreError`` when the database cannot be read.
        """
        with self.store.read() as conn:  # one consistent snapshot while other processes append
            return verify_chain(conn, expected_head)
