"""Append-only JSONL result files that survive a crash (``code-batch`` output, ``eval`` predictions)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from medcode.agent._fhir import NOTE_ID_SYSTEM

__all__ = ["read_result_lines", "result_note_id"]


def result_note_id(row: dict[str, Any]) -> str | None:
    """The note id of a results line: ``note_id`` of a JSON result or error line, or the identifier of a FHIR
    Bundle line (``code-batch --format fhir``)."""
    if isinstance(row.get("note_id"), str):
        return str(row["note_id"])
    ident = row.get("identifier")
    if row.get("resourceType") == "Bundle" and isinstance(ident, dict) and ident.get("system") == NOTE_ID_SYSTEM:
        value = ident.get("value")
        return value if isinstance(value, str) else None
    return None


def read_result_lines(path: Path) -> list[dict[str, Any]]:
    """Rows of a results file written one fsynced line at a time.

    A torn last line (the process died mid-write) is cut off the file so the next append starts
    clean; lines that are not JSON objects are skipped. A missing file has no rows.
    """
    if not path.exists():
        return []
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        cut = data.rfind(b"\n") + 1
        with path.open("r+b") as handle:
            handle.truncate(cut)
        data = data[:cut]
    rows: list[dict[str, Any]] = []
    for line in data.decode("utf-8", errors="replace").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows
