"""``ValidatorPipeline``: every proposed code through every rule, one verdict per code.

Built once per process (code-set registry, ConText pipeline, embedder and Medicare Code Editor
are loaded on first use and reused). Order:

1. per code, structural: CODE_MALFORMED -> SEVENTH_CHARACTER -> CODE_UNKNOWN -> CODE_NOT_BILLABLE
   (the first that fires ends the chain), then NOT_A_CANDIDATE;
2. per code, evidence: each quote is located (SPAN_NOT_IN_NOTE), then checked for instruction-like
   text (SPAN_INSTRUCTION), clinical relatedness (SPAN_UNRELATED) and assertion status
   (SPAN_NEGATED, SPAN_FAMILY_HISTORY, SPAN_HYPOTHETICAL, SPAN_UNCERTAIN, SPAN_HISTORICAL). A code
   needs one quote that passes; the failures of its other quotes become warnings. A code without
   any quote is rejected SPAN_NOT_IN_NOTE, unless the context makes evidence optional (a coder's
   code): then steps 2 and 3 do not run for it and it carries the NO_EVIDENCE_GIVEN warning;
3. per code, specificity, on the quotes that passed and the note (``_specificity.py``): the wrong
   sibling is rejected (SPECIFICITY_UNSUPPORTED, LATERALITY_CONFLICT, ENCOUNTER_CONFLICT; the last
   only warns when the note merely suggests another encounter); a less specific code than the
   documentation supports warns MORE_SPECIFIC_AVAILABLE, a detail the note lacks DOCUMENTATION_GAP;
4. per code, demographics: AGE_CONFLICT (Medicare Code Editor), SEX_CONFLICT (our table);
5. set level over the codes still standing and the context's ``claim_codes`` (codes already on the
   claim, which only the structural chain checks and which get no verdict): DUPLICATE,
   LESS_SPECIFIC_DUPLICATE (a code whose MORE_SPECIFIC_AVAILABLE sibling is coded too),
   EXCLUDES1_CONFLICT, CODE_FIRST, COMBINATION_REQUIRED, then SYMPTOM_INTEGRAL and
   USE_ADDITIONAL (warnings only).

Confidence is carried through but never changes a verdict.
"""

from __future__ import annotations

import re
import threading
from functools import partial
from typing import TYPE_CHECKING, Any

from medcode.codesets import CodeRecord, CodeSetRegistry, CodeSystems
from medcode.config import Settings
from medcode.retrieval import Embedder, default_expander, section_headers, segment_note
from medcode.validators._data import RulesData, load_rules_data
from medcode.validators._evidence import NormalizedText, Occurrence, locate_quote
from medcode.validators._models import (
    CodeVerdict,
    Evidence,
    Proposal,
    ProposedCode,
    RuleResult,
    ValidationContext,
    ValidationReport,
)
from medcode.validators._procedures import ProcedureValidator
from medcode.validators._rules import (
    AgeConflictRule,
    AssertionRule,
    CandidateRule,
    CodeFirstRule,
    CodeItem,
    CombinationRule,
    DuplicateRule,
    Excludes1Rule,
    IntegralSymptomRule,
    KnownCodeRule,
    LessSpecificDuplicateRule,
    MalformedRule,
    NoEvidenceGivenRule,
    NotBillableRule,
    Rule,
    RuleEnv,
    SeventhCharacterRule,
    SexConflictRule,
    SpanCheck,
    SpanInstructionRule,
    SpanNotInNoteRule,
    SpanUnrelatedRule,
    SpecificityRule,
    UseAdditionalRule,
)

if TYPE_CHECKING:
    from medcode.retrieval import Segment
    from medcode.validators._assertion import AssertionDetector, ContentRun
    from medcode.validators._relatedness import RelatednessScorer
    from medcode.validators._specificity import SpecificityAnalyser

__all__ = ["PROCEDURES_ONLY", "ValidatorPipeline"]

PROCEDURES_ONLY = "none: procedures only"
"""``ValidationReport.codeset_version`` of a proposal with no diagnoses (each procedure result names its data)."""

_SUSPICIOUS = frozenset({"SPAN_NOT_IN_NOTE", "SPAN_INSTRUCTION"})


