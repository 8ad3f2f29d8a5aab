"""Benchmark the deterministic validators: red-team rejection, sound acceptance, gold-set checks, latency.

    python -m tools.bench_validators [--data-dir DIR] [--tune] [--repeat N]

Prints per-category red-team rejection rates, the false-rejection rate on the sound set and on the
gold set's own codes and spans (``evals/data/gold.jsonl``, written independently of the validators),
the rejection rate of the gold set's traps that a single code can show, and validation latency per
note (median and p90 over the gold notes' full proposals, after one warm-up). ``--tune`` also sweeps
the SPAN_UNRELATED thresholds (``validators/data/relatedness.json``) over positives (sound and gold
quotes) and negatives (the red-team's unrelated quotes plus cross-chapter mismatched pairs).
Numbers are from one run on whatever else the machine is doing; the load average is printed.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from medcode.config import load_settings
from medcode.evals.redteam import DATA_DIR, load_jsonl, load_notes, run_items, summarize
from medcode.validators import ValidationContext, ValidatorPipeline, parse_proposal

__all__ = ["main"]

# Trap kinds a single proposed code can show (Excludes1 needs the pair; laterality is not a validator rule).
_SINGLE_CODE_TRAPS = ("negation", "family_history", "historical", "uncertain", "prompt_injection", "seventh_character")


def _gold_rows() -> list[dict[str, Any]]:
    path = DATA_DIR / "gold.jsonl"
    return load_jsonl(path) if path.is_file() else []


def _gold_proposal(row: dict[str, Any]) -> dict[str, Any]:
    text = row["text"]
    codes = []
    for code in row["codes"]:
        evidence = [
            {"text": text[s["start"] : s["end"]], "start": s["start"], "end": s["end"]}
            for s in row.get("spans", [])
            if s["code"] == code
        ]
        codes.append({"code": code, "evidence": evidence})
    return {"codes": codes}


def _context(row: dict[str, Any], setting: str | None = None) -> ValidationContext:
    chosen = setting or row.get("setting")
    return ValidationContext(
        note_text=row["text"],
        setting="inpatient" if chosen == "inpatient" else "outpatient",
        age=row.get("age"),
        sex=row.get("sex"),
    )


def _pct(a: int, b: int) -> str:
    return f"{a}/{b} ({100 * a / b:.1f}%)" if b else "0/0"


def _bench_sets(pipeline: ValidatorPipeline) -> None:
    notes = load_notes()
    redteam = run_items(pipeline, load_jsonl(DATA_DIR / "redteam.jsonl"), notes)
    summary = summarize(redteam)
    print(f"red team: rejected with the right rule {_pct(summary.passed, summary.total)}")
    for category, (passed, total) in summary.by_category.items():
        print(f"  {category:<24} {_pct(passed, total)}")
    for outcome in redteam:
        if not outcome.passed:
            print(f"  MISS {outcome.id}: {outcome.detail}")
    sound = run_items(pipeline, load_jsonl(DATA_DIR / "sound.jsonl"), notes)
    codes = sum(o.codes for o in sound)
    accepted = sum(o.accepted_codes for o in sound)
    warned = sum(1 for o in sound if o.report for v in o.report.verdicts if v.status == "accepted" and v.warnings)
    print(f"sound: proposals fully accepted {_pct(sum(o.passed for o in sound), len(sound))}")
    print(f"  codes accepted {_pct(accepted, codes)}; false-rejection rate {1 - accepted / codes:.3f}")
    print(f"  accepted codes carrying warnings {_pct(warned, accepted)}")
    for outcome in sound:
        if not outcome.passed:
            print(f"  FALSE REJECTION {outcome.id}: {outcome.detail[:300]}")
    times = [o.seconds for o in redteam + sound]
    print(f"  per-proposal latency: median {1000 * statistics.median(times):.1f} ms over {len(times)} proposals")


def _bench_gold(pipeline: ValidatorPipeline, repeat: int) -> None:
    rows = _gold_rows()
    if not rows:
        print("gold set: evals/data/gold.jsonl not found, skipped")
        return
    accepted = total = 0
    misses: list[str] = []
    latencies: list[float] = []
    trap_hits: dict[str, list[bool]] = defaultdict(list)
    for row in rows:
        proposal = parse_proposal(_gold_proposal(row), row["id"])
        ctx = _context(row)
        pipeline.validate(proposal, ctx)  # warm the caches for this note's codes
        for _ in range(repeat):
            started = time.perf_counter()
            report = pipeline.validate(proposal, ctx)
            latencies.append(time.perf_counter() - started)
        for verdict in report.verdicts:
            total += 1
            accepted += verdict.status == "accepted"
            if verdict.status != "accepted":
                misses.append(f"{row['id']} {verdict.code}: {verdict.rules}")
        for trap in row.get("traps", []):
            for code in trap["not_codes"]:
                one = parse_proposal({"codes": [{"code": code, "evidence": [{"text": trap["text"]}]}]})
                verdict = pipeline.validate(one, ctx).verdicts[0]
                trap_hits[trap["kind"]].append(verdict.status == "rejected")
                if verdict.status != "rejected" and trap["kind"] in _SINGLE_CODE_TRAPS:
                    misses.append(f"trap not caught: {row['id']} {trap['kind']} {code}")
    print(f"gold set ({len(rows)} notes): gold codes with gold spans accepted {_pct(accepted, total)}")
    print(f"  independent false-rejection rate {1 - accepted / total:.3f}")
    for miss in misses:
        print(f"  {miss}" if miss.startswith("trap") else f"  FALSE REJECTION {miss}")
    single = [hit for kind in _SINGLE_CODE_TRAPS for hit in trap_hits.get(kind, [])]
    print(f"  traps a single code can show, rejected: {_pct(sum(single), len(single))}")
    for kind, hits in sorted(trap_hits.items()):
        marker = "" if kind in _SINGLE_CODE_TRAPS else "  (needs the pair or is not a validator rule)"
        print(f"    {kind:<20} {_pct(sum(hits), len(hits))}{marker}")
    latencies.sort()
    p90 = latencies[int(0.9 * (len(latencies) - 1))]
    print(
        f"  latency per note (full gold proposal, warm): median {1000 * statistics.median(latencies):.1f} ms, "
        f"p90 {1000 * p90:.1f} ms, max {1000 * latencies[-1]:.1f} ms over {len(latencies)} runs"
    )


def _tune(pipeline: ValidatorPipeline) -> None:
    codeset = pipeline.registry.get()
    scorer = pipeline.relatedness
    positives: set[tuple[str, str]] = set()
    for item in load_jsonl(DATA_DIR / "sound.jsonl"):
        for code in item["proposal"]["codes"]:
            positives.update((e["text"], code["code"]) for e in code["evidence"])
    for row in _gold_rows():
        for span in row.get("spans", []):
            positives.add((row["text"][span["start"] : span["end"]], span["code"]))
    hard = {
        (item["proposal"]["codes"][i]["evidence"][0]["text"], item["proposal"]["codes"][i]["code"])
        for item in load_jsonl(DATA_DIR / "redteam.jsonl")
        if item["category"] == "unrelated_quote"
        for i in item["targets"]
    }
    rng = random.Random(7)
    pos = sorted(p for p in positives if p[1] in codeset)
    codes = sorted({c for _, c in pos})
    mismatched = sorted(
        {
            (quote, other)
            for quote, code in pos
            for other in rng.sample(codes, 5)
            if codeset.get(other).chapter != codeset.get(code).chapter
        }
    )
    scored = {
        name: scorer.score_many([(q, codeset.get(c)) for q, c in pairs], codeset)
        for name, pairs in (("pos", pos), ("hard", sorted(hard)), ("mismatched", mismatched))
    }
    named = {  # the quote names an Alphabetic Index term of the code (related at any threshold)
        name: [
            scorer.index_match(scorer.quote_text(q), scorer.index_terms(codeset.get(c), codeset)) is not None
            for q, c in pairs
        ]
        for name, pairs in (("pos", pos), ("hard", sorted(hard)), ("mismatched", mismatched))
    }
    print(
        f"relatedness tuning: {len(pos)} positives, {len(hard)} hard negatives, "
        f"{len(mismatched)} cross-chapter mismatched pairs (some of those are genuinely related)"
    )
    print(
        "  an Index term of the code named in the quote: "
        + ", ".join(f"{name} {sum(v)}/{len(v)}" for name, v in named.items())
        + " (counted as related in every row below)"
    )
    print("  embed_threshold  lexical_floor  false-reject  false-accept(hard)  false-accept(mismatched)")
    for embed in (0.45, 0.5, 0.55, 0.6, 0.65, 0.7):
        for floor in (0.2, 0.3, 0.4):

            def related(r: Any, by_index: bool, embed: float = embed, floor: float = floor) -> bool:
                return bool(by_index or r.cosine >= embed or (r.strong_overlap and r.cosine >= floor))

            def rate(name: str, want: bool, related: Any = related) -> float:
                pairs = list(zip(scored[name], named[name], strict=True))
                return sum(related(r, i) is want for r, i in pairs) / max(1, len(pairs))

            fr, fa_hard, fa_mis = rate("pos", False), rate("hard", True), rate("mismatched", True)
            current = " <- configured" if (embed, floor) == (scorer.embed_threshold, scorer.lexical_floor) else ""
            print(f"  {embed:15.2f}  {floor:13.2f}  {fr:12.3f}  {fa_hard:18.3f}  {fa_mis:24.3f}{current}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bench_validators", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, help="medcode data directory (code-set store)")
    parser.add_argument("--tune", action="store_true", help="also sweep the SPAN_UNRELATED thresholds")
    parser.add_argument("--repeat", type=int, default=3, help="timed validations per gold note (default 3)")
    args = parser.parse_args(argv)
    settings = load_settings(**({"data_dir": args.data_dir} if args.data_dir else {}))
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs", file=sys.stderr)
    started = time.perf_counter()
    with ValidatorPipeline(settings) as pipeline:
        pipeline.validate(parse_proposal({"codes": [{"code": "I10", "evidence": [{"text": "hypertension"}]}]}),
                          ValidationContext(note_text="Essential hypertension."))  # fmt: skip
        print(f"pipeline load (code set, ConText, embedder, MCE): {time.perf_counter() - started:.1f} s")
        _bench_sets(pipeline)
        _bench_gold(pipeline, args.repeat)
        if args.tune:
            _tune(pipeline)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
