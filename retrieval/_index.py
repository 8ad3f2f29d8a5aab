"""``CodeIndex``: the embedded code index (chromadb, dense) plus an SQLite FTS5 index (lexical).

Layout under ``<data_dir>/retrieval/<codeset version>/``:

- ``manifest.json``: code-set version, embedder id, unit count, progress and status. Written
  atomically after every chunk, so an interrupted build resumes where it stopped.
- ``lexical.sqlite``: the index units (texts -> codes) and their FTS5 (bm25) table, built atomically
  with its schema version stamped (``medcode._sqlite``); a file of another version is refused.
- ``chroma/``: the chromadb ``PersistentClient`` store (absent when ``chroma_host`` is set: then
  the same collection lives on the chroma server, reached with ``HttpClient``).

An *index unit* is one text pointing at one or more codes: a billable code's description, one of
its inclusion terms or "includes" notes. Codes whose descriptions differ only by a 7th-character
encounter suffix ("..., initial encounter", "..., sequela") share one unit; the variant is chosen
at query time (``retrieval/data/seventh_character_cues.json``). Non-billable header codes are in
the lexical side only (``billable_only=False``).
"""

from __future__ import annotations

import bisect
import contextlib
import datetime as dt
import hashlib
import json
import logging
import os
import re
import shutil
import sqlite3
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from medcode._sqlite import ReadOnlyStore, atomic_build, schema_version_of
from medcode.codesets import ICD10CMCodeSet, strip_dot
from medcode.config import Settings
from medcode.errors import IndexMismatchError, IndexNotBuiltError, RetrievalError
from medcode.retrieval._alphabetic import dense_worthy, index_entries
from medcode.retrieval._embedder import Embedder
from medcode.retrieval._expand import dictionary_forms
from medcode.retrieval._models import IndexInfo

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

__all__ = ["FORMAT_VERSION", "CodeIndex", "IndexUnit", "build_index", "index_dir", "index_info", "units_for"]

log = logging.getLogger(__name__)

FORMAT_VERSION = 3  # 3: Alphabetic Index entries
LEXICAL_SCHEMA_VERSION = 2  # PRAGMA user_version of lexical.sqlite; bump when its tables change (2: dictionary)
_REBUILD = "run `medcode index build --rebuild`"
_CHUNK = 1024
_ENCOUNTER = re.compile(r",\s*(?:initial encounter|subsequent encounter|sequela)\b.*$")
_TOKEN = re.compile(r"[a-z0-9]+")
_NONESSENTIAL = re.compile(r"\s*\([^()]*\)")
_STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "for",
        "from",
        "has",
        "have",
        "he",
        "her",
        "his",
        "in",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "she",
        "that",
        "the",
        "their",
        "this",
        "to",
        "was",
        "were",
        "will",
        "with",
        "patient",
        "patients",
        "pt",
        "reports",
        "states",
        "noted",
        "also",
        "which",
        "who",
        "not",
        "no",
    ]
)


@dataclass(frozen=True)
class IndexUnit:
    """One indexed text and the codes it points to (several only for 7th-character variants)."""

    id: int
    text: str
    kind: str  # description | inclusion_term | includes (each maybe + "_short") | alphabetic_index | header
    codes: tuple[str, ...]
    chapter: str
    category: str
    billable: bool
    variants: bool  # codes are 7th-character variants of one condition
    dense: bool = True  # embedded on the dense side (every unit is on the lexical side)


def index_dir(settings: Settings, version: str) -> Path:
    """Where the index for a code-set version lives."""
    return settings.data_dir / "retrieval" / version


def _collection_name(version: str, embedder_id: str) -> str:
    digest = hashlib.sha1(embedder_id.encode()).hexdigest()[:8]
    return re.sub(r"[^A-Za-z0-9._-]", "-", f"medcode-{version}-{digest}")


