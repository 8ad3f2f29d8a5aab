"""Proposers: turn a note's retrieval candidates into proposed codes with evidence spans.

Candidate generation (retrieval) is followed by a typed hand-off, ``group_conditions``: the note's
candidates are grouped into *conditions*, each anchored at the sentence that found it and holding a
few competing codes (siblings in one category, or neighbours of one block found by the same
sentence). Then one of two linkers decides per condition:

- ``RetrievalProposer``: no LLM; the learned acceptance model (``_acceptance.py``) gives every
  candidate the probability that a coder keeps it, and the codes above the setting's threshold are
  proposed (an Excludes1 pair keeps the likelier code).
- ``LLMProposer``: a structured-output LLM picks one listed code or ``none`` per numbered condition.
  Its response model is built per note: each condition's field is a ``Literal`` of that condition's
  codes plus ``"none"``, so it cannot name anything else; the evidence is the sentence the
  condition is anchored at, which medcode resolves to exact offsets.

Neither asks anyone for a confidence: it is the acceptance model's calibrated probability,
computed from measured evidence (retrieval scores, where the evidence sits, what the validators
say, how the code competes with its siblings), kept as a versioned data file.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from medcode.agent._acceptance import ASSERTION_RULE_FEATURES, PRIOR_FEATURES, AcceptanceModel, candidate_features
from medcode.agent._selection import build_choice_model
from medcode.validators import CodeRefMatcher, Evidence, ProposedCode

if TYPE_CHECKING:
    from medcode.agent._note import Note
    from medcode.agent.llm._client import LLMClient, LLMIdentity, LLMUsage
    from medcode.codesets import CodeRecord, ICD10CMCodeSet
    from medcode.retrieval import NoteCandidate, NoteCandidates, Segment, SpanHit

__all__ = [
    "DIAGNOSTIC_SECTIONS",
    "Condition",
    "LLMProposer",
    "PromptTemplate",
    "Proposed",
    "ProposedItem",
    "Proposer",
    "RetrievalProposer",
    "excludes1_conflict",
    "group_conditions",
    "load_prompt",
]

ProposerName = Literal["llm", "retrieval"]
# Given a note and proposed codes, the rule ids that reject each code (the validators).
Vetter = Callable[["Note", list[ProposedCode]], list[list[str]]]
# Rejections that say the anchor sentence does not assert the condition for this patient now.
NOT_ASSERTED = frozenset(
    {
        "SPAN_NEGATED",
        "SPAN_FAMILY_HISTORY",
        "SPAN_HYPOTHETICAL",
        "SPAN_UNCERTAIN",
        "SPAN_HISTORICAL",
        "SPAN_INSTRUCTION",
    }
)

# Sections whose statements are the encounter's diagnoses.
DIAGNOSTIC_SECTIONS = frozenset({"assessment_plan", "chief_complaint"})


@dataclass
class ProposedItem:
    """One proposed code with the evidence spans the proposer points at and its measured features."""

    code: str
    evidence: list[Evidence]
    features: dict[str, float]
    confidence: float = 0.0


@dataclass
class Proposed:
    """What a proposer returns for one note."""

    items: list[ProposedItem]
    candidates_offered: list[str]
    raw_output: str | None = None
    selection: list[dict[str, Any]] | None = None
    usage: LLMUsage | None = None
    identity: LLMIdentity | None = None
    prompt_version: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # Codes passed on only to be shown rejected (an assertion rule blocked them): never accepted.
    blocked: frozenset[str] = frozenset()

    def as_proposal_codes(self) -> list[ProposedCode]:
        return [ProposedCode(code=i.code, evidence=i.evidence, confidence=i.confidence) for i in self.items]


@cache
def proposer_parameters() -> dict[str, Any]:
    """Per-proposer, per-setting parameters (``agent/data/proposers.json``)."""
    text = resources.files("medcode.agent").joinpath("data/proposers.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    data["version"] = f"{data['version']}+{hashlib.sha256(text.encode()).hexdigest()[:8]}"
    return data


# -- conditions -------------------------------------------------------------------------------


@dataclass
class Condition:
    """Codes competing to describe one finding, anchored at the sentence that found the best one."""

    anchor: SpanHit
    block: str
    options: list[NoteCandidate]
    positions: dict[str, int]  # code -> 1-based rank among the note's candidates

    @property
    def anchors(self) -> list[SpanHit]:
        """The cited span of each option, one per sentence, the main anchor first."""
        seen = {self.anchor.segment_id}
        out = [self.anchor]
        for option in self.options:
            hit = _best_hit(option)
            if hit is not None and hit.segment_id not in seen:
                seen.add(hit.segment_id)
                out.append(hit)
        return out

    @property
    def score(self) -> float:
        return self.options[0].score

    @property
    def categories(self) -> set[str]:
        return {o.code[:3] for o in self.options}


def _best_hit(candidate: NoteCandidate) -> SpanHit | None:
    """The hit to cite: the best one, or a nearly-as-good one in a diagnostic section."""
    if not candidate.hits:
        return None
    best_score = candidate.hits[0].score
    for hit in candidate.hits:  # hits are best first
        if hit.section in DIAGNOSTIC_SECTIONS and hit.score >= best_score - 0.05:
            return hit
    return candidate.hits[0]


def group_conditions(
    candidates: NoteCandidates,
    codeset: ICD10CMCodeSet,
    *,
    min_score: float = 0.5,
    max_conditions: int = 10,
    max_options: int = 3,
    anchor_margin: float = 0.08,
    diagnostic_only: bool = False,
) -> list[Condition]:
    """Group the note's candidates into conditions, strongest first.

    A candidate joins an existing condition when it shares a 3-character category with it, or when
    it is in the same block and was found by the same sentence; otherwise it starts a new condition
    (until ``max_conditions``), unless its best span already anchors a condition whose score beats
    it by more than ``anchor_margin`` (a weaker reading of the same words). With ``diagnostic_only``
    and a note that has an assessment (or chief complaint) section, only codes found there count. Conditions keep at most ``max_options`` codes, best first. Candidates
    below ``min_score`` or missing from the code set are ignored.
    """
    conditions: list[Condition] = []
    restrict = diagnostic_only and any(s.section in DIAGNOSTIC_SECTIONS for s in candidates.segments)
    for position, cand in enumerate(candidates.candidates, start=1):
        if cand.score < min_score:
            break
        if restrict:
            allowed = [h for h in cand.hits if h.section in DIAGNOSTIC_SECTIONS]
            if not allowed or allowed[0].score < min_score:
                continue
        hit = _best_hit(cand)
        if hit is None or cand.code not in codeset:
            continue
        block = codeset.get(cand.code).block
        home = None
        for cond in conditions:
            if cand.code[:3] in cond.categories or (
                cond.block == block and {a.segment_id for a in cond.anchors} & {h.segment_id for h in cand.hits}
            ):
                home = cond
                break
        if home is not None:
            if len(home.options) < max_options:
                home.options.append(cand)
                home.positions[cand.code] = position
            continue
        if any(_same_span(c.anchor, hit) and cand.score < c.score - anchor_margin for c in conditions):
            continue  # a weaker reading of a sentence that already anchors a condition
        if len(conditions) < max_conditions:
            conditions.append(Condition(anchor=hit, block=block, options=[cand], positions={cand.code: position}))
    return conditions


def _same_span(a: SpanHit, b: SpanHit) -> bool:
    overlap = min(a.end, b.end) - max(a.start, b.start)
    return overlap > 0 and overlap >= 0.5 * min(a.end - a.start, b.end - b.start)


def excludes1_conflict(a: CodeRecord, b: CodeRecord) -> bool:
    """True when either code's Excludes1 notes (own or inherited) name the other."""
    for x, y in ((a, b), (b, a)):
        notes = [n.text for n in x.all_notes("excludes1")]
        if notes and CodeRefMatcher(notes, precise_only=True).match(y.code) is not None:
            return True
    return False


