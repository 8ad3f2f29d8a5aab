"""Benchmark the embedded LLM runtime: start time, prompt and generation speed, constrained-output quality.

For each embedded model and llama.cpp thread count it starts a fresh server, then asks it to pick the
code for short synthetic notes from a candidate list (a ``Literal`` of the candidates, so JSON_SCHEMA
output is grammar-constrained) and to quote its evidence. It reports medians over the notes:

- ``start_s``: model weights ready (first run assembles Qwen) and server healthy;
- ``prompt_tps``: prompt tokens processed per second (tokens served from the prompt cache excluded);
- ``gen_tps``: generated tokens per second; ``latency_s`` per note;
- ``cached``: median prompt tokens reused from the cache (the shared system prompt);
- ``parsed``: answers that parsed and validated with no re-ask; ``correct``: the expected code;
  ``quoted``: evidence found verbatim in the note.

Usage::

    nice -n 10 python -m tools.bench_llm --models smollm2-135m,qwen2.5-coder-1.5b --threads 1,2

The machine is shared: the load average before and after each run is printed next to the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, Field, create_model

from medcode.agent.llm._client import LLMClient
from medcode.agent.llm._server import EmbeddedLLMServer
from medcode.agent.llm._weights import ensure_model
from medcode.config import load_settings
from medcode.errors import LLMError

SYSTEM_PROMPT = (
    "You are a certified medical coder. You read one clinical note and a list of candidate ICD-10-CM codes. "
    "Choose the single candidate code that the note supports best, following ICD-10-CM conventions: code "
    "confirmed diagnoses, not ruled-out ones; prefer the most specific code the documentation supports; "
    "respect laterality and encounter type. Quote the exact words of the note that support the code. "
    "Answer with JSON only."
)

# (note, expected code, candidates with their descriptions)
CASES: list[tuple[str, str, list[tuple[str, str]]]] = [
    (
        "58-year-old man seen for follow-up of type 2 diabetes mellitus without complications. "
        "A1c 6.8%. Continue metformin 1000 mg twice daily. Diet counselling given.",
        "E11.9",
        [
            ("E11.9", "Type 2 diabetes mellitus without complications"),
            ("E10.9", "Type 1 diabetes mellitus without complications"),
            ("E11.65", "Type 2 diabetes mellitus with hyperglycemia"),
            ("R73.03", "Prediabetes"),
            ("O24.410", "Gestational diabetes mellitus in pregnancy, diet controlled"),
        ],
    ),
    (
        "34-year-old woman with two days of dysuria and urinary frequency. Urinalysis positive for nitrites, "
        "no blood. Assessment: acute cystitis without hematuria. Plan: nitrofurantoin for 5 days.",
        "N30.00",
        [
            ("N30.01", "Acute cystitis with hematuria"),
            ("N30.00", "Acute cystitis without hematuria"),
            ("N39.0", "Urinary tract infection, site not specified"),
            ("N30.10", "Interstitial cystitis (chronic) without hematuria"),
            ("R30.0", "Dysuria"),
        ],
    ),
    (
        "Routine visit. Blood pressure 128/78 on lisinopril. Essential hypertension, well controlled. "
        "No chest pain, no edema. Continue current dose.",
        "I10",
        [
            ("I11.9", "Hypertensive heart disease without heart failure"),
            ("I12.9", "Hypertensive chronic kidney disease with stage 1-4 or unspecified CKD"),
            ("I10", "Essential (primary) hypertension"),
            ("I15.9", "Secondary hypertension, unspecified"),
            ("R03.0", "Elevated blood-pressure reading, without diagnosis of hypertension"),
        ],
    ),
    (
        "22-year-old twisted her left ankle playing basketball today. Swelling over the lateral ankle, "
        "X-ray negative for fracture. Diagnosis: sprain of the left ankle, initial encounter. RICE, crutches.",
        "S93.402A",
        [
            ("S93.401A", "Sprain of unspecified ligament of right ankle, initial encounter"),
            ("S93.402A", "Sprain of unspecified ligament of left ankle, initial encounter"),
            ("S93.409A", "Sprain of unspecified ligament of unspecified ankle, initial encounter"),
            ("S82.892A", "Other fracture of left lower leg, initial encounter for closed fracture"),
            ("M25.572", "Pain in left ankle and joints of left foot"),
        ],
    ),
    (
        "70-year-old with fever, productive cough and right lower lobe consolidation on chest X-ray. "
        "Community-acquired pneumonia, organism not identified. Start amoxicillin-clavulanate.",
        "J18.9",
        [
            ("J18.1", "Lobar pneumonia, unspecified organism"),
            ("J15.9", "Unspecified bacterial pneumonia"),
            ("J18.9", "Pneumonia, unspecified organism"),
            ("J20.9", "Acute bronchitis, unspecified"),
            ("J44.0", "Chronic obstructive pulmonary disease with acute lower respiratory infection"),
        ],
    ),
    (
        "29-year-old with recurrent unilateral throbbing headaches with nausea and photophobia, no aura. "
        "Assessment: migraine without aura, not intractable, without status migrainosus. Sumatriptan prn.",
        "G43.009",
        [
            ("G43.909", "Migraine, unspecified, not intractable, without status migrainosus"),
            ("G43.109", "Migraine with aura, not intractable, without status migrainosus"),
            ("G43.009", "Migraine without aura, not intractable, without status migrainosus"),
            ("G44.209", "Tension-type headache, unspecified, not intractable"),
            ("R51.9", "Headache, unspecified"),
        ],
    ),
]


def _response_model(codes: Sequence[str]) -> type[BaseModel]:
    code_type: Any = Literal[tuple(codes)]
    model: type[BaseModel] = create_model(
        "CodeChoice",
        code=(code_type, Field(description="One of the candidate codes.")),
        evidence=(str, Field(max_length=300, description="Exact words from the note that support the code.")),
    )
    return model


def _messages(note: str, candidates: list[tuple[str, str]]) -> list[dict[str, str]]:
    listing = "\n".join(f"- {code}: {text}" for code, text in candidates)
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": f"Note:\n{note}\n\nCandidate codes:\n{listing}"},
    ]


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def run_one(
    model_id: str,
    threads: int,
    notes: int,
    data_dir: str | None,
    max_tokens: int,
    server_env: dict[str, str] | None = None,
) -> dict[str, Any]:
    overrides: dict[str, Any] = {
        "llm_model": model_id,
        "llm_threads": threads,
        "llm_context": 2048,
        "llm_max_output_tokens": max_tokens,
        "llm_timeout_s": 900.0,
        "llm_max_retries": 0,
    }
    if data_dir:
        overrides["data_dir"] = data_dir
    settings = load_settings(**overrides)
    load_before = _load()
    t0 = time.monotonic()
    local = ensure_model(settings)  # the first run assembles split weights: counted in start_s
    weights_s = time.monotonic() - t0
    server = EmbeddedLLMServer(
        local,
        threads=threads,
        context=settings.llm_context,
        start_timeout_s=settings.llm_start_timeout_s,
        log_path=settings.data_dir / "logs" / "llm-server.log",
        env={**os.environ, **server_env} if server_env else None,
    )
    rows: list[dict[str, Any]] = []
    with server:
        start_s = time.monotonic() - t0
        client = LLMClient(settings, server=server)
        for note, expected, candidates in (CASES * 3)[:notes]:
            model = _response_model([code for code, _ in candidates])
            row: dict[str, Any] = {"expected": expected}
            try:
                result = client.complete(_messages(note, candidates), model, max_reasks=0)
            except LLMError as exc:
                row.update(parsed=False, error=type(exc).__name__)
                rows.append(row)
                continue
            usage = result.usage
            answer = result.parsed.model_dump()
            processed = max(usage.prompt_tokens - usage.cached_prompt_tokens, 0)
            row.update(
                parsed=True,
                correct=answer["code"] == expected,
                quoted=bool(answer["evidence"].strip()) and answer["evidence"].strip() in note,
                latency_s=usage.latency_s,
                prompt_tokens=usage.prompt_tokens,
                cached=usage.cached_prompt_tokens,
                completion_tokens=usage.completion_tokens,
                prompt_tps=processed / (usage.prompt_ms / 1000) if usage.prompt_ms else None,
                gen_tps=usage.completion_tokens / (usage.generation_ms / 1000) if usage.generation_ms else None,
            )
            rows.append(row)
            print(f"  {model_id} t={threads}: {json.dumps(row)}", file=sys.stderr, flush=True)
    ok = [r for r in rows if r.get("parsed")]

    def med(key: str) -> float | None:
        values = [r[key] for r in ok if r.get(key) is not None]
        return statistics.median(values) if values else None

    return {
        "model": model_id,
        "threads": threads,
        "env": " ".join(f"{k}={v}" for k, v in (server_env or {}).items()),
        "weights_s": weights_s,
        "start_s": start_s,
        "notes": len(rows),
        "parsed": len(ok),
        "correct": sum(1 for r in ok if r.get("correct")),
        "quoted": sum(1 for r in ok if r.get("quoted")),
        "latency_s": med("latency_s"),
        "prompt_tokens": med("prompt_tokens"),
        "cached": med("cached"),
        "completion_tokens": med("completion_tokens"),
        "prompt_tps": med("prompt_tps"),
        "gen_tps": med("gen_tps"),
        "load_before": load_before,
        "load_after": _load(),
    }


def _fmt(value: Any, spec: str = ".1f") -> str:
    if value is None:
        return "-"
    return format(value, spec) if isinstance(value, float) else str(value)


def print_table(results: list[dict[str, Any]]) -> None:
    header = (
        f"{'model':<20} {'thr':>3} {'start_s':>7} {'prompt_tps':>10} {'gen_tps':>7} {'latency_s':>9} "
        f"{'p_tok':>5} {'cached':>6} {'out':>4} {'parsed':>6} {'correct':>7} {'quoted':>6}  load before/after"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        n = r["notes"]
        print(
            f"{r['model']:<20} {r['threads']:>3} {_fmt(r['start_s']):>7} {_fmt(r['prompt_tps']):>10} "
            f"{_fmt(r['gen_tps']):>7} {_fmt(r['latency_s']):>9} {_fmt(r['prompt_tokens'], '.0f'):>5} "
            f"{_fmt(r['cached'], '.0f'):>6} {_fmt(r['completion_tokens'], '.0f'):>4} "
            f"{r['parsed']:>3}/{n:<2} {r['correct']:>4}/{n:<2} {r['quoted']:>3}/{n:<2}  "
            f"{r['load_before']} / {r['load_after']}  {r['env']}"
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bench_llm", description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="smollm2-135m,qwen2.5-coder-1.5b", help="comma-separated model ids")
    parser.add_argument("--threads", default="1,2", help="comma-separated llama.cpp thread counts")
    parser.add_argument("--notes", type=int, default=6, help="notes per configuration (default 6)")
    parser.add_argument("--max-tokens", type=int, default=160, help="output cap per note")
    parser.add_argument("--data-dir", help="data directory (Qwen is assembled into <data-dir>/models)")
    parser.add_argument("--json", help="also write the results to this JSON file")
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="environment for the server process, e.g. OMP_WAIT_POLICY=PASSIVE (repeatable)",
    )
    args = parser.parse_args(argv)
    server_env = dict(item.split("=", 1) for item in args.server_env)
    results = []
    for model_id in args.models.split(","):
        for threads in (int(t) for t in args.threads.split(",")):
            print(f"== {model_id}, {threads} thread(s); load {_load()}", file=sys.stderr, flush=True)
            results.append(run_one(model_id.strip(), threads, args.notes, args.data_dir, args.max_tokens, server_env))
    print_table(results)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(results, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
