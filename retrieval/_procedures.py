"""Procedure mentions in a note: where it reports a procedure done in this encounter.

The section and verb lexicon is data (``retrieval/data/procedure_lexicon.json``): a segment is a
procedure mention when it sits in a procedures section or holds a "performed" verb ("underwent",
"was placed"); a planned, declined or historical cue before the procedure words in the same sentence
makes it something else ("scheduled for colonoscopy", "declined biopsy", "s/p appendectomy"). The
validators read the same cues (``ProcedureLexicon.status``) to judge a procedure's evidence quote.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Literal

from medcode.errors import ConfigError
from medcode.retrieval._models import Segment
from medcode.retrieval._segment import segment_note

__all__ = [
    "ProcedureCandidate",
    "ProcedureIndex",
    "ProcedureLexicon",
    "ProcedureMention",
    "ProcedureStatus",
    "load_procedure_lexicon",
    "procedure_mentions",
]

ProcedureStatus = Literal["performed", "planned", "declined", "historical"]
_SENTENCE_START = re.compile(r"(?:[.!?;]\s+|\n\s*\n|\n\s*[-*\u2022]|\n(?=[A-Z]))")


def _pattern(phrases: list[str]) -> re.Pattern[str]:
    words = sorted({" ".join(p.lower().split()) for p in phrases if p.strip()}, key=len, reverse=True)
    if not words:
        return re.compile(r"(?!x)x")
    body = "|".join(r"\s+".join(re.escape(w) for w in phrase.split()) for phrase in words)
    return re.compile(rf"(?<![\w/])(?:{body})(?![\w/])", re.IGNORECASE)


@dataclass(frozen=True)
class ProcedureMention:
    """A segment of a note that reports a procedure: ``note[start:end] == text``; ``trigger`` is the verb or
    ``section:<name>`` that made it one."""

    start: int
    end: int
    text: str
    section: str
    trigger: str


class ProcedureLexicon:
    """The parsed ``procedure_lexicon.json``. Raises ``ConfigError`` when the file is invalid."""

    def __init__(self, raw: bytes) -> None:
        try:
            data = json.loads(raw)
            self.sections = frozenset(str(s) for s in data["sections"])
            self.stop_sections = frozenset(str(s) for s in data["stop_sections"])
            self.performed = _pattern(list(data["performed"]))
            self.cues: dict[ProcedureStatus, re.Pattern[str]] = {
                "declined": _pattern(list(data["declined"])),
                "planned": _pattern(list(data["planned"])),
                "historical": _pattern(list(data["historical"])),
            }
            self.synonyms = {str(k).lower(): str(v).lower() for k, v in data.get("synonyms", {}).items()}
            self.declined_patterns = [re.compile(str(x), re.IGNORECASE) for x in data.get("declined_patterns", [])]
            self.tests = _pattern(list(data.get("tests", [])))
            self.tests_needing_site = frozenset(" ".join(t.lower().split()) for t in data.get("tests_needing_site", []))
            self.test_clause_words = frozenset(str(w).lower() for w in data.get("test_clause_words", []))
            self.test_filler_words = frozenset(str(w).lower() for w in data.get("test_filler_words", []))
            self.test_words_before = int(data.get("test_words_before", 3))
            if not 0 <= self.test_words_before <= 10:
                raise ValueError("test_words_before must be 0..10")
            self.version = f"{data['version']}+{hashlib.sha256(raw).hexdigest()[:8]}"
        except (ValueError, KeyError, TypeError, re.error) as exc:
            raise ConfigError(f"invalid retrieval/data/procedure_lexicon.json: {exc!r}") from None

    def status(self, note: str, start: int, end: int) -> tuple[ProcedureStatus, str | None]:
        """Whether the quote ``note[start:end]`` reports a procedure done now, and the cue that says otherwise.

        Looks from the start of the quote's sentence to the end of the quote; a "performed" verb after
        the last cue wins ("was scheduled for colonoscopy, which was performed today" is performed).
        """
        window_start = 0
        for match in _SENTENCE_START.finditer(note, max(0, start - 400), start):
            window_start = match.end()
        window_start = max(window_start, start - 400)
        window = note[window_start:end]
        for pattern in self.declined_patterns:  # "No colonoscopy was performed": not done, whatever the verb
            negated = pattern.search(window)
            if negated is not None:
                return "declined", " ".join(negated.group(0).split())
        found: list[tuple[int, ProcedureStatus, str]] = []
        for status, pattern in self.cues.items():
            for match in pattern.finditer(window):
                found.append((match.start(), status, match.group(0)))
        if not found:
            return "performed", None
        position, status, cue = max(found, key=lambda f: f[0])
        verb = [m for m in self.performed.finditer(window) if m.start() > position]
        if verb and status != "declined":
            return "performed", None
        return status, cue


@lru_cache(maxsize=1)
def load_procedure_lexicon() -> ProcedureLexicon:
    """The packaged lexicon (parsed once). Raises ``ConfigError`` when it is invalid."""
    return ProcedureLexicon(resources.files("medcode.retrieval").joinpath("data/procedure_lexicon.json").read_bytes())


_WORD_BEFORE = re.compile(r"([\w\-/]+)\s+$")
_SITE_AFTER = re.compile(r"\s+of\s+(?:the\s+)?[\w\-]+(?:\s+and\s+(?:the\s+)?[\w\-]+)?", re.IGNORECASE)


def _test_mentions(note: str, seg: Segment, lex: ProcedureLexicon) -> list[ProcedureMention]:
    """A diagnostic test named in a segment ("the chest X-ray showed"): its words, up to ``test_words_before``
    words before it in the same clause and an "of the <site>" after it. A test that needs a site and has none
    ("the CT showed") is no mention."""
    out = []
    for match in lex.tests.finditer(seg.text):
        start, end = match.start(), match.end()
        for _ in range(lex.test_words_before):
            before = _WORD_BEFORE.search(seg.text, 0, start)
            if before is None or before.group(1).lower() in lex.test_clause_words:
                break
            start = before.start()
        site = _SITE_AFTER.match(seg.text, end)
        if site is not None:
            end = site.end()
        name = " ".join(match.group(0).lower().split())
        if name in lex.tests_needing_site:
            own = set(name.split()) | lex.test_filler_words | _STOP
            words = [w for w in _WORD.findall(seg.text[start:end].lower()) if w not in own and len(w) >= 3]
            if not words:
                continue
        a, b = seg.start + start, seg.start + end
        if lex.status(note, a, b)[0] == "performed":
            out.append(ProcedureMention(a, b, note[a:b], seg.section, f"test:{match.group(0).lower()}"))
    return out


def procedure_mentions(
    note: str, segments: list[Segment] | None = None, lexicon: ProcedureLexicon | None = None
) -> list[ProcedureMention]:
    """The note's segments that report a procedure done in this encounter, and the diagnostic tests it names
    (the lexicon's ``tests``: each test's own words, see ``_test_mentions``), in text order.

    Never raises for odd text (an empty note has no mentions); ``ConfigError`` if the lexicon is invalid.
    """
    lex = lexicon or load_procedure_lexicon()
    out: list[ProcedureMention] = []
    for seg in segments if segments is not None else segment_note(note):
        if seg.section in lex.stop_sections or not any(c.isalpha() for c in seg.text):
            continue
        out.extend(_test_mentions(note, seg, lex))
        verb = lex.performed.search(seg.text)
        if seg.section in lex.sections:
            trigger = f"section:{seg.section}"
        elif verb is not None:
            trigger = verb.group(0).lower()
        else:
            continue
        status, _cue = lex.status(note, seg.start, seg.end)
        if status != "performed":
            continue
        out.append(ProcedureMention(seg.start, seg.end, seg.text, seg.section, trigger))
    unique = {(m.start, m.end): m for m in out}
    return sorted(unique.values(), key=lambda m: (m.start, m.end))


_WORD = re.compile(r"[a-z][a-z0-9\-]*")
_STOP = frozenset(
    [
        "a",
        "an",
        "and",
        "the",
        "of",
        "with",
        "without",
        "was",
        "were",
        "is",
        "are",
        "be",
        "been",
        "to",
        "for",
        "in",
        "on",
        "at",
        "by",
        "from",
        "or",
        "as",
        "via",
        "who",
        "which",
        "that",
        "this",
        "patient",
        "she",
        "he",
        "her",
        "his",
        "they",
        "their",
        "we",
        "our",
        "under",
        "after",
        "before",
        "then",
        "today",
        "performed",
        "underwent",
        "procedure",
    ]
)


@dataclass(frozen=True)
class ProcedureCandidate:
    """A procedure code found for a query: ``system`` is ``icd10pcs`` or ``hcpcs``; ``score`` is BM25 relative
    to the query's best hit (1.0 for the best)."""

    code: str
    system: str
    description: str
    score: float