def units_for(
    codeset: ICD10CMCodeSet, codes: Iterable[str] | None = None, *, alphabetic: bool = True
) -> list[IndexUnit]:
    """The index units of a code set (or of a subset of its codes, for tests), in a stable order.

    Units come from the Tabular List (descriptions, inclusion terms, "includes" notes and their
    short forms; billable codes from ``ICD10CMCodeSet.iter_billable``, whose parent and kind let
    7th-character variants of one parent share a unit; header codes from ``iter_headers``) and,
    with ``alphabetic``, from the Alphabetic Index (``index_entries``): a phrase that equals a
    Tabular text of the same category joins its unit instead of adding one.
    """
    wanted = {strip_dot(c).upper() for c in codes} if codes is not None else None
    groups: dict[tuple[str, str, str], list[str]] = {}
    meta: dict[tuple[str, str, str], tuple[str, str, bool, str]] = {}
    parent_of: dict[str, str | None] = {}
    lexical_only: set[tuple[str, str, str]] = set()
    for code, description, chapter, inclusion, includes, parent, kind in codeset.iter_billable():
        if wanted is not None and strip_dot(code) not in wanted:
            continue
        parent_of[code] = parent
        category = strip_dot(code)[:3]
        texts: list[tuple[str, str, bool]] = []
        if kind == "extension" and _ENCOUNTER.search(description):
            texts.append((_ENCOUNTER.sub("", description).strip(), "description", True))
        else:
            texts.append((description, "description", False))
        texts += [(t, "inclusion_term", False) for t in inclusion]
        texts += [(t, "includes", False) for t in includes]
        # ICD-10-CM's parenthesised words are nonessential modifiers: index the short form too
        # ("hypertension (arterial) (benign) ..." -> "hypertension").
        for text, text_kind, is_variant in list(texts):
            short = " ".join(_NONESSENTIAL.sub("", text).split()).strip(" ,")
            if short and short.lower() != " ".join(text.split()).lower():
                texts.append((short, f"{text_kind}_short", is_variant))
        for text, text_kind, is_variant in texts:
            text = " ".join(text.split())
            if not text:
                continue
            key = (text.lower(), category, parent if is_variant and parent else "")
            if key not in groups:
                groups[key] = []
                meta[key] = (text, text_kind, is_variant, chapter)
            if code not in groups[key]:
                groups[key].append(code)
    if alphabetic:
        chapter_of = {c: meta[k][3] for k, cs in groups.items() for c in cs}
        for entry in index_entries(codeset)[0]:
            codes_here = [c for c in entry.codes if wanted is None or strip_dot(c) in wanted]
            if not codes_here or codes_here[0] not in chapter_of:
                continue
            parent = parent_of.get(codes_here[0]) or "" if entry.variants else ""
            phrases = [entry.text]
            if entry.modifiers:  # nonessential modifiers as optional words: the phrase with and without them
                words = " ".join(m.strip("()") for m in entry.modifiers)
                phrases.append(f"{entry.text} {words}")
            if entry.alias:  # "abdominal pain" beside "Pain abdominal": the phrase dictionary matches word order
                phrases.append(entry.alias)
            for raw_phrase in phrases:
                phrase = " ".join(raw_phrase.split())
                key = (phrase.lower(), strip_dot(codes_here[0])[:3], parent)
                if key not in groups:
                    groups[key] = []
                    meta[key] = (phrase, "alphabetic_index", entry.variants, chapter_of[codes_here[0]])
                    if phrase != entry.text or not dense_worthy(entry):
                        lexical_only.add(key)
                for code in codes_here:
                    if code not in groups[key]:
                        groups[key].append(code)
    units: list[IndexUnit] = []
    for key, group_codes in groups.items():
        text, text_kind, is_variant, chapter = meta[key]
        units.append(
            IndexUnit(
                id=len(units),
                text=text,
                kind=text_kind,
                codes=tuple(group_codes),
                chapter=chapter,
                category=key[1],
                billable=True,
                variants=is_variant and len(group_codes) > 1,
                dense=key not in lexical_only,
            )
        )
    ancestors = {w[:n] for w in wanted for n in range(3, len(w))} if wanted is not None else set()
    for code, description, chapter in codeset.iter_headers():
        if wanted is None or strip_dot(code) in ancestors:
            units.append(
                IndexUnit(len(units), description, "header", (code,), chapter, strip_dot(code)[:3], False, False)
            )
    return units


def _units_digest(units: Sequence[IndexUnit]) -> str:
    h = hashlib.sha256()
    for u in units:
        h.update(f"{u.id}\x1f{u.text}\x1f{','.join(u.codes)}\x1f{u.billable}\x1f{u.dense}\n".encode())
    return h.hexdigest()[:16]


def _write_json_atomic(path: Path, payload: dict[str, Any]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2), encoding="utf-8")
    os.replace(tmp, path)


