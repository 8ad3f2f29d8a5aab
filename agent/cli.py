"""``medcode code`` and ``medcode code-batch``: the main job."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medcode.codesets.cli import parse_date

if TYPE_CHECKING:
    from medcode.agent._coder import CodingResult, MedicalCoder
    from medcode.agent._note import NoteMetadata
    from medcode.cli import CommandContext

__all__ = ["register"]

logger = logging.getLogger(__name__)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--proposer",
        choices=("llm", "retrieval"),
        help="llm: the model chooses among retrieved candidates; retrieval: no LLM (default: MEDCODE_PROPOSER, llm)",
    )
    parser.add_argument("--no-record", action="store_true", help="do not write to the review queue and audit log")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    code = sub.add_parser(
        "code",
        help="code one clinical note",
        description="Propose ICD-10-CM codes for one note with evidence spans, validator verdicts and a routing "
        "decision. The note is read as UTF-8 text from a file or '-' (stdin). The result goes to the review "
        "queue and the audit log unless --no-record. Exit 0 when coded (whatever the routing), 2 on bad input.",
    )
    code.add_argument("note", help="note file, or '-' for stdin")
    code.add_argument("--json", action="store_true", help="print the result as JSON")
    code.add_argument("--id", help="note id, at most 200 characters (default: a hash prefix of the text)")
    code.add_argument("--setting", choices=("outpatient", "inpatient"), help="coding setting (default: from settings)")
    code.add_argument(
        "--note-type",
        default="outpatient_visit",
        help="note type for routing, at most 100 characters (default: outpatient_visit)",
    )
    code.add_argument("--age", type=int, help="patient age in years, 0-130 (enables age edits)")
    code.add_argument("--sex", choices=("F", "M"), help="patient sex (enables sex edits)")
    code.add_argument("--date", type=parse_date, help="date of service YYYY-MM-DD (picks the code-set release)")
    meta = code.add_argument_group("note metadata (optional; the monitoring reports group by it)")
    meta.add_argument("--provider-id", help="the documenting clinician's id (e.g. an NPI)")
    meta.add_argument("--department", help="department or service line")
    meta.add_argument("--payer", help="payer or plan")
    meta.add_argument("--encounter-date", type=parse_date, help="encounter date YYYY-MM-DD")
    _common(code)
    code.set_defaults(handler=_code)

    batch = sub.add_parser(
        "code-batch",
        help="code many notes from a JSONL file",
        description="Code every note of INPUT.jsonl (one JSON object a line: id, text, and optional setting, "
        "note_type, age, sex, date_of_service, and the metadata provider_id, department, payer, encounter_date, "
        "either as top-level keys or in a 'metadata' object) into RESULTS.jsonl. Resumes after a crash: ids "
        "already in the output are skipped. A note that fails, for whatever reason (a bad line, a bad byte, an LLM or "
        "lock error), gets an error line instead of stopping the batch; --retry-failed codes those notes again. "
        "Output is ASCII JSON, created owner-only (0600: it holds evidence quotes). Exit 0 when every note is "
        "coded, 1 when any note's last line is an error line, 2 when the input cannot be read.",
    )
    batch.add_argument("input", type=Path, help="input JSONL")
    batch.add_argument("--out", type=Path, required=True, help="output JSONL (appended; resumable)")
    batch.add_argument("--limit", type=int, help="code at most N notes")
    batch.add_argument(
        "--retry-failed",
        action="store_true",
        help="code again the notes whose last output line is an error line (the new line supersedes it)",
    )
    _common(batch)
    batch.set_defaults(handler=_code_batch)


def _print_table(result: CodingResult) -> None:
    out = sys.stdout
    out.write(f"note {result.note_id}: {result.routing.decision.upper()}")
    if result.routing.reasons:
        shown = ", ".join(result.routing.reasons[:6])
        more = f" (+{len(result.routing.reasons) - 6} more)" if len(result.routing.reasons) > 6 else ""
        out.write(f"  [{shown}{more}]")
    out.write("\n")
    if not result.codes:
        out.write("  no codes proposed\n")
    for c in result.codes:
        mark = "ok " if c.status == "accepted" else "REJ"
        conf = f"{c.confidence:.2f}" if c.confidence is not None else "  - "
        out.write(f"  {mark} {c.code:<9} {conf}  {c.description or ''}\n")
        for ev in c.evidence:
            out.write(f"        evidence [{ev.start}:{ev.end}]\n")
        for r in c.reasons:
            out.write(f"        {r.rule}: {r.reason}\n")
        for w in c.warnings:
            out.write(f"        warning {w.rule}: {w.reason}\n")
    u = result.usage
    out.write(
        f"  {u.seconds:.1f}s (llm {u.llm_seconds:.1f}s), tokens {u.prompt_tokens}+{u.completion_tokens}; "
        f"chart {result.chart_id if result.chart_id is not None else '-'}\n"
    )


def _coder(args: argparse.Namespace, ctx: CommandContext) -> MedicalCoder:
    from medcode.agent._coder import MedicalCoder

    recorder = None if args.no_record else ctx.recorder()
    autonomy = ctx.autonomy(create=not args.no_record)  # earned autonomy: routing by case-type grants
    return MedicalCoder(
        ctx.settings,
        proposer=args.proposer or ctx.settings.proposer,
        recorder=recorder,
        autonomy=autonomy,
        routing_checks=ctx.routing_checks(),
    )


def _code(args: argparse.Namespace, ctx: CommandContext) -> int:
    from medcode._input import read_note_text
    from medcode.agent._note import Note, NoteMetadata
    from medcode.cli import print_json

    text = read_note_text(args.note)
    fields: dict[str, Any] = {
        "setting": args.setting or ctx.settings.setting,
        "note_type": args.note_type,
        "age": args.age,
        "sex": args.sex,
        "date_of_service": args.date,
        "metadata": NoteMetadata.from_fields(
            {
                "provider_id": args.provider_id,
                "department": args.department,
                "payer": args.payer,
                "encounter_date": args.encounter_date,
            }
        ),
    }
    if args.id:
        fields["id"] = args.id
    note = Note.checked(text, ctx.settings.max_note_chars, **fields)
    with _coder(args, ctx) as coder:
        prewarm = _start_llm_server_early(coder)
        try:
            result = coder.code(note)
        finally:
            if prewarm is not None:
                prewarm.join()  # never leave a half-started server behind
    if args.json:
        print_json(result.model_dump(mode="json"))
    else:
        _print_table(result)
    return 0


def _start_llm_server_early(coder: MedicalCoder) -> threading.Thread | None:
    """Find or start the embedded LLM server in a thread while the index and validators load, so that a cold
    start costs about the longer of the two rather than their sum. Errors are left for the coding call, which
    meets them again and reports them (or routes the note to a human)."""
    if coder.proposer_name != "llm" or coder.settings.llm_base_url is not None:
        return None

    def run() -> None:
        try:
            server = coder.runtime.llm().server
            if server is not None:
                server.ensure_running()
        except Exception as exc:
            logger.debug("early start of the LLM server failed (%s); the coding call retries", type(exc).__name__)

    thread = threading.Thread(target=run, name="llm-early-start", daemon=True)
    thread.start()
    return thread


def _previous_results(out: Path) -> dict[str, dict[str, Any]]:
    """The last line written for each note id of a results file (a torn last line is dropped and redone)."""
    from medcode.agent._results import read_result_lines

    return {row["note_id"]: row for row in read_result_lines(out) if isinstance(row.get("note_id"), str)}


BatchLine = tuple[int, "dict[str, Any] | None", "str | None"]


def read_batch_lines(data: bytes) -> list[BatchLine]:
    """Parse a ``code-batch`` input: ``(line number, object or None, problem or None)`` per non-blank line.

    Never raises for bad content: a line that is not UTF-8, not JSON, nested too deeply, or not an
    object with a ``text`` string gets a problem naming the line, and the other lines are unaffected.
    """
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    parsed: list[BatchLine] = []
    for lineno, raw in enumerate(data.split(b"\n"), start=1):
        raw = raw.rstrip(b"\r")
        if not raw.strip():
            continue
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            parsed.append((lineno, None, f"line {lineno}: not valid UTF-8 (bad byte at column {exc.start + 1})"))
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            parsed.append((lineno, None, f"line {lineno}: not JSON ({exc.msg} at column {exc.colno})"))
            continue
        except RecursionError:
            parsed.append((lineno, None, f"line {lineno}: JSON nested too deeply"))
            continue
        if not isinstance(row, dict) or not isinstance(row.get("text"), str):
            parsed.append((lineno, None, f"line {lineno}: expected an object with a 'text' string"))
            continue
        parsed.append((lineno, row, None))
    return parsed


def _batch_metadata(row: dict[str, Any]) -> NoteMetadata:
    """A batch line's note metadata: top-level keys, or a ``metadata`` object (its keys win)."""
    from medcode.agent._note import NoteMetadata
    from medcode.errors import InputError

    nested = row.get("metadata")
    if nested is not None and not isinstance(nested, dict):
        raise InputError("'metadata' must be an object (provider_id, department, payer, encounter_date)")
    unknown = sorted(set(nested or {}) - set(NoteMetadata.model_fields))
    if unknown:
        raise InputError(f"unknown metadata field(s): {', '.join(unknown)}")
    return NoteMetadata.from_fields({**row, **(nested or {})})


