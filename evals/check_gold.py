"""Checks a gold set (JSONL, one document a line) against the ICD-10-CM release it is coded in.

The record's structure is the shared ``GoldDocument`` schema (the one the harness reads with);
this module adds the code-set checks and the project's gold conventions on top.
``python -m medcode.evals.check_gold evals/data/gold.jsonl`` prints one line per problem and exits 1
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
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from medcode.codesets import CodeSetRegistry, ICD10CMCodeSet
from medcode.config import load_settings
from medcode.errors import MedcodeError, UnknownCodeError
from medcode.evals._dataset import TRAP_KINDS, GoldDocument, describe_record_errors

__all__ = ["NOTE_TYPES", "TRAP_KINDS", "check_gold", "main"]

NOTE_TYPES = ("outpatient_visit", "ed_note", "discharge_summary")


class _Note:
    """Collects the problems of one line."""

    def __init__(self, path: Path, lineno: int) -> None:
        self.prefix = f"{path}:{lineno}"
        self.problems: list[str] = []

    def add(self, message: str) -> None:
        self.problems.append(f"{self.prefix}: {message}")


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
    try:
        doc = GoldDocument.model_validate(raw)
    except ValidationError as exc:  # the shared schema first: fix the structure before the codes
        for problem in describe_record_errors(exc):
            note.add(problem)
        return
    # The project's own gold conventions, on top of the schema.
    if not doc.codes:
        note.add("codes is empty")
    short = [c for c in doc.codes_pcs if len(c) != 7]
    if short:
        note.add(f"codes_pcs {short} are not 7-character ICD-10-PCS codes")
    if doc.note_type is not None and doc.note_type not in NOTE_TYPES:
        note.add(f"note_type {doc.note_type!r} is not one of {list(NOTE_TYPES)}")
    if doc.note_type == "discharge_summary" and doc.setting not in (None, "inpatient"):
        note.add("a discharge_summary must have setting 'inpatient'")
    try:
        codeset = registry.get(doc.date_of_service)  # the release the note is coded in
    except MedcodeError as exc:
        note.add(str(exc))
        return
    for code in doc.codes:
        reason = _check_code(codeset, code, need_billable=True)
        if reason:
            note.add(reason)
    if "spans" not in raw and require_spans and doc.codes:
        note.add("no spans: every gold code needs at least one evidence span")
    for i, span in enumerate(doc.spans):
        piece = doc.text[span.start : span.end]
        if not piece.strip():
            note.add(f"spans[{i}] [{span.start}:{span.end}] covers only whitespace")
        elif piece != piece.strip():
            note.add(f"spans[{i}] [{span.start}:{span.end}] starts or ends with whitespace: {piece!r}")
    if require_spans and "spans" in raw:
        covered = {span.code for span in doc.spans}
        for code in doc.codes:
            if code not in covered:
                note.add(f"code {code!r} has no span")
    for i, trap in enumerate(doc.traps):
        where = f"traps[{i}]"
        if trap.text not in doc.text:
            note.add(f"{where} text {trap.text!r} does not occur in the note")
        for code in trap.not_codes:
            if code in doc.codes:
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
        prog="python -m medcode.evals.check_gold",
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