def _read_manifest(path: Path) -> dict[str, Any] | None:
    """The manifest, None when absent; raises IndexNotBuiltError when unreadable."""
    file = path / "manifest.json"
    if not file.exists():
        return None
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or not isinstance(data.get("format"), int):
            raise ValueError("not a medcode index manifest")
        return data
    except (OSError, ValueError) as exc:
        raise IndexNotBuiltError(
            f"retrieval index at {path} is corrupt ({exc}); run `medcode index build --rebuild`"
        ) from None


def _dir_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.exists() else 0


def _chroma_client(settings: Settings, path: Path) -> Any:
    """A chroma client: on-disk under ``path``, or the configured server. Telemetry is off."""
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
    try:
        if settings.chroma_host:
            return chromadb.HttpClient(host=settings.chroma_host, port=settings.chroma_port, settings=chroma_settings)
        return chromadb.PersistentClient(path=str(path / "chroma"), settings=chroma_settings)
    except Exception as exc:  # chroma raises a variety of errors for unreachable/corrupt stores
        where = f"{settings.chroma_host}:{settings.chroma_port}" if settings.chroma_host else str(path / "chroma")
        raise RetrievalError(f"cannot open the chroma store at {where}: {exc}") from exc


def _open_chroma_for_build(settings: Settings, path: Path) -> Any:
    """A chroma client for writing; an unreadable local store is deleted and recreated once."""
    try:
        client = _chroma_client(settings, path)
        client.list_collections()
        return client
    except Exception as exc:
        if settings.chroma_host:
            raise RetrievalError(
                f"cannot use the chroma server {settings.chroma_host}:{settings.chroma_port}: {exc}"
            ) from exc
        log.warning("chroma store at %s is unreadable (%s); recreating it", path / "chroma", exc)
        from chromadb.api.shared_system_client import SharedSystemClient

        SharedSystemClient.clear_system_cache()
        shutil.rmtree(path / "chroma", ignore_errors=True)
        return _chroma_client(settings, path)


# -- lexical side ----------------------------------------------------------------------------


def _dictionary_texts(units: Sequence[IndexUnit], codeset: ICD10CMCodeSet) -> list[tuple[str, list[str], str]]:
    """(text, codes, unit kind) for the phrase dictionary.

    Billable units that are not 7th-character variant groups give their own codes; a header code's
    text gives its default billable code: the descendant with the shortest description that says
    "unspecified", else its only billable descendant.
    """
    out = [(u.text, list(u.codes), u.kind) for u in units if u.billable and not u.variants]
    rows = codeset.billable_descriptions()
    keys = [r[0] for r in rows]
    for unit in units:
        if unit.billable:
            continue
        prefix = strip_dot(unit.codes[0])
        below = rows[bisect.bisect_left(keys, prefix) : bisect.bisect_left(keys, prefix + "\x7f")]
        unspecified = [(len(desc), code) for _, code, desc in below if "unspecified" in desc.lower()]
        default = min(unspecified)[1] if unspecified else None
        if default is None and len(below) == 1:
            default = below[0][1]
        if default is not None:
            out.append((unit.text, [default], "header"))
    return out


def _build_lexical(path: Path, units: Sequence[IndexUnit], codeset: ICD10CMCodeSet) -> None:
    """Write ``lexical.sqlite`` atomically (stamped ``LEXICAL_SCHEMA_VERSION``): the units, their FTS5
    index and the phrase dictionary's automatic forms. Raises ``RetrievalError``."""
    forms = dictionary_forms(_dictionary_texts(units, codeset))
    with atomic_build(path, "lexical index", schema_version=LEXICAL_SCHEMA_VERSION, error=RetrievalError) as conn:
        conn.executescript(
            """
            CREATE TABLE units (id INTEGER PRIMARY KEY, text TEXT NOT NULL, kind TEXT NOT NULL, codes TEXT NOT NULL,
                                chapter TEXT NOT NULL, category TEXT NOT NULL, billable INTEGER NOT NULL,
                                variants INTEGER NOT NULL);
            CREATE INDEX units_category ON units(category);
            CREATE VIRTUAL TABLE units_fts USING fts5(text, content='units', content_rowid='id',
                                                      tokenize='porter unicode61 remove_diacritics 2');
            CREATE TABLE dictionary (form TEXT PRIMARY KEY, codes TEXT NOT NULL) WITHOUT ROWID;
            """
        )
        conn.executemany("INSERT INTO dictionary VALUES (?, ?)", ((f, " ".join(c)) for f, c in forms.items()))
        conn.executemany(
            "INSERT INTO units VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                (u.id, u.text, u.kind, " ".join(u.codes), u.chapter, u.category, int(u.billable), int(u.variants))
                for u in units
            ),
        )
        conn.execute("INSERT INTO units_fts(rowid, text) SELECT id, text FROM units")
        conn.execute("INSERT INTO units_fts(units_fts) VALUES ('optimize')")


