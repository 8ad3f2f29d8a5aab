"""Does the LLM earn its place? Ablation of the LLM's features on the acceptance model's folds.

Reads the feature cache that ``medcode train`` wrote (``--features OUT/features.jsonl``), takes the
notes of the chosen datasets, and for each note runs the embedded LLM twice over:

- its choice: the LLM proposer (one code or "none" per condition, as in production); a candidate
  gets ``llm_selected`` 1 when chosen, 0 otherwise;
- its yes/no log-probability: for each of the note's top ``--logprob-top`` candidates, one
  1-token chat completion "Is <code> (<description>) documented for this patient?" over the
  candidate's best sentence; ``llm_yes_logprob`` is log P(yes) normalised over yes/no.

Then the same K-fold cross-validation (same folds, same seed, priors from training folds) is run
three times: retrieval features only, + the LLM's choice, + its log-probability, and out-of-fold
micro-F1/ECE per dataset are printed. LLM outputs are cached (``--cache``), so reruns are cheap.

    python tools/ablate_llm.py --data-dir /work/data-after --features /work/train-run1/features.jsonl \\
        --dataset aci/dev --dataset data/gold --out /work/ablation
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

from medcode.agent import MedicalCoder
from medcode.config import load_settings
from medcode.evals._dataset import read_dataset
from medcode.evals._harness import note_for
from medcode.evals._training import NoteExample, train_model

DATASETS = {
    "aci/dev": Path("../shared/benchmarks/aci/dev.jsonl"),
    "data/gold": Path(__file__).resolve().parents[1] / "evals" / "data" / "gold.jsonl",
    "codiesp/train": Path("../shared/benchmarks/codiesp/train.jsonl"),
}
_YES = ("yes", "Yes", " yes", " Yes", "YES")
_NO = ("no", "No", " no", " No", "NO")


def _yes_logprob(client: Any, sentence: str, code: str, description: str) -> float:
    messages = [
        {"role": "system", "content": "You are a medical coder. Answer with one word: yes or no."},
        {
            "role": "user",
            "content": f'Sentence from a clinical note: "{sentence}"\n'
            f"Does this sentence document {description} ({code}) for this patient now? Answer yes or no.",
        },
    ]
    response = client.chat.completions.create(
        model="local", messages=messages, max_tokens=1, temperature=0.0, logprobs=True, top_logprobs=10
    )
    top = response.choices[0].logprobs.content[0].top_logprobs
    yes = sum(math.exp(t.logprob) for t in top if t.token in _YES)
    no = sum(math.exp(t.logprob) for t in top if t.token in _NO)
    if yes + no == 0:
        return math.nan
    return math.log(max(yes, 1e-9) / (yes + no))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--features", type=Path, required=True, help="features.jsonl written by medcode train")
    parser.add_argument("--dataset", action="append", required=True, choices=sorted(DATASETS))
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--logprob-top", type=int, default=12, help="candidates per note asked yes/no (default 12)")
    parser.add_argument("--limit", type=int, help="first N notes per dataset")
    parser.add_argument("--cv", type=int, default=5)
    parser.add_argument("--model", default=None, help="embedded model id (default: the settings' default)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    cache_path = args.out / "llm-cache.jsonl"
    cache: dict[str, dict[str, Any]] = {}
    if cache_path.exists():
        for line in cache_path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            cache[row["key"]] = row
    examples = {}
    for line in args.features.read_text(encoding="utf-8").splitlines():
        ex = NoteExample.from_json(line)
        if ex.dataset in args.dataset:
            examples[(ex.dataset, ex.doc_id)] = ex
    overrides: dict[str, Any] = {"data_dir": args.data_dir}
    if args.model:
        overrides["llm_model"] = args.model
    settings = load_settings(**overrides)
    chosen_examples: list[NoteExample] = []
    seconds: list[float] = []
    with MedicalCoder(settings, proposer="llm") as coder, cache_path.open("a", encoding="utf-8") as out:
        for name in args.dataset:
            docs = list(read_dataset(DATASETS[name], limit=args.limit))
            for n, doc in enumerate(docs, start=1):
                ex = examples.get((name, doc.id))
                if ex is None:
                    continue
                key = f"{name}:{doc.id}"
                if key not in cache:
                    started = time.monotonic()
                    note = note_for(doc, settings.max_note_chars)
                    codeset = coder.registry.get(note.date_of_service)
                    candidates = coder.retriever(note.date_of_service).search_note(
                        note.text, top_k=len(ex.codes), setting=note.setting, held_out=True
                    )
                    try:
                        proposed = coder.proposer.propose(note, candidates, codeset)
                        selected = [i.code for i in proposed.items]
                    except Exception as exc:  # an LLM failure leaves the note without LLM features
                        print(f"{key}: LLM failed: {exc}", file=sys.stderr)
                        selected = []
                    client = coder.runtime.llm()._client()
                    by_code = {c.code: c for c in candidates.candidates}
                    logprobs: dict[str, float] = {}
                    for code in ex.codes[: args.logprob_top]:
                        cand = by_code.get(code)
                        if cand is None or not cand.hits:
                            continue
                        hit = cand.hits[0]
                        sentence = " ".join(note.text[hit.start : hit.end].split())[:300]
                        logprobs[code] = _yes_logprob(client, sentence, code, cand.description)
                    cache[key] = {"key": key, "selected": selected, "logprobs": logprobs}
                    out.write(json.dumps(cache[key]) + "\n")
                    out.flush()
                    seconds.append(time.monotonic() - started)
                    print(f"{name} {n}/{len(docs)} {seconds[-1]:.1f}s", file=sys.stderr)
                chosen_examples.append(ex)
    if seconds:
        seconds.sort()
        print(f"LLM seconds per note: median {seconds[len(seconds) // 2]:.1f}", file=sys.stderr)

    def variant(with_choice: bool, with_logprob: bool) -> list[NoteExample]:
        out_examples = []
        for ex in chosen_examples:
            row = cache[f"{ex.dataset}:{ex.doc_id}"]
            rows = []
            for code, features in zip(ex.codes, ex.rows, strict=True):
                features = dict(features)
                features["llm_selected"] = float(code in row["selected"]) if with_choice else math.nan
                lp = row["logprobs"].get(code)
                features["llm_yes_logprob"] = float(lp) if with_logprob and lp is not None else math.nan
                rows.append(features)
            out_examples.append(NoteExample(ex.doc_id, ex.dataset, ex.setting, ex.gold, ex.codes, rows, ex.excludes))
        return out_examples

    results = {}
    for label, flags in (
        ("retrieval features", (False, False)),
        ("+ LLM choice", (True, False)),
        ("+ LLM choice + yes/no log-probability", (True, True)),
    ):
        _model, oof = train_model(variant(*flags), k=args.cv, version="ablation", progress=False)
        results[label] = oof
    (args.out / "ablation.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"{'features':<42} {'dataset':<10} {'P':>6} {'R':>6} {'F1':>6} {'ECE':>6}")
    for label, oof in results.items():
        for dataset, row in sorted(oof.items()):
            print(
                f"{label:<42} {dataset:<10} {row['precision']:>6.3f} {row['recall']:>6.3f} {row['f1']:>6.3f} "
                f"{row['ece_proposed']:>6.3f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
