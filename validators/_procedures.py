"""Validators for procedure codes: ICD-10-PCS (inpatient), HCPCS Level II and CPT (outpatient).

Each rule has a stable id (``PROCEDURE_RULE_IDS``), a reason and the data version it used. Order, per code:

1. structural: PROC_CODE_MALFORMED (no system's shape, or not the given system's) -> PCS_INCOMPLETE (a
   partial PCS code: fewer than 7 characters) -> PCS_AXIS_INVALID (a character no row of its table allows
   after the ones before it, named by axis) -> PROC_CODE_UNKNOWN (not in force on the date of service) ->
   CPT_UNVERIFIED (warning: no licensed CPT file to check against); then PROC_SETTING_MISMATCH (warning:
   PCS on an outpatient claim, HCPCS/CPT on an inpatient one) and MODIFIER_UNKNOWN (a modifier the
   quarter's I/OCE table does not list);
2. evidence: each quote located verbatim (SPAN_NOT_IN_NOTE; NO_EVIDENCE_GIVEN warns when evidence is
   optional), then judged by the procedure lexicon's cues and ConText (SPAN_NEGATED 'declined',
   SPAN_HYPOTHETICAL 'scheduled for', SPAN_HISTORICAL 's/p', SPAN_FAMILY_HISTORY); one clean quote suffices;
3. demographics: PROC_SEX_CONFLICT (the Medicare Code Editor's male/female PCS attributes);
4. across the standing HCPCS/CPT codes, with the NCCI quarter in force: PROC_DUPLICATE, NCCI_PTP_BUNDLED
   (a pair with modifier indicator 0: the column-2 code is rejected), NCCI_MODIFIER_REQUIRED (indicator 1
   without an NCCI-associated modifier on either line) and NCCI_MODIFIER_BYPASS (warning: indicator 1
   with one).

Medically unlikely edits are not checked: pyoce's I/OCE data has no MUE table (see ``codesets/_ncci.py``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from medcode.codesets import CodeSystems, normalize_cpt, normalize_hcpcs, normalize_pcs
from medcode.errors import ConfigError, MalformedCodeError, UnknownCodeError
from medcode.retrieval._procedures import ProcedureLexicon, load_procedure_lexicon
from medcode.validators._evidence import NormalizedText, Occurrence, locate_quote
from medcode.validators._models import (
    Evidence,
    ProcedureSystem,
    ProcedureVerdict,
    ProposedProcedure,
    RuleResult,
    Severity,
    ValidationContext,
)

if TYPE_CHECKING:
    from medcode.codesets import NCCIEdits
    from medcode.validators._assertion import SpanAssertion

__all__ = ["PROCEDURE_RULE_IDS", "ProcedureValidator", "infer_procedure_system"]

PROCEDURE_RULE_IDS = (
    "PROC_CODE_MALFORMED",
    "PCS_INCOMPLETE",
    "PCS_AXIS_INVALID",
    "PROC_CODE_UNKNOWN",
    "CPT_UNVERIFIED",
    "PROC_SETTING_MISMATCH",
    "MODIFIER_UNKNOWN",
    "SPAN_NOT_IN_NOTE",
    "NO_EVIDENCE_GIVEN",
    "SPAN_NEGATED",
    "SPAN_HYPOTHETICAL",
    "SPAN_HISTORICAL",
    "SPAN_FAMILY_HISTORY",
    "PROC_SEX_CONFLICT",
    "PROC_DUPLICATE",
    "NCCI_PTP_BUNDLED",
    "NCCI_MODIFIER_REQUIRED",
    "NCCI_MODIFIER_BYPASS",
)
"""The procedure rules' ids (diagnoses have ``RULE_IDS``; the evidence ids are shared)."""

_CUE_RULES = {"declined": "SPAN_NEGATED", "planned": "SPAN_HYPOTHETICAL", "historical": "SPAN_HISTORICAL"}
_SYSTEM_NAMES = {"icd10pcs": "ICD-10-PCS", "hcpcs": "HCPCS Level II", "cpt": "CPT"}
_ARTICLE = {"icd10pcs": "an", "hcpcs": "an", "cpt": "a"}


def infer_procedure_system(code: str) -> ProcedureSystem | None:
    """The system a code's shape belongs to (7 characters: PCS; A-V + 4 digits: HCPCS; CPT's shape), else None."""
    text = "".join(code.split()).replace(".", "").upper()
    for system, normalize in (("hcpcs", normalize_hcpcs), ("cpt", normalize_cpt)):
        try:
            normalize(text)
            return system  # type: ignore[return-value]
        except MalformedCodeError:
            continue
    if len(text) == 7 or (3 <= len(text) < 7 and text[:1].isalnum() and not text.isdigit()):
        try:
            normalize_pcs(text, allow_partial=True)
            return "icd10pcs"
        except MalformedCodeError:
            return None
    return None


