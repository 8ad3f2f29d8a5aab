"""Files that hold PHI (notes, evidence quotes): created owner-only (0600) from the first byte.

Foundation module (no stage imports). ``open_private`` is the one way a command creates such a file,
so a results file is never readable by other local users, even for the instant between create and chmod.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TextIO

__all__ = ["PRIVATE_MODE", "open_private"]

PRIVATE_MODE = 0o600


def open_private(path: Path, mode: str = "a") -> TextIO:
    """Open ``path`` as UTF-8 text for appending (``"a"``) or writing (``"w"``), creating it 0600.

    An existing file's other-user permissions are removed too (it holds the same PHI). Raises
    ``OSError`` when the file cannot be created or opened, and ``ValueError`` for another mode.
    """
    if mode not in ("a", "w"):
        raise ValueError(f"open_private supports 'a' and 'w', not {mode!r}")
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if mode == "a" else os.O_TRUNC)
    fd = os.open(path, flags, PRIVATE_MODE)
    try:
        current = os.fstat(fd).st_mode & 0o777
        if current & 0o077:
            os.fchmod(fd, current & 0o700)
        if mode == "a":
            return open(fd, "a", encoding="utf-8")
        return open(fd, "w", encoding="utf-8")
    except BaseException:
        os.close(fd)
        raise
