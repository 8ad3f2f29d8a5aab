"""Retrieval benchmark: phrase-set recall, document-level candidate recall, latency, index size.

Run (the full index must exist; ``medcode index build`` makes it)::

    MEDCODE_DATA_DIR=/tmp/mc-data .venv/bin/python -m tools.bench_retrieval
    ... --docs ../shared/benchmarks/codiesp/dev.jsonl --docs ../shared/benchmarks/aci/dev.jsonl

``MEDCODE_CANDIDATE_RANKER=1`` re-orders the inpatient notes' (case reports') pools with the candidate ranker.

Phrase set (``evals/data/retrieval_phrases.jsonl``): a phrase counts as found at K when any of its
gold codes (acceptable alternatives) is among the top K. Document recall: the share of a
document's gold codes among its top-K note candidates, micro-averaged; gold codes that are not
billable codes of our release (CodiEsp uses the 2018 code set) are counted apart.
Prints one run's figures; timings are medians/percentiles of that run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from medcode.codesets import CodeSetRegistry, ICD10CMCodeSet
from medcode.config import load_settings
from medcode.retrieval import HybridRetriever, index_info
from medcode.retrieval._embedder import default_threads
from medcode.retrieval._retriever import Mode

ROOT = Path(__file__).resolve().parents[1]
PHRASES = ROOT / "evals" / "data" / "retrieval_phrases.jsonl"
DEFAULT_DOCS = [
    ROOT.parent / "shared" / "benchmarks" / "codiesp" / "dev.jsonl",
    ROOT.parent / "shared" / "benchmarks" / "aci" / "dev.jsonl",
]
MODES: tuple[Mode, ...] = ("dense", "lexical", "hybrid")


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def load_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def phrase_recall(retriever: HybridRetriever, phrases: list[dict[str, Any]], ks: tuple[int, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    top = max(ks)
    fusion = retriever.fusion
    for label in (*MODES, "hybrid_rrf"):
        mode: Mode = "hybrid" if label == "hybrid_rrf" else label  # type: ignore[assignment]
        retriever.fusion = "rrf" if label == "hybrid_rrf" else fusion
        results = retriever.search_many([p["phrase"] for p in phrases], top_k=top, mode=mode)
        retriever.fusion = fusion
        hits = {k: 0 for k in ks}
        by_kind: dict[str, Counter[str]] = defaultdict(Counter)
        misses: list[str] = []
        for phrase, cands in zip(phrases, results, strict=True):
            codes = [c.code for c in cands]
            gold = set(phrase["codes"])
            first = next((i for i, c in enumerate(codes) if c in gold), None)
            by_kind[phrase["kind"]]["n"] += 1
            for k in ks:
                if first is not None and first < k:
                    hits[k] += 1
                    by_kind[phrase["kind"]][f"r@{k}"] += 1
            if first is None or first >= 5:
                misses.append(f"{phrase['phrase']!r} gold={phrase['codes']} top3={codes[:3]}")
        n = len(phrases)
        out[label] = {
            **{f"r@{k}": round(hits[k] / n, 3) for k in ks},
            "by_kind": {
                kind: {f"r@{k}": round(c[f"r@{k}"] / c["n"], 3) for k in ks} | {"n": c["n"]}
                for kind, c in sorted(by_kind.items())
            },
            "misses_at_5": misses,
        }
    return out


def doc_recall(
    retriever: HybridRetriever,
    codeset: ICD10CMCodeSet,
    docs: list[dict[str, Any]],
    ks: tuple[int, ...],
    skip_sections: tuple[str, ...] = (),
) -> dict[str, Any]:
    found = {k: 0 for k in ks}
    found_cat = {k: 0 for k in ks}
    gold_counts: Counter[str] = Counter()
    seconds: list[float] = []
    for doc in docs:
        started = time.perf_counter()
        setting = "outpatient" if doc.get("setting") in (None, "outpatient") else "inpatient"
        result = retriever.search_note(doc["text"], top_k=max(ks), skip_sections=skip_sections, setting=setting)
        seconds.append(time.perf_counter() - started)
        ranked = [c.code for c in result.candidates]
        for gold in doc["codes"]:
            if gold not in codeset:
                gold_counts["missing_from_release"] += 1
                continue
            if not codeset.is_billable(gold):
                gold_counts["non_billable_in_release"] += 1
                continue
            gold_counts["billable"] += 1
            for k in ks:
                top = ranked[:k]
                if gold in top:
                    found[k] += 1
                if any(c[:3] == gold[:3] for c in top):
                    found_cat[k] += 1
    n = max(gold_counts["billable"], 1)
    return {
        "docs": len(docs),
        "gold": dict(gold_counts),
        **{f"recall@{k}": round(found[k] / n, 3) for k in ks},
        **{f"category_recall@{k}": round(found_cat[k] / n, 3) for k in ks},
        "seconds_per_doc_median": round(statistics.median(seconds), 3),
        "seconds_per_doc_p95": round(_percentile(seconds, 0.95), 3),
    }


def latency(retriever: HybridRetriever, phrases: list[dict[str, Any]], repeats: int = 2) -> dict[str, float]:
    texts = [p["phrase"] for p in phrases]
    retriever.search(texts[0], top_k=20)  # warm-up
    timings: list[float] = []
    for _ in range(repeats):
        for text in texts:
            started = time.perf_counter()
            retriever.search(text, top_k=20)
            timings.append((time.perf_counter() - started) * 1000)
    return {
        "queries": len(timings),
        "p50_ms": round(_percentile(timings, 0.5), 1),
        "p95_ms": round(_percentile(timings, 0.95), 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--phrases", type=Path, default=PHRASES)
    parser.add_argument("--docs", type=Path, action="append", help="benchmark JSONL (repeatable)")
    parser.add_argument("--max-docs", type=int, default=0, help="use only the first N documents of each file")
    parser.add_argument("--skip-sections", default="", help="comma-separated sections left out of note search")
    parser.add_argument("--no-docs", action="store_true", help="phrase set and latency only")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    parser.add_argument("--fusion", choices=("score", "rrf"), default="score", help="hybrid fusion (default score)")
    parser.add_argument("--lexical-weight", type=float, default=None, help="weight of the lexical side (score fusion)")
    args = parser.parse_args(argv)

    settings = load_settings()
    codeset = CodeSetRegistry(settings).get()
    info = index_info(settings, codeset.version)
    if info.status != "complete":
        print(f"index not ready ({info.status}); run `medcode index build`", file=sys.stderr)
        return 2
    started = time.perf_counter()
    retriever = HybridRetriever(settings, codeset, auto_build=False, fusion=args.fusion)
    if args.lexical_weight is not None:
        retriever.lexical_weight = args.lexical_weight
    retriever.search("warm up", top_k=5)
    report: dict[str, Any] = {
        "index": {
            "codeset": info.codeset_version,
            "embedder": info.embedder,
            "codes": info.codes,
            "texts_embedded": info.units,
            "build_seconds": info.build_seconds,
            "size_mb": round((info.size_bytes or 0) / 1e6, 1),
            "embed_threads": settings.embed_threads or default_threads(),
            "ef_search": settings.index_ef_search,
            "candidate_ranker": retriever.ranker.version if retriever.ranker is not None else "off",
        },
        "load_seconds": round(time.perf_counter() - started, 2),
    }
    phrases = load_jsonl(args.phrases)
    report["phrases"] = {"n": len(phrases), **phrase_recall(retriever, phrases, (1, 5, 20))}
    report["latency_single_query"] = latency(retriever, phrases)
    if not args.no_docs:
        skip = tuple(s for s in args.skip_sections.split(",") if s)
        report["documents"] = {}
        for path in args.docs or DEFAULT_DOCS:
            docs = load_jsonl(path)
            if args.max_docs:
                docs = docs[: args.max_docs]
            report["documents"][f"{path.parent.name}/{path.name}"] = doc_recall(
                retriever, codeset, docs, (20, 50, 100), skip
            )
    _print(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2), encoding="utf-8")
    return 0


def _print(report: dict[str, Any]) -> None:
    idx = report["index"]
    print(
        f"index: {idx['codeset']} {idx['embedder']}: {idx['codes']} codes, {idx['texts_embedded']} texts embedded, "
        f"built in {idx['build_seconds']} s, {idx['size_mb']} MB on disk; load {report['load_seconds']} s; "
        f"candidate ranker (inpatient notes): {idx['candidate_ranker']}"
    )
    phrases = report["phrases"]
    print(f"\nphrase set ({phrases['n']} phrases): recall@1 / @5 / @20")
    for mode in (*MODES, "hybrid_rrf"):
        r = phrases[mode]
        print(f"  {mode:<8} {r['r@1']:.3f} / {r['r@5']:.3f} / {r['r@20']:.3f}")
    print("  hybrid by kind:")
    for kind, r in phrases["hybrid"]["by_kind"].items():
        print(f"    {kind:<12} n={r['n']:<3} {r['r@1']:.3f} / {r['r@5']:.3f} / {r['r@20']:.3f}")
    lat = report["latency_single_query"]
    print(f"\nsingle-query latency (hybrid, top 20, incl. embedding): p50 {lat['p50_ms']} ms, p95 {lat['p95_ms']} ms")
    for name, d in report.get("documents", {}).items():
        print(
            f"\n{name}: {d['docs']} docs, gold {d['gold']}\n"
            f"  candidate recall@20/50/100: {d['recall@20']:.3f} / {d['recall@50']:.3f} / {d['recall@100']:.3f}"
            f"  (same category: {d['category_recall@20']:.3f} / {d['category_recall@50']:.3f} / "
            f"{d['category_recall@100']:.3f})\n"
            f"  seconds per note: median {d['seconds_per_doc_median']}, p95 {d['seconds_per_doc_p95']}"
        )
    print("\nhybrid misses at 5 (first 25):")
    for miss in report["phrases"]["hybrid"]["misses_at_5"][:25]:
        print(f"  {miss}")


if __name__ == "__main__":
    sys.exit(main())
