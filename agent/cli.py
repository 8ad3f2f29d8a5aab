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
    parser.add_argument(
        "--procedures",
        action="store_true",
        default=None,
        help="also propose and validate procedure codes: ICD-10-PCS for inpatient notes, HCPCS Level II for "
        "outpatient ones (default: MEDCODE_PROCEDURES, off); a rejected procedure routes the note to review",
    )


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
    code.add_argument("--id", help="note id (default: a hash prefix of the text)")
    code.add_argument("--setting", choices=("outpatient", "inpatient"), help="coding setting (default: from settings)")
    code.add_argument(
        "--note-type", default="outpatient_visit", help="note type for routing (default: outpatient_visit)"
    )
    code.add_argument("--age", type=int, help="patient age in years (enables age edits)")
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
        "already in the output are skipped. A note that fails gets an error line instead of stopping the batch.",
    )
    batch.add_argument("input", type=Path, help="input JSONL")
    batch.add_argument("--out", type=Path, required=True, help="output JSONL (appended; resumable)")
    batch.add_argument("--limit", type=int, help="code at most N notes")
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
    if result.procedures is not None:
        out.write(f"  procedures: {len(result.procedures) or 'none proposed'}\n")
        for p in result.procedures:
            mark = "ok " if p.status == "accepted" else "REJ"
            code = p.code + ("-" + "-".join(p.modifiers) if p.modifiers else "")
            out.write(f"  {mark} {code:<9} {p.system or '?':<8}  {p.description or ''}\n")
            for ev in p.evidence:
                out.write(f"        evidence [{ev.start}:{ev.end}]\n")
            for r in p.reasons:
                out.write(f"        {r.rule}: {r.reason}\n")
            for w in p.warnings:
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
        procedures=args.procedures,
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


def _done_ids(out: Path) -> set[str]:
    """Ids already written to a results file (a torn last line is dropped and redone)."""
    from medcode.agent._results import read_result_lines

    return {row["note_id"] for row in read_result_lines(out) if isinstance(row.get("note_id"), str)}


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
    return str(row["id"]) if row and row.get("id") is not None else f"line-{lineno}"


def _code_batch(args: argparse.Namespace, ctx: CommandContext) -> int:
    from tqdm import tqdm

    from medcode.agent._note import Note
    from medcode.errors import InputError, MedcodeError

    try:
        lines = args.input.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {args.input}: {exc}") from None
    done = _done_ids(args.out)
    todo: list[tuple[int, dict[str, Any] | None, str | None]] = []
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            if not isinstance(row, dict) or not isinstance(row.get("text"), str):
                raise ValueError("expected an object with a 'text' string")
            todo.append((lineno, row, None))
        except (json.JSONDecodeError, ValueError) as exc:
            todo.append((lineno, None, f"line {lineno}: {exc}"))
    failures = 0
    coded = 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with _coder(args, ctx) as coder, args.out.open("a", encoding="utf-8") as out:
        pending = [t for t in todo if _row_id(t[0], t[1]) not in done]
        if args.limit is not None:
            pending = pending[: args.limit]
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
            except (MedcodeError, ValueError) as exc:
                failures += 1
                record = {"note_id": note_id, "error": {"type": type(exc).__name__, "message": str(exc)}}
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
            out.flush()
            os.fsync(out.fileno())
    print(
        f"coded {coded} note(s), {failures} error(s), {len(done)} already done; results in {args.out}",
        file=sys.stderr,
    )
    return 0 if failures == 0 else 1
