"""``CPTCodeSet``: CPT codes from the user's own licensed file.

CPT descriptors are AMA copyright: medcode ships none, stores none and never logs any. A user
with a licence points ``MEDCODE_CPT_FILE`` at a UTF-8 CSV with the header ``code,descriptor``;
the file is read into memory (validated in full, problems reported by line number) and nothing
is copied to the data directory. Error messages name lines and codes, never descriptor text.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import threading
from pathlib import Path
from typing import Any

from medcode.codesets._proc_models import ProcedureCodeRecord
from medcode.codesets._proc_normalize import CPT_PATTERN, HCPCS_LEVEL2_PATTERN, normalize_cpt
from medcode.config import Settings
from medcode.errors import ConfigError, MalformedCodeError, UnknownCodeError

__all__ = ["NO_CPT_FILE_MESSAGE", "CPTCodeSet", "open_cpt"]

NO_CPT_FILE_MESSAGE = (
    "no licensed CPT file is configured: CPT descriptors are AMA copyright and medcode ships none; "
    "set MEDCODE_CPT_FILE (or cpt_file in the config file) to your licensed CSV with the header 'code,descriptor'"
)
_HEADER = ["code", "descriptor"]
_MAX_PROBLEMS = 10
_MAX_BYTES = 64 * 1024 * 1024


class CPTCodeSet:
    """The codes of one licensed CPT file. Thread-safe; the file is read once, at construction.

    The file has no dates, so lookups take no date of service. ``get`` raises ``MalformedCodeError``
    for bad shapes (HCPCS Level II codes included) and ``UnknownCodeError`` for codes not in the file.
    """

    def __init__(self, path: Path) -> None:
        """Read and validate the CSV at ``path``.

        Raises ``ConfigError`` when the file is missing, unreadable, not UTF-8, binary, lacks the
        ``code,descriptor`` header, or has rows with a bad code shape, a duplicate code, an empty
        descriptor or the wrong number of fields (up to 10 problems, each with its line number).
        """
        self.path = path
        data = _read_bytes(path)
        self.sha256 = hashlib.sha256(data).hexdigest()
        self._codes = _parse(path, data)

    # -- public -------------------------------------------------------------------
    @property
    def version(self) -> str:
        """``cpt-file-<first 12 hex of the file's sha256>``: names the exact file a decision used."""
        return f"cpt-file-{self.sha256[:12]}"

    @staticmethod
    def normalize(code: object) -> str:
        """Canonical form of a CPT code; see ``normalize_cpt``."""
        return normalize_cpt(code)

    def __len__(self) -> int:
        return len(self._codes)

    def __contains__(self, code: object) -> bool:
        try:
            return normalize_cpt(code) in self._codes
        except MalformedCodeError:
            return False

    def exists(self, code: str) -> bool:
        """True when the (normalised) code is in the file. Never raises."""
        return code in self

    def get(self, code: str, date_of_service: dt.date | None = None) -> ProcedureCodeRecord:
        """The code's record (``date_of_service`` is recorded as ``as_of``; the file has no dates).

        Raises ``MalformedCodeError`` or ``UnknownCodeError`` (with same-prefix codes as suggestions).
        """
        normalized = normalize_cpt(code)
        description = self._codes.get(normalized)
        if description is None:
            raise UnknownCodeError(normalized, self.version, self.suggest(normalized))
        return ProcedureCodeRecord(
            code=normalized,
            system="CPT",
            release=self.version,
            description=description,
            valid=True,
            billable=True,
            as_of=date_of_service,
        )

    def suggest(self, code: str, limit: int = 10) -> list[str]:
        """Codes in the file sharing the longest prefix (4, then 3 characters)."""
        for length in (4, 3):
            hits = sorted(c for c in self._codes if c[:length] == code[:length])
            if hits:
                return hits[:limit]
        return []

    def codes(self) -> list[str]:
        """Every code in the file, sorted."""
        return sorted(self._codes)

    def stats(self) -> dict[str, Any]:
        """Counts and provenance (path and hash only, no descriptor text)."""
        return {
            "system": "CPT",
            "version": self.version,
            "source": {"kind": "licensed_file", "path": str(self.path), "sha256": self.sha256},
            "codes": len(self._codes),
        }


