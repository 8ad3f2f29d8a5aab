"""A test's own data directory that shares the session's built code sets, index and models."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from medcode.config import Settings

BUILT = ("codesets", "retrieval", "models")


def own_data_dir(settings: Settings, target: Path, *, share: tuple[str, ...] = BUILT, **update: Any) -> Settings:
    """``settings`` with ``target`` as the data directory (its own queue, audit log, jobs and users) and the
    built parts named in ``share`` symlinked from ``settings.data_dir``; ``update`` changes other settings."""
    target.mkdir(parents=True, exist_ok=True)
    for name in share:
        if (settings.data_dir / name).exists():
            (target / name).symlink_to(settings.data_dir / name, target_is_directory=True)
    return settings.model_copy(update={"data_dir": target, **update})
