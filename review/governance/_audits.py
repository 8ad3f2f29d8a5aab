"""``AuditProgram``: blinded gold-standard audits of finalised charts.

**Sampling** (``sample``, ``medcode audit sample``) draws finalised charts into an audit batch,
stratified by case type (the policy's classification of the chart's note type, setting and
validator-accepted codes) and by how the chart went out:

- *review* stratum: up to ``review_sample`` (per case type, from the policy) charts finalised by a
  human coder, at random among those never audited;
- *auto* stratum: a fixed share (the case type's ``audit_rate``) of the charts that went out alone
  since the previous batch, at random; the fractional remainder carries over to the next batch, so
  over time exactly that share is audited.

The seed of the random draw is recorded with the batch. A chart is audited at most once.

**Blind coding.** Each sampled chart becomes a task that ``auditors_per_chart`` auditors code
blind: ``blind_task`` returns the note text and its metadata (note type, setting, date of service)
and never the machine's codes, the first coder's, the routing, the case type, the stratum or
another auditor's answer. An auditor may not be anyone who acted on the chart before. Answers are
final. When two auditors agree (same set of codes), that set is the gold label; when they differ,
the task is *disputed* and an adjudicator (not one of them) sees the note and both answers
(as A and B, without names or the machine's codes) and decides the gold label.

Every step is one audit record, in the same transaction as the change: ``audit_batch``,
``audit_answer`` (the auditor and their codes), ``audit_disputed``, ``audit_gold`` (source, codes,
adjudicator); a gold label then re-checks its case type's grant (``autonomy_suspended`` when the
running bound fell below target). Note text never goes to the audit log.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import random
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any, Literal

from pydantic import BaseModel, Field
from sqlalchemy import Connection, func, select

from medcode.codesets import normalize_icd10cm
from medcode.config import Settings
from medcode.errors import AuditTaskNotFoundError, InputError
from medcode.review._audit import append_record, canonical_json
from medcode.review._store import ReviewStore, actions, audit_answers, audit_batches, audit_tasks, chart_codes, charts
from medcode.review.governance._autonomy import AUTOMATIC, recheck_grant
from medcode.review.governance._hcc import RiskAdjustmentCodes
from medcode.review.governance._policy import AutonomyPolicy, load_policy
from medcode.review.governance._records import AUTO_USER, now_iso

__all__ = [
    "AdjudicationTask",
    "AuditBatch",
    "AuditProgram",
    "AuditTaskDetail",
    "BlindAnswer",
    "BlindTask",
    "BlindTaskSummary",
    "CodeChecker",
]

CodeChecker = Callable[[str, dt.date | None], str]
"""Checks a code an auditor typed against the release of the chart's date of service; returns it canonical."""

_MAX_NAME = 100
_MAX_CODES = 60


def _key(code: str) -> str:
    return "".join(code.split()).upper().replace(".", "")


