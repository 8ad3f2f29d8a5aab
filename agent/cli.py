"""``medcode code`` and ``medcode code-batch``: the main job."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from medcode.codesets.cli import parse_date

if TYPE_CHECKING:
    from medcode.agent._coder import CodedCode, CodingResult, CodingRun, MedicalCoder
    from medcode.agent._distributed import RayOptions
    from medcode.agent._note import Note, NoteMetadata
    from medcode.agent._runtime import Runtime
    from medcode.cli import CommandContext
    from medcode.config import Settings

__all__ = ["add_ray_arguments", "ray_options", "register"]

logger = logging.getLogger(__name__)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--proposer",
        choices=("llm", "retrieval"),
        help="llm: the model chooses among retrieved candidates; retrieval: no LLM (default: MEDCODE_PROPOSER, retrieval)",
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
        "decision. The note is read as UTF-8 text from a file or '-' (stdin), or as a FHIR R4 DocumentReference "
        "(or a Bundle holding one, with its Patient and Encounter) when the file is JSON with a resourceType. The "
        "result goes to the review queue and the audit log unless --no-record. Exit 0 when coded (whatever the "
        "routing), 2 on bad input.",
    )
    code.add_argument("note", help="note file, or '-' for stdin")
    code.add_argument("--json", action="store_true", help="print the result as JSON (same as --format json)")
    code.add_argument(
        "--format",
        choices=("table", "json", "fhir"),
        help="table (default), json, or fhir: a FHIR R4 Bundle with a draft Claim (needs the 'fhir' extra)",
    )
    code.add_argument(
        "--format-in",
        choices=("auto", "text", "fhir"),
        default="auto",
        help="auto (default): FHIR when the input is JSON with a resourceType, else text",
    )
    code.add_argument("--id", help="note id, at most 200 characters (default: a hash prefix of the text)")
    code.add_argument(
        "--setting",
        choices=("outpatient", "inpatient"),
        help="coding setting (default: a FHIR Encounter's class; for a text note MEDCODE_SETTING when set, else its "
        "title line, 'DISCHARGE SUMMARY' -> inpatient, else outpatient)",
    )
    code.add_argument(
        "--note-type",
        help="note type for routing, at most 100 characters (default: from a FHIR DocumentReference's type or the "
        "note's title line, 'DISCHARGE SUMMARY' -> discharge_summary, 'EMERGENCY DEPARTMENT NOTE' -> ed_note, else "
        "outpatient_visit)",
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
        "either as top-level keys or in a 'metadata' object; or a FHIR R4 DocumentReference or Bundle) into "
        "RESULTS.jsonl. Resumes after a crash: ids already in the output are skipped. A note that fails, for whatever "
        "reason (a bad line, a bad byte, bad FHIR, an LLM or lock error), gets an error line instead of stopping the "
        "batch (with --format fhir a Bundle with an OperationOutcome); --retry-failed codes those notes again. Output "
        "is ASCII JSON, created owner-only (0600: it holds evidence quotes). Exit 0 when every note is coded, 1 when "
        "any note's last line is an error line, 2 when the input cannot be read.",
    )
    batch.add_argument("input", type=Path, help="input JSONL")
    batch.add_argument("--out", type=Path, required=True, help="output JSONL (appended; resumable)")
    batch.add_argument(
        "--format",
        choices=("json", "fhir"),
        default="json",
        help="json (default): the `code --json` document a line; fhir: a FHIR R4 Bundle a line",
    )
    batch.add_argument("--limit", type=int, help="code at most N notes")
    batch.add_argument(
        "--retry-failed",
        action="store_true",
        help="code again the notes whose last output line is an error line (the new line supersedes it)",
    )
    _common(batch)
    add_ray_arguments(batch)
    batch.set_defaults(handler=_code_batch)


def add_ray_arguments(parser: argparse.ArgumentParser) -> None:
    """``--ray [ADDRESS]``, ``--ray-workers``, ``--llm-concurrency`` and ``--no-ray`` (code-batch and eval)."""
    group = parser.add_argument_group("Ray (pip install 'medcode[ray]')")
    group.add_argument(
        "--ray",
        nargs="?",
        const="",
        metavar="ADDRESS",
        help="spread the notes over Ray workers, one coder each; results are written in input order. ADDRESS: "
        "'auto' (a cluster started with `ray start --head`), HOST:PORT or ray://HOST:PORT; without one, the "
        "cluster RAY_ADDRESS names or a new one on this machine (default: MEDCODE_RAY_ADDRESS; unset: no Ray)",
    )
    group.add_argument("--ray-workers", type=int, metavar="N", help="workers (default: the cluster's CPUs)")
    group.add_argument(
        "--llm-concurrency",
        type=int,
        metavar="N",
        help="LLM calls in flight at once over all workers, for a shared endpoint (default: MEDCODE_LLM_CONCURRENCY)",
    )
    group.add_argument("--no-ray", action="store_true", help="run in this process even if MEDCODE_RAY_ADDRESS is set")


def ray_options(args: argparse.Namespace, settings: Settings) -> RayOptions | None:
    """The Ray options the arguments and settings ask for, or None to run in this process."""
    from medcode.agent._distributed import ray_options_from
    from medcode.errors import InputError

    for name in ("ray_workers", "llm_concurrency"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise InputError(f"--{name.replace('_', '-')} must be at least 1")
    if args.no_ray or (args.ray is None and not settings.ray_address):
        if args.ray_workers is not None or args.llm_concurrency is not None:
            raise InputError("--ray-workers and --llm-concurrency need --ray (or MEDCODE_RAY_ADDRESS)")
        return None
    return ray_options_from(settings, args.ray, workers=args.ray_workers, llm_concurrency=args.llm_concurrency)


def _write_rule_notes(out: TextIO, code: CodedCode) -> None:
    """A code's rejections and warnings, each with the codes its rule names to use instead."""
    for note, prefix in [(r, "") for r in code.reasons] + [(w, "warning ") for w in code.warnings]:
        out.write(f"        {prefix}{note.rule}: {note.reason}\n")
        if note.replace_with:
            out.write(f"          replace with: {', '.join(note.replace_with[:5])}\n")


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
        if c.index_term:  # code-set vocabulary, not note text
            out.write(f"        names the Alphabetic Index term: {c.index_term}\n")
        _write_rule_notes(out, c)
    if result.procedures is not None:
        out.write(f"  procedures: {len(result.procedures) or 'none proposed'}\n")
        for p in result.procedures:
            mark = "ok " if p.status == "accepted" else "REJ"
            code = p.code + ("-" + "-".join(p.modifiers) if p.modifiers else "")
            out.write(f"  {mark} {code:<9} {p.system or '?':<8}  {p.description or ''}\n")
            for ev in p.evidence:
                out.write(f"        evidence [{ev.start}:{ev.end}]\n")
            _write_rule_notes(out, p)
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
    from medcode.agent._fhir import looks_like_fhir, note_from_fhir, parse_fhir_json, require_fhir, result_to_fhir
    from medcode.agent._note import Note, NoteMetadata, note_title
    from medcode.cli import print_json

    output = args.format or ("json" if args.json else "table")
    if output == "fhir":
        require_fhir()
    text = read_note_text(args.note)
    fields: dict[str, Any] = {
        "setting": args.setting,
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
        "id": args.id or None,
    }
    if args.format_in == "fhir" or (args.format_in == "auto" and looks_like_fhir(text)):
        resource = parse_fhir_json(text, where=str(args.note))
        note = note_from_fhir(resource, ctx.settings.max_note_chars, default_setting=ctx.settings.setting, **fields)
    else:
        # the title line ("DISCHARGE SUMMARY") names the note type, and the setting unless the settings name one
        title = note_title(text)
        configured = "setting" in ctx.settings.model_fields_set
        fields["setting"] = args.setting or (
            title.setting if title and title.setting and not configured else ctx.settings.setting
        )
        fields["note_type"] = args.note_type or (title.note_type if title else "outpatient_visit")
        note = Note.checked(text, ctx.settings.max_note_chars, **{k: v for k, v in fields.items() if v is not None})
    with _coder(args, ctx) as coder:
        prewarm = _start_llm_server_early(coder)
        try:
            result = coder.code(note)
        finally:
            if prewarm is not None:
                prewarm.join()  # never leave a half-started server behind
    if output == "fhir":
        print_json(result_to_fhir(result))
    elif output == "json":
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
    """The last line written for each note id of a results file, JSON or FHIR (a torn last line is dropped and
    redone)."""
    from medcode.agent._results import read_result_lines, result_note_id

    return {note_id: row for row in read_result_lines(out) if (note_id := result_note_id(row)) is not None}


