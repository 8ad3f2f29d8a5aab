"""Checks a gold set (JSONL, one document a line) against the ICD-10-CM release it is coded in.

``python -m evals.check_gold evals/data/gold.jsonl`` prints one line per problem and exits 1
when there is any (2 when the file cannot be read). ``check_gold(path)`` returns the same
problems as a list of strings, each starting with ``<file>:<line>: <id>:``.

What it checks: valid JSON objects, unique ids, required fields and their types, every code
exists and is billable in the release covering the note's date of service (newest release when
there is none), every span lies inside the text, is not blank and belongs to a listed code,
every code has at least one span, and every trap names a known kind, occurs in the note, and
forbids only existing codes that are not gold codes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from medcode.codesets import CodeSetRegistry, ICD10CMCodeSet
from medcode.config import load_settings
from medcode.errors import MedcodeError, UnknownCodeError

__all__ = ["NOTE_TYPES", "OPTIONAL_FIELDS", "REQUIRED_FIELDS", "SETTINGS", "TRAP_KINDS", "check_gold", "main"]

REQUIRED_FIELDS = ("id", "text", "codes")
OPTIONAL_FIELDS = ("spans", "setting", "codes_pcs", "note_type", "age", "sex", "date_of_service", "traps", "source")
SETTINGS = ("outpatient", "inpatient", "case-report")
NOTE_TYPES = ("outpatient_visit", "ed_note", "discharge_summary")
TRAP_KINDS = (
    "negation",
    "family_history",
    "historical",
    "uncertain",
    "excludes1",
    "laterality",
    "seventh_character",
    "prompt_injection",
)
_PCS = re.compile(r"^[0-9A-HJ-NP-Z]{7}$")


class _Note:
    """Collects the problems of one line."""

    def __init__(self, path: Path, lineno: int) -> None:
        self.prefix = f"{path}:{lineno}"
        self.problems: list[str] = []

    def add(self, message: str) -> None:
        self.problems.append(f"{self.prefix}: {message}")


def _str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _check_code(codeset: ICD10CMCodeSet, code: str, *, need_billable: bool) -> str | None:
    """None when the code is fine, else the reason."""
    try:
        record = codeset.get(code)
    except UnknownCodeError as exc:
        near = f" (near: {', '.join(exc.suggestions[:5])})" if exc.suggestions else ""
        return f"code {code!r} does not exist in {codeset.version}{near}"
    except MedcodeError as exc:
        return f"code {code!r} is malformed: {exc}"
    if record.code != code:
        return f"code {code!r} is not in canonical dotted upper-case form (use {record.code!r})"
    if need_billable and not record.billable:
        children = ", ".join(record.children[:6])
        return f"code {code!r} is a header, not billable in {codeset.version} (children: {children})"
    return None


def _check_record(raw: dict[str, Any], note: _Note, registry: CodeSetRegistry, require_spans: bool) -> None:
    for key in REQUIRED_FIELDS:
        if key not in raw:
            note.add(f"missing required field {key!r}")
    unknown = sorted(set(raw) - set(REQUIRED_FIELDS) - set(OPTIONAL_FIELDS))
    if unknown:
        note.add(f"unknown field(s) {unknown}")
    text = raw.get("text")
    if "text" in raw and (not isinstance(text, str) or not text.strip()):
        note.add("text must be a non-empty string")
        text = None
    codes_raw = raw.get("codes")
    codes: list[str] = []
    if "codes" in raw:
        if not _str_list(codes_raw):
            note.add("codes must be a list of strings")
        elif not codes_raw:
            note.add("codes is empty")
        else:
            codes = list(codes_raw)
            dupes = sorted({c for c in codes if codes.count(c) > 1})
            if dupes:
                note.add(f"duplicate codes {dupes}")

    # Optional scalar fields.
    if "setting" in raw and raw["setting"] not in SETTINGS:
        note.add(f"setting {raw['setting']!r} is not one of {list(SETTINGS)}")
    if "note_type" in raw and raw["note_type"] not in NOTE_TYPES:
        note.add(f"note_type {raw['note_type']!r} is not one of {list(NOTE_TYPES)}")
    if raw.get("note_type") == "discharge_summary" and raw.get("setting") not in (None, "inpatient"):
        note.add("a discharge_summary must have setting 'inpatient'")
    if "age" in raw and (type(raw["age"]) is not int or not 0 <= raw["age"] <= 125):
        note.add(f"age {raw['age']!r} is not an integer 0-125")
    if "sex" in raw and raw["sex"] not in ("F", "M"):
        note.add(f"sex {raw['sex']!r} is not 'F' or 'M'")
    if "source" in raw and not isinstance(raw["source"], str):
        note.add("source must be a string")
    if "codes_pcs" in raw:
        pcs = raw["codes_pcs"]
        if not _str_list(pcs):
            note.add("codes_pcs must be a list of strings")
        else:
            bad = [c for c in pcs if not _PCS.match(c)]
            if bad:
                note.add(f"codes_pcs {bad} are not 7-character ICD-10-PCS codes")

    # The release the note is coded in.
    day: dt.date | None = None
    if "date_of_service" in raw:
        try:
            day = dt.date.fromisoformat(raw["date_of_service"])
        except (TypeError, ValueError):
            note.add(f"date_of_service {raw['date_of_service']!r} is not a YYYY-MM-DD date")
    try:
        codeset = registry.get(day)
    except MedcodeError as exc:
        note.add(str(exc))
        return

    for code in codes:
        reason = _check_code(codeset, code, need_billable=True)
        if reason:
            note.add(reason)

    # Spans.
    covered: set[str] = set()
    spans = raw.get("spans")
    if "spans" not in raw:
        if require_spans and codes:
            note.add("no spans: every gold code needs at least one evidence span")
    elif not isinstance(spans, list):
        note.add("spans must be a list")
    else:
        for i, span in enumerate(spans):
            where = f"spans[{i}]"
            if not isinstance(span, dict) or set(span) != {"code", "start", "end"}:
                note.add(f"{where} must be an object with exactly code, start, end")
                continue
            code, start, end = span["code"], span["start"], span["end"]
            if type(start) is not int or type(end) is not int:
                note.add(f"{where} start/end must be integers")
                continue
            if code not in codes:
                note.add(f"{where} code {code!r} is not one of the note's codes")
            else:
                covered.add(code)
            if text is None:
                continue
            if not 0 <= start < end <= len(text):
                note.add(f"{where} [{start}:{end}] is outside the text (length {len(text)}) or empty")
                continue
            piece = text[start:end]
            if not piece.strip():
                note.add(f"{where} [{start}:{end}] covers only whitespace")
            elif piece != piece.strip():
                note.add(f"{where} [{start}:{end}] starts or ends with whitespace: {piece!r}")
        if require_spans:
            for code in codes:
                if code not in covered:
                    note.add(f"code {code!r} has no span")

    # Traps.
    traps = raw.get("traps")
    if traps is None:
        return
    if not isinstance(traps, list):
        note.add("traps must be a list")
        return
    for i, trap in enumerate(traps):
        where = f"traps[{i}]"
        if not isinstance(trap, dict) or set(trap) != {"kind", "text", "not_codes"}:
            note.add(f"{where} must be an object with exactly kind, text, not_codes")
            continue
        if trap["kind"] not in TRAP_KINDS:
            note.add(f"{where} kind {trap['kind']!r} is not one of {list(TRAP_KINDS)}")
        if not isinstance(trap["text"], str) or not trap["text"]:
            note.add(f"{where} text must be a non-empty string")
        elif text is not None and trap["text"] not in text:
            note.add(f"{where} text {trap['text']!r} does not occur in the note")
        not_codes = trap["not_codes"]
        if not _str_list(not_codes) or not not_codes:
            note.add(f"{where} not_codes must be a non-empty list of strings")
            continue
        for code in not_codes:
            if code in codes:
                note.add(f"{where} forbids {code!r}, which is a gold code of the note")
            reason = _check_code(codeset, code, need_billable=False)
            if reason:
                note.add(f"{where} {reason}")


def check_gold(path: str | Path, registry: CodeSetRegistry | None = None, *, require_spans: bool = True) -> list[str]:
    """Every problem found in the gold file at ``path`` (empty list: the file is fine).

    ``registry`` defaults to ``CodeSetRegistry(load_settings())``; opening a release may build
    its store (a few seconds) and raises ``CodeSetBuildError`` when that fails. An unreadable
    file is reported as a problem, not raised.
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        return [f"{path}: cannot read: {exc}"]
    if registry is None:
        registry = CodeSetRegistry(load_settings())
    problems: list[str] = []
    first_line: dict[str, int] = {}
    count = 0
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        count += 1
        note = _Note(path, lineno)
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as exc:
            note.add(f"invalid JSON ({exc.msg} at column {exc.colno})")
            problems += note.problems
            continue
        if not isinstance(raw, dict):
            note.add("expected a JSON object")
            problems += note.problems
            continue
        note_id = raw.get("id")
        if not isinstance(note_id, str) or not note_id:
            note.add("id must be a non-empty string")
        else:
            note.prefix += f": {note_id}"
            if note_id in first_line:
                note.add(f"duplicate id (first seen on line {first_line[note_id]})")
            else:
                first_line[note_id] = lineno
        _check_record(raw, note, registry, require_spans)
        problems += note.problems
    if count == 0:
        problems.append(f"{path}: no documents")
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; returns the exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m evals.check_gold",
        description="Check a gold JSONL file: JSON, ids, fields, billable codes in the release for each "
        "note's date of service, evidence spans and traps. Prints one line per problem.",
    )
    parser.add_argument("paths", nargs="+", type=Path, help="gold JSONL file(s)")
    parser.add_argument(
        "--allow-missing-spans", action="store_true", help="do not require an evidence span for every code"
    )
    args = parser.parse_args(argv)
    try:
        registry = CodeSetRegistry(load_settings())
    except MedcodeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    total = 0
    unreadable = False
    for path in args.paths:
        problems = check_gold(path, registry, require_spans=not args.allow_missing_spans)
        unreadable |= any(p.startswith(f"{path}: cannot read") for p in problems)
        for problem in problems:
            print(problem)
        total += len(problems)
        if not problems:
            print(f"{path}: ok", file=sys.stderr)
    if unreadable:
        return 2
    return 1 if total else 0


if __name__ == "__main__":
    raise SystemExit(main())
