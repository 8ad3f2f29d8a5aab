"""Coding jobs: a persistent queue of notes and the one worker thread that codes them.

LLM calls take 10-60 s on a small CPU, so ``POST /v1/code`` only stores a job and returns; the
worker codes jobs one at a time with the app's single ``MedicalCoder`` (models load once), and
every other request is answered meanwhile. Jobs live in ``<data_dir>/copilot_jobs.sqlite``
(owner-only, like the review queue): a server that stops mid-job codes the job again on the next
start. The note text stays in the job row only until the job finishes (the chart keeps it).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from medcode.agent import MedicalCoder, Note
from medcode.config import Settings
from medcode.copilot._models import CodingJob, ErrorInfo
from medcode.errors import JobNotFoundError, JobQueueFullError, MedcodeError, StoreError

__all__ = ["CodingWorker", "JobStore", "WorkerState", "jobs_db_path"]

log = logging.getLogger("medcode.copilot.jobs")

WorkerState = Literal["starting", "warming", "ready", "degraded", "stopped"]

_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS jobs (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        job_id TEXT NOT NULL UNIQUE,
        status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed')),
        note_id TEXT NOT NULL,
        note_type TEXT,
        note_json TEXT,
        proposer TEXT NOT NULL,
        created_at TEXT NOT NULL,
        started_at TEXT,
        finished_at TEXT,
        chart_id INTEGER,
        error_type TEXT,
        error_message TEXT,
        result_json TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status, seq)",
]
_COLUMNS = (
    "seq, job_id, status, note_id, note_type, proposer, created_at, started_at, finished_at, chart_id, "
    "error_type, error_message, result_json"
)


def jobs_db_path(settings: Settings) -> Path:
    """Where the copilot's coding jobs live: ``<data_dir>/copilot_jobs.sqlite``."""
    return settings.data_dir / "copilot_jobs.sqlite"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _iso(moment: dt.datetime) -> str:
    return moment.isoformat(timespec="microseconds")


class JobStore:
    """The job table. Thread-safe (one connection behind a lock; every statement is short).

    Raises ``StoreError`` when the database file cannot be created or read.
    """

    def __init__(self, settings: Settings) -> None:
        self.path = jobs_db_path(settings)
        self.retention = dt.timedelta(hours=settings.serve_job_retention_hours)
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if not self.path.exists():  # owner-only: queued jobs hold note text (PHI)
                os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
            self._conn = sqlite3.connect(
                self.path, timeout=settings.db_busy_timeout_s, isolation_level=None, check_same_thread=False
            )
            self._conn.execute("PRAGMA journal_mode=WAL")
            with self._write() as conn:
                for statement in _SCHEMA:
                    conn.execute(statement)
        except (OSError, sqlite3.DatabaseError) as exc:
            raise StoreError(f"copilot job store {self.path} cannot be opened ({exc})") from exc

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def _job(self, row: tuple[Any, ...], *, with_result: bool) -> CodingJob:
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
                self._conn.execute("SELECT COUNT(*) FROM jobs WHERE status = 'queued' AND seq < ?", (seq,)).fetchone()[
                    0
                ]
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
        with self._write() as conn:
            conn.execute(
                "DELETE FROM jobs WHERE status IN ('done', 'failed') AND finished_at < ?", (_iso(now - self.retention),)
            )
            waiting = int(conn.execute("SELECT COUNT(*) FROM jobs WHERE status = 'queued'").fetchone()[0])
            if waiting >= max_queued:
                raise JobQueueFullError(
                    f"the coding queue is full ({waiting} notes waiting, MEDCODE_SERVE_MAX_QUEUED_JOBS); retry later"
                )
            conn.execute(
                "INSERT INTO jobs (job_id, status, note_id, note_type, note_json, proposer, created_at) "
                "VALUES (?, 'queued', ?, ?, ?, ?, ?)",
                (job_id, note.id, note.note_type, note.model_dump_json(), proposer, _iso(now)),
            )
        return self.get(job_id)

    def get(self, job_id: str, *, with_result: bool = True) -> CodingJob:
        """One job. Raises ``JobNotFoundError``."""
        with self._lock:
            row = self._conn.execute(f"SELECT {_COLUMNS} FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
            if row is None:
                raise JobNotFoundError(f"no coding job {job_id!r} (finished jobs are kept for a limited time)")
            return self._job(row, with_result=with_result)

    def active(self, *, include_failed: bool = True) -> list[CodingJob]:
        """Queued and running jobs (and recently failed ones), oldest first, without results."""
        statuses = ("queued", "running", "failed") if include_failed else ("queued", "running")
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {_COLUMNS} FROM jobs WHERE status IN ({','.join('?' * len(statuses))}) ORDER BY seq",
                statuses,
            ).fetchall()
            return [self._job(row, with_result=False) for row in rows]

    def counts(self) -> dict[str, int]:
        with self._lock:
            return {s: int(n) for s, n in self._conn.execute("SELECT status, COUNT(*) FROM jobs GROUP BY status")}

    def requeue_interrupted(self) -> int:
        """Jobs left ``running`` by a stopped server go back to the queue; returns how many."""
        with self._write() as conn:
            return conn.execute(
                "UPDATE jobs SET status = 'queued', started_at = NULL WHERE status = 'running'"
            ).rowcount

    def claim(self) -> tuple[str, Note] | None:
        """The oldest queued job, now ``running``, with its note; ``None`` when the queue is empty."""
        with self._write() as conn:
            row = conn.execute(
                "SELECT job_id, note_json FROM jobs WHERE status = 'queued' ORDER BY seq LIMIT 1"
            ).fetchone()
            if row is None:
                return None
            conn.execute("UPDATE jobs SET status = 'running', started_at = ? WHERE job_id = ?", (_iso(_now()), row[0]))
        return str(row[0]), Note.model_validate_json(row[1])

    def finish(self, job_id: str, result: dict[str, Any]) -> None:
        """Mark a job done with its result; the note text is dropped from the job row."""
        with self._write() as conn:
            conn.execute(
                "UPDATE jobs SET status = 'done', finished_at = ?, chart_id = ?, result_json = ?, note_json = NULL "
                "WHERE job_id = ?",
                (_iso(_now()), result.get("chart_id"), json.dumps(result, ensure_ascii=False), job_id),
            )

    def fail(self, job_id: str, error: ErrorInfo) -> None:
        """Mark a job failed; the note text is dropped from the job row."""
        with self._write() as conn:
            conn.execute(
                "UPDATE jobs SET status = 'failed', finished_at = ?, error_type = ?, error_message = ?, "
                "note_json = NULL WHERE job_id = ?",
                (_iso(_now()), error.type, error.message[:2_000], job_id),
            )


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
            except (sqlite3.DatabaseError, StoreError):
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