def fts_query(text: str) -> str | None:
    """An FTS5 OR-query of the content words of ``text``; None when it has none."""
    tokens: list[str] = []
    for tok in _TOKEN.findall(text.lower()):
        if tok in _STOPWORDS or (len(tok) < 2 and not tok.isdigit()) or tok in tokens:
            continue
        tokens.append(tok)
    if not tokens:
        return None
    return " OR ".join(f'"{t}"' for t in tokens[:32])


# -- build ---------------------------------------------------------------------------------


def build_index(
    settings: Settings,
    codeset: ICD10CMCodeSet,
    *,
    rebuild: bool = False,
    codes: Iterable[str] | None = None,
    progress: bool = True,
    chunk_size: int = _CHUNK,
    batch_size: int = 64,
    embedder: Embedder | None = None,
) -> IndexInfo:
    """Build (or resume building) the index for ``codeset``; returns its status.

    An index built for another code-set version, embedder or unit list is rebuilt from scratch
    (logged). A complete matching index is left alone unless ``rebuild``. ``codes`` limits the
    index to a subset (tests). ``embedder`` defaults to a new one from the settings. Raises ``RetrievalError``
    when chroma cannot be written and ``ConfigError`` when the embedder is missing.
    """
    path = index_dir(settings, codeset.version)
    path.mkdir(parents=True, exist_ok=True)
    with _build_lock(path):
        return _build_locked(
            settings,
            codeset,
            path,
            rebuild=rebuild,
            codes=codes,
            progress=progress,
            chunk_size=chunk_size,
            batch_size=batch_size,
            embedder=embedder or Embedder.from_settings(settings),
        )


@contextlib.contextmanager
def _build_lock(path: Path) -> Iterator[None]:
    """One builder per index directory: a second process waits for the first to finish."""
    from filelock import FileLock, Timeout

    lock = FileLock(path / ".build.lock")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        log.warning("another process is building the index at %s; waiting for it", path)
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