def _is_error_line(row: dict[str, Any]) -> bool:
    """A results line saying the note failed: ``{"note_id", "error"}``, or (``--format fhir``) a Bundle holding
    only an OperationOutcome (a coded note's Bundle has its Claim)."""
    if "error" in row:
        return True
    entries = row.get("entry")
    if row.get("resourceType") != "Bundle" or not isinstance(entries, list) or not entries:
        return False
    kinds = {
        e["resource"].get("resourceType")
        for e in entries
        if isinstance(e, dict) and isinstance(e.get("resource"), dict)
    }
    return kinds == {"OperationOutcome"}


BatchLine = tuple[int, dict[str, Any] | None, str | None]  # line number, parsed row, why it is unusable


def read_batch_lines(data: bytes) -> list[BatchLine]:
    """Parse a ``code-batch`` input: ``(line number, object or None, problem or None)`` per non-blank line.

    Never raises for bad content: a line that is not UTF-8, not JSON, nested too deeply, or not an
    object with a ``text`` string (nor a FHIR resource) gets a problem naming the line, and the other lines
    are unaffected.
    """
    from medcode.agent._fhir import is_fhir_resource

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
        if not isinstance(row, dict) or not (isinstance(row.get("text"), str) or is_fhir_resource(row)):
            parsed.append(
                (
                    lineno,
                    None,
                    f"line {lineno}: expected an object with a 'text' string, or a FHIR DocumentReference or Bundle",
                )
            )
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
    from medcode.agent._fhir import fhir_note_id, is_fhir_resource

    if row is not None and is_fhir_resource(row):
        return fhir_note_id(row) or f"line-{lineno}"
    if row and row.get("id") is not None:
        value = row["id"]
        return value if isinstance(value, str) else json.dumps(value, ensure_ascii=True)[:200]
    return f"line-{lineno}"