def _read_bytes(path: Path) -> bytes:
    try:
        size = path.stat().st_size
        if size > _MAX_BYTES:
            raise ConfigError(f"CPT file {path} is {size} bytes; over the {_MAX_BYTES} byte limit")
        return path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"CPT file {path} (MEDCODE_CPT_FILE) does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"CPT file {path} (MEDCODE_CPT_FILE) is a directory, expected a CSV file") from None
    except OSError as exc:
        raise ConfigError(f"cannot read CPT file {path}: {exc.strerror or exc}") from None


def _decode(path: Path, data: bytes) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if b"\x00" in data:
        line = data[: data.index(b"\x00")].count(b"\n") + 1
        raise ConfigError(f"CPT file {path}: line {line}: NUL byte; is this a binary file (not a CSV)?")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"CPT file {path}: line {line}: not valid UTF-8 (byte 0x{data[exc.start]:02x}); save the file as UTF-8"
        ) from None


def _parse(path: Path, data: bytes) -> dict[str, str]:
    text = _decode(path, data)
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    problems: list[str] = []
    codes: dict[str, str] = {}
    first_line: dict[str, int] = {}
    header_seen = False
    try:
        for row in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if not header_seen:
                header_seen = True
                if [cell.strip().lower() for cell in row] != _HEADER:
                    hint = (
                        " (the first row looks like data: add the header line)"
                        if row and CPT_PATTERN.match(row[0].strip().upper())
                        else ""
                    )
                    raise ConfigError(
                        f"CPT file {path}: line {line}: the first row must be the header 'code,descriptor' "
                        f"(found {len(row)} column(s)){hint}"
                    )
                continue
            problem = _check_row(row, line, codes, first_line)
            if problem:
                problems.append(f"line {line}: {problem}")
                if len(problems) >= _MAX_PROBLEMS:
                    break
    except csv.Error as exc:
        problems.append(f"line {reader.line_num}: CSV syntax error ({exc})")
    if not header_seen:
        raise ConfigError(f"CPT file {path} is empty; expected the header 'code,descriptor' and one row per code")
    if problems:
        more = " (stopped after the first 10)" if len(problems) >= _MAX_PROBLEMS else ""
        raise ConfigError(f"invalid CPT file {path}{more}: " + "; ".join(problems))
    if not codes:
        raise ConfigError(f"CPT file {path} has a header but no codes")
    return codes


def _check_row(row: list[str], line: int, codes: dict[str, str], first_line: dict[str, int]) -> str | None:
    """Add a valid row to ``codes``; otherwise return what is wrong (never quoting descriptor text)."""
    if len(row) != 2:
        return f"expected 2 fields (code,descriptor), found {len(row)}; quote descriptors that contain commas"
    raw_code, descriptor = row[0], " ".join(row[1].split())
    code = "".join(raw_code.split()).upper()
    if not CPT_PATTERN.match(code):
        shown = code[:12] + ("..." if len(code) > 12 else "")
        if HCPCS_LEVEL2_PATTERN.match(code):
            return f"{shown!r} is an HCPCS Level II code, not CPT; HCPCS comes from its own code set"
        return f"{shown!r} is not a CPT code (expected 5 digits, or 4 digits then F, T, U, A or M)"
    if code in codes:
        return f"duplicate code {code} (first on line {first_line[code]})"
    if not descriptor:
        return f"empty descriptor for code {code}"
    codes[code] = descriptor
    first_line[code] = line
    return None


_cache: dict[tuple[str, int, int], CPTCodeSet] = {}
_cache_lock = threading.Lock()


def open_cpt(settings: Settings) -> CPTCodeSet:
    """The CPT code set from ``settings.cpt_file``, re-read only when the file changes.

    Raises ``ConfigError`` when no file is configured (saying so) or the file is invalid.
    """
    path = settings.cpt_file
    if path is None:
        raise ConfigError(NO_CPT_FILE_MESSAGE)
    try:
        stat = path.stat()
    except OSError:
        return CPTCodeSet(path)  # raises the precise ConfigError
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    with _cache_lock:
        cached = _cache.get(key)
        if cached is None:
            cached = CPTCodeSet(path)
            _cache.clear()
            _cache[key] = cached
        return cached
