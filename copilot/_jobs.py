"""Coding jobs: a persistent queue of notes and the one worker thread that codes them.

LLM calls take 10-60 s on a small CPU, so ``POST /v1/code`` only stores a job and returns; the
worker codes jobs one at a time with the app's single ``MedicalCoder`` (models load once), and
every other request is answered meanwhile. Jobs live in the ``jobs`` table of the review database
(``medcode.review.ReviewStore``, next to the queue it feeds): a server that stops mid-job codes the
job again on the next start. The note text stays in the job row only until the job finishes (the
chart keeps it).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Literal

from sqlalchemy import Connection, func, select

from medcode.agent import MedicalCoder, Note
from medcode.config import Settings
from medcode.copilot._models import CodingJob, ErrorInfo
from medcode.errors import JobNotFoundError, JobQueueFullError, MedcodeError, StoreError
from medcode.review import ReviewStore, jobs_table, stored_note_id

__all__ = ["CodingWorker", "JobStore", "WorkerState"]

log = logging.getLogger("medcode.copilot.jobs")

WorkerState = Literal["starting", "warming", "ready", "degraded", "stopped"]

_COLUMNS = (
    jobs_table.c.seq,
    jobs_table.c.job_id,
    jobs_table.c.status,
    jobs_table.c.note_id,
    jobs_table.c.note_type,
    jobs_table.c.proposer,
    jobs_table.c.created_at,
    jobs_table.c.started_at,
    jobs_table.c.finished_at,
    jobs_table.c.chart_id,
    jobs_table.c.error_type,
    jobs_table.c.error_message,
    jobs_table.c.result_json,
)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _iso(moment: dt.datetime) -> str:
    return moment.isoformat(timespec="microseconds")


class JobStore:
    """The coding jobs of one review database. Thread- and process-safe (every call is one short transaction).

    Raises ``StoreError`` when the database cannot be opened or written (see ``ReviewStore``).
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = ReviewStore(settings, what="copilot job store")
        self.retention = dt.timedelta(hours=settings.serve_job_retention_hours)

    def close(self) -> None:
        """Close the store's connections."""
        self.store.close()

    @staticmethod
    def _job(conn: Connection, row: Sequence[Any], *, with_result: bool) -> CodingJob:
        (
            seq,
            job_id,
            status,
            note_id,
            note_type,
            proposer,
            created_at,
            started_at,
            finished_at,
            chart_id,
            error_type,
            error_message,
            result_json,
        ) = row
        position = None
        if status == "queued":
            position = int(
                conn.execute(
                    select(func.count()).where(jobs_table.c.status == "queued", jobs_table.c.seq < seq)
                ).scalar_one()
            )
        return CodingJob(
            job_id=job_id,
            status=status,
            note_id=note_id,
            note_type=note_type,
            proposer=proposer,
            created_at=created_at,
            started_at=started_at,
            finished_at=finished_at,
            position=position,
            chart_id=chart_id,
            error=ErrorInfo(type=error_type, message=error_message or "") if error_type else None,
            result=json.loads(result_json) if with_result and result_json else None,
        )

    def add(self, note: Note, proposer: str, *, max_queued: int) -> CodingJob:
        """Queue a note; finished jobs past the retention time are dropped first.

        Raises ``JobQueueFullError`` when ``max_queued`` notes are already waiting.
        """
        now = _now()
        job_id = secrets.token_hex(8)
        with self.store.write() as conn:
            conn.execute(
                jobs_table.delete().where(
                    jobs_table.c.status.in_(("done", "failed")), jobs_table.c.finished_at < _iso(now - self.retention)
                )
            )
            waiting = int(conn.execute(select(func.count()).where(jobs_table.c.status == "queued")).scalar_one())
            if waiting >= max_queued:
                raise JobQueueFullError(
                    f"the coding queue is full ({waiting} notes waiting, MEDCODE_SERVE_MAX_QUEUED_JOBS); retry later"
                )
            conn.execute(
                jobs_table.insert().values(
                    job_id=job_id,
                    status="queued",
                    note_id=stored_note_id(self.settings, note.id),
                    note_type=note.note_type,
                    note_json=note.model_dump_json(),
                    proposer=proposer,
                    created_at=_iso(now),
                )
            )
        return self.get(job_id)

    def get(self, job_id: str, *, with_result: bool = True) -> CodingJob:
        """One job. Raises ``JobNotFoundError``."""
        with self.store.read() as conn:
            row = conn.execute(select(*_COLUMNS).where(jobs_table.c.job_id == job_id)).first()
            if row is None:
                raise JobNotFoundError(f"no coding job {job_id!r} (finished jobs are kept for a limited time)")
            return self._job(conn, row, with_result=with_result)

    def active(self, *, include_failed: bool = True) -> list[CodingJob]:
        """Queued and running jobs (and recently failed ones), oldest first, without results."""
        statuses = ("queued", "running", "failed") if include_failed else ("queued", "running")
        with self.store.read() as conn:
            rows = conn.execute(
                select(*_COLUMNS).where(jobs_table.c.status.in_(statuses)).order_by(jobs_table.c.seq)
            ).all()
            return [self._job(conn, row, with_result=False) for row in rows]

    def counts(self) -> dict[str, int]:
        with self.store.read() as conn:
            rows = conn.execute(select(jobs_table.c.status, func.count()).group_by(jobs_table.c.status))
            return {str(s): int(n) for s, n in rows}

    def requeue_interrupted(self) -> int:
        """Jobs left ``running`` by a stopped server go back to the queue; returns how many."""
        with self.store.write() as conn:
            result = conn.execute(
                jobs_table.update().where(jobs_table.c.status == "running").values(status="queued", started_at=None)
            )
            return int(result.rowcount)

    def claim(self) -> tuple[str, Note] | None:
        """The oldest queued job, now ``running``, with its note; ``None`` when the queue is empty."""
        with self.store.write() as conn:
            row = conn.execute(
                select(jobs_table.c.job_id, jobs_table.c.note_json)
                .where(jobs_table.c.status == "queued")
                .order_by(jobs_table.c.seq)
                .limit(1)
                .with_for_update(skip_locked=True)
            ).first()
            if row is None:
                return None
            conn.execute(
                jobs_table.update()
                .where(jobs_table.c.job_id == row[0])
                .values(status="running", started_at=_iso(_now()))
            )
        return str(row[0]), Note.model_validate_json(row[1])

    def finish(self, job_id: str, result: dict[str, Any]) -> None:
        """Mark a job done with its result; the note text is dropped from the job row."""
        with self.store.write() as conn:
            conn.execute(
                jobs_table.update()
                .where(jobs_table.c.job_id == job_id)
                .values(
                    status="done",
                    finished_at=_iso(_now()),
                    chart_id=result.get("chart_id"),
                    result_json=json.dumps(result, ensure_ascii=False),
                    note_json=None,
                )
            )
        self._forget_note_text()

    def _forget_note_text(self) -> None:
        """After a job's note text was cleared: copy the WAL into the database and truncate it, so the text is
        in neither (the store zeroes freed pages: ``secure_delete``). Best effort: a reader holding an old
        snapshot can delay it to the next job; PostgreSQL has no WAL file of ours to clear."""
        self.store.checkpoint()

    def fail(self, job_id: str, error: ErrorInfo) -> None:
        """Mark a job failed; the note text is dropped from the job row."""
        with self.store.write() as conn:
            conn.execute(
                jobs_table.update()
                .where(jobs_table.c.job_id == job_id)
                .values(
                    status="failed",
                    finished_at=_iso(_now()),
                    error_type=error.type,
                    error_message=error.message[:2_000],
                    note_json=None,
                )
            )
        self._forget_note_text()


