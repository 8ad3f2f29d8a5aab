"""``ICD10CMCodeSet``: read-only lookups in one release's SQLite store."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, NamedTuple

from medcode._sqlite import ReadOnlyStore
from medcode.codesets._build import NOTE_FIELDS, SCHEMA_VERSION
from medcode.codesets._models import CodeRecord, InheritedNote, Release, SeventhCharacter
from medcode.codesets._normalize import normalize_icd10cm, strip_dot
from medcode.errors import CodeSetBuildError, UnknownCodeError

__all__ = ["BillableEntry", "CodeOutline", "ICD10CMCodeSet"]

_INHERITABLE = ("includes", "excludes1", "excludes2", "code_first", "use_additional", "code_also", "notes")


class BillableEntry(NamedTuple):
    """A billable code with the texts an index embeds, its parent and its kind (7th-character variants are
    ``extension`` codes under one parent)."""

    code: str
    description: str
    chapter: str
    inclusion_terms: list[str]
    includes: list[str]
    parent: str | None
    kind: str


class CodeOutline(NamedTuple):
    """A code's place in the hierarchy: what walking the tree needs, without the notes."""

    code: str
    description: str
    billable: bool
    parent: str | None
    kind: str


class ICD10CMCodeSet(ReadOnlyStore):
    """One ICD-10-CM release. Thread-safe for reads; opening takes milliseconds.

    Lookups accept any spelling ``normalize_icd10cm`` accepts. ``get`` raises
    ``MalformedCodeError`` for bad shapes and ``UnknownCodeError`` (with near matches) for
    codes the release does not contain.
    """

    def __init__(self, store: Path) -> None:
        super().__init__(
            store,
            what="code-set store",
            schema_version=SCHEMA_VERSION,
            error=CodeSetBuildError,
            fix="the code-set registry rebuilds it from the installed package",
        )
        try:
            meta = dict(self._conn().execute("SELECT key, value FROM meta").fetchall())
        except sqlite3.DatabaseError as exc:
            raise CodeSetBuildError(f"code-set store {store} is unreadable ({exc}); delete it to rebuild") from exc
        self.release = Release.model_validate_json(meta["release"])
        self.counts: dict[str, int] = json.loads(meta["counts"])
        self.built_at = meta["built_at"]
        self._record = lru_cache(maxsize=16384)(self._record_uncached)
        self._ancestor = lru_cache(maxsize=8192)(self._ancestor_uncached)

    # -- plumbing -----------------------------------------------------------------

    def _row(self, code: str) -> tuple[Any, ...] | None:
        row: tuple[Any, ...] | None = (
            self._conn()
            .execute(
                "SELECT code, description, kind, billable, parent, category, block, chapter, seventh_at, payload "
                "FROM codes WHERE nodot = ?",
                (strip_dot(code),),
            )
            .fetchone()
        )
        return row

    # -- public -------------------------------------------------------------------
    @property
    def version(self) -> str:
        """The release id, e.g. ``icd10cm-2026-04``."""
        return self.release.id

    def __contains__(self, code: object) -> bool:
        try:
            return self._row(normalize_icd10cm(code)) is not None
        except Exception:
            return False

    def exists(self, code: str) -> bool:
        """True when the (normalised) code is in the release, billable or not. Never raises."""
        return code in self

    def is_billable(self, code: str) -> bool:
        """True for a billable (leaf) code. Raises like ``get``."""
        return self.get(code).billable

    def canonical(self, code: str) -> str:
        """The dotted form of an existing code. Raises like ``get``."""
        return self.get(code).code

    def get(self, code: str) -> CodeRecord:
        """The full record of a code, with inherited notes and 7th-character rules.

        Raises ``MalformedCodeError`` or ``UnknownCodeError`` (whose ``suggestions`` hold the
        nearest existing ancestor and its billable children).
        """
        normalized = normalize_icd10cm(code)
        record = self._record(normalized)
        if record is None:
            raise UnknownCodeError(normalized, self.version, self.suggest(normalized))
        return record

    def _record_uncached(self, code: str) -> CodeRecord | None:
        row = self._row(code)
        if row is None:
            return None
        (canon, description, kind, billable, parent, category, block, chapter, seventh_at, payload) = row
        own: dict[str, Any] = json.loads(payload)
        conn = self._conn()
        children = [r[0] for r in conn.execute("SELECT code FROM codes WHERE parent = ? ORDER BY code", (canon,))]
        # Ancestors: existing prefixes (nearest first), then the block and the chapter.
        nodot = strip_dot(canon)
        prefixes = [self._ancestor("code", nodot[:length]) for length in range(len(nodot) - 1, 2, -1)]
        block_hit = self._ancestor("block", block)
        chapter_hit = self._ancestor("chapter", chapter)
        ancestors = [a for a in (*prefixes, block_hit, chapter_hit) if a is not None]
        inherited: dict[str, list[InheritedNote]] = {}
        for field in _INHERITABLE:
            notes = [n for _, _, fields in ancestors for n in fields.get(field, ())]
            if notes:
                inherited[field] = notes
        return CodeRecord(
            code=canon,
            release=self.version,
            description=description,
            kind=kind,
            billable=bool(billable),
            parent=parent,
            category=category,
            block=block,
            block_title=block_hit[1] if block_hit else "",
            chapter=chapter,
            chapter_title=chapter_hit[1] if chapter_hit else "",
            children=children,
            inherited=inherited,
            seventh=self._seventh(canon, kind, parent, seventh_at, children),
            **{field: own.get(field, []) for field in NOTE_FIELDS},
        )

    def _ancestor_uncached(
        self, table: Literal["code", "block", "chapter"], key: str
    ) -> tuple[str, str, dict[str, tuple[InheritedNote, ...]]] | None:
        """(source, title, inheritable notes) of an ancestor: a code (by undotted prefix), a block or a
        chapter; None when it does not exist. Cached: many records share their ancestors."""
        conn = self._conn()
        if table == "code":
            hit = conn.execute("SELECT code, payload FROM codes WHERE nodot = ?", (key,)).fetchone()
            source, title = (hit[0], "") if hit else ("", "")
        else:
            hit = conn.execute(f"SELECT title, payload FROM {table}s WHERE id = ?", (key,)).fetchone()
            source, title = (key if table == "block" else f"Chapter {key}", hit[0]) if hit else ("", "")
        if hit is None:
            return None
        data: dict[str, Any] = json.loads(hit[1])
        notes = {f: tuple(InheritedNote(source=source, text=t) for t in data.get(f, [])) for f in _INHERITABLE}
        return source, title, notes

    def _seventh(
        self, code: str, kind: str, parent: str | None, seventh_at: str | None, children: list[str]
    ) -> SeventhCharacter | None:
        if seventh_at is None:
            return None
        hit = self._conn().execute("SELECT payload FROM codes WHERE code = ?", (seventh_at,)).fetchone()
        owner = json.loads(hit[0]) if hit else {}
        definitions: dict[str, str] = owner.get("seventh_definitions", {})
        note = owner.get("seventh_note", "")
        if kind == "extension":
            char = code[-1]
            base = strip_dot(parent or code[:-1])
            siblings = [c[-1] for c in self.children(parent)] if parent else [char]
            return SeventhCharacter(
                defined_at=seventh_at,
                definitions=definitions,
                allowed=siblings,
                required=False,
                character=char,
                meaning=definitions.get(char),
                placeholder_x=len(base) < 6,
                note=note,
            )
        allowed = sorted({c[-1] for c in children if len(strip_dot(c)) == 7}) or sorted(definitions)
        return SeventhCharacter(
            defined_at=seventh_at, definitions=definitions, allowed=allowed, required=True, note=note
        )

    def children(self, code: str) -> list[str]:
        """Direct children (dotted) of an existing code, in code order. Raises like ``get``."""
        canon = self.get(code).code
        return [r[0] for r in self._conn().execute("SELECT code FROM codes WHERE parent = ? ORDER BY code", (canon,))]

    def billable_descendants(self, code: str, limit: int = 50) -> list[str]:
        """Billable codes under a header (or the code itself if billable). Raises like ``get``."""
        canon = self.get(code).code
        # A descendant's dotted code starts with the header's dotted code (the dot is always 4th), so
        # this is a range scan of the (billable, code) index rather than a filter over every billable code.
        rows = self._conn().execute(
            "SELECT code FROM codes WHERE billable = 1 AND code >= ? AND code < ? ORDER BY code LIMIT ?",
            (canon, canon + "\x7f", limit),
        )
        return [r[0] for r in rows]

    def suggest(self, code: str, limit: int = 10) -> list[str]:
        """Near matches for an unknown code: nearest existing ancestor, then its billable codes."""
        nodot = strip_dot(code)
        conn = self._conn()
        for length in range(len(nodot) - 1, 2, -1):
            hit = conn.execute("SELECT code, billable FROM codes WHERE nodot = ?", (nodot[:length],)).fetchone()
            if hit:
                out = [hit[0]]
                out += [c for c in self.billable_descendants(hit[0], limit) if c != hit[0]]
                return out[:limit]
        # Same category letter+digits missing entirely: look at the block neighbourhood.
        rows = conn.execute(
            "SELECT code FROM codes WHERE kind = 'category' AND nodot > ? ORDER BY nodot LIMIT 3", (nodot[:3],)
        ).fetchall()
        return [r[0] for r in rows]

    def iter_billable(self) -> Iterator[BillableEntry]:
        """Every billable code with the texts an index embeds, in code order."""
        rows = self._conn().execute(
            "SELECT code, description, chapter, payload, parent, kind FROM codes WHERE billable = 1 ORDER BY code"
        )
        for code, description, chapter, payload, parent, kind in rows:
            data = json.loads(payload)
            yield BillableEntry(
                code,
                description,
                chapter,
                data.get("inclusion_terms", []),
                data.get("includes", []),
                parent,
                kind,
            )

    def iter_headers(self) -> Iterator[tuple[str, str, str]]:
        """``(code, description, chapter)`` of every non-billable (header) code, in code order."""
        yield from self._conn().execute("SELECT code, description, chapter FROM codes WHERE billable = 0 ORDER BY code")

    def billable_descriptions(self) -> list[tuple[str, str, str]]:
        """``(code without dot, code, description)`` of every billable code, sorted by the dotless code.

        Cheap (no notes are parsed): for prefix searches with ``bisect`` over the first element.
        """
        rows = self._conn().execute("SELECT nodot, code, description FROM codes WHERE billable = 1 ORDER BY nodot")
        return [(str(n), str(c), str(d)) for n, c, d in rows]

    def describe(self, codes: Iterable[str]) -> dict[str, tuple[str, str]]:
        """``code -> (description, chapter)`` for the codes in the release, in one query per 500 codes.

        Codes are matched as stored (dotted, upper case, as ``canonical`` returns them); codes the
        release does not contain are left out, never an error.
        """
        wanted = sorted(set(codes))
        out: dict[str, tuple[str, str]] = {}
        for start in range(0, len(wanted), 500):
            part = wanted[start : start + 500]
            rows = self._conn().execute(
                f"SELECT code, description, chapter FROM codes WHERE code IN ({','.join('?' * len(part))})", part
            )
            for code, description, chapter in rows:
                out[str(code)] = (str(description), str(chapter))
        return out

    def outline(self) -> list[CodeOutline]:
        """Every code (headers too) with its description, billability, parent and kind, in code order."""
        rows = self._conn().execute("SELECT code, description, billable, parent, kind FROM codes ORDER BY code")
        return [
            CodeOutline(code, description, bool(billable), parent, kind)
            for code, description, billable, parent, kind in rows
        ]

    def chapter_title(self, chapter: str) -> str:
        """Title of a chapter id (``"19"``); empty string when unknown."""
        row = self._conn().execute("SELECT title FROM chapters WHERE id = ?", (chapter,)).fetchone()
        return str(row[0]) if row else ""

    def stats(self) -> dict[str, Any]:
        """Counts and provenance of this release."""
        return {
            "system": self.release.system,
            "version": self.version,
            "name": self.release.name,
            "effective_from": self.release.effective_from.isoformat(),
            "effective_to": self.release.effective_to.isoformat(),
            "source": self.release.source.model_dump(exclude_none=True),
            "built_at": self.built_at,
            **self.counts,
        }