def _build_locked(
    settings: Settings,
    codeset: ICD10CMCodeSet,
    path: Path,
    *,
    rebuild: bool,
    codes: Iterable[str] | None,
    progress: bool,
    chunk_size: int,
    batch_size: int,
    embedder: Embedder,
) -> IndexInfo:
    units = units_for(codeset, codes)
    digest = _units_digest(units)
    dense_units = [u for u in units if u.billable and u.dense]
    try:
        manifest = _read_manifest(path)
    except IndexNotBuiltError:
        log.warning("retrieval index at %s is corrupt; rebuilding", path)
        manifest = None
        rebuild = True
    same = (
        manifest is not None
        and manifest.get("format") == FORMAT_VERSION
        and manifest.get("codeset_version") == codeset.version
        and manifest.get("embedder") == embedder.id
        and manifest.get("units_digest") == digest
    )
    if manifest is not None and not same:
        log.warning(
            "retrieval index at %s was built for %s / %s; rebuilding for %s / %s",
            path,
            manifest.get("codeset_version"),
            manifest.get("embedder"),
            codeset.version,
            embedder.id,
        )
        rebuild = True
    lexical = path / "lexical.sqlite"
    if lexical.is_file() and schema_version_of(lexical) != LEXICAL_SCHEMA_VERSION:
        log.warning(
            "lexical index %s is from another medcode (schema %s); rebuilding it", lexical, schema_version_of(lexical)
        )
        lexical.unlink()
    if manifest is not None and same and manifest.get("status") == "complete" and not rebuild and lexical.is_file():
        return index_info(settings, codeset.version)
    name = _collection_name(codeset.version, embedder.id)
    client = _open_chroma_for_build(settings, path)
    if rebuild or manifest is None:
        stale = {name} | ({str(manifest["collection"])} if manifest and manifest.get("collection") else set())
        for old in stale:
            with contextlib.suppress(Exception):  # absent collection: nothing to delete
                client.delete_collection(old)
        for file in ("manifest.json", "lexical.sqlite"):
            (path / file).unlink(missing_ok=True)
        manifest = {
            "format": FORMAT_VERSION,
            "codeset_version": codeset.version,
            "embedder": embedder.id,
            "collection": name,
            "units": len(units),
            "dense_units": len(dense_units),
            "units_digest": digest,
            "units_done": 0,
            "codes": len({c for u in dense_units for c in u.codes}),
            "status": "building",
            "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "build_seconds": 0.0,
            "ef_search": settings.index_ef_search,
            "alphabetic_index": index_entries(codeset)[1].as_dict() if codes is None else None,
        }
        _write_json_atomic(path / "manifest.json", manifest)
    assert manifest is not None
    if not lexical.is_file():
        _build_lexical(lexical, units, codeset)
    collection = client.get_or_create_collection(
        name=name,
        configuration={
            "hnsw": {
                "space": "cosine",
                "ef_search": settings.index_ef_search,
                "ef_construction": 200,
                "max_neighbors": 32,
            }
        },
        metadata={"codeset_version": codeset.version, "embedder": embedder.id, "units_digest": digest},
        embedding_function=None,
    )
    # The collection is the truth for progress: chunks are upserted in order, then recorded.
    done = min(int(manifest.get("units_done", 0)), int(collection.count()))
    started = time.perf_counter() - float(manifest.get("build_seconds", 0.0))
    bar = _progress(total=len(dense_units), initial=done, enabled=progress)
    try:
        for offset in range(done, len(dense_units), chunk_size):
            chunk = dense_units[offset : offset + chunk_size]
            vectors = embedder.encode([u.text for u in chunk], batch_size=batch_size)
            _upsert(collection, chunk, vectors, codeset.version, embedder.id)
            manifest["units_done"] = offset + len(chunk)
            manifest["build_seconds"] = round(time.perf_counter() - started, 1)
            _write_json_atomic(path / "manifest.json", manifest)
            bar.update(len(chunk))
    finally:
        bar.close()
    manifest["status"] = "complete"
    manifest["built_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    manifest["build_seconds"] = round(time.perf_counter() - started, 1)
    _write_json_atomic(path / "manifest.json", manifest)
    return index_info(settings, codeset.version)


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(total: int, initial: int, enabled: bool) -> Any:
    if not enabled:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit="text", desc="embedding codes", file=sys.stderr, dynamic_ncols=True)


def _upsert(
    collection: Any, chunk: Sequence[IndexUnit], vectors: NDArray[np.float32], version: str, embedder: str
) -> None:
    collection.upsert(
        ids=[str(u.id) for u in chunk],
        embeddings=vectors,
        documents=[u.text for u in chunk],
        metadatas=[
            {
                "code": u.codes[0],
                "codes": list(u.codes),
                "chapter": u.chapter,
                "category": u.category,
                "kind": u.kind,
                "billable": u.billable,
                "codeset_version": version,
                "embedder": embedder,
            }
            for u in chunk
        ],
    )


def index_info(settings: Settings, version: str) -> IndexInfo:
    """Status of the index for a code-set version; never raises."""
    path = index_dir(settings, version)
    if not path.exists() or not (path / "manifest.json").exists():
        return IndexInfo(path=str(path), status="missing", message="no index; run `medcode index build`")
    try:
        manifest = _read_manifest(path)
    except IndexNotBuiltError as exc:
        return IndexInfo(path=str(path), status="corrupt", message=str(exc))
    assert manifest is not None
    status: Literal["complete", "building"] = "complete" if manifest.get("status") == "complete" else "building"
    return IndexInfo(
        path=str(path),
        status=status,
        codeset_version=manifest.get("codeset_version"),
        embedder=manifest.get("embedder"),
        units=manifest.get("dense_units"),
        units_done=manifest.get("units_done"),
        codes=manifest.get("codes"),
        built_at=manifest.get("built_at"),
        build_seconds=manifest.get("build_seconds"),
        size_bytes=_dir_size(path),
        alphabetic_index=manifest.get("alphabetic_index"),
        message="" if status == "complete" else "half-built; `medcode index build` resumes it",
    )


# -- query ---------------------------------------------------------------------------------


