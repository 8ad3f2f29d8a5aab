"""SQLite plumbing shared by the code-set stores: atomic builds and per-thread read-only connections."""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from medcode.errors import CodeSetBuildError

__all__ = ["ReadOnlyStore", "atomic_store"]


@contextmanager
def atomic_store(target: Path, what: str) -> Iterator[sqlite3.Connection]:
    """Build a SQLite file next to ``target`` and rename it into place when the block succeeds.

    On any failure the temporary file is removed, so a crash never leaves a half-written store;
    SQLite errors become ``CodeSetBuildError`` naming ``what``.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    tmp.unlink(missing_ok=True)
    conn = sqlite3.connect(tmp)
    try:
        yield conn
        conn.commit()
    except sqlite3.Error as exc:
        conn.close()
        tmp.unlink(missing_ok=True)
        raise CodeSetBuildError(f"cannot write {what} {target}: {exc}") from exc
    except BaseException:
        conn.close()
        tmp.unlink(missing_ok=True)
        raise
    conn.close()
    os.replace(tmp, target)


class ReadOnlyStore:
    """One read-only SQLite connection per thread to the store at ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)
            self._local.conn = conn
        return conn

    def close(self) -> None:
        """Close this thread's connection (others close when their thread ends)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
