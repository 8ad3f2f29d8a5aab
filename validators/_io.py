"""Reading proposals from files or JSON text, with errors that name the problem."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from medcode.errors import InputError
from medcode.validators._models import Proposal

__all__ = ["load_proposal", "parse_proposal"]


def parse_proposal(data: Any, source: str = "proposal") -> Proposal:
    """Validate decoded JSON as a ``Proposal``. Raises ``InputError`` naming each bad field."""
    if not isinstance(data, dict):
        raise InputError(f'{source}: expected a JSON object {{"codes": [...]}}, got {type(data).__name__}')
    try:
        return Proposal.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors()[:10]:
            where = ".".join(str(p) for p in err["loc"]) or "(top level)"
            problems.append(f"{where}: {err['msg']}")
        more = f" (and {exc.error_count() - 10} more)" if exc.error_count() > 10 else ""
        raise InputError(f"{source} is not a valid proposal: {'; '.join(problems)}{more}") from None


def load_proposal(path: str | Path) -> Proposal:
    """Read a proposal JSON file (``{"codes": [{"code", "evidence", "confidence"}]}``).

    Raises ``InputError`` for a missing or unreadable file, invalid JSON (with line and column)
    or a document that is not a valid proposal (naming the fields), and for JSON nested too deeply.
    """
    source = str(path)
    try:
        raw = Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(f"proposal file not found: {source}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read proposal file {source}: {exc}") from None
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InputError(f"{source} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise InputError(f"{source}: JSON nested too deeply to be a proposal") from None
    try:
        return parse_proposal(data, source)
    except RecursionError:
        raise InputError(f"{source}: JSON nested too deeply to be a proposal") from None