_BatchItem = BatchLine


def _batch_note(item: _BatchItem, max_chars: int) -> Note:
    """The note of a batch line; raises ``InputError`` (or ``ValueError``) for an unusable one."""
    from medcode.agent._fhir import is_fhir_resource, note_from_fhir
    from medcode.agent._note import Note
    from medcode.errors import InputError

    lineno, row, problem = item
    if problem is not None or row is None:
        raise InputError(problem or "unreadable line")
    if is_fhir_resource(row):
        return note_from_fhir(row, max_chars, id=_row_id(lineno, row))
    fields = {k: row[k] for k in ("setting", "note_type", "age", "sex", "date_of_service") if row.get(k) is not None}
    if fields.get("setting") not in (None, "outpatient", "inpatient"):
        fields["setting"] = "inpatient"  # case reports are coded like inpatient records
    fields["metadata"] = _batch_metadata(row)
    return Note.checked(row["text"], max_chars, id=_row_id(lineno, row), **fields)


def _error_record(note_id: str, exc: Exception, *, fhir: bool = False) -> dict[str, Any]:
    """A failed note's output line: the error's class and message (medcode's messages never quote notes; another
    exception's might, so only its class is given, and it is logged). ``fhir``: a Bundle holding an
    OperationOutcome (``code-batch --format fhir``)."""
    from medcode.errors import MedcodeError

    known = isinstance(exc, MedcodeError)
    message = str(exc) if known else f"unexpected {type(exc).__name__} while coding this note"
    if not known:
        logger.error("note %r failed unexpectedly: %s", note_id, type(exc).__name__)
    if fhir:
        from medcode.agent._fhir import error_to_fhir

        return error_to_fhir(note_id, exc if known else RuntimeError(message))
    return {"note_id": note_id, "error": {"type": type(exc).__name__, "message": message}}


def _write_line(out: Any, record: dict[str, Any]) -> None:
    out.write(json.dumps(record, ensure_ascii=True) + "\n")  # ASCII: a lone surrogate cannot break the line
    out.flush()
    os.fsync(out.fileno())


def _code_batch(args: argparse.Namespace, ctx: CommandContext) -> int:
    from tqdm import tqdm

    from medcode._files import open_private
    from medcode.agent._fhir import require_fhir, result_to_fhir
    from medcode.errors import InputError, MissingDependencyError

    options = ray_options(args, ctx.settings)
    if args.format == "fhir":
        require_fhir()
    try:
        data = args.input.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {args.input}: {exc.strerror or exc}") from None
    todo = read_batch_lines(data)
    previous = _previous_results(args.out)
    failed_before = {note_id for note_id, row in previous.items() if _is_error_line(row)}
    done = set(previous) - (failed_before if args.retry_failed else set())
    pending = [t for t in todo if _row_id(t[0], t[1]) not in done]
    if args.limit is not None:
        pending = pending[: args.limit]
    still_failed = failed_before - {_row_id(t[0], t[1]) for t in pending}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if options is not None:
        coded, failures = _code_batch_on_ray(args, ctx, pending, options)
    else:
        failures = 0
        coded = 0
        fhir = args.format == "fhir"
        with _coder(args, ctx) as coder, open_private(args.out, "a") as out:
            for item in tqdm(pending, desc="coding", unit="note", file=sys.stderr, disable=None):
                note_id = _row_id(item[0], item[1])
                record: dict[str, Any]
                try:
                    result = coder.code(_batch_note(item, ctx.settings.max_note_chars))
                    record = result_to_fhir(result) if fhir else result.model_dump(mode="json")
                    coded += 1
                except MissingDependencyError:
                    raise  # an extra is not installed: every such note would fail; exit 2 naming it, reruns resume
                except Exception as exc:  # every per-note failure is that note's error line; the batch goes on
                    failures += 1
                    record = _error_record(note_id, exc, fhir=fhir)
                _write_line(out, record)
    all_ids = {_row_id(t[0], t[1]) for t in todo}
    failed = failures + len(still_failed & all_ids)
    retry = " (rerun with --retry-failed to code them again)" if failed else ""
    print(
        f"coded {coded} note(s), {failures} failed now, {len(done & all_ids)} already "
        f"done; {failed} note(s) failed in all{retry}; results in {args.out}",
        file=sys.stderr,
    )
    return 0 if failed == 0 else 1