class CodeIndex:
    """An opened, complete index. Use ``CodeIndex.open``; thread-safe for queries.

    Raises ``IndexNotBuiltError`` (missing, half-built, corrupt) and ``IndexMismatchError``
    (another code-set version or embedder) on open, naming the command that fixes it.
    """

    def __init__(
        self, settings: Settings, codeset: ICD10CMCodeSet, embedder: Embedder, manifest: dict[str, Any]
    ) -> None:
        self.settings = settings
        self.codeset = codeset
        self.embedder = embedder
        self.manifest = manifest
        self.path = index_dir(settings, codeset.version)
        self._lexical_path = self.path / "lexical.sqlite"
        self._lexical = ReadOnlyStore(
            self._lexical_path,
            what="lexical index",
            schema_version=LEXICAL_SCHEMA_VERSION,
            error=IndexNotBuiltError,
            stale_error=IndexMismatchError,
            fix=_REBUILD,
        )
        try:
            count = self._conn().execute("SELECT count(*) FROM units").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            self._lexical.close()
            raise IndexNotBuiltError(f"lexical index {self._lexical_path} is unreadable ({exc}); {_REBUILD}") from None
        if count != manifest.get("units"):
            raise IndexNotBuiltError(
                f"lexical index {self._lexical_path} has {count} units, manifest says {manifest.get('units')}; "
                "run `medcode index build --rebuild`"
            )
        try:
            client = _chroma_client(settings, self.path)
            self._collection = client.get_collection(name=manifest["collection"], embedding_function=None)
            dense_count = int(self._collection.count())
        except Exception as exc:
            raise IndexNotBuiltError(
                f"dense index (chroma collection {manifest.get('collection')}) is missing or unreadable ({exc}); "
                "run `medcode index build --rebuild`"
            ) from None
        if dense_count != manifest.get("dense_units"):
            raise IndexNotBuiltError(
                f"dense index holds {dense_count} entries, manifest says {manifest.get('dense_units')}; "
                "run `medcode index build --rebuild`"
            )
        ef = self._collection.configuration.get("hnsw", {}) or {}
        if ef.get("ef_search") != settings.index_ef_search:
            # Persisted for the next process; chroma keeps a loaded segment's ef_search as it was.
            with contextlib.suppress(Exception):
                self._collection.modify(configuration={"hnsw": {"ef_search": settings.index_ef_search}})
        self._units: dict[int, IndexUnit] = {}
        self._vectors: dict[int, NDArray[np.float32]] = {}
        self._units_lock = threading.Lock()

    @classmethod
    def open(
        cls,
        settings: Settings,
        codeset: ICD10CMCodeSet,
        *,
        build_if_missing: bool = False,
        embedder: Embedder | None = None,
    ) -> CodeIndex:
        """Open the index for ``codeset``; build or resume it first when ``build_if_missing``.

        ``embedder`` (shared with other stages by the runtime) defaults to a new one from the settings.
        """
        embedder = embedder or Embedder.from_settings(settings)
        path = index_dir(settings, codeset.version)
        manifest = _read_manifest(path)
        if manifest is not None and manifest.get("format") != FORMAT_VERSION:
            raise IndexMismatchError(
                f"retrieval index at {path} has format {manifest.get('format')}, this medcode needs "
                f"{FORMAT_VERSION}; run `medcode index build --rebuild`"
            )
        if manifest is not None and (
            manifest.get("codeset_version") != codeset.version or manifest.get("embedder") != embedder.id
        ):
            raise IndexMismatchError(
                f"retrieval index at {path} was built for code set {manifest.get('codeset_version')} with embedder "
                f"{manifest.get('embedder')}, but this run uses {codeset.version} with {embedder.id}; "
                "run `medcode index build --rebuild`"
            )
        if manifest is None or manifest.get("status") != "complete":
            if not build_if_missing:
                state = "missing" if manifest is None else "half-built"
                raise IndexNotBuiltError(
                    f"retrieval index for {codeset.version} is {state} at {path}; run `medcode index build`"
                )
            log.warning("building the retrieval index for %s at %s (first use)", codeset.version, path)
            build_index(settings, codeset, embedder=embedder)
            manifest = _read_manifest(path)
            assert manifest is not None
        return cls(settings, codeset, embedder, manifest)

    def _conn(self) -> sqlite3.Connection:
        return self._lexical.connection()

    @property
    def version(self) -> str:
        """Code-set version, index format and a digest of the indexed texts: changes whenever results could."""
        return f"{self.codeset.version}/f{self.manifest.get('format')}/{self.manifest.get('units_digest')}"

    def units(self, ids: Iterable[int]) -> dict[int, IndexUnit]:
        """Index units by id (cached)."""
        wanted = [i for i in ids if i not in self._units]
        if wanted:
            rows = self._conn().execute(
                f"SELECT id, text, kind, codes, chapter, category, billable, variants FROM units "
                f"WHERE id IN ({','.join('?' * len(wanted))})",
                wanted,
            )
            with self._units_lock:
                for uid, text, kind, codes, chapter, category, billable, variants in rows:
                    self._units[uid] = IndexUnit(
                        uid, text, kind, tuple(codes.split()), chapter, category, bool(billable), bool(variants)
                    )
        return {i: self._units[i] for i in ids if i in self._units}

    def dictionary(self) -> dict[str, list[str]]:
        """The phrase dictionary's automatic forms (word key -> codes), computed when the index was built."""
        return {form: codes.split() for form, codes in self._conn().execute("SELECT form, codes FROM dictionary")}

    def dense(
        self, vectors: NDArray[np.float32], n: int, categories: Sequence[str] | None = None
    ) -> list[list[tuple[int, float]]]:
        """Nearest units per query vector as (unit id, cosine similarity), best first."""
        if len(vectors) == 0:
            return []
        where: dict[str, Any] | None = None
        if categories:
            where = {"category": {"$in": sorted(set(categories))}}
        try:
            result = self._collection.query(query_embeddings=vectors, n_results=n, where=where, include=["distances"])
        except Exception as exc:
            raise RetrievalError(f"dense index query failed: {exc}") from exc
        out: list[list[tuple[int, float]]] = []
        for ids, distances in zip(result["ids"], result["distances"] or [], strict=True):
            out.append([(int(i), 1.0 - float(d)) for i, d in zip(ids, distances, strict=True)])
        return out

    def vectors(self, ids: Iterable[int]) -> dict[int, NDArray[np.float32]]:
        """Unit vectors by unit id: stored ones from chroma, header texts embedded on first use (cached)."""
        import numpy as np

        ids = list(ids)
        if len(self._vectors) > 200_000:
            self._vectors.clear()  # bound memory in long-running processes
        wanted = [i for i in set(ids) if i not in self._vectors]
        if wanted:
            units = self.units(wanted)
            stored = [i for i in wanted if i in units and units[i].billable]
            if stored:
                try:
                    got = self._collection.get(ids=[str(i) for i in stored], include=["embeddings"])
                except Exception as exc:
                    raise RetrievalError(f"dense index lookup failed: {exc}") from exc
                for uid, vec in zip(got["ids"], got["embeddings"], strict=True):
                    self._vectors[int(uid)] = np.asarray(vec, dtype=np.float32)
            headers = [i for i in wanted if i in units and not units[i].billable]
            if headers:
                encoded = self.embedder.encode([units[i].text for i in headers])
                for uid, vec in zip(headers, encoded, strict=True):
                    self._vectors[uid] = vec
        return {i: self._vectors[i] for i in ids if i in self._vectors}

    def lexical(
        self, text: str, n: int, categories: Sequence[str] | None = None, billable_only: bool = True
    ) -> list[tuple[int, float]]:
        """Best bm25 units for ``text`` as (unit id, bm25 score, higher better), best first."""
        query = fts_query(text)
        if query is None:
            return []
        sql = (
            "SELECT units.id, -bm25(units_fts) AS s FROM units_fts JOIN units ON units.id = units_fts.rowid "
            "WHERE units_fts MATCH ?"
        )
        params: list[Any] = [query]
        if billable_only:
            sql += " AND units.billable = 1"
        if categories:
            sql += f" AND units.category IN ({','.join('?' * len(categories))})"
            params += list(categories)
        sql += " ORDER BY bm25(units_fts) LIMIT ?"
        params.append(n)
        try:
            return [(int(r[0]), float(r[1])) for r in self._conn().execute(sql, params)]
        except sqlite3.DatabaseError as exc:
            raise RetrievalError(f"lexical index query failed: {exc}") from exc

    def close(self) -> None:
        """Close this thread's lexical-index connection."""
        self._lexical.close()