class ValidatorPipeline:
    """Deterministic validation of proposed ICD-10-CM codes against a note.

    ``validate`` raises ``DateOutOfRangeError`` when no release covers the date of service and
    ``ConfigError`` when a rule table or the embedder is unusable; a bad code or quote never
    raises, it is rejected with a rule id.
    """

    def __init__(
        self, settings: Settings, *, registry: CodeSetRegistry | None = None, embedder: Embedder | None = None
    ) -> None:
        self.settings = settings
        self.registry = registry or CodeSetRegistry(settings)
        self._embedder = embedder
        self.rules: RulesData = load_rules_data()
        self._lock = threading.Lock()
        self._assertion: AssertionDetector | None = None
        self._relatedness: RelatednessScorer | None = None
        self._specificity: SpecificityAnalyser | None = None
        self._procedures: ProcedureValidator | None = None
        self.systems = CodeSystems(settings, self.registry)
        self.code_chain: list[Any] = [MalformedRule(), SeventhCharacterRule(), KnownCodeRule(), NotBillableRule()]
        self.candidate_rule = CandidateRule()
        self.span_missing = SpanNotInNoteRule()
        self.no_evidence = NoEvidenceGivenRule()
        self.span_instruction = SpanInstructionRule()
        self.span_unrelated = SpanUnrelatedRule()
        self.assertion_rules = [
            AssertionRule(rule_id, category)
            for rule_id in self.rules.precedence
            for category, mapped in self.rules.category_rules.items()
            if mapped == rule_id
        ]
        self.specificity_rules = {
            rule_id: SpecificityRule(rule_id)
            for rule_id in (
                "SPECIFICITY_UNSUPPORTED",
                "LATERALITY_CONFLICT",
                "ENCOUNTER_CONFLICT",
                "MORE_SPECIFIC_AVAILABLE",
                "DOCUMENTATION_GAP",
            )
        }
        self.age_rule = AgeConflictRule()
        self.sex_rule = SexConflictRule()
        self.duplicate_rule = DuplicateRule()
        self.excludes1_rule = Excludes1Rule()
        self.code_first_rule = CodeFirstRule()
        self.combination_rule = CombinationRule()
        self.less_specific_rule = LessSpecificDuplicateRule()
        self.integral_symptom_rule = IntegralSymptomRule()
        self.use_additional_rule = UseAdditionalRule()

    # -- lazily loaded analysers --------------------------------------------------
    @property
    def assertion(self) -> AssertionDetector:
        with self._lock:
            if self._assertion is None:
                from medcode.validators._assertion import AssertionDetector

                self._assertion = AssertionDetector(list_headers=self.rules.list_headers)
            return self._assertion

    @property
    def relatedness(self) -> RelatednessScorer:
        with self._lock:
            if self._relatedness is None:
                from medcode.validators._relatedness import RelatednessScorer

                if self._embedder is None:
                    self._embedder = Embedder.from_settings(self.settings)
                embedder = self._embedder
                self._relatedness = RelatednessScorer(
                    self.rules.relatedness, partial(embedder.encode, cache=True), default_expander().expand
                )
            return self._relatedness

    @property
    def specificity(self) -> SpecificityAnalyser:
        with self._lock:
            if self._specificity is None:
                from nltk.stem.porter import PorterStemmer

                from medcode.validators._specificity import SpecificityAnalyser

                stemmer = PorterStemmer()
                self._specificity = SpecificityAnalyser(
                    self.rules.specificity, lambda w: str(stemmer.stem(w)), default_expander().expand
                )
            return self._specificity

    @property
    def procedures(self) -> ProcedureValidator:
        """The procedure validators (``_procedures.py``), sharing this pipeline's code systems and ConText."""
        with self._lock:
            if self._procedures is None:
                self._procedures = ProcedureValidator(
                    self.systems,
                    self.rules.procedures,
                    self.rules.version,
                    lambda note, spans: self.assertion.analyse(note, spans, _sections(note)),
                )
            return self._procedures

    @property
    def all_rules(self) -> list[Rule]:
        """Every rule, in the order they run."""
        return [
            *self.code_chain,
            self.candidate_rule,
            self.span_missing,
            self.no_evidence,
            self.span_instruction,
            self.span_unrelated,
            *self.assertion_rules,
            *self.specificity_rules.values(),
            self.age_rule,
            self.sex_rule,
            self.duplicate_rule,
            self.less_specific_rule,
            self.excludes1_rule,
            self.code_first_rule,
            self.combination_rule,
            self.integral_symptom_rule,
            self.use_additional_rule,
        ]

    def close(self) -> None:
        """Release the Medicare Code Editor's native context."""
        self.age_rule.close()

    def __enter__(self) -> ValidatorPipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- main entry point ---------------------------------------------------------
    def validate(self, proposal: Proposal, ctx: ValidationContext, *, relatedness: bool = True) -> ValidationReport:
        """Verdicts for every code of ``proposal``, in proposal order (none for ``ctx.claim_codes``).

        ``relatedness=False`` leaves SPAN_UNRELATED out (it embeds every code's texts: the costly
        part); the agent uses that to screen many candidates cheaply, never for a final verdict.
        """
        if not proposal.codes and not ctx.claim_codes:
            # procedures only: no ICD-10-CM release is needed (a date of service before the loaded ones is fine)
            return ValidationReport(
                verdicts=[],
                codeset_version=PROCEDURES_ONLY,
                rules_version=self.rules.version,
                procedures=self.procedures.validate(proposal.procedures, ctx),
            )
        codeset = self.registry.get(ctx.date_of_service)
        env = RuleEnv(codeset, self.rules, ctx, f"{codeset.version}+{self.rules.version}")
        items = [CodeItem(i, pc) for i, pc in enumerate(proposal.codes)]
        claim = [
            CodeItem(len(items) + k, ProposedCode(code=code), on_claim=True) for k, code in enumerate(ctx.claim_codes)
        ]
        by_index = {item.index: item for item in [*items, *claim]}
        for item in [*items, *claim]:
            for rule in self.code_chain:
                item.results.extend(rule.check(item, env))
                if item.rejected:
                    break
            if item.record is None and item.canonical is not None and item.canonical in codeset:
                item.record = codeset.get(item.canonical)  # a header stopped by SEVENTH_CHARACTER: describe it
            if item.record is not None and not item.rejected and not item.on_claim:
                item.results.extend(self.candidate_rule.check(item, env))
        supported: dict[int, list[SpanCheck]] = {}
        live = [i for i in items if i.record is not None and not any(r.rule in _STRUCTURAL for r in i.results)]
        if live:
            segments = segment_note(env.ctx.note_text)
            supported = self._check_evidence(live, env, segments, relatedness=relatedness)
            self._check_specificity([i for i in live if not i.rejected], supported, env, segments)
        for item in live:
            item.results.extend(self.age_rule.check(item, env))
            item.results.extend(self.sex_rule.check(item, env))
        # codes already on the claim come first: a proposed code that repeats one is the duplicate
        standing = [i for i in [*claim, *items] if i.record is not None and not i.rejected]
        for first in (self.duplicate_rule, self.less_specific_rule):
            for index, results in first.check_set(standing, env).items():
                by_index[index].results.extend(results)
            standing = [i for i in standing if not i.rejected]
        standing_rules = (
            self.excludes1_rule,
            self.code_first_rule,
            self.combination_rule,
            self.integral_symptom_rule,
            self.use_additional_rule,
        )
        for rule in standing_rules:
            for index, results in rule.check_set(standing, env).items():
                by_index[index].results.extend(results)
        return ValidationReport(
            verdicts=[self._verdict(item, supported.get(item.index, [])) for item in items],
            codeset_version=codeset.version,
            rules_version=self.rules.version,
            procedures=self.procedures.validate(proposal.procedures, ctx) if proposal.procedures else [],
        )

    # -- evidence -----------------------------------------------------------------
    def _check_evidence(
        self, items: list[CodeItem], env: RuleEnv, segments: list[Segment], *, relatedness: bool = True
    ) -> dict[int, list[SpanCheck]]:
        note = env.ctx.note_text
        normalized = NormalizedText(note)
        occurrences: dict[tuple[int, int], list[SpanCheck]] = {}
        missing: dict[int, list[RuleResult]] = {}
        for item in items:
            if not item.proposed.evidence:
                if env.ctx.evidence_optional:
                    item.results.append(
                        self.no_evidence.result(
                            env,
                            "no evidence span given: the evidence rules (located, asserted, related, specificity) "
                            "were not run on this code",
                        )
                    )
                else:
                    missing[item.index] = [
                        self.span_missing.result(
                            env, "no evidence: a code needs at least one verbatim quote from the note"
                        )
                    ]
                continue
            for e_index, evidence in enumerate(item.proposed.evidence):
                found, reason = self._locate(normalized, evidence)
                if not found:
                    missing.setdefault(item.index, []).append(
                        self.span_missing.result(env, f"evidence #{e_index}: {reason}", evidence_index=e_index)
                    )
                    continue
                occurrences[(item.index, e_index)] = [
                    SpanCheck(e_index, o.start, o.end, note[o.start : o.end], self._line(note, o.start, o.end))
                    for o in found
                ]
        all_checks = [c for checks in occurrences.values() for c in checks]
        if all_checks:
            self._annotate(all_checks, items, occurrences, env, segments, relatedness=relatedness)
        supported: dict[int, list[SpanCheck]] = {}
        by_index = {i.index: i for i in items}
        for item in items:
            per_evidence: list[tuple[SpanCheck | None, list[RuleResult]]] = []
            for e_index in range(len(item.proposed.evidence)):
                checks = occurrences.get((item.index, e_index))
                if checks is None:
                    continue
                judged = [(c, self._span_results(c, by_index[item.index], env)) for c in checks]
                order = self.rules.section_preference
                judged.sort(
                    key=lambda cr: (
                        any(r.severity == "reject" for r in cr[1]),
                        order.index(cr[0].section) if cr[0].section in order else len(order),
                        cr[0].start,
                    )
                )
                per_evidence.append(judged[0])
            for result in missing.get(item.index, []):
                per_evidence.append((None, [result]))
            item.results.extend(self._aggregate(per_evidence))
            supported[item.index] = [
                c for c, res in per_evidence if c is not None and not any(r.severity == "reject" for r in res)
            ]
            item.failed_spans = [
                c for c, res in per_evidence if c is not None and any(r.severity == "reject" for r in res)
            ]
        return supported

    def _check_specificity(
        self, items: list[CodeItem], supported: dict[int, list[SpanCheck]], env: RuleEnv, segments: list[Segment]
    ) -> None:
        """The wrong-sibling rules on each standing code's supported quotes (and the note)."""
        todo = [i for i in items if i.record is not None and supported.get(i.index)]
        if not todo:
            return
        analyser = self.specificity
        scorer = self.relatedness
        note = analyser.note_context(env.ctx.note_text, [(s.start, s.end, s.section) for s in segments])
        for item in todo:
            assert item.record is not None
            quotes = supported[item.index]
            evidence = analyser.evidence([(c.start, c.end) for c in quotes], note)

            def index_names(record: CodeRecord, quotes: list[SpanCheck] = quotes) -> bool | None:
                # called only when a family member competes with the code: most codes never read their quotes here
                terms = scorer.index_terms(record, env.codeset)
                if not terms:
                    return None  # the Index has no term for the code (new since the Index's release)
                return any(scorer.index_match(scorer.quote_text(c.text), terms) is not None for c in quotes)

            for finding in analyser.analyse(item.record, env.codeset, evidence, index_names=index_names):
                item.results.append(self.specificity_rules[finding.rule].from_finding(finding, env))

    @staticmethod
    def _locate(normalized: NormalizedText, evidence: Evidence) -> tuple[list[Occurrence], str]:
        return locate_quote(normalized, evidence.text, evidence.start, evidence.end)

    @staticmethod
    def _line(note: str, start: int, end: int) -> str:
        left = note.rfind("\n", 0, start) + 1
        right = note.find("\n", end)
        return note[left : right if right != -1 else len(note)]

    def _annotate(
        self,
        checks: list[SpanCheck],
        items: list[CodeItem],
        occurrences: dict[tuple[int, int], list[SpanCheck]],
        env: RuleEnv,
        segments: list[Segment],
        *,
        relatedness: bool = True,
    ) -> None:
        """Fill assertion, section, chosen run and (unless ``relatedness`` is off) relatedness on every span check."""
        note = env.ctx.note_text
        sections = [(s.start, s.end, s.section) for s in segments]
        unique = sorted({(c.start, c.end) for c in checks})
        analysed = dict(zip(unique, self.assertion.analyse(note, unique, sections), strict=True))
        scorer = self.relatedness
        by_index = {i.index: i for i in items}
        pairs: dict[tuple[str, str], int] = {}
        pair_list: list[tuple[str, Any]] = []
        owner: list[tuple[SpanCheck, tuple[str, str]]] = []
        for (item_index, _e_index), span_checks in occurrences.items():
            record = by_index[item_index].record
            assert record is not None
            code_stems = scorer.positive_stems(record) or scorer.code_stems(record, env.codeset)
            for check in span_checks:
                check.assertion = analysed[(check.start, check.end)]
                check.section = check.assertion.section
                check.run = self._pick_run(check.assertion.runs, code_stems, scorer)
                key = (check.text, record.code)
                if key not in pairs:
                    pairs[key] = len(pair_list)
                    pair_list.append((check.text, record))
                owner.append((check, key))
        if not relatedness:
            return
        scored = scorer.score_many(pair_list, env.codeset)
        for check, key in owner:
            check.relatedness = scored[pairs[key]]
        self._apply_sections(checks, note, segments, sections, scorer)

    def _apply_sections(
        self,
        checks: list[SpanCheck],
        note: str,
        segments: list[Segment],
        sections: list[tuple[int, int, str]],
        scorer: RelatednessScorer,
    ) -> None:
        """Section categories (Family History -> FAMILY, Past Medical History -> HISTORICAL).

        A Past Medical History quote keeps its condition current when its header is a problem list
        (``section_exceptions``) or when the note restates the condition, affirmed, in a current section
        (``restated_sections``: a segment holding every strong stem of the quote's run whose matching run
        carries no assertion category).
        """
        pending = [c for c in checks if c.section in self.rules.section_categories and c.run is not None]
        current: set[int] = set()
        wanted: dict[int, tuple[set[str], list[tuple[int, int]]]] = {}
        for check in pending:
            assert check.section is not None and check.run is not None
            if check.section not in self.rules.restated_sections:
                continue
            if _header_label(note, check.start) in self.rules.section_exceptions.get(check.section, frozenset()):
                current.add(id(check))
                continue
            stems = scorer.strong_stems(check.run.text)
            places = self.rules.restated_sections[check.section]
            spans = [
                (s.start, s.end)
                for s in segments
                if s.section in places and stems and stems <= scorer.stems(scorer.quote_text(s.text))
            ]
            if spans:
                wanted[id(check)] = (stems, spans)
        unique = sorted({span for _, spans in wanted.values() for span in spans})
        if unique:
            restating = dict(zip(unique, self.assertion.analyse(note, unique, sections), strict=True))
            for check in pending:
                if id(check) not in wanted:
                    continue
                stems, spans = wanted[id(check)]
                for span in spans:
                    run = self._pick_run(restating[span].runs, stems, scorer)
                    if not set(run.categories) & _ASSERTED_AWAY:
                        current.add(id(check))
                        break
        for check in pending:
            assert check.section is not None and check.run is not None
            category = self.rules.section_categories[check.section]
            if id(check) in current:
                # current after all: drop what only the section's own header said ("PAST MEDICAL HISTORY:")
                check.run.categories = {
                    k: v
                    for k, v in check.run.categories.items()
                    if not (k == category and section_headers().get(" ".join(v.lower().split())) == check.section)
                }
                continue
            check.run.categories.setdefault(category, f"section:{check.section}")

    @staticmethod
    def _pick_run(runs: list[ContentRun], code_stems: set[str], scorer: RelatednessScorer) -> ContentRun:
        """The run that carries the code's concept: most shared stems (after abbreviation expansion), then the longest."""
        import copy

        contentful = [r for r in runs if scorer.stems(r.text)] or runs
        best = max(
            contentful,
            key=lambda r: (*scorer.overlap(scorer.quote_text(r.text), code_stems), len(r.text), -contentful.index(r)),
        )
        return copy.deepcopy(best)

    def _span_results(self, check: SpanCheck, item: CodeItem, env: RuleEnv) -> list[RuleResult]:
        results = self.span_instruction.check(check, env)
        results += self.span_unrelated.check(check, item, env)
        for rule in self.assertion_rules:
            results += rule.check(check, item, env)
        return results

    @staticmethod
    def _aggregate(per_evidence: list[tuple[SpanCheck | None, list[RuleResult]]]) -> list[RuleResult]:
        """One passing quote supports the code; the other quotes' failures become warnings."""
        passing = [c for c, res in per_evidence if c is not None and not any(r.severity == "reject" for r in res)]
        if not passing:
            return [r for _, res in per_evidence for r in res]
        used_ids = {id(c) for c in passing}
        clean = any(not res for c, res in per_evidence if id(c) in used_ids)
        out: list[RuleResult] = []
        for check, res in per_evidence:
            used = check is not None and id(check) in used_ids
            for r in res:
                if used and not clean:
                    out.append(r)
                elif not used and (r.rule in _SUSPICIOUS or not clean):
                    out.append(r.model_copy(update={"severity": "warn", "reason": f"(quote not relied on) {r.reason}"}))
        return out

    # -- output -------------------------------------------------------------------
    @staticmethod
    def _verdict(item: CodeItem, supported: list[SpanCheck]) -> CodeVerdict:
        rejecting = list(dict.fromkeys(r.rule for r in item.results if r.severity == "reject"))
        record = item.record
        return CodeVerdict(
            code=item.proposed.code,
            canonical=record.code if record is not None else item.canonical,
            description=record.description if record is not None else None,
            status="rejected" if rejecting else "accepted",
            confidence=item.proposed.confidence,
            rules=rejecting,
            warnings=[r for r in item.results if r.severity == "warn"],
            results=list(item.results),
            evidence=[Evidence(text=c.text, start=c.start, end=c.end) for c in supported],
            rejected_evidence=[Evidence(text=c.text, start=c.start, end=c.end) for c in item.failed_spans],
            index_term=None
            if rejecting
            else next(
                (c.relatedness.index_term for c in supported if c.relatedness and c.relatedness.index_term), None
            ),
        )