MAX_EVIDENCE_SPANS = 3


def _evidence_for(note_text: str, candidate: NoteCandidate, max_spans: int = MAX_EVIDENCE_SPANS) -> list[Evidence]:
    """The spans that found the code: the cited one first, then the next best from other sentences.

    A condition is often mentioned several times (denied in the review of systems, diagnosed in the
    assessment); the validators accept a code when one of its spans passes, so offering the best
    spans of up to ``max_spans`` sentences keeps a code whose first mention is negated or historical
    but that the note asserts elsewhere. Overlapping spans are not repeated.
    """
    first = _best_hit(candidate)
    if first is None:
        return []
    chosen = [first]
    for hit in candidate.hits:  # best first
        if len(chosen) >= max_spans:
            break
        if any(hit.segment_id == c.segment_id or min(hit.end, c.end) > max(hit.start, c.start) for c in chosen):
            continue
        chosen.append(hit)
    return [Evidence(text=note_text[h.start : h.end], start=h.start, end=h.end) for h in chosen]


class Proposer:
    """Interface: ``propose(note, candidates, codeset) -> Proposed``.

    ``model`` (the acceptance model) gives each proposed code its confidence; ``vetter`` (the
    validators, judging each code on its own merits) feeds the model's rule features.
    """

    name: ProposerName
    model: AcceptanceModel
    vetter: Vetter | None

    def propose(
        self, note: Note, candidates: NoteCandidates, codeset: ICD10CMCodeSet
    ) -> Proposed:  # pragma: no cover - interface
        raise NotImplementedError

    def top_k(self, setting: str) -> int:
        return self.model.top_k.get(setting, 50)

    def feature_rows(
        self,
        note: Note,
        candidates: NoteCandidates,
        codeset: ICD10CMCodeSet,
        *,
        llm_selected: dict[str, bool] | None = None,
        priors: bool = True,
    ) -> list[tuple[NoteCandidate, dict[str, float]]]:
        """Feature rows of the note's top candidates (validators' own-merit rules included when vetted)."""
        top = candidates.candidates[: self.top_k(note.setting)]
        rules: dict[str, list[str]] | None = None
        if self.vetter is not None and top:
            codes = [ProposedCode(code=c.code, evidence=_evidence_for(note.text, c)) for c in top]
            rules = dict(zip([c.code for c in top], self.vetter(note, codes), strict=True))
        return candidate_features(
            candidates,
            codeset,
            note_chars=len(note.text),
            outpatient=note.setting == "outpatient",
            rules=rules,
            priors=self.model.priors if priors and set(PRIOR_FEATURES) & set(self.model.features) else None,
            llm_selected=llm_selected,
            top_k=self.top_k(note.setting),
        )

    def _item(self, note: Note, cand: NoteCandidate, features: dict[str, float], probability: float) -> ProposedItem:
        return ProposedItem(
            code=cand.code, evidence=_evidence_for(note.text, cand), features=features, confidence=probability
        )


