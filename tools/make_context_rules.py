"""Regenerates ``context_rules.json`` from medspaCy's default English ConText rules plus medcode's changes.

    python -m tools.make_context_rules

The JSON file is what the validators load; this script records exactly how it differs from
medspaCy 1.3.1's ``resources/en/context_rules.json`` (MIT licence). Edit here, rerun, commit both.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parents[1] / "validators" / "data" / "context_rules.json"


def _defaults() -> list[dict[str, Any]]:
    import medspacy

    path = Path(medspacy.__file__).resolve().parents[1] / "resources" / "en" / "context_rules.json"
    rules: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))["context_rules"]
    return rules


def _lack_of_conditions() -> list[list[str]]:
    """The words of the Alphabetic Index's "Lack of" subterms: "lack of appetite" is anorexia (R63.0), not
    the absence of something (the vendored Index, ``medcode.retrieval``)."""
    import re

    from medcode.retrieval._alphabetic import _clean, raw_entries

    words: set[tuple[str, ...]] = set()
    for entry in raw_entries():
        path = entry["p"]
        if entry["s"] == "index" and path[0] == "Lack of" and len(path) == 2 and "," not in path[1]:
            tokens = tuple(re.findall(r"[a-z]+", _clean(path[1]).lower()))
            if 0 < len(tokens) <= 3:
                words.add(tokens)
    return [list(t) for t in sorted(words)]


def L(*words: str) -> dict[str, Any]:
    """A token that is one of ``words`` (lower case)."""
    return {"LOWER": {"IN": list(words)}}


def main() -> int:
    rules = _defaults()
    out: list[dict[str, Any]] = []
    for r in rules:
        lit = r["literal"]
        # "resolved" means a past condition, not an absent one (SPAN_HISTORICAL per the issue).
        if lit in ("resolved", "now resolved"):
            r = dict(
                r, category="RESOLVED", direction="BACKWARD" if lit == "now resolved" else "BIDIRECTIONAL", max_scope=4
            )
        # "prophylaxis" is not a negation of the condition for coding; handled as hypothetical.
        if lit == "prophylaxis":
            r = dict(r, category="HYPOTHETICAL", direction="BACKWARD", max_scope=4)
        # "return" alone is too broad ("returns for follow-up of her diabetes").
        if lit == "return":
            continue
        # "if" limited to a short window.
        if lit == "if":
            r = dict(r, max_scope=8)
        # medspaCy's "risk of" pattern compares one token to a two-word string and never matches.
        if lit == "risks of":
            r = dict(r, pattern=[{"LOWER": {"IN": ["risk", "risks"]}}, {"LOWER": {"IN": ["of", "for"]}}], max_scope=6)
        # "secondary" alone terminated "likely secondary Sjogren syndrome"; only "secondary to" introduces a cause.
        if lit == "secondary":
            r = dict(r, pattern=[{"LOWER": "secondary"}, {"LOWER": "to"}])
        out.append(r)

    def add(
        literal: str, category: str, direction: str, pattern: Any = None, max_scope: int | None = None, **kw: Any
    ) -> None:
        r: dict[str, Any] = {"literal": literal, "category": category, "direction": direction}
        if pattern is not None:
            r["pattern"] = pattern
        if max_scope is not None:
            r["max_scope"] = max_scope
        r.update(kw)
        out.append(r)

    # --- pseudo-triggers: an age is not a past condition ("58-year-old" would make "old" HISTORICAL) ---
    add(
        "year-old",
        "PSEUDO",
        "PSEUDO",
        pattern=[
            {"LIKE_NUM": True, "OP": "?"},
            {"ORTH": "-", "OP": "?"},
            L("year", "years", "yr", "yrs", "month", "months", "week", "weeks", "day", "days"),
            {"ORTH": "-", "OP": "?"},
            {"LOWER": "old"},
        ],
    )
    # --- "a 2-week history of fever" dates the present illness: the fever is current, not past history ---
    for lead in ({"LIKE_NUM": True}, L("several", "few")):
        add(
            "2-week history",
            "PSEUDO",
            "PSEUDO",
            pattern=[
                lead,
                {"ORTH": "-", "OP": "?"},
                L("hour", "hours", "day", "days", "week", "weeks", "month", "months", "year", "years", "yr", "yrs"),
                {"ORTH": "-", "OP": "?"},
                L("history", "hx"),
            ],
        )
    # --- "lack of appetite" (R63.0), "lack of coordination" (R27.9): the Index's "Lack of" conditions ---
    for tokens in _lack_of_conditions():
        add(
            f"lack of {' '.join(tokens)}",
            "PSEUDO",
            "PSEUDO",
            pattern=[{"LOWER": "lack"}, {"LOWER": "of"}, *({"LOWER": t} for t in tokens)],
        )
    # --- pseudo-negations / pseudo-triggers (match, modify nothing) ---
    for p in [
        "no change",
        "no changes",
        "no increase",
        "no significant change",
        "not only",
        "no further",
        "gram negative",
        "not certain if",
        "not necessarily",
        "without difficulty",
        "without complication",
        "without complications",
        "no interval change",
        "not been seen",
        "history of present illness",
        "history of the present illness",
        "present illness",
        "no acute distress",
        "gluten free",
        "gluten-free",
        "sugar free",
        "fat free",
        "latex free",
        "none recently",
        "none since",
        "none currently",
        "smoke free",
        "smoke-free",
        "normal pressure",
        "normal tension",
        "normal saline",
        "normal spontaneous",
        "normal vaginal",
        "normal pregnancy",
        "normal delivery",
        "normal newborn",
        "if needed",
        "if possible",
        "negative pressure",
        "not improved",
        "not resolved",
        "not well controlled",
        "not controlled",
        "poorly controlled",
        "not at goal",
        "not tolerating",
        "never smoker",
    ]:
        add(p, "PSEUDO", "PSEUDO")
    # --- negation ---
    add("negative", "NEGATED_EXISTENCE", "BIDIRECTIONAL", max_scope=4)  # its direction: scope_limits, below
    add("absent", "NEGATED_EXISTENCE", "BACKWARD", max_scope=3)
    add("not present", "NEGATED_EXISTENCE", "BACKWARD", max_scope=4)
    add(
        "ruled out.",
        "NEGATED_EXISTENCE",
        "BACKWARD",
        pattern=[{"LOWER": "ruled"}, {"LOWER": "out"}, {"IS_PUNCT": True}],
    )
    add(
        "ruled out by",
        "NEGATED_EXISTENCE",
        "BACKWARD",
        pattern=[{"LOWER": "ruled"}, {"LOWER": "out"}, L("by", "with", "on", "after", "via")],
    )
    add(
        "was not detected",
        "NEGATED_EXISTENCE",
        "BACKWARD",
        pattern=[
            L("was", "were", "is", "are", "been"),
            {"LOWER": "not"},
            L(
                "detected",
                "seen",
                "found",
                "identified",
                "present",
                "noted",
                "appreciated",
                "demonstrated",
                "confirmed",
            ),
        ],
    )
    add("normal", "NEGATED_EXISTENCE", "BIDIRECTIONAL", pattern=[L("normal", "unremarkable", "wnl")], max_scope=2)
    add(
        "within normal limits",
        "NEGATED_EXISTENCE",
        "BACKWARD",
        pattern=[{"LOWER": "within"}, {"LOWER": "normal"}, {"LOWER": "limits"}],
        max_scope=4,
    )
    add(
        "was ruled out",
        "NEGATED_EXISTENCE",
        "BACKWARD",
        pattern=[L("was", "were", "is", "been"), {"LOWER": "ruled"}, {"LOWER": "out"}],
    )
    add(
        "no signs of",
        "NEGATED_EXISTENCE",
        "FORWARD",
        pattern=[{"LOWER": "no"}, L("sign", "signs", "symptoms", "features"), {"LOWER": "of"}],
    )
    add("none", "NEGATED_EXISTENCE", "BACKWARD", max_scope=3)
    add("denies any", "NEGATED_EXISTENCE", "FORWARD", pattern=[L("denies", "denied"), {"LOWER": "any"}])
    add("no longer", "NEGATED_EXISTENCE", "FORWARD", pattern=[{"LOWER": "no"}, {"LOWER": "longer"}])
    add("nor", "NEGATED_EXISTENCE", "FORWARD", max_scope=4)
    # --- uncertainty (ICD-10-CM guideline IV.H / II.H terms) ---
    for lit, pat in [
        ("suspected", [L("suspected", "suspect", "suspects", "suspicion")]),
        ("concern for", [L("concern", "concerns"), L("for", "of", "about")]),
        ("question of", [L("question", "questions"), L("of", "for")]),
        ("questionable", [L("questionable", "query", "presumed", "presumptive", "probable", "apparent", "equivocal")]),
        ("consistent with", [L("consistent", "compatible"), {"LOWER": "with"}]),
        ("cannot be excluded", [L("cannot", "can't", "not"), {"LOWER": "be", "OP": "?"}, L("excluded", "exclude")]),
        ("differential", [L("differential", "ddx")]),
        ("working diagnosis", [{"LOWER": "working"}, L("diagnosis", "dx")]),
        ("versus", [L("versus", "vs", "vs.")]),
    ]:
        add(
            lit,
            "POSSIBLE_EXISTENCE",
            "BIDIRECTIONAL" if lit == "versus" else "FORWARD",
            pattern=pat,
            max_scope=4 if lit == "versus" else None,
        )
    add("?", "POSSIBLE_EXISTENCE", "BIDIRECTIONAL", pattern=[{"ORTH": "?"}], max_scope=2)
    add("possibly", "POSSIBLE_EXISTENCE", "FORWARD", pattern=[L("possibly", "maybe", "perhaps")])
    add(
        "considered",
        "POSSIBLE_EXISTENCE",
        "BACKWARD",
        pattern=[L("considered", "entertained", "suspected", "questioned")],
        max_scope=5,
    )
    add(
        "evaluate for",
        "POSSIBLE_EXISTENCE",
        "FORWARD",
        pattern=[L("evaluate", "evaluation", "workup", "work-up", "assess"), L("for", "of")],
    )
    add("rule-out", "POSSIBLE_EXISTENCE", "FORWARD", pattern=[{"LOWER": "rule"}, {"ORTH": "-"}, {"LOWER": "out"}])
    add("r/o", "POSSIBLE_EXISTENCE", "FORWARD", pattern=[{"LOWER": "r"}, {"ORTH": "/"}, {"LOWER": "o"}])
    # --- hypothetical ---
    add(
        "return if",
        "HYPOTHETICAL",
        "FORWARD",
        pattern=[
            L("return", "call", "seek", "come"),
            {"IS_ALPHA": True, "OP": "{0,3}"},
            L("if", "for", "should", "with"),
        ],
        max_scope=10,
    )
    add(
        "in case of",
        "HYPOTHETICAL",
        "FORWARD",
        pattern=[{"LOWER": "in"}, {"LOWER": "case"}, {"LOWER": "of", "OP": "?"}],
        max_scope=8,
    )
    add(
        "watch for",
        "HYPOTHETICAL",
        "FORWARD",
        pattern=[L("watch", "monitor", "monitoring", "observe"), L("for", "out")],
        max_scope=8,
    )
    add(
        "at risk for",
        "HYPOTHETICAL",
        "FORWARD",
        pattern=[{"LOWER": "at"}, L("risk", "increased"), {"LOWER": "risk", "OP": "?"}, L("for", "of")],
        max_scope=6,
    )
    add("precautions", "HYPOTHETICAL", "BACKWARD", pattern=[L("precaution", "precautions")], max_scope=3)
    add(
        "prevention of",
        "HYPOTHETICAL",
        "FORWARD",
        pattern=[
            L("prevent", "prevention", "prophylaxis", "prophylactic", "avoid"),
            {"LOWER": {"IN": ["of", "against", "for"]}, "OP": "?"},
        ],
        max_scope=6,
    )
    add(
        "screening for",
        "HYPOTHETICAL",
        "FORWARD",
        pattern=[L("screening", "screen", "screened"), L("for", "of")],
        max_scope=6,
    )
    add("would", "HYPOTHETICAL", "FORWARD", pattern=[L("would", "could")], max_scope=6)
    add(
        "will be diagnosed",
        "HYPOTHETICAL",
        "BACKWARD",
        pattern=[L("will", "would"), {"LOWER": "be"}, L("diagnosed", "considered", "made")],
        max_scope=6,
    )
    add(
        "if confirmed",
        "HYPOTHETICAL",
        "BACKWARD",
        pattern=[{"LOWER": "only", "OP": "?"}, {"LOWER": "if"}, L("confirmed", "present", "positive")],
        max_scope=6,
    )
    add("develops", "HYPOTHETICAL", "FORWARD", pattern=[L("develops", "worsens", "occurs", "recurs")], max_scope=4)
    # --- historical ---
    add("history of", "HISTORICAL", "FORWARD", pattern=[L("h/o", "hx")], max_scope=None)
    add("status post", "HISTORICAL", "FORWARD", pattern=[{"LOWER": "status"}, {"LOWER": "post"}])
    add("s/p", "HISTORICAL", "FORWARD", pattern=[{"LOWER": {"IN": ["s/p", "sp"]}}])
    add("s / p", "HISTORICAL", "FORWARD", pattern=[{"LOWER": "s"}, {"ORTH": "/"}, {"LOWER": "p"}])
    add(
        "prior",
        "HISTORICAL",
        "FORWARD",
        pattern=[L("prior", "previous", "previously", "remote", "former", "old", "past", "childhood")],
        max_scope=4,
    )
    add(
        "in the past",
        "HISTORICAL",
        "BACKWARD",
        pattern=[{"LOWER": "in"}, {"LOWER": "the"}, L("past", "remote")],
        max_scope=6,
    )
    add(
        "years ago",
        "HISTORICAL",
        "BACKWARD",
        pattern=[{"LIKE_NUM": True, "OP": "?"}, L("years", "yrs", "months", "decades", "year"), {"LOWER": "ago"}],
        max_scope=8,
    )
    add(
        "months after",
        "HISTORICAL",
        "FORWARD",
        pattern=[{"LIKE_NUM": True, "OP": "?"}, L("days", "weeks", "months", "years"), {"LOWER": "after"}],
        max_scope=6,
    )
    add(
        "healed",
        "HISTORICAL",
        "BACKWARD",
        pattern=[
            L("now", "fully", "completely", "since", "has", "have"),
            {"LOWER": "fully", "OP": "?"},
            L("healed", "recovered"),
        ],
        max_scope=10,
    )
    add("quit", "HISTORICAL", "FORWARD", pattern=[L("quit", "stopped")], max_scope=3)
    add("treated for", "HISTORICAL", "FORWARD", pattern=[L("treated", "cured"), {"LOWER": "for"}], max_scope=4)
    add("in remission", "HISTORICAL", "BACKWARD", pattern=[{"LOWER": "in"}, {"LOWER": "remission"}], max_scope=4)
    add("excised", "HISTORICAL", "BACKWARD", pattern=[L("excised", "removed", "resected")], max_scope=3)
    # --- family ---
    add("family history", "FAMILY", "FORWARD", pattern=[L("fhx", "fh", "fam")])
    add("maternal", "FAMILY", "FORWARD", pattern=[L("maternal", "paternal")], max_scope=6)
    # --- terminators: a relative who *reports* is a source, not the subject ---
    add(
        "reports",
        "TERMINATE",
        "TERMINATE",
        pattern=[
            L(
                "reports",
                "reported",
                "states",
                "stated",
                "says",
                "said",
                "noticed",
                "notes",
                "noted",
                "brings",
                "brought",
                "concerned",
                "worried",
                "thinks",
                "feels",
            )
        ],
    )
    # ... but a relative "noted to have" a disease, or who "reports a history of" one, is its subject: the
    # longer pseudo-trigger displaces the terminator ("mother noted to have breast cancer" stays FAMILY;
    # "his wife notes hallucinations" and "mom reports fever" are still the patient's).
    add(
        "noted to have",
        "PSEUDO",
        "PSEUDO",
        pattern=[L("noted", "reported", "found", "known"), L("to", "with", "as")],
    )
    add(
        "reports a history of",
        "PSEUDO",
        "PSEUDO",
        pattern=[
            L("reports", "reported", "notes", "noted", "states", "stated"),
            {"LOWER": {"IN": ["a", "her", "his", "their"]}, "OP": "?"},
            L("history", "hx"),
        ],
    )
    add("patient", "TERMINATE", "TERMINATE", pattern=[L("patient", "pt")])

    # --- a past history ends where the presentation starts: "a history of renal lithiasis presented with
    # hematuria", "... and hysterectomy who consulted for urge incontinence", "... was admitted for anemia".
    # A PSEUDO-direction category that modifies nothing; only the historical and negation triggers stop at it
    # (terminated_by, below), so "his mother was admitted for a stroke" is still family history.
    add(
        "presented with",
        "PRESENTATION",
        "PSEUDO",
        pattern=[
            L(
                "presented",
                "consulted",
                "consults",
                "attended",
                "admitted",
                "referred",
                "came",
                "began",
                "started",
                "developed",
                "complaining",
                "complained",
            )
        ],
    )
    # --- "during the previous 6 months", "in the past 2 weeks", "since the previous month": the present illness ---
    add(
        "the previous 6 months",
        "PSEUDO",
        "PSEUDO",
        pattern=[
            L("in", "during", "over", "for", "within", "since", "throughout"),
            {"LOWER": "the", "OP": "?"},
            L("previous", "past", "prior", "last", "preceding"),
            {"LOWER": {"IN": ["few", "several", "two", "three"]}, "OP": "?"},
            {"LIKE_NUM": True, "OP": "?"},
            L("hour", "hours", "day", "days", "week", "weeks", "month", "months"),
        ],
    )
    # The PRESENTATION words end every forward historical and negation trigger: "a history of renal lithiasis
    # presented with hematuria", "with no history of interest, consulted for hematuria", "without known allergies,
    # who came to the emergency department for asthenia".
    for r in out:
        if r["category"] in ("HISTORICAL", "NEGATED_EXISTENCE") and r["direction"] == "FORWARD":
            r["terminated_by"] = ["PRESENTATION"]

    # --- scope limits (applied by validators/_assertion.py after ConText's own scopes) ---
    # A short-window finding word ("normal", "negative") describes one thing. It does not reach over a clause
    # break ("atrial fibrillation, normal blood count"; "the urography was normal, urine cultures showed
    # tuberculosis"; "normal except petechiae"), and when a content word follows it, it qualifies that word,
    # not what precedes it ("leukocytosis with normal formula", "glycosuria, microhematuria and negative
    # nitrites", which negates the nitrites up to a punctuation mark). Lists such as "HIV, HBV, HCV and ANA were negative"
    # keep their backward reach.
    function_words = [
        "for", "in", "on", "and", "or", "nor", "as", "at", "by", "to", "of", "except", "but", "with",
        "without", "both", "bilaterally", "after", "since", "then", "while", "when", "also", "again",
        "too", "throughout", "until", "so", "x", "twice", "times", "results", "result",
    ]  # fmt: skip
    scope_limits = {
        "breaks": {
            "normal": [",", ";", "with", "except", "but", "and", "although", "however", "whereas"],
            "negative": [";", "with", "except", "but", "positive", "although", "however", "whereas"],
            # "5 months after a stroke" dates the stroke; "two months after the accident, she developed
            # pericarditis" does not make the pericarditis past history
            "months after": [",", ";", "she", "he", "they", "patient", "developed", "presented", "began", "reported"],
        },
        "attributive": ["normal", "negative", "free"],  # "free T4", "free fluid": not "pain free"
        "function_words": function_words,
    }

    doc = {
        "version": "context-rules-2026.11-5",
        "source": "Adapted from medspaCy 1.3.1 resources/en/context_rules.json (MIT licence, medspacy/medspacy); "
        "additions and changes for ICD-10-CM coding: guideline IV.H/II.H uncertainty terms, 'resolved' as RESOLVED (historical for outpatient visits, current-episode for inpatient stays), "
        "status-post/prior/quit as historical, pseudo-triggers for 'not well controlled' and 'history of present illness', "
        "terminators so that 'his wife noticed ...' does not make the patient's finding family history (but a relative 'noted to have' "
        "or who 'reports a history of' a disease is its subject: 'mother noted to have breast cancer' stays family history), and ages "
        "('58-year-old') as pseudo-triggers so that 'old' does not make them historical, and durations ('a 2-week history of "
        "fever') as pseudo-triggers so that the present illness is not past history; the Alphabetic Index's 'Lack of' "
        "conditions ('lack of appetite', 'lack of coordination') are pseudo-triggers, not negations; 'normal' and "
        "'negative' stop at a clause break and, before a content word, qualify only that word (scope_limits); a past history or a negation ends at the presentation ('presented with', 'consulted for', 'was admitted for'), and 'N months after X' "
        "dates X, not the clause that follows it; 'during the previous 6 months' is the present illness.",
        "scope_limits": scope_limits,
        "context_rules": out,
    }
    with OUT.open("w", encoding="utf-8") as f:
        f.write("{\n")
        f.write(
            f'  "version": {json.dumps(doc["version"])},\n  "source": {json.dumps(doc["source"])},\n'
            f'  "scope_limits": {json.dumps(scope_limits, ensure_ascii=False)},\n  "context_rules": [\n'
        )
        f.write(",\n".join("    " + json.dumps(r, ensure_ascii=False) for r in out))
        f.write("\n  ]\n}\n")
    print(len(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
