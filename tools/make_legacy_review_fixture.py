"""Writes ``tests/fixtures/legacy-review-v1/``: review data as the release before the one review database wrote it.

It was run once, at commit ``80f0ab6`` (the last one with the three hand-written SQLite layers), with
that commit's ``ReviewQueue``/``AuditLog``/``JobStore``: ``python -m tools.make_legacy_review_fixture OUT_DIR``.
Later code writes the one review database instead, so to regenerate the fixture check that commit out
(``git worktree add /tmp/legacy 80f0ab6``) and run this script there.

It writes three files, the layout of that release: ``queue.sqlite``, ``audit/audit.sqlite`` and
``copilot_jobs.sqlite``. Each is switched out of WAL mode at the end (which checkpoints it), so the
``.sqlite`` files are self-contained. The notes are synthetic. ``tests/test_review_store.py`` opens
a copy with the current code and checks that every chart, code, action, job and audit record came
across.
"""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

from medcode.agent import Note
from medcode.agent._routing import RoutingDecision, RoutingPolicy
from medcode.config import load_settings
from medcode.copilot import ErrorInfo, JobStore
from medcode.review import AuditLog, CodingDecision, ReviewQueue
from medcode.validators import CodeVerdict, Evidence

NOTE_A = "Follow-up: type 2 diabetes, stable. Hypertension controlled. Denies chest pain. Legacy-marker 7731."
NOTE_B = "ED visit: asthma exacerbation, wheezing. Legacy-marker 7732."
NOTE_C = "Annual visit: essential hypertension, well controlled. Legacy-marker 7733."
CHAPTERS = {"E11.9": "4", "E11.65": "4", "I10": "9", "J45.901": "10", "R07.9": "18", "Z79.4": "21"}


def _ok(note: str, code: str, quote: str | None = None, confidence: float = 0.95) -> CodeVerdict:
    evidence = [Evidence(text=quote, start=note.index(quote), end=note.index(quote) + len(quote))] if quote else []
    return CodeVerdict(
        code=code,
        canonical=code,
        description=f"desc {code}",
        status="accepted",
        confidence=confidence,
        evidence=evidence,
    )


def _rej(code: str, rule: str) -> CodeVerdict:
    return CodeVerdict(code=code, canonical=code, status="rejected", confidence=0.99, rules=[rule])


def _decision(note: str, verdicts: list[CodeVerdict], routing: RoutingDecision | None = None) -> CodingDecision:
    return CodingDecision(
        note_text=note,
        note_id=f"legacy-{note[-4:]}",
        note_type="progress",
        verdicts=verdicts,
        routing=routing or RoutingPolicy().decide(verdicts, "progress"),
        chapters=CHAPTERS,
        llm_model="legacy-model",
        prompt_version="p1",
        codeset_version="icd10cm-2026-04",
        rules_version="r1",
        index_version="i1",
        candidates=[v.code for v in verdicts],
        raw_llm_output='{"legacy": true}',
    )


def _self_contained(path: Path) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=DELETE")  # checkpoints the WAL into the file and removes it
    conn.execute("VACUUM")
    conn.close()


def main(out: Path) -> None:
    settings = load_settings(data_dir=out)
    with ReviewQueue(settings) as queue:
        a = queue.enqueue(
            _decision(
                NOTE_A,
                [
                    _ok(NOTE_A, "E11.9", "type 2 diabetes"),
                    _ok(NOTE_A, "I10", "Hypertension"),
                    _rej("R07.9", "SPAN_NEGATED"),
                ],
            )
        )
        queue.record_action(a, "accept", "I10", user="ann", expected_version=1)
        queue.record_action(
            a, "replace", "E11.9", new_code="E11.65", user="ann", expected_version=2, chapter="4", description="T2DM"
        )
        queue.record_action(a, "add", "Z79.4", user="ann", expected_version=3, chapter="21")
        queue.record_action(a, "reject", "R07.9", user="ann", expected_version=4, reason="negated")
        queue.finalise(a, user="bob", expected_version=5)
        b = queue.enqueue(_decision(NOTE_B, [_ok(NOTE_B, "J45.901", "asthma exacerbation")]))
        queue.record_action(b, "reject", "J45.901", user="carol", expected_version=1)
        queue.enqueue(_decision(NOTE_C, [_ok(NOTE_C, "I10")], RoutingDecision(decision="auto", reasons=[])))
    with AuditLog(settings) as audit:
        audit.append("legacy_event", {"user": "ops", "note": "appended by AuditLog alone"})
    jobs = JobStore(settings)
    done = jobs.add(Note.checked(NOTE_C, 100_000, id="job-done"), "retrieval", max_queued=10)
    jobs.claim()
    jobs.finish(done.job_id, {"chart_id": 3, "codes": []})
    failed = jobs.add(Note.checked(NOTE_B, 100_000, id="job-failed"), "llm", max_queued=10)
    jobs.claim()
    jobs.fail(failed.job_id, ErrorInfo(type="LLMUnavailableError", message="down"))
    jobs.add(Note.checked(NOTE_A, 100_000, id="job-queued"), "retrieval", max_queued=10)
    jobs.close()
    for path in (out / "queue.sqlite", out / "audit" / "audit.sqlite", out / "copilot_jobs.sqlite"):
        _self_contained(path)
    print(f"wrote {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