@dataclass
class _Item:
    index: int
    proposed: ProposedProcedure
    system: ProcedureSystem | None = None
    canonical: str | None = None
    description: str | None = None
    modifiers: list[str] = field(default_factory=list)
    results: list[RuleResult] = field(default_factory=list)
    evidence: list[Evidence] = field(default_factory=list)
    failed: list[Evidence] = field(default_factory=list)
    structural_ok: bool = False

    @property
    def rejected(self) -> bool:
        return any(r.severity == "reject" for r in self.results)


class ProcedureValidator:
    """Judges proposed procedure codes; built by ``ValidatorPipeline`` and sharing its code systems and ConText.

    ``validate`` never raises for a bad code or quote (it is rejected with a rule id); it raises
    ``DateOutOfRangeError`` when no PCS data, HCPCS quarter or NCCI quarter covers the date of service,
    and ``CodeSetBuildError`` when the PCS or I/OCE data is not installed.
    """

    def __init__(
        self,
        systems: CodeSystems,
        rules: dict[str, Any],
        rules_version: str,
        assertion: Callable[[str, list[tuple[int, int]]], list[SpanAssertion]],
        lexicon: ProcedureLexicon | None = None,
    ) -> None:
        self.systems = systems
        self.rules = rules
        self.rules_version = rules_version
        self._assertion = assertion
        self.lexicon = lexicon or load_procedure_lexicon()

    # -- helpers ----------------------------------------------------------------------
    def _result(
        self,
        rule: str,
        reason: str,
        version: str,
        *,
        severity: Severity = "reject",
        evidence_index: int | None = None,
        related: Sequence[str] = (),
        suggestions: Sequence[str] = (),
    ) -> RuleResult:
        return RuleResult(
            rule=rule,
            severity=severity,
            reason=reason,
            data_version=f"{version}+{self.rules_version}",
            evidence_index=evidence_index,
            related_codes=list(related),
            suggestions=list(suggestions)[:20],
        )

    def _version(self, system: ProcedureSystem | None, day: dt.date | None) -> str:
        if system == "icd10pcs":
            pcs = self.systems.icd10pcs()
            return f"{pcs.release_for(day)}+{pcs.info['sha256'][:8]}"
        if system == "hcpcs":
            return self.systems.hcpcs().version
        if system == "cpt":
            try:
                return self.systems.cpt().version
            except ConfigError:
                return "cpt-unconfigured"
        return "procedure-shapes"

    # -- entry point ----------------------------------------------------------------
    def validate(self, procedures: list[ProposedProcedure], ctx: ValidationContext) -> list[ProcedureVerdict]:
        """One verdict per proposed procedure, in order."""
        items = [_Item(i, p) for i, p in enumerate(procedures)]
        day = ctx.date_of_service
        for item in items:
            self._structural(item, ctx)
        live = [i for i in items if i.structural_ok]
        self._check_evidence(live, ctx)
        for item in live:
            self._sex(item, ctx)
        self._claim_rules([i for i in live if not i.rejected], day)
        return [self._verdict(item) for item in items]

    # -- 1. structural ----------------------------------------------------------------
    def _structural(self, item: _Item, ctx: ValidationContext) -> None:
        proposed = item.proposed
        day = ctx.date_of_service
        system = proposed.system or infer_procedure_system(proposed.code)
        item.system = system
        version = self._version(system, day)
        if system is None:
            item.results.append(
                self._result(
                    "PROC_CODE_MALFORMED",
                    "not a procedure code: ICD-10-PCS has 7 characters, HCPCS Level II a letter A-V and 4 digits, "
                    "CPT 5 characters (4 digits then a digit, F, T, U, A or M)",
                    version,
                )
            )
            return
        try:
            if system == "icd10pcs":
                canonical = normalize_pcs(proposed.code, allow_partial=True)
            elif system == "hcpcs":
                canonical = normalize_hcpcs(proposed.code)
            else:
                canonical = normalize_cpt(proposed.code)
        except MalformedCodeError as exc:
            item.results.append(
                self._result("PROC_CODE_MALFORMED", f"not a {_SYSTEM_NAMES[system]} code: {exc}", version)
            )
            return
        item.canonical = canonical
        if system == "icd10pcs" and not self._pcs(item, canonical, day, version):
            return
        if system == "hcpcs":
            hcpcs = self.systems.hcpcs()
            try:
                record = hcpcs.get(canonical, day)
            except UnknownCodeError as exc:
                item.results.append(
                    self._result(
                        "PROC_CODE_UNKNOWN",
                        f"{canonical} is not an HCPCS Level II code in any loaded quarter",
                        version,
                        suggestions=exc.suggestions,
                    )
                )
                return
            item.description = record.description or None
            if not record.valid:
                until = record.effective_to.isoformat() if record.effective_to else "later"
                since = record.effective_from.isoformat() if record.effective_from else "earlier"
                item.results.append(
                    self._result(
                        "PROC_CODE_UNKNOWN",
                        f"{canonical} is not in force on {record.as_of} (in force {since}..{until})",
                        version,
                    )
                )
                return
        if system == "cpt":
            try:
                cpt = self.systems.cpt()
            except ConfigError:
                item.results.append(
                    self._result(
                        "CPT_UNVERIFIED",
                        "no licensed CPT file is configured (MEDCODE_CPT_FILE): the code's shape was checked, not "
                        "its existence",
                        version,
                        severity="warn",
                    )
                )
            else:
                if not cpt.exists(canonical):
                    item.results.append(
                        self._result(
                            "PROC_CODE_UNKNOWN",
                            f"{canonical} is not in the licensed CPT file",
                            version,
                            suggestions=cpt.suggest(canonical),
                        )
                    )
                    return
                item.description = cpt.get(canonical, day).description
        expected = self.rules["setting_systems"].get(ctx.setting, [])
        if expected and system not in expected:
            item.results.append(
                self._result(
                    "PROC_SETTING_MISMATCH",
                    f"{_ARTICLE[system]} {_SYSTEM_NAMES[system]} code on an {ctx.setting} claim; {ctx.setting} facility claims report "
                    f"{' / '.join(_SYSTEM_NAMES[s] for s in expected)}",
                    version,
                    severity="warn",
                )
            )
        self._modifiers(item, day)
        item.structural_ok = not item.rejected

    def _pcs(self, item: _Item, canonical: str, day: dt.date | None, version: str) -> bool:
        pcs = self.systems.icd10pcs()
        check = pcs.axis_check(canonical, day)
        if len(canonical) < 7 and check is None:
            item.results.append(
                self._result(
                    "PCS_INCOMPLETE",
                    f"{canonical} has {len(canonical)} of the 7 characters an ICD-10-PCS code needs: a partial code "
                    "cannot be reported",
                    version,
                    suggestions=pcs.suggest(canonical, day),
                )
            )
            return False
        try:
            record = pcs.get(canonical, day) if len(canonical) == 7 else None
        except UnknownCodeError:
            record = None
        if record is not None and record.valid:
            item.description = record.title or None
            return True
        if record is None and check is not None:
            item.results.append(
                self._result(
                    "PCS_AXIS_INVALID",
                    f"character {check.position} ({check.axis}) '{check.value}' is not allowed"
                    + (f" after {canonical[: check.position - 1]}" if check.position > 1 else "")
                    + f" by any table row valid on {pcs.day(day).isoformat()}; allowed: "
                    f"{', '.join(check.allowed) or 'none'}",
                    version,
                    suggestions=pcs.suggest(canonical, day),
                )
            )
            return False
        when = ""
        if record is not None:
            until = record.effective_to.isoformat() if record.effective_to else "later"
            when = f" (valid {record.effective_from.isoformat()}..{until})"
            item.description = record.title or None
        item.results.append(
            self._result(
                "PROC_CODE_UNKNOWN",
                f"{canonical} is not a valid ICD-10-PCS code on {pcs.day(day).isoformat()}{when}",
                version,
                suggestions=pcs.suggest(canonical, day),
            )
        )
        return False

    def _modifiers(self, item: _Item, day: dt.date | None) -> None:
        mods = [m.strip().upper() for m in item.proposed.modifiers if m.strip()]
        item.modifiers = mods
        if not mods:
            return
        if item.system == "icd10pcs":
            item.results.append(
                self._result("MODIFIER_UNKNOWN", "ICD-10-PCS codes take no modifiers", self._version(item.system, day))
            )
            return
        ncci = self.systems.ncci()
        for mod in mods:
            if ncci.modifier(mod, day) is None:
                item.results.append(
                    self._result(
                        "MODIFIER_UNKNOWN",
                        f"modifier {mod!r} is not in the I/OCE modifier table of the quarter "
                        f"{ncci.quarter_for(day).ioce_version}",
                        ncci.version,
                    )
                )

    # -- 2. evidence ------------------------------------------------------------------
    def _check_evidence(self, items: list[_Item], ctx: ValidationContext) -> None:
        note = ctx.note_text
        normalized = NormalizedText(note)
        located: dict[int, list[tuple[int, Occurrence]]] = {}
        for item in items:
            version = self._version(item.system, ctx.date_of_service)
            if not item.proposed.evidence:
                if ctx.evidence_optional:
                    item.results.append(
                        self._result(
                            "NO_EVIDENCE_GIVEN",
                            "no evidence span given: the evidence rules were not run on this procedure",
                            version,
                            severity="warn",
                        )
                    )
                else:
                    item.results.append(
                        self._result(
                            "SPAN_NOT_IN_NOTE", "no evidence: a procedure needs at least one verbatim quote", version
                        )
                    )
                continue
            for e_index, evidence in enumerate(item.proposed.evidence):
                found, reason = locate_quote(normalized, evidence.text, evidence.start, evidence.end)
                if not found:
                    located.setdefault(item.index, []).append((e_index, Occurrence(-1, -1, False)))
                    item.results.append(
                        self._result(
                            "SPAN_NOT_IN_NOTE", f"evidence #{e_index}: {reason}", version, evidence_index=e_index
                        )
                    )
                    continue
                for occurrence in found:
                    located.setdefault(item.index, []).append((e_index, occurrence))
        spans = sorted({(o.start, o.end) for pairs in located.values() for _, o in pairs if o.start >= 0})
        analysed = dict(zip(spans, self._assertion(note, spans), strict=True)) if spans else {}
        categories: dict[str, str] = self.rules["assertion_rules"]
        for item in items:
            pairs = located.get(item.index)
            if not pairs:
                continue
            version = self._version(item.system, ctx.date_of_service)
            failures: list[RuleResult] = []
            clean: list[Evidence] = []
            failed: list[Evidence] = []
            for e_index, occ in pairs:
                if occ.start < 0:
                    continue
                text = note[occ.start : occ.end]
                problems: list[RuleResult] = []
                status, cue = self.lexicon.status(note, occ.start, occ.end)
                if status != "performed":
                    problems.append(
                        self._result(
                            _CUE_RULES[status],
                            f"evidence #{e_index} (chars {occ.start}-{occ.end}) reports the procedure as {status} "
                            f"(cue {cue!r}), not done in this encounter",
                            version,
                            evidence_index=e_index,
                        )
                    )
                else:
                    assertion = analysed.get((occ.start, occ.end))
                    for category, trigger in self._context_categories(assertion).items():
                        rule = categories.get(category)
                        if rule is not None:
                            problems.append(
                                self._result(
                                    rule,
                                    f"evidence #{e_index} (chars {occ.start}-{occ.end}) is {category.lower()} "
                                    f"(trigger {trigger!r})",
                                    version,
                                    evidence_index=e_index,
                                )
                            )
                (failed if problems else clean).append(Evidence(text=text, start=occ.start, end=occ.end))
                failures.extend(problems)
            if clean:
                # one clean quote supports the procedure; the others' failures (and missing quotes) only warn
                item.results = [
                    r.model_copy(update={"severity": "warn", "reason": f"(quote not relied on) {r.reason}"})
                    if r.rule == "SPAN_NOT_IN_NOTE"
                    else r
                    for r in item.results
                ]
                item.results.extend(
                    r.model_copy(update={"severity": "warn", "reason": f"(quote not relied on) {r.reason}"})
                    for r in failures
                )
            else:
                item.results.extend(failures)
            item.evidence = clean
            item.failed = failed

    def _context_categories(self, assertion: SpanAssertion | None) -> dict[str, str]:
        """ConText's categories (and triggers) that judge a procedure quote.

        ConText's cues are written for conditions, so two guards: a trigger that is itself a "performed" verb
        of the procedure lexicon ("removed": historical for a condition, the act itself for a procedure) is
        not a cue; and when the quote has stretches holding (or modified by) a performed verb, they alone are
        judged, and one that no other cue modifies is enough (in
        "colonoscopy performed; patient not at high risk", 'not' and 'risk for' modify the risk, not the
        colonoscopy). A quote with no performed verb is judged on all its stretches.
        """
        runs = assertion.runs if assertion else []
        performed = self.lexicon.performed
        with_verb = [
            r
            for r in runs
            if performed.search(r.text) or any(performed.fullmatch(t.strip()) for t in r.categories.values())
        ]
        seen: dict[str, str] = {}
        for run in with_verb or runs:
            categories = {c: t for c, t in run.categories.items() if not performed.fullmatch(t.strip())}
            if with_verb and not categories:
                return {}  # a stretch with a performed verb that no cue modifies: the procedure was done
            for category, trigger in categories.items():
                seen.setdefault(category, trigger)
        return seen

    # -- 3. demographics ----------------------------------------------------------------
    def _sex(self, item: _Item, ctx: ValidationContext) -> None:
        if item.system != "icd10pcs" or ctx.sex is None or item.canonical is None:
            return
        pcs = self.systems.icd10pcs()
        attributes = pcs.mce_attributes(item.canonical, ctx.date_of_service)
        only = "male" if "male" in attributes else "female" if "female" in attributes else None
        if only is None or (only == "male") == (ctx.sex == "M"):
            return
        item.results.append(
            self._result(
                "PROC_SEX_CONFLICT",
                f"{item.canonical} is a {only}-only procedure (Medicare Code Editor) but the patient's sex is "
                f"{ctx.sex}",
                self._version("icd10pcs", ctx.date_of_service),
            )
        )

    # -- 4. across codes ----------------------------------------------------------------
    def _claim_rules(self, items: list[_Item], day: dt.date | None) -> None:
        seen: dict[tuple[str, tuple[str, ...]], _Item] = {}
        for item in items:
            assert item.canonical is not None
            key = (item.canonical, tuple(sorted(item.modifiers)))
            if key in seen:
                item.results.append(
                    self._result(
                        "PROC_DUPLICATE",
                        f"{item.canonical} is already proposed (procedure #{seen[key].index}) with the same modifiers",
                        self._version(item.system, day),
                        related=[item.canonical],
                    )
                )
            else:
                seen[key] = item
        lines = [i for i in items if i.system in ("hcpcs", "cpt") and not i.rejected]
        if len(lines) < 2:
            return
        ncci: NCCIEdits = self.systems.ncci()
        for a_pos, a in enumerate(lines):
            for b in lines[a_pos + 1 :]:
                assert a.canonical is not None and b.canonical is not None
                if a.canonical == b.canonical:
                    continue
                edit = ncci.pair(a.canonical, b.canonical, day)
                if edit is None:
                    continue
                column2 = a if a.canonical == edit.column2 else b
                column1 = b if column2 is a else a
                quarter = f"NCCI quarter from {edit.quarter.date_from.isoformat()} (I/OCE {edit.quarter.ioce_version})"
                if not edit.modifier_allowed:
                    column2.results.append(
                        self._result(
                            "NCCI_PTP_BUNDLED",
                            f"{edit.column2} is bundled into {edit.column1} (NCCI procedure-to-procedure edit, modifier "
                            f"indicator 0: not billable together even with a modifier; {quarter})",
                            ncci.version,
                            related=[edit.column1],
                        )
                    )
                    continue
                bypass = [m for m in [*column2.modifiers, *column1.modifiers] if ncci.modifier(m, day)]
                if bypass:
                    column2.results.append(
                        self._result(
                            "NCCI_MODIFIER_BYPASS",
                            f"{edit.column2} with {edit.column1} is an NCCI pair (modifier indicator 1) billed with "
                            f"modifier {', '.join(bypass)}: {self.rules['ncci_bypass_note']} ({quarter})",
                            ncci.version,
                            severity="warn",
                            related=[edit.column1],
                        )
                    )
                else:
                    column2.results.append(
                        self._result(
                            "NCCI_MODIFIER_REQUIRED",
                            f"{edit.column2} is bundled into {edit.column1} unless an NCCI-associated modifier "
                            f"(59, XE, XS, XP, XU, anatomic) marks a distinct service (modifier indicator 1; {quarter})",
                            ncci.version,
                            related=[edit.column1],
                            suggestions=["59", "XE", "XS", "XP", "XU"],
                        )
                    )

    # -- output ----------------------------------------------------------------------------
    @staticmethod
    def _verdict(item: _Item) -> ProcedureVerdict:
        rejecting = list(dict.fromkeys(r.rule for r in item.results if r.severity == "reject"))
        return ProcedureVerdict(
            code=item.proposed.code,
            canonical=item.canonical,
            description=item.description,
            status="rejected" if rejecting else "accepted",
            confidence=item.proposed.confidence,
            rules=rejecting,
            warnings=[r for r in item.results if r.severity == "warn"],
            results=list(item.results),
            evidence=item.evidence,
            rejected_evidence=item.failed,
            system=item.system,
            modifiers=item.modifiers,
        )
