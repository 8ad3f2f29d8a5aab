"""SQLite files medcode builds once and then only reads: the code-set stores and the lexical index.

``atomic_build`` writes such a file next to its target and renames it into place when the build
succeeds (a failed or interrupted build leaves no half-written file), stamping the schema version
in ``PRAGMA user_version``. ``ReadOnlyStore`` checks that stamp on open and hands out one read-only
connection per thread. A file from another schema version is never used silently: the owner
rebuilds it (code-set stores, derived from installed packages) or refuses it naming the command
that rebuilds it (the retrieval index).
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from medcode.errors import MedcodeError

__all__ = ["ReadOnlyStore", "atomic_build", "schema_version_of"]


@contextmanager
def atomic_build(
    target: Path, what: str, *, schema_version: int, error: type[MedcodeError]
) -> Iterator[sqlite3.Connection]:
    """Build a SQLite file next to ``target``; stamp ``schema_version`` and rename it into place on success.

    On any failure the temporary file is removed and ``target`` is left as it was; SQLite and
    file-system errors become ``error`` naming ``what``.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    tmp.unlink(missing_ok=True)
    conn = sqlite3.connect(tmp)
    try:
        yield conn
        conn.execute(f"PRAGMA user_version = {int(schema_version)}")
        conn.commit()
        conn.close()
        os.replace(tmp, target)
    except (sqlite3.Error, OSError) as exc:
        conn.close()
        tmp.unlink(missing_ok=True)
        raise error(f"cannot write {what} {target}: {exc}") from exc
    except BaseException:
        conn.close()
        tmp.unlink(missing_ok=True)
        raise


def schema_version_of(path: Path) -> int | None:
    """The schema version stamped in a SQLite file (0 when never stamped); None when it is not readable."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error:
        return None
    try:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])
    except sqlite3.Error:
        return None
    finally:
        conn.close()


class ReadOnlyStore:
    """A built SQLite file opened read-only: one connection per thread, schema version checked on open.

    Raises ``error`` (with ``fix``, the sentence that says how to repair it) when the file is
    missing or unreadable, and ``stale_error`` (default ``error``) when it was built with another
    schema version.
    """

    def __init__(
        self,
        path: Path,
        *,
        what: str,
        schema_version: int,
        error: type[MedcodeError],
        fix: str,
        stale_error: type[MedcodeError] | None = None,
    ) -> None:
        self.path = path
        self.what = what
        self._local = threading.local()
        if not path.is_file():
            raise error(f"{what} {path} is missing; {fix}")
        try:
            found = int(self._conn().execute("PRAGMA user_version").fetchone()[0])
            self._conn().execute("SELECT count(*) FROM sqlite_master").fetchone()  # reads the schema: not a DB fails
        except sqlite3.DatabaseError as exc:
            self.close()
            raise error(f"{what} {path} is unreadable ({exc}); {fix}") from exc
        if found != schema_version:
            self.close()
            raise (stale_error or error)(
                f"{what} {path} has schema version {found}, this medcode needs {schema_version}; {fix}"
            )

    def connection(self) -> sqlite3.Connection:
        """This thread's read-only connection (opened on first use)."""
        return self._conn()

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
