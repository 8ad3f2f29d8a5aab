"""Time the retrieval path against an older commit on the same machine, alternating old and new runs.

Seconds per note depend on the machine, so a speed target written on one machine ("not above today's 1.4 s") is
checked by timing both pipelines on the same one. This script installs commit ``--rev`` into its own venv (the
current venv's packages, that commit's ``medcode`` as a plain wheel), builds that commit's index in its own data
directory, then runs ``tools.bench_agent --proposers retrieval`` old, new, old, new ... and prints the medians and
their ratios. Everything lives under ``--work`` and is reused by a rerun (the index build takes about 10 minutes).

Usage::

    python -m tools.bench_against --rev f18656a --work ../bench-against \\
        --dataset ../shared/benchmarks/codiesp/dev.jsonl:20 --dataset evals/data/gold.jsonl:samples

The current pipeline uses ``MEDCODE_DATA_DIR`` (its full index must exist). Fails when ``--rev`` is not a commit
of this repository or when its install or index build fails (the command's output says why).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

from tools.bench_agent import _subset, _timing

ROOT = Path(__file__).resolve().parents[1]


def _run(cmd: list[str], **kwargs: object) -> None:
    print("+", " ".join(cmd), file=sys.stderr)
    subprocess.run(cmd, check=True, **kwargs)  # type: ignore[call-overload]


def _old_env(data: Path) -> dict[str, str]:
    """The environment of the old commit's processes: its data dir, and no PYTHONPATH pointing at today's sources."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return {**env, "MEDCODE_DATA_DIR": str(data)}


def prepare(rev: str, work: Path) -> tuple[Path, Path, Path]:
    """(python of the old venv, a directory holding only the old ``tools/``, the old data dir); reused if present."""
    src, venv, data, tools_root = work / "src", work / "venv", work / "data", work / "tools-root"
    if not src.exists():
        _run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(src), rev])
    python = venv / "bin" / "python"
    if not python.exists():
        _run([sys.executable, "-m", "venv", str(venv)])
        site = next((venv / "lib").glob("python3.*/site-packages"))
        # The old commit runs on the current venv's packages; only medcode itself is the old one.
        (site / "zz_current_venv.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
        _run([str(python), "-m", "pip", "install", "-q", "--no-deps", str(src)])
        # Older wheels left some stage data files out (agent/data/*.json until 2026-11-30): copy what is missing.
        installed = site / "medcode"
        config = tomllib.loads((src / "pyproject.toml").read_text(encoding="utf-8"))
        stages = [folder for name, folder in config["tool"]["setuptools"]["package-dir"].items() if name != "medcode"]
        for stage in stages:  # that commit's own stage folders, from its package-dir mapping
            for path in (src / stage).rglob("*"):
                target = installed / stage / path.relative_to(src / stage)
                if path.is_file() and path.suffix != ".py" and "__pycache__" not in path.parts and not target.exists():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(path, target)
    if not (tools_root / "tools").exists():
        # Run the old tools from a directory without the old source tree, whose medcode/ would shadow the install.
        shutil.copytree(src / "tools", tools_root / "tools")
    data.mkdir(parents=True, exist_ok=True)
    _run([str(venv / "bin" / "medcode"), "index", "build"], env=_old_env(data))
    return python, tools_root, data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rev", required=True, help="the older commit to time against")
    parser.add_argument("--work", type=Path, required=True, help="directory for its checkout, venv, index and runs")
    parser.add_argument("--dataset", action="append", required=True, help="PATH[:N] or PATH:samples (repeatable)")
    parser.add_argument("--rounds", type=int, default=2, help="old/new pairs to run (default 2)")
    args = parser.parse_args(argv)
    work = args.work.resolve()
    datasets = []
    for spec in args.dataset:  # absolute paths: the old tools run from another directory
        path, sep, selector = spec.partition(":")
        datasets += ["--dataset", f"{Path(path).resolve()}{sep}{selector}"]
    python, tools_root, data = prepare(args.rev, work)
    names = [_subset(spec, work)[0] for spec in args.dataset]
    medians: dict[tuple[str, str], list[float]] = {}
    for i in range(1, args.rounds + 1):
        for side in ("old", "new"):
            out = work / "runs" / f"{side}-{i}"
            shutil.rmtree(out, ignore_errors=True)  # bench_agent resumes finished notes: a fresh run times them all
            bench = ["-m", "tools.bench_agent", "--out", str(out), "--proposers", "retrieval", *datasets]
            if side == "old":
                _run([str(python), *bench], cwd=tools_root, env=_old_env(data), stdout=subprocess.DEVNULL)
            else:
                _run([sys.executable, *bench], cwd=ROOT, stdout=subprocess.DEVNULL)
            for name in names:
                timing = _timing(out / f"{name}-retrieval" / "predictions.jsonl")
                medians.setdefault((name, side), []).append(timing["median_s"])
    print(f"{'dataset':<34} {'old s/note':>18} {'new s/note':>18} {'new/old':>14}")
    for name in names:
        old, new = medians[(name, "old")], medians[(name, "new")]
        ratios = " ".join(f"{n / o:.2f}" for o, n in zip(old, new, strict=True))
        print(
            f"{name:<34} {' '.join(f'{x:.2f}' for x in old):>18} {' '.join(f'{x:.2f}' for x in new):>18} {ratios:>14}"
        )
    print(f"medians of each run, alternated old/new; {args.rev} vs the working tree")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
