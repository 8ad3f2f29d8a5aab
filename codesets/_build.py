"""Build the compact SQLite store of one ICD-10-CM release from its source data.

Runs once per release (a few seconds); lookups never import ``simple_icd_10_cm``.
The store is written to a temporary file and renamed into place, so a crash never
leaves a half-written store behind.
"""

from __future__ import annotations

import datetime as dt
import json
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from medcode._sqlite import atomic_build
from medcode.codesets._models import Release
from medcode.codesets._normalize import strip_dot
from medcode.errors import CodeSetBuildError

__all__ = ["SCHEMA_VERSION", "build_store"]

SCHEMA_VERSION = 1
NOTE_FIELDS = (
    "inclusion_terms",
    "includes",
    "excludes1",
    "excludes2",
    "code_first",
    "use_additional",
    "code_also",
    "notes",
)
_library_switched = False
_KIND = {"category": "category", "subcategory": "subcategory", "extended subcategory": "extension"}

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE chapters (id TEXT PRIMARY KEY, title TEXT NOT NULL, payload TEXT NOT NULL);
CREATE TABLE blocks (id TEXT PRIMARY KEY, title TEXT NOT NULL, chapter TEXT NOT NULL, payload TEXT NOT NULL);
CREATE TABLE codes (
    code TEXT PRIMARY KEY,
    nodot TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL,
    kind TEXT NOT NULL,
    billable INTEGER NOT NULL,
    parent TEXT,
    category TEXT NOT NULL,
    block TEXT NOT NULL,
    chapter TEXT NOT NULL,
    seventh_at TEXT,
    payload TEXT NOT NULL
);
CREATE INDEX codes_parent ON codes(parent);
CREATE INDEX codes_billable ON codes(billable, code);
"""


def _split_lines(text: str) -> list[str]:
    return [line.strip() for line in text.split("\n") if line.strip()]


def _payload(node: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "inclusion_terms": list(node.inclusion_term),
        "includes": list(node.includes),
        "excludes1": list(node.excludes1),
        "excludes2": list(node.excludes2),
        "code_first": _split_lines(node.code_first),
        "use_additional": _split_lines(node.use_additional_code),
        "code_also": _split_lines(node.code_also),
        "notes": _split_lines(node.notes),
    }
    if node.seven_chr_def:
        data["seventh_definitions"] = {k: " ".join(v.split()) for k, v in node.seven_chr_def.items()}
    if node.seven_chr_note:
        data["seventh_note"] = node.seven_chr_note
    return {k: v for k, v in data.items() if v}


def _walk(node: Any) -> Iterator[Any]:
    yield node
    for child in node.children:
        yield from _walk(child)


def _load_library(release: Release) -> Any:
    """Import ``simple_icd_10_cm`` and point it at the release's data."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from simple_icd_10_cm import simple_icd_10_cm as lib
    except ImportError as exc:  # pragma: no cover - declared dependency
        raise CodeSetBuildError("the simple-icd-10-cm package is not installed") from exc
    global _library_switched
    source = release.source
    if source.kind == "simple_icd_10_cm":
        from importlib.metadata import version

        installed = version("simple-icd-10-cm")
        if source.package_version and installed != source.package_version:
            raise CodeSetBuildError(
                f"release {release.id} needs simple-icd-10-cm=={source.package_version}, found {installed}"
            )
        if _library_switched:  # an earlier build in this process loaded other files
            lib.change_version()
            _library_switched = False
        return lib
    if not (source.code_list and source.tabular_xml):
        raise CodeSetBuildError(f"release {release.id}: a 'files' source needs code_list and tabular_xml")
    for path in (source.code_list, source.tabular_xml):
        if not Path(path).is_file():
            raise CodeSetBuildError(f"release {release.id}: file not found: {path}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            lib.change_version(source.code_list, source.tabular_xml, suppress_warnings=True)
        _library_switched = True
    except Exception as exc:
        raise CodeSetBuildError(f"release {release.id}: cannot parse {source.tabular_xml}: {exc}") from exc
    return lib


def build_store(release: Release, target: Path) -> dict[str, int]:
    """Write the SQLite store for ``release`` at ``target`` and return its counts.

    Raises ``CodeSetBuildError`` when the source cannot be read or yields no billable codes.
    """
    lib = _load_library(release)
    counts = {"chapters": 0, "blocks": 0, "codes": 0, "billable": 0, "categories": 0}
    with atomic_build(target, "code-set store", schema_version=SCHEMA_VERSION, error=CodeSetBuildError) as conn:
        conn.executescript(_SCHEMA)
        code_rows: list[tuple[Any, ...]] = []
        for chapter in lib._chapter_list:
            conn.execute(
                "INSERT INTO chapters VALUES (?,?,?)",
                (chapter.name, chapter.description, json.dumps(_payload(chapter))),
            )
            counts["chapters"] += 1
            for node in _walk(chapter):
                if node.type == "section":
                    conn.execute(
                        "INSERT OR IGNORE INTO blocks VALUES (?,?,?,?)",
                        (node.name, node.description, chapter.name, json.dumps(_payload(node))),
                    )
                    counts["blocks"] += 1
                    continue
                kind = _KIND.get(node.type)
                if kind is None:
                    continue
                block = node.parent
                while block is not None and block.type != "section":
                    block = block.parent
                parent = node.parent.name if node.parent is not None and node.parent.type != "section" else None
                seventh_owner = node if node.seven_chr_def else node.seven_chr_def_ancestor
                billable = not node.children
                code_rows.append(
                    (
                        node.name,
                        strip_dot(node.name),
                        node.description,
                        kind,
                        int(billable),
                        parent,
                        node.name[:3],
                        block.name if block is not None else "",
                        chapter.name,
                        seventh_owner.name if seventh_owner is not None else None,
                        json.dumps(_payload(node)),
                    )
                )
                counts["codes"] += 1
                counts["billable"] += int(billable)
                counts["categories"] += int(kind == "category")
        conn.executemany("INSERT INTO codes VALUES (?,?,?,?,?,?,?,?,?,?,?)", code_rows)
        if counts["billable"] == 0:
            raise CodeSetBuildError(f"release {release.id}: no billable codes found in the source")
        meta = {
            "release": release.model_dump_json(),
            "built_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "counts": json.dumps(counts),
        }
        conn.executemany("INSERT INTO meta VALUES (?,?)", meta.items())
    return counts