# -- retrieval-only ---------------------------------------------------------------------------


class RetrievalProposer(Proposer):
    """Every candidate whose acceptance probability reaches the setting's threshold, likeliest first.

    The threshold (chosen on out-of-fold micro-F1 when the model was trained) comes from the model
    unless given; ``max_codes`` caps a note's codes; of two codes in an Excludes1 conflict only the
    likelier is kept. When no code reaches the threshold, the likeliest candidate is proposed if it reaches the
    model's floor for the setting (a note has a diagnosis; no floor with an explicit ``threshold``). Top
    candidates that an assertion rule rejected are passed on too (see ``_rule_blocked``) so the validators
    reject them visibly. Never fails on an empty candidate list.
    """

    name: ProposerName = "retrieval"

    def __init__(
        self,
        model: AcceptanceModel,
        *,
        vetter: Vetter | None = None,
        threshold: float | None = None,
        max_codes: int = 25,
        show_blocked_top: int = 10,
    ):
        self.model = model
        self.vetter = vetter
        self.threshold = threshold
        self.max_codes = max_codes
        self.show_blocked_top = show_blocked_top

    def propose(self, note: Note, candidates: NoteCandidates, codeset: ICD10CMCodeSet) -> Proposed:
        rows = self.feature_rows(note, candidates, codeset)
        probabilities = self.model.probability([r for _, r in rows], note.setting)
        cut = self.threshold if self.threshold is not None else self.model.threshold(note.setting)
        ranked = sorted(zip(rows, probabilities, strict=True), key=lambda rp: (-rp[1], rp[0][0].rank))
        items: list[ProposedItem] = []
        kept: list[CodeRecord] = []
        for (cand, features), probability in ranked:
            if probability < cut or len(items) >= self.max_codes:
                break
            record = codeset.get(cand.code)
            if any(excludes1_conflict(k, record) for k in kept):
                continue
            kept.append(record)
            items.append(self._item(note, cand, features, probability))
        floor = self.model.floor(note.setting) if self.threshold is None else None
        if not items and ranked and floor is not None and ranked[0][1] >= floor:
            (cand, features), probability = ranked[0]
            items.append(self._item(note, cand, features, probability))
        blocked = self._rule_blocked(note, rows, probabilities, {i.code for i in items})
        items.extend(blocked)
        items.sort(key=lambda i: next(c.rank for c, _ in rows if c.code == i.code))
        return Proposed(
            items=items,
            candidates_offered=[c.code for c, _ in rows],
            extra={"acceptance_threshold": cut, **({"acceptance_floor": floor} if floor is not None else {})},
            blocked=frozenset(i.code for i in blocked),
        )

    def _rule_blocked(
        self,
        note: Note,
        rows: list[tuple[NoteCandidate, dict[str, float]]],
        probabilities: list[float],
        taken: set[str],
    ) -> list[ProposedItem]:
        """The conditions the note mentions but the rules say not to code: among the top
        ``show_blocked_top`` candidates, the best-ranked one per cited sentence that an assertion rule
        (negated, family history, hypothetical, uncertain, historical) rejected on its own merits.

        They go on to the validators, which reject them with the rule id and reason, so a coder sees
        that "denies chest pain" was read and why it is not coded. They are listed in ``Proposed.blocked``:
        should the final validators ever accept one, the coder drops it instead.
        """
        out: list[ProposedItem] = []
        seen: set[tuple[int, int]] = set()
        for (cand, features), probability in list(zip(rows, probabilities, strict=True))[: self.show_blocked_top]:
            if cand.code in taken or not any(features.get(k) == 1.0 for k in ASSERTION_RULE_FEATURES):
                continue
            hit = _best_hit(cand)
            if hit is None or (hit.start, hit.end) in seen:
                continue
            seen.add((hit.start, hit.end))
            out.append(self._item(note, cand, features, probability))
        return out


