"""Run mypy (strict) over the installed layout: ``medcode.agent`` and friends, not the repository's folders.

The stage folders at the top of the repository install as ``medcode.<stage>`` through setuptools'
``package-dir`` mapping, which mypy cannot read. This script mirrors that mapping as a tree of
symlinks under ``build/typecheck/medcode`` and points mypy at it, so every import resolves as it
does for users. Usage: ``python tools/typecheck.py [extra mypy args]``; exits with mypy's status.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def build_view(root: Path = ROOT) -> Path:
    """Create ``build/typecheck`` with a ``medcode`` package laid out as installed; returns its path."""
    config = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    mapping: dict[str, str] = config["tool"]["setuptools"]["package-dir"]
    view = root / "build" / "typecheck"
    shutil.rmtree(view, ignore_errors=True)
    package = view / "medcode"
    package.mkdir(parents=True)
    for item in (root / mapping["medcode"]).iterdir():
        if item.suffix in {".py", ".pyi", ".typed"}:
            (package / item.name).symlink_to(item)
    for name, folder in mapping.items():
        if name == "medcode":
            continue
        parts = name.split(".")
        assert parts[0] == "medcode" and len(parts) == 2, f"unexpected mapping {name}"
        (package / parts[1]).symlink_to(root / folder, target_is_directory=True)
    return view


def main(argv: list[str]) -> int:
    view = build_view()
    env = {**os.environ, "MYPYPATH": str(view)}
    command = [sys.executable, "-m", "mypy", "-p", "medcode", *argv]
    return subprocess.call(command, cwd=ROOT, env=env)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