class CodingWorker:
    """One thread that warms the coder up, then codes queued jobs one at a time.

    A failing note fails its job (``MedcodeError`` message kept, never note text) and the worker
    goes on; a failing warm-up leaves the worker ``degraded`` (each job then reports its own error).
    """

    def __init__(self, store: JobStore, coder: MedicalCoder, *, warm_up: bool = True) -> None:
        self.store = store
        self.coder = coder
        self.warm_up = warm_up
        self.state: WorkerState = "starting"
        self.problem: str | None = None
        self._wake = threading.Condition()
        self._finished = threading.Condition()
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="medcode-coding-worker", daemon=True)
        self.listeners: list[Callable[[str], None]] = []  # called with a job id when the job is done or failed

    def start(self) -> None:
        requeued = self.store.requeue_interrupted()
        if requeued:
            log.warning("re-queued %d coding job(s) interrupted by the last shutdown", requeued)
        self._thread.start()

    def notify(self) -> None:
        """Wake the worker: a job was queued."""
        with self._wake:
            self._wake.notify()

    def stop(self, timeout_s: float = 10.0) -> bool:
        """Ask the worker to stop after its current job; returns whether it stopped within the timeout."""
        with self._wake:
            self._stop = True
            self._wake.notify()
        if self._thread.is_alive():
            self._thread.join(timeout_s)
        stopped = not self._thread.is_alive()
        if stopped:
            self.state = "stopped"
        return stopped

    def wait_for(self, job_id: str, timeout_s: float) -> CodingJob:
        """The job once it is done or failed, or as it is after ``timeout_s``. Raises ``JobNotFoundError``."""
        deadline = time.monotonic() + timeout_s
        while True:
            job = self.store.get(job_id)
            left = deadline - time.monotonic()
            if job.status in ("done", "failed") or left <= 0:
                return job
            with self._finished:
                self._finished.wait(min(left, 1.0))

    def _run(self) -> None:
        if self.warm_up:
            self.state = "warming"
            try:
                self.coder.warm_up()
            except MedcodeError as exc:
                self.state, self.problem = "degraded", f"{type(exc).__name__}: {exc}"
                log.error("coder warm-up failed: %s", self.problem)
            except Exception as exc:  # keep serving the queue and the review pages
                self.state, self.problem = "degraded", f"{type(exc).__name__} during warm-up"
                log.exception("coder warm-up failed")
        if self.state != "degraded":
            self.state = "ready"
        while True:
            with self._wake:
                if self._stop:
                    return
            try:
                claimed = self.store.claim()
            except StoreError:
                log.exception("cannot read the copilot job store")
                claimed = None
            if claimed is None:
                with self._wake:
                    if not self._stop:
                        self._wake.wait(5.0)  # also polls, in case a job was queued by another process
                continue
            self._code(*claimed)

    def _code(self, job_id: str, note: Note) -> None:
        started = time.monotonic()
        try:
            result = self.coder.code(note).model_dump(mode="json")
        except MedcodeError as exc:
            self.store.fail(job_id, ErrorInfo(type=type(exc).__name__, message=str(exc)))
            log.warning("coding job %s failed after %.1fs: %s", job_id, time.monotonic() - started, type(exc).__name__)
        except Exception as exc:  # one bad note never stops the worker
            self.store.fail(job_id, ErrorInfo(type="InternalError", message=f"unexpected {type(exc).__name__}"))
            log.exception("coding job %s failed unexpectedly", job_id)
        else:
            self.store.finish(job_id, result)
            log.info("coding job %s done in %.1fs (chart %s)", job_id, time.monotonic() - started, result["chart_id"])
        with self._finished:
            self._finished.notify_all()
        for listener in list(self.listeners):
            try:
                listener(job_id)
            except Exception:  # a listener never stops the worker
                log.exception("job listener failed")