# -- LLM --------------------------------------------------------------------------------------


class PromptTemplate(BaseModel):
    """A versioned prompt (``agent/data/prompts/<id>.json``)."""

    id: str
    description: str = ""
    system: str
    user: str
    condition: str
    sentence: str
    option: str
    version: str = Field(default="", description="id + hash of the file: changes whenever the text does.")


@cache
def load_prompt(prompt_id: str) -> PromptTemplate:
    """Load a packaged prompt by id. Raises ``FileNotFoundError`` for an unknown id."""
    text = resources.files("medcode.agent").joinpath(f"data/prompts/{prompt_id}.json").read_text(encoding="utf-8")
    prompt = PromptTemplate.model_validate_json(text)
    prompt.version = f"{prompt.id}+{hashlib.sha256(text.encode()).hexdigest()[:8]}"
    return prompt


def _one_line(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3].rstrip() + "..."


_SECTION_LABELS = {
    "assessment_plan": "assessment/plan",
    "chief_complaint": "chief complaint",
    "family_history": "family history",
    "past_medical_history": "past history",
    "hpi": "history of present illness",
    "ros": "review of systems",
    "physical_exam": "exam",
}


class LLMProposer(Proposer):
    """The LLM picks one code or ``none`` for each numbered condition.

    Shows each condition's anchor sentence (with its section) and its codes; how many conditions
    and codes comes per setting from ``agent/data/proposers.json`` (or keyword overrides). Raises ``LLMUnavailableError`` /
    ``LLMOutputError`` from the client; the orchestrator routes such notes to a human.
    """

    name: ProposerName = "llm"

    def __init__(
        self,
        client: LLMClient,
        *,
        model: AcceptanceModel,
        prompt_id: str = "choose-v2",
        sentence_chars: int = 220,
        vetter: Vetter | None = None,
        **overrides: Any,
    ) -> None:
        self.client = client
        self.model = model
        self.vetter = vetter
        self.prompt = load_prompt(prompt_id)
        self.sentence_chars = sentence_chars
        self.overrides = overrides

    def parameters(self, setting: str) -> dict[str, Any]:
        return {**proposer_parameters()["llm"][setting], **self.overrides}

    def build_messages(self, conditions: list[Condition], segments: list[Segment]) -> list[dict[str, str]]:
        """The chat messages for a list of conditions (the system prompt never changes)."""
        by_id = {s.id: s for s in segments}
        blocks = []
        for n, cond in enumerate(conditions, start=1):
            sentences = []
            for anchor in cond.anchors[:2]:
                seg = by_id.get(anchor.segment_id)
                section = _SECTION_LABELS.get(anchor.section, anchor.section.replace("_", " "))
                text = _one_line(seg.text if seg else "", self.sentence_chars)
                sentences.append(self.prompt.sentence.format(section=section, sentence=text))
            options = "\n".join(self.prompt.option.format(code=o.code, description=o.description) for o in cond.options)
            blocks.append(self.prompt.condition.format(n=n, sentences="\n".join(sentences), options=options))
        user = self.prompt.user.format(conditions="\n".join(blocks))
        return [{"role": "system", "content": self.prompt.system}, {"role": "user", "content": user}]

    def _asserted(self, note: Note, conditions: list[Condition]) -> list[Condition]:
        """Drop conditions whose every code the validators reject because the sentence does not assert it
        (negated, family member, hypothetical, uncertain where that counts, resolved, planted instruction).
        The LLM then spends no tokens on them; the validators still judge whatever it picks."""
        if self.vetter is None or not conditions:
            return conditions
        codes = [
            ProposedCode(code=o.code, evidence=_evidence_for(note.text, o)) for cond in conditions for o in cond.options
        ]
        verdicts = iter(self.vetter(note, codes))
        kept = []
        for cond in conditions:
            rules = [next(verdicts) for _ in cond.options]
            if not all(r and set(r) <= NOT_ASSERTED for r in rules):
                kept.append(cond)
        return kept

    def propose(self, note: Note, candidates: NoteCandidates, codeset: ICD10CMCodeSet) -> Proposed:
        conditions = group_conditions(candidates, codeset, **self.parameters(note.setting))
        conditions = self._asserted(note, conditions)
        offered = [o.code for cond in conditions for o in cond.options]
        if not conditions:
            return Proposed(items=[], candidates_offered=[], prompt_version=self.prompt.version)
        messages = self.build_messages(conditions, candidates.segments)
        options = [[o.code for o in cond.options] for cond in conditions]
        model = build_choice_model(options)
        result = self.client.complete(messages, model, validation_context={"options": options})
        choices: dict[str, str] = result.parsed.model_dump()
        selection: list[dict[str, Any]] = []
        chosen_codes: list[str] = []
        for n, cond in enumerate(conditions, start=1):
            chosen = choices.get(f"condition_{n}", "none")
            selection.append({"condition": n, "choice": chosen, "options": [o.code for o in cond.options]})
            if chosen != "none":
                chosen_codes.append(chosen)
        # Confidence: the acceptance model's probability, with the LLM's choice as a feature.
        rows = {
            c.code: (c, r)
            for c, r in self.feature_rows(note, candidates, codeset, llm_selected=dict.fromkeys(chosen_codes, True))
        }
        items: list[ProposedItem] = []
        for code in chosen_codes:
            cand = next(o for cond in conditions for o in cond.options if o.code == code)
            features = rows[code][1] if code in rows else {}
            probability = self.model.probability([features], note.setting)[0] if features else 0.0
            items.append(self._item(note, cand, features, probability))
        return Proposed(
            items=items,
            candidates_offered=offered,
            raw_output=result.raw_text,
            selection=selection,
            usage=result.usage,
            identity=result.identity,
            prompt_version=self.prompt.version,
            extra={"conditions": len(conditions)},
        )