def _check_person(name: object, what: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InputError(f"{what} needs a name (recorded in the audit log)")
    cleaned = name.strip()
    if len(cleaned) > _MAX_NAME or not cleaned.isprintable() or cleaned in (AUTO_USER, AUTOMATIC):
        raise InputError(f"{what}: a printable name of at most {_MAX_NAME} characters, not a reserved one")
    return cleaned


class BlindTaskSummary(BaseModel):
    """A task in an auditor's list: nothing about codes, routing or case type."""

    task_id: int
    note_type: str | None
    setting: str
    date_of_service: dt.date | None
    note_chars: int
    created_at: str


class BlindTask(BlindTaskSummary):
    """What an auditor sees: the note and its metadata only. ``note_text`` is PHI."""

    note_text: str
    answered: bool = Field(description="This auditor has already answered (answers are final).")


class BlindAnswer(BaseModel):
    """The receipt of an answer: recorded, and nothing about the other answers or the machine."""

    task_id: int
    recorded: bool = True


class AdjudicationAnswer(BaseModel):
    label: Literal["A", "B"]
    codes: list[str]


class AdjudicationTask(BaseModel):
    """What an adjudicator sees: the note and the two auditors' answers, not who gave them or the machine's codes."""

    task_id: int
    note_type: str | None
    setting: str
    date_of_service: dt.date | None
    note_text: str
    answers: list[AdjudicationAnswer]


class AuditTaskDetail(BaseModel):
    """The governance view of a task (``medcode audit show``): everything but the note text."""

    task_id: int
    batch_id: int
    chart_id: int
    case_type: str | None
    stratum: Literal["auto", "review"]
    status: Literal["open", "disputed", "gold"]
    created_at: str
    answers: dict[str, list[str]]
    gold: list[str] | None
    gold_source: str | None
    gold_by: str | None
    gold_at: str | None


class AuditBatch(BaseModel):
    """A drawn sample: its tasks by case type and stratum."""

    batch_id: int
    created_at: str
    created_by: str
    seed: int
    policy_version: str
    strata: dict[str, dict[str, int]] = Field(description="case type -> stratum -> tasks drawn.")
    considered: dict[str, dict[str, int]] = Field(description="case type -> stratum -> charts it was drawn from.")
    task_ids: list[int]


class AuditProgram:
    """Blinded audits over one review database. Safe across threads and processes.

    ``check_code`` (optional) checks each code an auditor gives against the code set (the CLI and
    the copilot pass one); without it codes are checked for shape only. Raises ``ConfigError``
    for a bad policy file, ``StoreError`` when the database cannot be used.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        policy: AutonomyPolicy | None = None,
        hcc: RiskAdjustmentCodes | None = None,
        check_code: CodeChecker | None = None,
        create: bool = True,
    ) -> None:
        self.policy = policy or load_policy(settings.autonomy_policy_file)
        self.hcc = hcc or RiskAdjustmentCodes.load()
        self.check_code = check_code
        self.store = ReviewStore(settings, create=create, what="review store")
        self.store_note_text = settings.audit_store_note_text

    def __enter__(self) -> AuditProgram:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.store.close()

    def _audit(self, conn: Connection, event: str, payload: dict[str, Any], chart_id: int | None) -> int:
        record = append_record(self.store, conn, event, payload, chart_id=chart_id, allow_text=self.store_note_text)
        return record.seq

    # -- sampling --------------------------------------------------------------------------------

    def sample(
        self,
        *,
        by: str,
        seed: int | None = None,
        case_types: Sequence[str] | None = None,
        review_sample: int | None = None,
        strata: Sequence[Literal["auto", "review"]] = ("auto", "review"),
    ) -> AuditBatch:
        """Draw a batch (see the module doc). ``review_sample`` overrides the policy's per case type.

        Raises ``InputError`` for an unknown case type or a negative sample size.
        """
        by = _check_person(by, "--by")
        wanted = (
            {c.id for c in self.policy.case_types} if not case_types else {self.policy.get(c).id for c in case_types}
        )
        if review_sample is not None and review_sample < 0:
            raise InputError("--review-sample must not be negative")
        if seed is None:
            seed = random.SystemRandom().randrange(2**31)
        rng = random.Random(seed)
        at = now_iso()
        with self.store.write() as conn:
            self.store.lock_audit_head(conn)
            previous = self._previous_params(conn)
            watermark = int(previous.get("auto_watermark", 0))
            carry: dict[str, float] = dict(previous.get("auto_carry", {}))
            pools = self._pools(conn, watermark)
            drawn: dict[str, dict[str, list[int]]] = defaultdict(lambda: {"auto": [], "review": []})
            considered: dict[str, dict[str, int]] = defaultdict(lambda: {"auto": 0, "review": 0})
            for case_type in self.policy.case_types:
                if case_type.id not in wanted:
                    continue
                pool = pools.get(case_type.id, {"auto": [], "review": []})
                if "review" in strata:
                    size = case_type.review_sample if review_sample is None else review_sample
                    considered[case_type.id]["review"] = len(pool["review"])
                    drawn[case_type.id]["review"] = sorted(rng.sample(pool["review"], min(size, len(pool["review"]))))
                if "auto" in strata:
                    fresh = pool["auto"]
                    considered[case_type.id]["auto"] = len(fresh)
                    expected = carry.get(case_type.id, 0.0) + case_type.audit_rate * len(fresh)
                    take = min(len(fresh), math.floor(expected + 1e-9))
                    carry[case_type.id] = round(expected - take, 9)
                    drawn[case_type.id]["auto"] = sorted(rng.sample(fresh, take))
            new_watermark = watermark
            if "auto" in strata:
                new_watermark = max([watermark, *(c for p in pools.values() for c in p["auto"])])
            params = {
                "auto_watermark": new_watermark,
                "auto_carry": carry,
                "case_types": sorted(wanted),
                "review_sample": review_sample,
                "strata": list(strata),
            }
            result = conn.execute(
                audit_batches.insert().values(
                    created_at=at,
                    created_by=by,
                    seed=seed,
                    policy_version=self.policy.version,
                    policy_sha256=self.policy.sha256,
                    params_json=canonical_json(params),
                )
            )
            key = result.inserted_primary_key
            assert key is not None
            batch_id = int(key[0])
            tasks: list[tuple[int, int]] = []
            for case_type_id, by_stratum in drawn.items():
                for stratum, chart_ids in by_stratum.items():
                    for chart_id in chart_ids:
                        inserted = conn.execute(
                            audit_tasks.insert().values(
                                batch_id=batch_id,
                                chart_id=chart_id,
                                case_type=case_type_id,
                                stratum=stratum,
                                status="open",
                                created_at=at,
                            )
                        ).inserted_primary_key
                        assert inserted is not None
                        tasks.append((int(inserted[0]), chart_id))
            counts = {ct: {s: len(ids) for s, ids in v.items()} for ct, v in drawn.items()}
            self._audit(
                conn,
                "audit_batch",
                {
                    "batch_id": batch_id,
                    "by": by,
                    "seed": seed,
                    "policy_version": self.policy.version_label,
                    "strata": counts,
                    "considered": dict(considered),
                    "tasks": [[t, c] for t, c in tasks],
                },
                None,
            )
        return AuditBatch(
            batch_id=batch_id,
            created_at=at,
            created_by=by,
            seed=seed,
            policy_version=self.policy.version_label,
            strata=counts,
            considered=dict(considered),
            task_ids=[t for t, _ in tasks],
        )

    @staticmethod
    def _previous_params(conn: Connection) -> dict[str, Any]:
        row = conn.execute(
            select(audit_batches.c.params_json).order_by(audit_batches.c.batch_id.desc()).limit(1)
        ).first()
        return dict(json.loads(row[0])) if row else {}

    def _pools(self, conn: Connection, watermark: int) -> dict[str, dict[str, list[int]]]:
        """Finalised, never-audited charts by case type and stratum (auto: only those after the watermark)."""
        audited = select(audit_tasks.c.chart_id)
        rows = conn.execute(
            select(charts.c.chart_id, charts.c.note_type, charts.c.setting, charts.c.routing, charts.c.finalised_by)
            .where(charts.c.status == "finalised", charts.c.chart_id.not_in(audited))
            .order_by(charts.c.chart_id)
        ).all()
        if not rows:
            return {}
        codes: dict[int, list[str]] = defaultdict(list)
        for chart_id, code in conn.execute(
            select(chart_codes.c.chart_id, chart_codes.c.code)
            .join(charts, charts.c.chart_id == chart_codes.c.chart_id)
            .where(
                charts.c.status == "finalised",
                chart_codes.c.origin == "proposed",
                chart_codes.c.proposed_status == "accepted",
            )
            .order_by(chart_codes.c.chart_id, chart_codes.c.position)
        ):
            codes[int(chart_id)].append(str(code))
        pools: dict[str, dict[str, list[int]]] = defaultdict(lambda: {"auto": [], "review": []})
        for chart_id, note_type, setting, routing, finalised_by in rows:
            case_type = self.policy.classify(note_type, setting, codes.get(int(chart_id), []))
            if case_type is None:
                continue
            if routing == "auto" and finalised_by == AUTO_USER:
                if chart_id > watermark:
                    pools[case_type.id]["auto"].append(int(chart_id))
            else:
                pools[case_type.id]["review"].append(int(chart_id))
        return pools

    # -- blind coding ----------------------------------------------------------------------------

    def _task_row(self, conn: Connection, task_id: int) -> Any:
        row = conn.execute(
            select(
                audit_tasks.c.task_id,
                audit_tasks.c.chart_id,
                audit_tasks.c.status,
                audit_tasks.c.created_at,
                audit_tasks.c.case_type,
                audit_tasks.c.batch_id,
                charts.c.note_type,
                charts.c.setting,
                charts.c.date_of_service,
                charts.c.note_text,
            )
            .join(charts, charts.c.chart_id == audit_tasks.c.chart_id)
            .where(audit_tasks.c.task_id == task_id)
        ).first()
        if row is None:
            raise AuditTaskNotFoundError(f"no audit task {task_id}")
        return row

    @staticmethod
    def _first_coders(conn: Connection, chart_id: int) -> set[str]:
        users = {str(r[0]) for r in conn.execute(select(actions.c.user).where(actions.c.chart_id == chart_id))}
        finalised_by = conn.execute(select(charts.c.finalised_by).where(charts.c.chart_id == chart_id)).scalar()
        if finalised_by:
            users.add(str(finalised_by))
        return users

    @staticmethod
    def _answers(conn: Connection, task_id: int) -> dict[str, list[str]]:
        return {
            str(auditor): json.loads(codes)
            for auditor, codes in conn.execute(
                select(audit_answers.c.auditor, audit_answers.c.codes_json)
                .where(audit_answers.c.task_id == task_id)
                .order_by(audit_answers.c.at)
            )
        }

    def _may_code(self, conn: Connection, row: Any, auditor: str) -> str | None:
        """Why this auditor may not code the task, or None."""
        if row[2] != "open":
            return f"audit task {row[0]} is no longer open for auditors ({row[2]})"
        if auditor in self._first_coders(conn, int(row[1])):
            return f"{auditor} worked on this chart before, so cannot audit it blind"
        if auditor in self._answers(conn, int(row[0])):
            return f"{auditor} has already answered audit task {row[0]} (answers are final)"
        return None

    def tasks_for(self, auditor: str, *, limit: int = 50) -> list[BlindTaskSummary]:
        """Open tasks this auditor can code blind, oldest first (never codes, routing or case type)."""
        auditor = _check_person(auditor, "auditor")
        out: list[BlindTaskSummary] = []
        with self.store.read() as conn:
            answered = select(audit_answers.c.task_id).where(audit_answers.c.auditor == auditor)
            rows = conn.execute(
                select(
                    audit_tasks.c.task_id,
                    audit_tasks.c.chart_id,
                    audit_tasks.c.created_at,
                    charts.c.note_type,
                    charts.c.setting,
                    charts.c.date_of_service,
                    func.length(charts.c.note_text),
                )
                .join(charts, charts.c.chart_id == audit_tasks.c.chart_id)
                .where(audit_tasks.c.status == "open", audit_tasks.c.task_id.not_in(answered))
                .order_by(audit_tasks.c.task_id)
            ).all()
            for task_id, chart_id, created_at, note_type, setting, dos, chars in rows:
                if auditor in self._first_coders(conn, int(chart_id)):
                    continue
                out.append(
                    BlindTaskSummary(
                        task_id=task_id,
                        note_type=note_type,
                        setting=setting,
                        date_of_service=dt.date.fromisoformat(dos) if dos else None,
                        note_chars=int(chars or 0),
                        created_at=created_at,
                    )
                )
                if len(out) >= limit:
                    break
        return out

    def blind_task(self, task_id: int, auditor: str) -> BlindTask:
        """The note of a task, blind. Raises ``AuditTaskNotFoundError``; ``InputError`` when the
        auditor worked on the chart before (they are not blind to it)."""
        auditor = _check_person(auditor, "auditor")
        with self.store.read() as conn:
            row = self._task_row(conn, task_id)
            if auditor in self._first_coders(conn, int(row[1])):
                raise InputError(f"{auditor} worked on this chart before, so cannot audit it blind")
            answered = auditor in self._answers(conn, task_id)
        _tid, _chart, _status, created_at, _ct, _batch, note_type, setting, dos, note_text = row
        return BlindTask(
            task_id=task_id,
            note_type=note_type,
            setting=setting,
            date_of_service=dt.date.fromisoformat(dos) if dos else None,
            note_chars=len(note_text),
            created_at=created_at,
            note_text=note_text,
            answered=answered,
        )

    def _clean_codes(self, codes: Sequence[str], date_of_service: dt.date | None) -> list[str]:
        if len(codes) > _MAX_CODES:
            raise InputError(f"at most {_MAX_CODES} codes per chart")
        cleaned: list[str] = []
        for raw in codes:
            code = self.check_code(raw, date_of_service) if self.check_code else normalize_icd10cm(raw)
            if _key(code) not in {_key(c) for c in cleaned}:
                cleaned.append(code)
        return cleaned

    def answer(self, task_id: int, auditor: str, codes: Sequence[str]) -> BlindAnswer:
        """Record an auditor's blind answer (an empty list: nothing codeable). Final once recorded.

        With enough answers the task gets its gold label (agreement) or goes to adjudication.
        Raises ``AuditTaskNotFoundError``, ``InputError`` (not open, answered before, the
        auditor worked on the chart, a bad code).
        """
        auditor = _check_person(auditor, "auditor")
        with self.store.read() as conn:
            dos_raw = self._task_row(conn, task_id)[8]
        cleaned = self._clean_codes(codes, dt.date.fromisoformat(dos_raw) if dos_raw else None)
        at = now_iso()
        with self.store.write() as conn:
            self.store.lock_audit_head(conn)
            row = self._task_row(conn, task_id)
            problem = self._may_code(conn, row, auditor)
            if problem:
                raise InputError(problem)
            chart_id, case_type, batch_id = int(row[1]), row[4], int(row[5])
            number = len(self._answers(conn, task_id)) + 1
            seq = self._audit(
                conn,
                "audit_answer",
                {"task_id": task_id, "batch_id": batch_id, "auditor": auditor, "codes": cleaned, "answer": number},
                chart_id,
            )
            conn.execute(
                audit_answers.insert().values(
                    task_id=task_id, auditor=auditor, codes_json=json.dumps(cleaned), at=at, audit_seq=seq
                )
            )
            answers = self._answers(conn, task_id)
            if len(answers) >= self.policy.auditors_per_chart:
                sets = [{_key(c) for c in a} for a in answers.values()]
                if all(s == sets[0] for s in sets):
                    source = "single" if len(answers) == 1 else "agreement"
                    self._set_gold(conn, task_id, chart_id, case_type, cleaned, source=source, by=None, at=at)
                else:
                    conn.execute(audit_tasks.update().where(audit_tasks.c.task_id == task_id).values(status="disputed"))
                    self._audit(conn, "audit_disputed", {"task_id": task_id, "auditors": sorted(answers)}, chart_id)
        return BlindAnswer(task_id=task_id)

    def _set_gold(
        self,
        conn: Connection,
        task_id: int,
        chart_id: int,
        case_type: str | None,
        codes: list[str],
        *,
        source: str,
        by: str | None,
        at: str,
        reason: str | None = None,
    ) -> None:
        conn.execute(
            audit_tasks.update()
            .where(audit_tasks.c.task_id == task_id)
            .values(status="gold", gold_codes_json=json.dumps(codes), gold_source=source, gold_by=by, gold_at=at)
        )
        self._audit(
            conn,
            "audit_gold",
            {"task_id": task_id, "case_type": case_type, "codes": codes, "source": source, "by": by, "reason": reason},
            chart_id,
        )
        if case_type is not None:
            recheck_grant(
                self.store,
                conn,
                self.policy,
                self.hcc,
                case_type,
                trigger={"audit_gold_task": task_id},
                allow_text=self.store_note_text,
            )

    # -- adjudication ----------------------------------------------------------------------------

    def disputes_for(self, adjudicator: str, *, limit: int = 50) -> list[BlindTaskSummary]:
        """Disputed tasks this person may adjudicate (not one of their auditors, not a first coder)."""
        adjudicator = _check_person(adjudicator, "adjudicator")
        out: list[BlindTaskSummary] = []
        with self.store.read() as conn:
            rows = conn.execute(
                select(
                    audit_tasks.c.task_id,
                    audit_tasks.c.chart_id,
                    audit_tasks.c.created_at,
                    charts.c.note_type,
                    charts.c.setting,
                    charts.c.date_of_service,
                    func.length(charts.c.note_text),
                )
                .join(charts, charts.c.chart_id == audit_tasks.c.chart_id)
                .where(audit_tasks.c.status == "disputed")
                .order_by(audit_tasks.c.task_id)
            ).all()
            for task_id, chart_id, created_at, note_type, setting, dos, chars in rows:
                if adjudicator in self._answers(conn, task_id) or adjudicator in self._first_coders(conn, chart_id):
                    continue
                out.append(
                    BlindTaskSummary(
                        task_id=task_id,
                        note_type=note_type,
                        setting=setting,
                        date_of_service=dt.date.fromisoformat(dos) if dos else None,
                        note_chars=int(chars or 0),
                        created_at=created_at,
                    )
                )
                if len(out) >= limit:
                    break
        return out

    def _may_adjudicate(self, conn: Connection, row: Any, adjudicator: str) -> None:
        if row[2] != "disputed":
            raise InputError(f"audit task {row[0]} is not disputed ({row[2]}); only disputes are adjudicated")
        if adjudicator in self._answers(conn, int(row[0])):
            raise InputError(f"{adjudicator} audited this chart, so cannot adjudicate it")
        if adjudicator in self._first_coders(conn, int(row[1])):
            raise InputError(f"{adjudicator} worked on this chart before, so cannot adjudicate it")

    def adjudication_task(self, task_id: int, adjudicator: str) -> AdjudicationTask:
        """The note and both answers (as A and B), for the adjudicator. Raises like ``adjudicate``."""
        adjudicator = _check_person(adjudicator, "adjudicator")
        with self.store.read() as conn:
            row = self._task_row(conn, task_id)
            self._may_adjudicate(conn, row, adjudicator)
            answers = list(self._answers(conn, task_id).values())
        labels: tuple[Literal["A", "B"], ...] = ("A", "B")
        return AdjudicationTask(
            task_id=task_id,
            note_type=row[6],
            setting=row[7],
            date_of_service=dt.date.fromisoformat(row[8]) if row[8] else None,
            note_text=row[9],
            answers=[
                AdjudicationAnswer(label=label, codes=codes) for label, codes in zip(labels, answers, strict=False)
            ],
        )

    def adjudicate(
        self, task_id: int, adjudicator: str, codes: Sequence[str], *, reason: str | None = None
    ) -> AuditTaskDetail:
        """Decide a disputed task's gold label. Raises ``AuditTaskNotFoundError``; ``InputError``
        when it is not disputed or the adjudicator audited or coded the chart."""
        adjudicator = _check_person(adjudicator, "adjudicator")
        cleaned_reason = (reason or "").strip()[:1_000] or None
        with self.store.read() as conn:
            dos_raw = self._task_row(conn, task_id)[8]
        cleaned = self._clean_codes(codes, dt.date.fromisoformat(dos_raw) if dos_raw else None)
        at = now_iso()
        with self.store.write() as conn:
            self.store.lock_audit_head(conn)
            row = self._task_row(conn, task_id)
            self._may_adjudicate(conn, row, adjudicator)
            self._set_gold(
                conn,
                task_id,
                int(row[1]),
                row[4],
                cleaned,
                source="adjudication",
                by=adjudicator,
                at=at,
                reason=cleaned_reason,
            )
        return self.detail(task_id)

    # -- the governance view ---------------------------------------------------------------------

    def detail(self, task_id: int) -> AuditTaskDetail:
        """Everything about a task except the note text (for governance staff, not auditors)."""
        with self.store.read() as conn:
            row = conn.execute(
                select(
                    audit_tasks.c.task_id,
                    audit_tasks.c.batch_id,
                    audit_tasks.c.chart_id,
                    audit_tasks.c.case_type,
                    audit_tasks.c.stratum,
                    audit_tasks.c.status,
                    audit_tasks.c.created_at,
                    audit_tasks.c.gold_codes_json,
                    audit_tasks.c.gold_source,
                    audit_tasks.c.gold_by,
                    audit_tasks.c.gold_at,
                ).where(audit_tasks.c.task_id == task_id)
            ).first()
            if row is None:
                raise AuditTaskNotFoundError(f"no audit task {task_id}")
            answers = self._answers(conn, task_id)
        return AuditTaskDetail(
            task_id=row[0],
            batch_id=row[1],
            chart_id=row[2],
            case_type=row[3],
            stratum=row[4],
            status=row[5],
            created_at=row[6],
            answers=answers,
            gold=json.loads(row[7]) if row[7] else None,
            gold_source=row[8],
            gold_by=row[9],
            gold_at=row[10],
        )

    def tasks(self, *, status: str | None = None, limit: int = 200) -> list[AuditTaskDetail]:
        """Tasks (governance view), oldest first."""
        query = select(audit_tasks.c.task_id).order_by(audit_tasks.c.task_id).limit(limit)
        if status is not None:
            query = query.where(audit_tasks.c.status == status)
        with self.store.read() as conn:
            ids = [int(r[0]) for r in conn.execute(query)]
        return [self.detail(i) for i in ids]
