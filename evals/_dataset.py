"""Gold-standard datasets: JSONL, one document a line (the ``../shared/benchmarks`` format)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from medcode.errors import InputError

__all__ = ["DatasetProblem", "GoldDocument", "GoldSpan", "read_dataset"]


class GoldSpan(BaseModel):
    model_config = ConfigDict(extra="ignore")

    code: str
    start: int = Field(ge=0)
    end: int = Field(ge=0)


class GoldDocument(BaseModel):
    """One gold document. Unknown extra keys (``traps``, ``source``...) are kept in ``extra``."""

    model_config = ConfigDict(extra="allow")

    id: str = Field(min_length=1)
    text: str
    codes: list[str]
    spans: list[GoldSpan] = Field(default_factory=list)
    setting: Literal["outpatient", "inpatient", "case-report"] | None = None
    codes_pcs: list[str] = Field(default_factory=list)
    note_type: str | None = None
    age: int | None = None
    sex: Literal["F", "M"] | None = None
    date_of_service: dt.date | None = None

    @model_validator(mode="after")
    def _spans_inside_text(self) -> GoldDocument:
        for span in self.spans:
            if span.end > len(self.text) or span.start >= span.end:
                raise ValueError(f"span {span.code} [{span.start}:{span.end}] is outside the text or empty")
        return self

    @property
    def coding_setting(self) -> Literal["outpatient", "inpatient"]:
        """Case reports are coded like inpatient records (everything documented is coded)."""
        return "outpatient" if self.setting in (None, "outpatient") else "inpatient"


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
                raw: Any = json.loads(line)
                if not isinstance(raw, dict):
                    raise ValueError("expected a JSON object")
                doc = GoldDocument.model_validate(raw)
                if doc.id in seen:
                    raise ValueError(f"duplicate id {doc.id!r}")
            except json.JSONDecodeError as exc:
                message = f"invalid JSON ({exc.msg} at column {exc.colno})"
            except ValidationError as exc:
                err = exc.errors()[0]
                where = ".".join(str(p) for p in err["loc"])
                message = f"{where}: {err['msg']}" if where else err["msg"]
            except ValueError as exc:
                message = str(exc)
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