class ProcedureIndex:
    """A small lexical index (SQLite FTS5, BM25) of procedure texts: ICD-10-PCS titles with their axis labels
    and HCPCS Level II descriptors. Built in seconds from the code sets; no dense side, so it is optional
    and separate from the diagnosis index. Thread-safe for reads.

    ``build`` raises ``sqlite3.Error`` (as ``ConfigError``) when the file cannot be written.
    """

    def __init__(
        self, conn: sqlite3.Connection, lexicon: ProcedureLexicon | None = None, version: str = "in-memory"
    ) -> None:
        self._conn = conn
        self._lock = threading.Lock()
        self.lexicon = lexicon or load_procedure_lexicon()
        self.version = f"{version}+lexicon-{self.lexicon.version}"
        """The indexed code sets' versions and the lexicon's (its synonyms shape every query)."""

    @classmethod
    def build(
        cls,
        entries: Iterable[tuple[str, str, str]],
        path: str = ":memory:",
        lexicon: ProcedureLexicon | None = None,
        version: str = "in-memory",
    ) -> ProcedureIndex:
        """Index ``(code, system, text)`` rows at ``path`` (default in memory)."""
        try:
            conn = sqlite3.connect(path, check_same_thread=False)
            conn.execute("DROP TABLE IF EXISTS procs")
            conn.execute("CREATE VIRTUAL TABLE procs USING fts5(code UNINDEXED, system UNINDEXED, text)")
            conn.executemany("INSERT INTO procs VALUES (?,?,?)", entries)
            conn.commit()
        except sqlite3.Error as exc:
            raise ConfigError(f"cannot build the procedure index at {path}: {exc}") from None
        return cls(conn, lexicon, version)

    def query_terms(self, text: str) -> list[str]:
        """The words of a mention plus their PCS/HCPCS wording from the lexicon's synonyms, without stop words."""
        words = [w.strip("-") for w in _WORD.findall(text.lower())]
        terms: list[str] = []
        for word in words:
            terms.extend(self.lexicon.synonyms.get(word, "").split())  # before the length filter: "ct", "mri"
            if word not in _STOP and len(word) >= 3:
                terms.append(word)
        return list(dict.fromkeys(t for t in terms if t and t not in _STOP))

    def site_terms(self, text: str, test: str) -> set[str]:
        """The query terms of a test mention that are not the test's own words or filler: its body site."""
        own = set(self.query_terms(test)) | self.lexicon.test_filler_words
        return {t for t in self.query_terms(text) if t not in own}

    def search(self, text: str, system: str, top: int = 5) -> list[ProcedureCandidate]:
        """The best codes of ``system`` for a mention; empty when no word of it is indexed."""
        terms = self.query_terms(text)
        if not terms:
            return []
        query = " OR ".join(f'"{t}"' for t in terms[:30])
        with self._lock:
            rows = self._conn.execute(
                "SELECT code, system, text, bm25(procs) FROM procs WHERE procs MATCH ? AND system = ? "
                "ORDER BY bm25(procs) LIMIT ?",
                (query, system, top),
            ).fetchall()
        if not rows:
            return []
        best = rows[0][3]
        return [ProcedureCandidate(c, s, t.split(" | ")[0], round(b / best, 4) if best else 0.0) for c, s, t, b in rows]

    def close(self) -> None:
        self._conn.close()
