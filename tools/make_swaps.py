"""Writes the specificity red team (``evals/data/swaps.jsonl``): wrong siblings made from gold, not by hand.

    python -m tools.make_swaps [--data-dir DIR]                      # the project's gold set -> evals/data
    python -m tools.make_swaps --spanless ../shared/benchmarks/aci/dev.jsonl --data-dir DIR --out runs/aci-swaps.jsonl

Every gold ``(code, evidence span)`` pair gives one ``gold`` record (the unswapped pair: the
validators must accept it) and swaps: the same evidence cited for a sibling code that the text
contradicts. The swap kinds, all found in the code set (no per-code lists):

- ``side``: the description with right <-> left (or -> bilateral) is another code of the
  category; contradicted when the span names the gold code's side and not the other.
- ``encounter``: the same code with a 7th character of another class (initial A/B/C,
  subsequent D-R, sequela S); contradicted when the span's line says the gold class in the
  classification's own words ("initial encounter", "subsequent encounter", "sequela").
- ``with_without``: a code of the category with the same head words whose 'with'/'without'
  clause is flipped ("without hematuria" <-> "with hematuria"; "without complications" or
  "uncomplicated" <-> a "with ..." complication); contradicted when the span documents the gold
  clause (its words, with 'without' where the gold code says without), or, for a swap that adds
  a complication, when none of that complication's own words occur anywhere in the note.
- ``axis``: a non-catch-all sibling (same parent; for 7th-character codes the same 7th character
  under the same grandparent; plus the same subcode in another category of the block, e.g. E11.65
  -> E10.65) that differs in other words (type, stage, acuity, site, severity, open/closed);
  contradicted when the span contains a word of the gold description that the sibling lacks and
  no word of the sibling's description that the gold one lacks.

"Contradicted" is decided here from literal words of the code-set descriptions (Porter stems),
independently of the validators' lexicons; swaps that the text does not contradict are counted,
not written. Siblings described as "unspecified" or "other" are never used: the text cannot
contradict a catch-all (the validators warn MORE_SPECIFIC_AVAILABLE on them instead).

The project's gold set has spans. ACI-Bench and CodiEsp have none (``--spanless``): a gold code's
evidence is the best span that retrieval links to that exact code (``HybridRetriever.search_note``,
top 100 candidates, family-history sections skipped), which needs a built index in ``--data-dir``;
gold codes retrieval does not find are skipped and counted. Records made from benchmark data stay
outside the repository (ACI's labels are CC BY-NC): pass ``--out``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from medcode.codesets import CodeRecord, CodeSetRegistry, ICD10CMCodeSet, strip_dot
from medcode.config import load_settings
from medcode.evals._dataset import GoldDocument, read_dataset

__all__ = ["GOLD_PATH", "SWAPS_PATH", "Swap", "main", "swaps_for_pair"]

_ROOT = Path(__file__).resolve().parents[1]
GOLD_PATH = _ROOT / "evals" / "data" / "gold.jsonl"
SWAPS_PATH = _ROOT / "evals" / "data" / "swaps.jsonl"

_WORD = re.compile(r"[a-z0-9]+")
_STOP = frozenset(
    [
        "a",
        "an",
        "and",
        "or",
        "of",
        "the",
        "in",
        "on",
        "at",
        "to",
        "for",
        "by",
        "with",
        "without",
        "due",
        "as",
        "from",
        "is",
        "are",
        "not",
        "no",
        "nos",
        "site",
        "part",
        "type",
        "other",
        "unspecified",
        "specified",
    ]
)
_SIDES = ("right", "left", "bilateral")
_CLASS_PHRASE = {"initial": "initial encounter", "subsequent": "subsequent encounter", "sequela": "sequela"}
_MAX_AXIS = 3
_MAX_FLIP = 2
_TWIN_OVERLAP = 0.5  # Jaccard overlap of two descriptions' stems: the same condition


@dataclass(frozen=True)
class Swap:
    kind: str
    code: str
    why: str


@lru_cache(maxsize=1)
def _stemmer() -> Any:
    from nltk.stem.porter import PorterStemmer

    return PorterStemmer()


def _stems(text: str) -> set[str]:
    stem = _stemmer().stem
    return {stem(w) for w in _WORD.findall(text.lower()) if w not in _STOP}


def _words(text: str) -> set[str]:
    return set(_WORD.findall(text.lower()))


def _norm(text: str) -> str:
    return " ".join(text.lower().replace("\t", " ").split())


def _catch_all(description: str) -> bool:
    words = _words(description)
    return bool(words & {"unspecified", "other", "nos"})


def _encounter_class(record: CodeRecord) -> str | None:
    meaning = (record.seventh.meaning or "") if record.seventh else ""
    for cls, phrase in _CLASS_PHRASE.items():
        if meaning.startswith(phrase):
            return cls
    return None


class _Category:
    """Billable codes of one category by normalised description (7th-character codes by their 7th character)."""

    def __init__(self, cs: ICD10CMCodeSet, category: str) -> None:
        self.by_text: dict[str, str] = {}
        self.codes: list[CodeRecord] = []
        for code in cs.billable_descendants(category, limit=100_000):
            record = cs.get(code)
            self.codes.append(record)
            self.by_text.setdefault(_norm(record.description), record.code)


def _line(text: str, start: int, end: int) -> str:
    left = text.rfind("\n", 0, start) + 1
    right = text.find("\n", end)
    return text[left : right if right != -1 else len(text)]


_CLAUSE = re.compile(r"\s*(?:,\s*)?\b(with|without)\b\s+|,\s*(uncomplicated)\b", re.IGNORECASE)


def _clauses(description: str) -> tuple[str, list[tuple[str, str]]]:
    """``(head, [(polarity, words), ...])``; 'uncomplicated' counts as 'without complications'."""
    parts = _CLAUSE.split(description)
    head = parts[0]
    clauses: list[tuple[str, str]] = []
    i = 1
    while i < len(parts):
        pol, unc, rest = parts[i], parts[i + 1], parts[i + 2] if i + 2 < len(parts) else ""
        if unc:
            clauses.append(("without", "complications"))
        elif pol:
            clauses.append((pol.lower(), rest.strip(" ,")))
        i += 3
    return _norm(head), clauses


class SwapMaker:
    """Swaps for gold pairs of one code-set release."""

    def __init__(self, cs: ICD10CMCodeSet) -> None:
        self.cs = cs
        self._categories: dict[str, _Category] = {}

    def category(self, code: str) -> _Category:
        cat = strip_dot(code)[:3]
        if cat not in self._categories:
            self._categories[cat] = _Category(self.cs, cat)
        return self._categories[cat]

    # -- kinds -------------------------------------------------------------------------
    def side(self, gold: CodeRecord, span: str) -> tuple[list[Swap], int]:
        words = _words(span)
        desc = _norm(gold.description)
        mine = [s for s in _SIDES if re.search(rf"\b{s}\b", desc)]
        if len(mine) != 1:
            return [], 0
        side = mine[0]
        out: list[Swap] = []
        skipped = 0
        for other in _SIDES:
            if other == side:
                continue
            code = self.category(gold.code).by_text.get(re.sub(rf"\b{side}\b", other, desc))
            if code is None:
                continue
            opposite = {"right": {"left"}, "left": {"right"}, "bilateral": {"right", "left"}}[side]
            stated = side in words or (side == "bilateral" and "both" in words)
            if stated and not (words & ({other} | ({"bilateral", "both"} if other == "bilateral" else opposite))):
                out.append(Swap("side", code, f"the span says {side}"))
            else:
                skipped += 1
        return out, skipped

    def encounter(self, gold: CodeRecord, line: str) -> tuple[list[Swap], int]:
        cls = _encounter_class(gold)
        if cls is None or gold.parent is None:
            return [], 0
        siblings = {c[-1]: c for c in self.cs.children(gold.parent)}
        out: list[Swap] = []
        skipped = 0
        for other, char in (("initial", "A"), ("subsequent", "D"), ("sequela", "S")):
            if other == cls or char not in siblings:
                continue
            if _CLASS_PHRASE[cls] in _norm(line) and _CLASS_PHRASE[other] not in _norm(line):
                out.append(Swap("encounter", siblings[char], f"the span's line says {_CLASS_PHRASE[cls]}"))
            else:
                skipped += 1
        return out, skipped

    def with_without(self, gold: CodeRecord, span: str, note: str) -> tuple[list[Swap], int]:
        head, clauses = _clauses(gold.description)
        if not clauses:
            return [], 0
        span_stems, note_stems = _stems(span), _stems(note)
        seventh = strip_dot(gold.code)[6:] if gold.seventh is not None else ""
        out: list[Swap] = []
        skipped = 0
        candidates: list[CodeRecord] = []
        for record in self.category(gold.code).codes:
            if record.code == gold.code or (strip_dot(record.code)[6:] if record.seventh else "") != seventh:
                continue
            h, cl = _clauses(record.description)
            if h != head or not cl or _catch_all(record.description):
                continue
            if cl[0][0] != clauses[0][0] or self._is_pure_flip(gold, record):
                candidates.append(record)
        candidates.sort(key=lambda r: (len(r.description), r.code))
        pure = [r for r in candidates if self._is_pure_flip(gold, r)]
        chosen = pure[:_MAX_FLIP] if pure else candidates[:_MAX_FLIP]
        for record in chosen:
            _, cl = _clauses(record.description)
            reason = self._flip_contradicted(clauses, cl, span_stems, note_stems, span)
            if reason:
                out.append(Swap("with_without", record.code, reason))
            else:
                skipped += 1
        return out, skipped

    @staticmethod
    def _is_pure_flip(gold: CodeRecord, other: CodeRecord) -> bool:
        g, o = _norm(gold.description), _norm(other.description)
        return g.replace("without", "with") == o.replace("without", "with") and g != o

    @staticmethod
    def _flip_contradicted(
        gold: list[tuple[str, str]], other: list[tuple[str, str]], span_stems: set[str], note_stems: set[str], span: str
    ) -> str:
        g_pol, g_words = gold[0]
        o_pol, o_words = other[0]
        g_stems = _stems(re.sub(r"\([^)]*\)", " ", g_words))
        o_stems = _stems(re.sub(r"\([^)]*\)", " ", o_words))
        if g_pol == "with" and g_stems and g_stems <= span_stems:
            return "the span documents the gold code's 'with' clause"
        if g_pol == "without":
            negated = re.search(r"\b(without|no|uncomplicated)\b", span.lower()) is not None
            if negated and (g_stems <= span_stems or "uncomplicated" in span.lower()):
                return "the span states the gold code's 'without' clause"
            if o_pol == "with" and o_stems and not (o_stems & note_stems):
                return "the note never names the swapped code's complication"
        return ""

    def axis(self, gold: CodeRecord, span: str, taken: set[str]) -> tuple[list[Swap], int]:
        span_stems = _stems(span)
        gold_stems = _stems(re.sub(r"\([^)]*\)", " ", gold.description))
        out: list[Swap] = []
        skipped = 0
        for record in self._siblings(gold):
            if record.code in taken or _catch_all(record.description):
                continue
            other_stems = _stems(re.sub(r"\([^)]*\)", " ", record.description))
            mine, theirs = gold_stems - other_stems, other_stems - gold_stems
            if (not mine and not theirs) or len(gold_stems & other_stems) < _TWIN_OVERLAP * len(
                gold_stems | other_stems
            ):
                continue  # the same description, or another condition rather than another value of an axis
            kind = "side" if (mine | theirs) <= {"right", "left", "bilater"} else "axis"
            if mine & span_stems and not theirs & span_stems:
                out.append(
                    Swap(kind, record.code, f"the span has {sorted(mine & span_stems)}, none of {sorted(theirs)}")
                )
            else:
                skipped += 1
            if len(out) >= _MAX_AXIS:
                break
        return out, skipped

    def _siblings(self, gold: CodeRecord) -> list[CodeRecord]:
        """Same parent (for 7th-character codes: same grandparent and 7th character), then block twins."""
        cs = self.cs
        out: list[CodeRecord] = []
        if gold.seventh is not None and gold.seventh.character is not None and gold.parent:
            base = cs.get(gold.parent)
            for uncle in cs.children(base.parent) if base.parent else []:
                candidate = f"{uncle}{gold.seventh.character}" if len(strip_dot(uncle)) == 6 else ""
                if candidate and candidate != gold.code and candidate in cs and cs.is_billable(candidate):
                    out.append(cs.get(candidate))
        elif gold.parent:
            out += [cs.get(c) for c in cs.children(gold.parent) if c != gold.code and cs.is_billable(c)]
        # the same subcode in a category of the block that names the same condition (E11.65 -> E10.65)
        nodot = strip_dot(gold.code)
        if len(nodot) > 3:
            mine = _stems(cs.get(nodot[:3]).description)
            for cat_code in self._block_categories(gold.block):
                twin = f"{cat_code}.{nodot[3:]}"
                if cat_code == nodot[:3] or twin not in cs or not cs.is_billable(twin):
                    continue
                theirs = _stems(cs.get(cat_code).description)
                if len(mine & theirs) >= _TWIN_OVERLAP * len(mine | theirs):
                    out.append(cs.get(twin))
        return out

    def _block_categories(self, block: str) -> list[str]:
        start, _, end = block.partition("-")
        end = end or start
        return [
            cat
            for n in range(int(start[1:3]) if start[1:3].isdigit() else 0, 100)
            if (cat := f"{start[0]}{n:02d}") <= end and cat in self.cs
        ]


def swaps_for_pair(
    maker: SwapMaker, gold_code: str, note: str, start: int, end: int
) -> tuple[list[Swap], Counter[str]]:
    """Contradicted swaps of one gold pair, and how many candidate swaps per kind were not contradicted."""
    gold = maker.cs.get(gold_code)
    span = note[start:end]
    skipped: Counter[str] = Counter()
    swaps: list[Swap] = []
    s, n = maker.side(gold, span)
    swaps += s
    skipped["side"] += n
    s, n = maker.encounter(gold, _line(note, start, end))
    swaps += s
    skipped["encounter"] += n
    s, n = maker.with_without(gold, span, note)
    swaps += s
    skipped["with_without"] += n
    s, n = maker.axis(gold, span, {sw.code for sw in swaps} | {gold.code})
    swaps += s
    skipped["axis"] += n
    seen: set[str] = set()
    unique = []
    for sw in swaps:
        if sw.code not in seen:
            seen.add(sw.code)
            unique.append(sw)
    return unique, skipped


def _records(
    maker: SwapMaker, docs: list[GoldDocument], spans: dict[str, list[tuple[str, int, int]]], source: str
) -> tuple[list[dict[str, Any]], Counter[str], Counter[str]]:
    records: list[dict[str, Any]] = []
    made: Counter[str] = Counter()
    skipped: Counter[str] = Counter()
    for doc in docs:
        for code, start, end in spans.get(doc.id, []):
            if code not in maker.cs or not maker.cs.is_billable(code):
                skipped["gold_code_not_billable"] += 1
                continue
            evidence = {"text": doc.text[start:end], "start": start, "end": end}
            base = {"doc_id": doc.id, "source": source, "gold_code": code, "evidence": [evidence]}
            records.append({"id": f"{doc.id}:{code}:{start}", "kind": "gold", "code": code, **base, "why": ""})
            made["gold"] += 1
            swaps, not_contradicted = swaps_for_pair(maker, code, doc.text, start, end)
            skipped.update({f"not_contradicted_{k}": v for k, v in not_contradicted.items() if v})
            gold_codes = {maker.cs.canonical(c) for c in doc.codes if c in maker.cs}
            skipped["swap_is_another_gold_code"] += sum(1 for sw in swaps if sw.code in gold_codes)
            for sw in (sw for sw in swaps if sw.code not in gold_codes):
                records.append(
                    {
                        "id": f"{doc.id}:{code}:{start}>{sw.code}",
                        "kind": sw.kind,
                        "code": sw.code,
                        **base,
                        "why": sw.why,
                    }
                )
                made[sw.kind] += 1
    return records, made, skipped


def _gold_spans(docs: list[GoldDocument]) -> dict[str, list[tuple[str, int, int]]]:
    return {d.id: [(s.code, s.start, s.end) for s in d.spans] for d in docs}


def locate_by_retrieval(
    settings: Any, cs: ICD10CMCodeSet, docs: list[GoldDocument]
) -> tuple[dict[str, list[tuple[str, int, int]]], Counter[str]]:
    """Evidence for span-less gold codes: the best span retrieval links to the exact code."""
    from medcode.retrieval import HybridRetriever

    out: dict[str, list[tuple[str, int, int]]] = {}
    counts: Counter[str] = Counter()
    with HybridRetriever(settings, cs, auto_build=False) as retriever:
        for doc in docs:
            found = {
                c.code: c
                for c in retriever.search_note(doc.text, top_k=100, skip_sections=["family_history"]).candidates
            }
            for code in doc.codes:
                if code not in cs or not cs.is_billable(code):
                    counts["not_billable"] += 1
                    continue
                hit = found.get(cs.canonical(code))
                if hit is None or not hit.hits:
                    counts["not_located"] += 1
                    continue
                best = hit.hits[0]
                out.setdefault(doc.id, []).append((cs.canonical(code), best.start, best.end))
                counts["located"] += 1
    return out, counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", help="medcode data dir (code-set store; with --spanless a built index)")
    parser.add_argument(
        "--spanless", type=Path, help="a gold JSONL without spans (ACI-Bench, CodiEsp): locate evidence by retrieval"
    )
    parser.add_argument("--out", type=Path, help=f"output JSONL (default {SWAPS_PATH} for the project's gold set)")
    args = parser.parse_args(argv)
    settings = load_settings(data_dir=args.data_dir) if args.data_dir else load_settings()
    cs = CodeSetRegistry(settings).get()
    maker = SwapMaker(cs)
    if args.spanless:
        if args.out is None or args.out.resolve().is_relative_to(_ROOT / "evals"):
            parser.error("records made from benchmark data stay outside the package data: pass --out (e.g. runs/...)")
        docs = list(read_dataset(args.spanless))
        spans, located = locate_by_retrieval(settings, cs, docs)
        source = args.spanless.name
    else:
        docs = list(read_dataset(GOLD_PATH, strict=True))
        spans, located = _gold_spans(docs), Counter()
        source = "gold.jsonl"
    records, made, skipped = _records(maker, docs, spans, source)
    out = args.out or SWAPS_PATH
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    print(f"wrote {len(records)} records to {out}", file=sys.stderr)
    print(json.dumps({"made": dict(made), "skipped": dict(skipped), "located": dict(located)}, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
