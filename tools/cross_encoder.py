"""Does a cross-encoder fine-tuned on CPU from the packaged MiniLM weights add to the acceptance model?

Issue 11, item 6 (optional: kept only if it wins by at least two points of micro-F1 at acceptable
speed). The pairs come by distant supervision from the training labels: for every (note, candidate
code) pair that ``medcode train`` makes a feature row of, the text is the best span retrieval found the
code with, the second text the code's title, and the label whether the code is gold for the note.

Three steps, each resumable from its output directory:

``extract``  runs the real pipeline once per labelled note and writes ``OUT/features.jsonl`` (the
             same cache ``medcode train --out OUT`` reads) and ``OUT/pairs.jsonl`` (span, title, label
             per candidate, in the rows' order).
``fit``      fine-tunes the cross-encoder K times, once per fold of ``folds_for`` (grouped by note), and
             scores every pair with the model that never saw its note: ``OUT/ce_oof.jsonl``.
``compare``  cross-validates the acceptance model with and without the cross-encoder's out-of-fold score
             as one more feature, the same folds and trees, for each seed, and prints out-of-fold
             P/R/F1/ECE per dataset (calibration and thresholds chosen out of fold, as ``medcode train``).

    python -m tools.cross_encoder extract --dataset ../shared/benchmarks/codiesp/train.jsonl \
        --dataset evals/data/gold.jsonl --dataset ../shared/benchmarks/aci/dev.jsonl --limit 500 --out runs/ce
    python -m tools.cross_encoder fit --out runs/ce              # 3 folds, 5 minutes each on 2 cores
    python -m tools.cross_encoder compare --out runs/ce --seeds 0,1,2

The pairs file holds note text (PHI in a real site's data): it stays in the output directory.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

from medcode.agent._acceptance import TRAINING_FEATURES
from medcode.config import Settings
from medcode.evals._training import NoteExample, folds_for, note_example, train_model
from medcode.evals.train_cli import _dataset_notes

CE_FEATURE = "cross_encoder"


def _load_examples(path: Path) -> list[NoteExample]:
    return [NoteExample.from_json(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def extract(datasets: Sequence[Path], limit: int | None, out: Path) -> None:
    """Features (``medcode train``'s cache format) and (span, title, label) pairs for every labelled note."""
    from medcode.agent import MedicalCoder
    from medcode.agent._proposers import _best_hit
    from medcode.retrieval import NoteCandidates

    settings = Settings()
    out.mkdir(parents=True, exist_ok=True)
    features, pairs = out / "features.jsonl", out / "pairs.jsonl"
    done = {(ex.dataset, ex.doc_id) for ex in _load_examples(features)} if features.exists() else set()
    notes = [n for path in datasets for n in _dataset_notes(path, settings, limit)]
    with (
        MedicalCoder(settings, proposer="retrieval") as coder,
        features.open("a", encoding="utf-8") as f_out,
        pairs.open("a", encoding="utf-8") as p_out,
    ):
        captured: list[NoteCandidates] = []
        patched: set[int] = set()
        for dataset, note, gold in tqdm(notes, desc="extract", unit="note", file=sys.stderr):
            if (dataset, note.id) in done:
                continue
            retriever = coder.retriever(note.date_of_service)
            if id(retriever) not in patched:  # keep what note_example's retrieval found (one search per note)
                search = retriever.search_note

                def capture(*args: Any, _search: Any = search, **kwargs: Any) -> NoteCandidates:
                    result: NoteCandidates = _search(*args, **kwargs)
                    captured.append(result)
                    return result

                retriever.search_note = capture  # type: ignore[method-assign]
                patched.add(id(retriever))
            captured.clear()
            ex = note_example(coder, note, dataset=dataset, gold=gold)
            by_code = {c.code: c for c in captured[-1].candidates}
            gold_set = set(ex.gold)
            rows = []
            for code in ex.codes:
                hit = _best_hit(by_code[code])
                span = note.text[hit.start : hit.end] if hit is not None else ""
                rows.append(
                    {"code": code, "span": span, "title": by_code[code].description, "label": int(code in gold_set)}
                )
            p_out.write(json.dumps({"dataset": dataset, "doc_id": note.id, "pairs": rows}) + "\n")
            f_out.write(ex.to_json() + "\n")
            p_out.flush()
            f_out.flush()


def _model_dir() -> Path:
    from medcode.retrieval._embedder import _resolve

    return _resolve(Settings().embedder)[0]


def _encode(tok: Any, chunk: Sequence[tuple[str, ...] | tuple[str, str, int]]) -> Any:
    """A batch of (span, title, ...) pairs as padded model inputs (pairs truncated to 128 tokens)."""
    return tok(
        [c[0] for c in chunk], [c[1] for c in chunk], truncation=True, max_length=128, padding=True, return_tensors="pt"
    )


def _fit_one(train: list[tuple[str, str, int]], *, seed: int, epochs: int, lr: float, batch: int) -> Any:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.manual_seed(seed)
    tok = AutoTokenizer.from_pretrained(str(_model_dir()))
    model = AutoModelForSequenceClassification.from_pretrained(str(_model_dir()), num_labels=1)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    steps = epochs * ((len(train) + batch - 1) // batch)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / (0.1 * steps)) * max(0.0, 1 - s / steps)
    )
    loss_fn = torch.nn.BCEWithLogitsLoss()
    rng = random.Random(seed)
    bar = tqdm(total=steps, desc="fine-tune", unit="batch", file=sys.stderr)
    for _ in range(epochs):
        order = list(range(len(train)))
        rng.shuffle(order)
        for b in range(0, len(order), batch):
            chunk = [train[i] for i in order[b : b + batch]]
            enc = _encode(tok, chunk)
            logits = model(**enc).logits.squeeze(-1)
            loss = loss_fn(logits, torch.tensor([float(c[2]) for c in chunk]))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad()
            bar.update(1)
    bar.close()
    model.eval()
    return tok, model


def _score(tok: Any, model: Any, pairs: list[tuple[str, str]], batch: int = 128) -> list[float]:
    import torch

    out: list[float] = []
    with torch.inference_mode():
        for b in range(0, len(pairs), batch):
            chunk = pairs[b : b + batch]
            enc = _encode(tok, chunk)
            out += model(**enc).logits.squeeze(-1).tolist()
    return out


def fit(out: Path, *, k: int, seed: int, negatives: int, epochs: int, lr: float, batch: int) -> None:
    """Out-of-fold cross-encoder scores for every pair (``OUT/ce_oof.jsonl``); a finished fold is kept."""
    import torch

    torch.set_num_threads(2)
    examples = _load_examples(out / "features.jsonl")
    pairs = {
        (r["dataset"], r["doc_id"]): r["pairs"]
        for r in map(json.loads, (out / "pairs.jsonl").read_text("utf-8").splitlines())
    }
    folds = folds_for(examples, k, seed)
    oof_path = out / "ce_oof.jsonl"
    done = (
        {json.loads(line)["fold"] for line in oof_path.read_text("utf-8").splitlines()} if oof_path.exists() else set()
    )
    rng = random.Random(seed)
    for f in range(k):
        if f in done:
            continue
        train: list[tuple[str, str, int]] = []
        for ex, g in zip(examples, folds, strict=True):
            if g == f:
                continue
            rows = pairs[(ex.dataset, ex.doc_id)]
            pos = [r for r in rows if r["label"]]
            neg = [r for r in rows if not r["label"]]
            rng.shuffle(neg)
            keep = pos + neg[: max(negatives * len(pos), negatives)]
            train += [(r["span"], r["title"], r["label"]) for r in keep]
        t0 = time.perf_counter()
        tok, model = _fit_one(train, seed=seed + f, epochs=epochs, lr=lr, batch=batch)
        fit_s = time.perf_counter() - t0
        test = [ex for ex, g in zip(examples, folds, strict=True) if g == f]
        flat = [(r["span"], r["title"]) for ex in test for r in pairs[(ex.dataset, ex.doc_id)]]
        t0 = time.perf_counter()
        scores = _score(tok, model, flat)
        score_s = time.perf_counter() - t0
        it = iter(scores)
        record = {
            "fold": f,
            "train_pairs": len(train),
            "fit_seconds": round(fit_s, 1),
            "score_pairs_per_second": round(len(flat) / score_s, 1),
            "scores": {
                f"{ex.dataset}\t{ex.doc_id}": [round(next(it), 4) for _ in pairs[(ex.dataset, ex.doc_id)]]
                for ex in test
            },
        }
        with oof_path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
        print(
            f"fold {f + 1}/{k}: {len(train)} training pairs, {fit_s:.0f} s; scored {len(flat)} pairs at "
            f"{record['score_pairs_per_second']}/s",
            file=sys.stderr,
        )


def compare(out: Path, seeds: Sequence[int], k: int) -> None:
    """Out-of-fold figures of the acceptance model without and with the cross-encoder feature."""
    examples = _load_examples(out / "features.jsonl")
    scores: dict[str, list[float]] = {}
    for line in (out / "ce_oof.jsonl").read_text("utf-8").splitlines():
        scores.update(json.loads(line)["scores"])
    for ex in examples:
        for row, s in zip(ex.rows, scores[f"{ex.dataset}\t{ex.doc_id}"], strict=True):
            row[CE_FEATURE] = s
    variants = {"without": TRAINING_FEATURES, "with": (*TRAINING_FEATURES, CE_FEATURE)}
    results: dict[tuple[str, str], list[dict[str, float]]] = {}
    for seed in seeds:
        for name, feats in variants.items():
            _, oof = train_model(examples, k=k, seed=seed, version="ce-bench", features=feats, progress=False)
            for dataset, entry in oof.items():
                results.setdefault((name, dataset), []).append(entry)
                print(
                    f"seed {seed} {name:7s} {dataset:16s} P {entry['precision']:.3f} R {entry['recall']:.3f} "
                    f"F1 {entry['f1']:.3f} ECE {entry['ece_proposed']:.3f}",
                    file=sys.stderr,
                )
    print(f"\nout of fold, median over seeds {list(seeds)} (min-max of F1):")
    for dataset in sorted({d for _, d in results}):
        for name in variants:
            rows = results[(name, dataset)]
            f1 = [r["f1"] for r in rows]
            print(
                f"{dataset:16s} {name:7s} P {statistics.median(r['precision'] for r in rows):.3f} "
                f"R {statistics.median(r['recall'] for r in rows):.3f} F1 {statistics.median(f1):.3f} "
                f"({min(f1):.3f}-{max(f1):.3f}) ECE {statistics.median(r['ece_proposed'] for r in rows):.3f}"
            )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.cross_encoder", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="step", required=True)
    p = sub.add_parser("extract", help="features and (span, title, label) pairs for every labelled note")
    p.add_argument("--dataset", type=Path, action="append", required=True)
    p.add_argument("--limit", type=int, default=None, help="at most N notes per dataset")
    p.add_argument("--out", type=Path, required=True)
    p = sub.add_parser("fit", help="out-of-fold cross-encoder scores, one fine-tuning per fold")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--cv", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--negatives", type=int, default=4, help="negatives sampled per positive of a note")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--lr", type=float, default=5e-5)
    p.add_argument("--batch", type=int, default=32)
    p = sub.add_parser("compare", help="acceptance model out of fold, without and with the cross-encoder score")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--cv", type=int, default=5)
    p.add_argument("--seeds", default="0,1,2")
    args = parser.parse_args(argv)
    if args.step == "extract":
        extract(args.dataset, args.limit, args.out)
    elif args.step == "fit":
        fit(
            args.out,
            k=args.cv,
            seed=args.seed,
            negatives=args.negatives,
            epochs=args.epochs,
            lr=args.lr,
            batch=args.batch,
        )
    else:
        compare(args.out, [int(s) for s in args.seeds.split(",")], args.cv)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
