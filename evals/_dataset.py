"""Gold-standard datasets: JSONL, one document a line (the ``../shared/benchmarks`` format).

``GoldDocument`` is the one schema of a gold record, strict: the evaluation harness reads with
it, the gold checker (``medcode.evals.check_gold``) validates with it before its code-set
checks, and the generators in ``tools/`` write what it accepts. Unknown keys are errors, types
are not coerced (an age of ``"58"`` is refused), and spans must lie inside the text and name
one of the document's codes.
"""

from __future__ import annotations

import datetime as dt
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails

from medcode.errors import InputError

__all__ = [
    "TRAP_KINDS",
    "DatasetProblem",
    "GoldDocument",
    "GoldSpan",
    "Trap",
    "describe_record_errors",
    "read_dataset",
    "read_dataset_reporting",
]

TrapKind = Literal[
    "negation",
    "family_history",
    "historical",
    "uncertain",
    "excludes1",
    "laterality",
    "seventh_character",
    "prompt_injection",
]
TRAP_KINDS: tuple[str, ...] = TrapKind.__args__  # type: ignore[attr-defined]
# CodiEsp labels procedures with the first 4 characters of an ICD-10-PCS code; full codes have 7.
_PCS = re.compile(r"^[0-9A-HJ-NP-Z]{3,7}$")


class GoldSpan(BaseModel):
    """Character offsets into the document's text that support one of its codes."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    code: str
    start: int = Field(ge=0)
    end: int = Field(ge=0)


class Trap(BaseModel):
    """Text in the note that must not produce ``not_codes`` (negated, family history, an injection...)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    kind: TrapKind
    text: str = Field(min_length=1)
    not_codes: list[str] = Field(min_length=1)


class GoldDocument(BaseModel):
    """One gold document. Strict: unknown keys and wrong types are refused, not coerced."""

    model_config = ConfigDict(extra="forbid", strict=True)

    id: str = Field(min_length=1, max_length=200)
    text: str = Field(min_length=1)
    codes: list[str]
    spans: list[GoldSpan] = Field(default_factory=list)
    setting: Literal["outpatient", "inpatient", "case-report"] | None = None
    codes_pcs: list[str] = Field(default_factory=list)
    note_type: str | None = Field(default=None, min_length=1, max_length=100)
    age: int | None = Field(default=None, ge=0, le=125)
    sex: Literal["F", "M"] | None = None
    date_of_service: dt.date | None = None
    traps: list[Trap] = Field(default_factory=list)
    source: str | None = None

    @field_validator("date_of_service", mode="before")
    @classmethod
    def _iso_date(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return dt.date.fromisoformat(value)
            except ValueError:
                raise ValueError("is not a YYYY-MM-DD date") from None
        return value

    @field_validator("codes_pcs")
    @classmethod
    def _pcs_shape(cls, value: list[str]) -> list[str]:
        bad = [c for c in value if not _PCS.match(c)]
        if bad:
            raise ValueError(f"{bad} are not ICD-10-PCS codes or code prefixes (3-7 characters)")
        return value

    @field_validator("text")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("is blank")
        return value

    @model_validator(mode="after")
    def _spans_fit(self) -> GoldDocument:
        problems = []
        dupes = sorted({c for c in self.codes if self.codes.count(c) > 1})
        if dupes:
            problems.append(f"duplicate codes {dupes}")
        for i, span in enumerate(self.spans):
            if span.code not in self.codes:
                problems.append(f"spans[{i}] code {span.code!r} is not one of the note's codes")
            if not span.start < span.end <= len(self.text):
                problems.append(
                    f"spans[{i}] [{span.start}:{span.end}] is outside the text (length {len(self.text)}) or empty"
                )
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def coding_setting(self) -> Literal["outpatient", "inpatient"]:
        """Case reports are coded like inpatient records (everything documented is coded)."""
        return "outpatient" if self.setting in (None, "outpatient") else "inpatient"


def _where(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def describe_record_errors(exc: ValidationError) -> list[str]:
    """One readable problem per error of a ``GoldDocument`` validation (no note text is echoed)."""
    problems: list[str] = []
    unknown: list[str] = []
    details: list[ErrorDetails] = exc.errors(include_url=False)
    for err in details:
        where, kind = _where(err["loc"]), err["type"]
        shown = err.get("input") if isinstance(err.get("input"), str | int | float) and where != "text" else None
        value = f" {shown!r}" if shown is not None and len(str(shown)) <= 80 else ""
        if kind == "missing":
            problems.append(f"missing required field {where!r}")
        elif kind == "extra_forbidden":
            unknown.append(where)
        elif kind == "literal_error":
            problems.append(f"{where}{value} is not one of {err.get('ctx', {}).get('expected', '')}")
        elif kind == "list_type":
            problems.append(f"{where} must be a list")
        elif kind == "value_error":
            reason = str(err.get("ctx", {}).get("error", err["msg"]))
            problems.append(f"{where}{value} {reason}" if where else reason)
        else:
            problems.append(f"{where}{value}: {err['msg']}" if where else err["msg"])
    if unknown:
        problems.append(f"unknown field(s) {sorted(unknown)}")
    return problems


class DatasetProblem(BaseModel):
    line: int
    message: str


def read_dataset(
    path: Path, *, strict: bool = False, limit: int | None = None, problems: list[DatasetProblem] | None = None
) -> Iterator[GoldDocument]:
    """Yield documents from a JSONL file.

    A malformed line is recorded in ``problems`` (with its 1-based line number) and skipped;
    with ``strict`` it raises ``InputError`` naming the line instead. Duplicate ids are
    malformed. Raises ``InputError`` when the file cannot be read.
    """
    try:
        handle = path.open(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read dataset {path}: {exc.strerror}") from None
    seen: set[str] = set()
    count = 0
    with handle:
        lineno = 0
        while True:
            try:
                line = handle.readline()
            except UnicodeDecodeError as exc:
                raise InputError(f"{path}: not valid UTF-8 after line {lineno}: {exc.reason}") from None
            if not line:
                break
            lineno += 1
            if not line.strip():
                continue
            message: str | None = None
            doc: GoldDocument | None = None
            try:
                doc = GoldDocument.model_validate_json(line)
                if doc.id in seen:
                    message = f"duplicate id {doc.id!r}"
            except ValidationError as exc:
                if exc.errors()[0]["type"] == "json_invalid":
                    message = f"invalid JSON ({exc.errors()[0]['msg']})"
                elif exc.errors()[0]["type"] == "model_type":
                    message = "expected a JSON object"
                else:
                    message = "; ".join(describe_record_errors(exc))
            if message is not None or doc is None:
                if strict:
                    raise InputError(f"{path}:{lineno}: {message}")
                if problems is not None:
                    problems.append(DatasetProblem(line=lineno, message=message or "unreadable"))
                continue
            seen.add(doc.id)
            yield doc
            count += 1
            if limit is not None and count >= limit:
                return


def read_dataset_reporting(
    path: Path, *, command: str, strict: bool = False, limit: int | None = None
) -> tuple[list[GoldDocument], list[DatasetProblem]]:
    """``read_dataset`` into a list, each skipped line reported on stderr as ``COMMAND: PATH:LINE: skipped: ...``.

    Raises ``InputError`` as ``read_dataset`` does.
    """
    problems: list[DatasetProblem] = []
    docs = list(read_dataset(path, strict=strict, limit=limit, problems=problems))
    for problem in problems:
        print(f"{command}: {path}:{problem.line}: skipped: {problem.message}", file=sys.stderr)
    return docs, problems