def _row_id(lineno: int, row: dict[str, Any] | None) -> str:
    if row and row.get("id") is not None:
        value = row["id"]
        return value if isinstance(value, str) else json.dumps(value, ensure_ascii=True)[:200]
    return f"line-{lineno}"


def _error_record(note_id: str, exc: Exception) -> dict[str, Any]:
    """A failed note's output line: the error's class and message (medcode's messages never quote notes)."""
    from medcode.errors import MedcodeError

    if isinstance(exc, MedcodeError):
        return {"note_id": note_id, "error": {"type": type(exc).__name__, "message": str(exc)}}
    logger.error("note %r failed unexpectedly: %s", note_id, type(exc).__name__)
    return {
        "note_id": note_id,
        "error": {"type": type(exc).__name__, "message": f"unexpected {type(exc).__name__} while coding this note"},
    }


def _code_batch(args: argparse.Namespace, ctx: CommandContext) -> int:
    from tqdm import tqdm

    from medcode._files import open_private
    from medcode.agent._note import Note
    from medcode.errors import InputError

    try:
        data = args.input.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {args.input}: {exc.strerror or exc}") from None
    todo = read_batch_lines(data)
    previous = _previous_results(args.out)
    failed_before = {note_id for note_id, row in previous.items() if "error" in row}
    done = set(previous) - (failed_before if args.retry_failed else set())
    failures = 0
    coded = 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    pending = [t for t in todo if _row_id(t[0], t[1]) not in done]
    if args.limit is not None:
        pending = pending[: args.limit]
    still_failed = failed_before - {_row_id(t[0], t[1]) for t in pending}
    with _coder(args, ctx) as coder, open_private(args.out, "a") as out:
        for lineno, row, problem in tqdm(pending, desc="coding", unit="note", file=sys.stderr, disable=None):
            note_id = _row_id(lineno, row)
            record: dict[str, Any]
            try:
                if problem is not None or row is None:
                    raise InputError(problem or "unreadable line")
                fields = {
                    k: row[k]
                    for k in ("setting", "note_type", "age", "sex", "date_of_service")
                    if row.get(k) is not None
                }
                if fields.get("setting") not in (None, "outpatient", "inpatient"):
                    fields["setting"] = "inpatient"  # case reports are coded like inpatient records
                fields["metadata"] = _batch_metadata(row)
                note = Note.checked(row["text"], ctx.settings.max_note_chars, id=note_id, **fields)
                record = coder.code(note).model_dump(mode="json")
                coded += 1
            except Exception as exc:  # every per-note failure is that note's error line; the batch goes on
                failures += 1
                record = _error_record(note_id, exc)
            out.write(json.dumps(record, ensure_ascii=True) + "\n")  # ASCII: a lone surrogate cannot break it
            out.flush()
            os.fsync(out.fileno())
    failed = failures + len(still_failed & {_row_id(t[0], t[1]) for t in todo})
    retry = " (rerun with --retry-failed to code them again)" if failed else ""
    print(
        f"coded {coded} note(s), {failures} failed now, {len(done & {_row_id(t[0], t[1]) for t in todo})} already "
        f"done; {failed} note(s) failed in all{retry}; results in {args.out}",
        file=sys.stderr,
    )
    return 0 if failed == 0 else 1