# -- code-batch on Ray: the workers code, this process records and writes in input order ------------------------


class _RunCollector:
    """A worker coder's recorder: it keeps the run of the note its thread is coding, for the driver to record."""

    def __init__(self) -> None:
        self._local = threading.local()

    def record(self, run: CodingRun) -> int | None:
        self._local.run = run
        return None  # the chart id comes from the driver's recorder

    def take(self) -> CodingRun | None:
        run: CodingRun | None = getattr(self._local, "run", None)
        self._local.run = None
        return run

    def close(self) -> None:
        self._local = threading.local()


@dataclass(frozen=True)
class _WorkerCoder:
    """Builds a Ray worker's coder as ``_coder`` builds the local one (pickled to the workers)."""

    ctx: CommandContext
    proposer: str
    collect_runs: bool
    procedures: bool | None = None

    def __call__(self, runtime: Runtime) -> MedicalCoder:
        from medcode.agent._coder import MedicalCoder

        return MedicalCoder(
            self.ctx.settings,
            runtime=runtime,
            proposer=self.proposer,  # type: ignore[arg-type]
            recorder=_RunCollector() if self.collect_runs else None,
            autonomy=self.ctx.autonomy(create=False),  # the driver created the review database
            routing_checks=self.ctx.routing_checks(),
            procedures=self.procedures,
        )


@dataclass(frozen=True)
class _Outcome:
    record: dict[str, Any]
    run: CodingRun | None
    failed: bool


def _code_on_worker(max_chars: int, fhir: bool, coder: MedicalCoder, item: _BatchItem) -> _Outcome:
    """One batch line, coded in a Ray worker; nothing is written there. The record is the result's JSON (the
    driver adds the chart id, then turns it into a Bundle for ``--format fhir``) or the note's error line."""
    from medcode.errors import MissingDependencyError

    collector = coder.recorder if isinstance(coder.recorder, _RunCollector) else None
    try:
        record = coder.code(_batch_note(item, max_chars)).model_dump(mode="json")
    except MissingDependencyError:
        raise  # an extra is not installed on the worker: the batch stops (DistributedError naming it)
    except Exception as exc:  # any other per-note failure is that note's error line, never the worker's
        if collector is not None:
            collector.take()  # a run recorded before the failure is not this note's result
        return _Outcome(_error_record(_row_id(item[0], item[1]), exc, fhir=fhir), None, True)
    return _Outcome(record, None if collector is None else collector.take(), False)


def _code_batch_on_ray(
    args: argparse.Namespace, ctx: CommandContext, pending: list[_BatchItem], options: RayOptions
) -> tuple[int, int]:
    """Code ``pending`` on Ray; record each run (queue and audit log) and write its line here, in input order."""
    from functools import partial

    from tqdm import tqdm

    from medcode._files import open_private
    from medcode.agent._coder import CodingResult
    from medcode.agent._distributed import map_in_order
    from medcode.agent._fhir import result_to_fhir

    fhir = args.format == "fhir"
    coded = failures = 0
    recorder = None if args.no_record else ctx.recorder()  # opened first: it creates the review database
    try:
        outcomes = map_in_order(
            ctx.settings,
            pending,
            partial(_code_on_worker, ctx.settings.max_note_chars, fhir),
            make_coder=_WorkerCoder(
                ctx, args.proposer or ctx.settings.proposer, recorder is not None, procedures=args.procedures
            ),
            options=options,
        )
        with open_private(args.out, "a") as out:
            bar = tqdm(outcomes, total=len(pending), desc="coding", unit="note", file=sys.stderr, disable=None)
            for outcome in bar:
                record = outcome.record
                failed = outcome.failed
                if outcome.run is not None and recorder is not None:
                    try:
                        record["chart_id"] = recorder.record(outcome.run)
                    except Exception as exc:  # e.g. the store is locked: this note's error line, the batch goes on
                        record, failed = _error_record(str(record["note_id"]), exc, fhir=fhir), True
                if fhir and not failed:
                    record = result_to_fhir(CodingResult.model_validate(record))
                failures += failed
                coded += not failed
                _write_line(out, record)
    finally:
        if recorder is not None:
            recorder.close()
    return coded, failures
