"""The validators' rule tables (``validators/data/*.json``) and their combined version.

Every table is data, versioned by a content hash: ``rules_version`` changes whenever any table
changes, so a verdict names exactly the rules it was judged by.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

from medcode.errors import ConfigError
from medcode.validators._refs import CodeRefMatcher
from medcode.validators._relatedness import parse_senses
from medcode.validators._specificity import SpecificityLexicon

__all__ = ["DATA_FILES", "RULES_SERIES", "IntegralSymptom", "RulesData", "load_rules_data"]

RULES_SERIES = "2026.11"
DATA_FILES = (
    "assertion_policy.json",
    "cdi_queries.json",
    "complication_cues.json",
    "context_rules.json",
    "conventions.json",
    "encounter_cues.json",
    "instruction_patterns.json",
    "integral_symptoms.json",
    "procedure_rules.json",
    "relatedness.json",
    "sex_edits.json",
    "specificity.json",
)


def _read(name: str) -> tuple[bytes, Any]:
    raw = resources.files("medcode.validators").joinpath(f"data/{name}").read_bytes()
    try:
        return raw, json.loads(raw)
    except ValueError as exc:
        raise ConfigError(f"invalid rules file validators/data/{name}: {exc}") from None


def _matcher(entries: list[str]) -> CodeRefMatcher:
    """Entries are ``"<reference> <free description>"``; only the leading reference counts."""
    return CodeRefMatcher([f"({entry.split()[0]})" for entry in entries if entry.strip()])


@dataclass
class RulesData:
    """Parsed rule tables."""

    version: str
    category_rules: dict[str, str]
    precedence: list[str]
    section_categories: dict[str, str]
    section_exceptions: dict[str, frozenset[str]]
    restated_sections: dict[str, frozenset[str]]
    list_headers: dict[str, list[str]]
    section_preference: list[str]
    inpatient_warn_categories: frozenset[str]
    allow: dict[str, CodeRefMatcher]
    warn_instead: dict[str, CodeRefMatcher]
    male_only: CodeRefMatcher
    female_only: CodeRefMatcher
    instruction_patterns: list[tuple[str, re.Pattern[str]]]
    manifestation_phrases: list[str]
    manifestation_codes: CodeRefMatcher
    nonexhaustive_markers: list[str]
    use_additional_skip_phrases: list[str]
    use_additional_skip_lists: bool
    combinations: list[dict[str, Any]]
    integral_symptoms: list[IntegralSymptom]
    specificity: SpecificityLexicon
    relatedness: dict[str, Any] = field(default_factory=dict)
    procedures: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class IntegralSymptom:
    """A symptom (code prefixes) and the diagnoses (code prefixes) it is routinely part of."""

    symptom: tuple[str, ...]
    says: str
    diagnoses: tuple[str, ...]


_RANGE = re.compile(r"^([A-Z])(\d\d)-\1(\d\d)$")


def _prefixes(entries: list[str]) -> tuple[str, ...]:
    """Code prefixes, with 'J00-J06' ranges of 3-character categories written out. Raises ``ValueError``."""
    out: list[str] = []
    for entry in entries:
        if "-" not in entry:
            out.append(str(entry))
            continue
        m = _RANGE.match(entry)
        if m is None or int(m[2]) > int(m[3]):
            raise ValueError(f"bad category range {entry!r} (write it as 'J00-J06')")
        out += [f"{m[1]}{n:02d}" for n in range(int(m[2]), int(m[3]) + 1)]
    return tuple(out)


def _checked_relatedness(table: dict[str, Any]) -> dict[str, Any]:
    """The relatedness table, its ``senses`` parsed as the scorer parses them, so that a bad entry is a
    ``ConfigError`` when the tables load rather than at the first scoring."""
    parse_senses(table)
    return dict(table)


def _build() -> RulesData:
    digest = hashlib.sha256()
    tables: dict[str, Any] = {}
    for name in DATA_FILES:
        raw, parsed = _read(name)
        digest.update(name.encode() + b"\0" + raw)
        tables[name] = parsed
    policy = tables["assertion_policy.json"]
    sex = tables["sex_edits.json"]
    conv = tables["conventions.json"]
    try:
        patterns = [
            (str(p["scope"]), re.compile(p["regex"], re.IGNORECASE | re.MULTILINE))
            for p in tables["instruction_patterns.json"]["patterns"]
        ]
        if any(scope not in {"line", "quote"} for scope, _ in patterns):
            raise KeyError("instruction pattern scope must be 'line' or 'quote'")
        return RulesData(
            version=f"rules-{RULES_SERIES}+{digest.hexdigest()[:8]}",
            category_rules=dict(policy["categories"]),
            precedence=list(policy["precedence"]),
            section_categories=dict(policy["sections"]),
            section_exceptions={
                k: frozenset(v) for k, v in policy["section_exceptions"].items() if not k.startswith("_")
            },
            restated_sections={
                k: frozenset(v) for k, v in policy["restated_sections"].items() if not k.startswith("_")
            },
            list_headers={k: list(v) for k, v in policy["list_headers"].items() if not k.startswith("_")},
            section_preference=list(policy["section_preference"]),
            inpatient_warn_categories=frozenset(policy["inpatient_warn_categories"]),
            allow={rule: _matcher(entries) for rule, entries in policy["allow"].items()},
            warn_instead={rule: _matcher(entries) for rule, entries in policy["warn_instead"].items()},
            male_only=_matcher(sex["male"]),
            female_only=_matcher(sex["female"]),
            instruction_patterns=patterns,
            manifestation_phrases=[p.lower() for p in conv["manifestation_phrases"]],
            manifestation_codes=_matcher(conv["manifestation_codes"]),
            nonexhaustive_markers=[m.lower() for m in conv["nonexhaustive_markers"]],
            use_additional_skip_phrases=[p.lower() for p in conv["use_additional_skip_phrases"]],
            use_additional_skip_lists=bool(conv["use_additional_skip_lists"]),
            combinations=[
                {
                    "code": str(c["code"]),
                    "with_all": [str(w) for w in c["with_all"]],
                    "use": str(c["use"]),
                    "guideline": str(c["guideline"]),
                    "says": str(c["says"]),
                    "fit_check": bool(c.get("fit_check", True)),
                    "pick": [
                        {
                            "partner": [str(x) for x in p.get("partner", [])],
                            "also": [str(x) for x in p.get("also", [])],
                            "code": str(p["code"]),
                        }
                        for p in c.get("pick", [])
                    ],
                }
                for c in conv["combinations"]
            ],
            integral_symptoms=[
                IntegralSymptom(tuple(e["symptom"]), str(e["says"]), _prefixes(e["with_any"]))
                for e in tables["integral_symptoms.json"]["entries"]
            ],
            specificity=SpecificityLexicon(
                tables["specificity.json"],
                tables["encounter_cues.json"],
                tables["complication_cues.json"],
                tables["cdi_queries.json"],
            ),
            relatedness=_checked_relatedness(tables["relatedness.json"]),
            procedures={
                "setting_systems": {k: list(v) for k, v in tables["procedure_rules.json"]["setting_systems"].items()},
                "assertion_rules": dict(tables["procedure_rules.json"]["assertion_rules"]),
                "ncci_bypass_note": str(tables["procedure_rules.json"]["ncci_bypass_note"]),
            },
        )
    except (KeyError, TypeError, ValueError, re.error) as exc:
        raise ConfigError(f"invalid validators rule tables: {exc!r}") from None


@lru_cache(maxsize=1)
def load_rules_data() -> RulesData:
    """The packaged rule tables (parsed once per process). Raises ``ConfigError`` if one is invalid."""
    return _build()