_STRUCTURAL = frozenset({"CODE_MALFORMED", "SEVENTH_CHARACTER", "CODE_UNKNOWN", "CODE_NOT_BILLABLE"})
# ConText categories that make a mention something other than a current condition of the patient.
_ASSERTED_AWAY = frozenset(
    {"NEGATED_EXISTENCE", "FAMILY", "HYPOTHETICAL", "POSSIBLE_EXISTENCE", "HISTORICAL", "RESOLVED"}
)
_HEADER_PREFIX = re.compile(r"\s*[-*\u2022#]*\s*([A-Za-z][A-Za-z /&\-]{0,48}?)\s*:")


def _sections(note: str) -> list[tuple[int, int, str]]:
    return [(s.start, s.end, s.section) for s in segment_note(note)]


def _header_label(note: str, pos: int) -> str | None:
    """The label of the section header above ``pos`` (or an inline "PMH: ..." header on its line)."""
    headers = section_headers()
    line_start = note.rfind("\n", 0, pos) + 1
    inline = _HEADER_PREFIX.match(note, line_start, pos)
    if inline and " ".join(inline.group(1).lower().split()) in headers:
        return " ".join(inline.group(1).lower().split())
    end = line_start - 1
    for _ in range(300):
        if end <= 0:
            return None
        start = note.rfind("\n", 0, end) + 1
        line = note[start:end].strip().strip("#*-\u2022 ").rstrip(":. ").strip()
        label = " ".join(line.lower().split())
        if label in headers:
            return label
        inline = _HEADER_PREFIX.match(note, start, end)
        if inline and " ".join(inline.group(1).lower().split()) in headers:
            return " ".join(inline.group(1).lower().split())
        end = start - 1
    return None
