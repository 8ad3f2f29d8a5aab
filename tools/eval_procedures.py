"""Measure procedure proposals on CodiEsp's ``codes_pcs`` labels (MAP and micro-F1, apart from diagnoses).

Usage: ``python tools/eval_procedures.py /path/to/codiesp/dev.jsonl [--data-dir D] [--out F.json]``, or
``python tools/eval_procedures.py --hcpcs-gold evals/data/hcpcs_gold.jsonl`` for the project's outpatient gold set
(traps through the validators, and the proposer's validated codes against the gold lines).
Benchmark files are read, never copied into the repository. CodiEsp annotates some PCS codes with
only their first 4 characters: a proposed code matches a gold code when it starts with it (``prefix``
figures) and the ``exact`` figures need all characters equal. MAP ranks every mention's candidates
(up to 5 each, best first, first occurrence kept).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from medcode.agent._procedure_proposer import ProcedureProposer, open_procedure_index
from medcode.codesets import CodeSystems
from medcode.config import Settings, load_settings


def _match(pred: str, gold: str, prefix: bool) -> bool:
    return pred.startswith(gold) if prefix else pred == gold


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("dataset", type=Path, nargs="?")
    parser.add_argument("--hcpcs-gold", type=Path, help="score the outpatient HCPCS gold set instead")
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    settings = load_settings(data_dir=args.data_dir) if args.data_dir else load_settings()
    if args.hcpcs_gold:
        return _hcpcs_gold(args.hcpcs_gold, settings, args.out)
    if args.dataset is None:
        parser.error("give a CodiEsp split (JSONL) or --hcpcs-gold FILE")
    systems = CodeSystems(settings)
    started = time.monotonic()
    proposer = ProcedureProposer(open_procedure_index(settings, systems))
    rows = [json.loads(line) for line in args.dataset.read_text(encoding="utf-8").splitlines() if line.strip()]
    rows = [r for r in rows if r.get("codes_pcs")]
    figures: dict[str, dict[str, float]] = {}
    for mode in ("prefix", "exact"):
        tp = fp = fn = 0
        aps: list[float] = []
        for row in rows:
            gold = list(dict.fromkeys(row["codes_pcs"]))
            proposed = [p.code for p in proposer.propose(row["text"], "inpatient")]
            hit_gold: set[str] = set()
            for code in proposed:
                g = next((g for g in gold if g not in hit_gold and _match(code, g, mode == "prefix")), None)
                if g is None:
                    fp += 1
                else:
                    tp += 1
                    hit_gold.add(g)
            fn += len(gold) - len(hit_gold)
            ranked: list[str] = []
            for _s, _e, found in proposer.candidates(row["text"], "inpatient"):
                ranked.extend(c.code for c in found if c.code not in ranked)
            seen: set[str] = set()
            precisions = []
            for k, code in enumerate(ranked, 1):
                g = next((g for g in gold if g not in seen and _match(code, g, mode == "prefix")), None)
                if g is not None:
                    seen.add(g)
                    precisions.append(len(seen) / k)
            aps.append(sum(precisions) / len(gold))
        p = tp / (tp + fp) if tp + fp else 0.0
        r = tp / (tp + fn) if tp + fn else 0.0
        figures[mode] = {
            "micro_precision": round(p, 4),
            "micro_recall": round(r, 4),
            "micro_f1": round(2 * p * r / (p + r), 4) if p + r else 0.0,
            "map": round(sum(aps) / len(aps), 4),
        }
    report = {"dataset": args.dataset.name, "n_documents": len(rows), "seconds": round(time.monotonic() - started, 1)}
    report.update(figures)
    text = json.dumps(report, indent=2)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    sys.stdout.write(text + "\n")
    return 0


def _hcpcs_gold(path: Path, settings: Settings, out: Path | None) -> int:
    from medcode.agent import Runtime
    from medcode.evals import read_procedure_gold, score_proposer, score_traps

    cases = read_procedure_gold(path)
    with Runtime(settings) as runtime:
        outcomes, traps = score_traps(cases, runtime.validators.procedures)
        proposer = score_proposer(cases, runtime.procedure_proposer, runtime.validators.procedures)
    report = {
        "dataset": path.name,
        "traps": traps,
        "wrong_lines": [o.model_dump() for o in outcomes if not o.ok],
        "proposer": proposer,
    }
    text = json.dumps(report, indent=2)
    if out:
        out.write_text(text + "\n", encoding="utf-8")
    sys.stdout.write(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
