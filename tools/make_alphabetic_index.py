"""Vendor the ICD-10-CM Alphabetic Index into ``retrieval/data/alphabetic_index.jsonl.gz``.

Reads the FY2025 files in ``../shared/icd10cm-index-2025/`` (public domain; see that folder's
PROVENANCE.md): the Index to Diseases and Injuries (flattened CSV), the Neoplasm Table, the Table
of Drugs and Chemicals and the External Cause Index (official XML). Writes one JSON object a line:

    {"s": source, "p": [main term, subterm, ...], "n": [nonessential modifiers], "c": "E11.65",
     "b": behaviour or use (table columns only), "via": "see: Pain, abdominal" (only when followed)}

Codes are written as the Index gives them (FY2025, some ending in "-"); ``medcode.retrieval``
maps them onto the release in force when it builds an index. "See" cross-references are
followed to the entry they name; the ones that cannot be followed (by site, by type...) are
counted and left out. Run ``python tools/make_alphabetic_index.py`` and commit the output.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import re
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT.parent / "shared" / "icd10cm-index-2025"
OUT = ROOT / "retrieval" / "data" / "alphabetic_index.jsonl.gz"

NEOPLASM_COLUMNS = {
    "2": "malignant primary",
    "3": "malignant secondary",
    "4": "carcinoma in situ",
    "5": "benign",
    "6": "uncertain behavior",
    "7": "unspecified behavior",
}
DRUG_COLUMNS = {"2": "poisoning", "6": "adverse effect", "7": "underdosing"}  # intent columns 3-5 left out
_PARENS = re.compile(r"\([^)]*\)")


def _norm(term: str) -> str:
    """Comparison key of an index term: lower case, no nonessential modifiers, no NEC, single spaces."""
    term = _PARENS.sub(" ", term.lower()).replace("(s)", " ")
    term = re.sub(r"\bnec\b", " ", term)
    return " ".join(term.replace(",", " , ").split()).strip(" ,")


def _main_variants(title: str) -> set[str]:
    """'Abdomen, abdominal' -> {'abdomen , abdominal', 'abdomen', 'abdominal'}.

    A part after the first names the main term only when it is a form of the first word ('abdominal',
    'diseased'): in 'Blood-forming organs, disease' or "Reiter's disease, syndrome, or urethritis" the later
    parts qualify the first, so 'see Disease' must not land on D75.9, nor 'see Tuberculosis' on
    'Converter, tuberculosis' (R76.11, a positive tuberculin test) before 'Tuberculosis' itself (A15.9).
    """
    parts = [_norm(p) for p in title.split(",") if p.strip()]
    first = parts[0] if parts else ""
    return {_norm(title), first, *(p for p in parts[1:] if p[:4] == first[:4])}


class _Tree:
    """Entries of one index with their paths, for following 'see' references."""

    def __init__(self) -> None:
        self.nodes: list[dict[str, Any]] = []  # {"path": [...], "code": str|None, "children": [ids]}
        self.mains: dict[str, list[int]] = {}

    def add(self, path: list[str], code: str | None, parent: int | None) -> int:
        node_id = len(self.nodes)
        self.nodes.append({"path": path, "code": code, "children": []})
        if parent is None:
            for variant in _main_variants(path[0]):
                self.mains.setdefault(variant, []).append(node_id)
        else:
            self.nodes[parent]["children"].append(node_id)
        return node_id

    def resolve(self, target: str) -> str | None:
        """The code of the entry a 'see' reference names, or None (by site, unknown term, no code).

        'see Neoplasm, malignant' means the Table of Neoplasms by site, never an entry under the disease index's
        'Neoplasm' (whose 'malignant mast cell' would otherwise match 'malignant' as a prefix).
        """
        parts = [p.strip() for p in target.split(",") if p.strip()]
        if parts and _norm(parts[0]) == "neoplasm":
            return None
        for cut in range(len(parts), 0, -1):
            for main in self.mains.get(_norm(", ".join(parts[:cut])), []):
                node: dict[str, Any] | None = self.nodes[main]
                for part in parts[cut:]:
                    assert node is not None
                    key = _norm(part)
                    match = next((c for c in node["children"] if _norm(self.nodes[c]["path"][-1]) == key), None)
                    if match is None:
                        match = next(
                            (c for c in node["children"] if _norm(self.nodes[c]["path"][-1]).startswith(key)), None
                        )
                    if match is None:
                        node = None
                        break
                    node = self.nodes[match]
                if node is not None and node["code"]:
                    return str(node["code"])
        return None


def _index_csv(path: Path, stats: Counter[str]) -> list[dict[str, Any]]:
    tree = _Tree()
    stack: list[int] = []
    rows = list(csv.DictReader(path.open(encoding="utf-8")))
    pending_see: list[tuple[list[str], list[str], str]] = []
    out: list[dict[str, Any]] = []
    for row in rows:
        level = int(row["Level"])
        stack = stack[:level]
        parent = stack[-1] if stack else None
        term_path = [*(tree.nodes[parent]["path"] if parent is not None else []), row["Term"].strip()]
        code = row["Code"].strip() or None
        node = tree.add(term_path, code, parent)
        stack.append(node)
        modifiers = _PARENS.findall(row["NonEssModif"] or "")
        stats["index_rows"] += 1
        if code:
            out.append({"s": "index", "p": term_path, "n": modifiers, "c": code})
            stats["index_coded"] += 1
        elif row["See"].strip():
            pending_see.append((term_path, modifiers, row["See"].strip()))
    for term_path, modifiers, target in pending_see:
        code = tree.resolve(target)
        stats["see_rows"] += 1
        if code is None:
            stats["see_unresolved"] += 1
            continue
        stats["see_followed"] += 1
        out.append({"s": "index", "p": term_path, "n": modifiers, "c": code, "via": f"see: {target}"})
    return out


def _title(elem: ET.Element) -> tuple[str, list[str]]:
    """An XML <title>'s text without its <nemod> parts, and those parts."""
    title = elem.find("title")
    if title is None:
        return "", []
    text = (title.text or "").strip()
    modifiers: list[str] = []
    for child in title:
        if child.tag == "nemod":
            modifiers += _PARENS.findall(child.text or "") or [f"({(child.text or '').strip()})"]
        text += " " + (child.tail or "").strip()
    return " ".join(text.split()), modifiers


def _walk_xml(
    elem: ET.Element, path: list[str], source: str, columns: dict[str, str] | None, stats: Counter[str], tree: _Tree
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for child in elem:
        if child.tag not in ("mainTerm", "term"):
            continue
        title, modifiers = _title(child)
        here = [*path, title]
        code_elem = child.find("code")
        if columns is None:
            code = (code_elem.text or "").strip() if code_elem is not None else ""
            if code:
                out.append({"s": source, "p": here, "n": modifiers, "c": code})
                stats[f"{source}_coded"] += 1
            tree.add(here, code or None, None)
        else:
            for cell in child.findall("cell"):
                col, code = cell.get("col", ""), (cell.text or "").strip()
                if col in columns and code and code != "--":
                    out.append({"s": source, "p": here, "n": modifiers, "c": code, "b": columns[col]})
                    stats[f"{source}_cells"] += 1
        out += _walk_xml(child, here, source, columns, stats, tree)
    return out


def _xml(path: Path, source: str, columns: dict[str, str] | None, stats: Counter[str]) -> list[dict[str, Any]]:
    root = ET.parse(path).getroot()
    tree = _Tree()
    out: list[dict[str, Any]] = []
    for letter in root.iter("letter"):
        out += _walk_xml(letter, [], source, columns, stats, tree)
    return out


def build(source: Path = SOURCE) -> tuple[list[dict[str, Any]], Counter[str]]:
    """Every entry of the four files, and counts of what was read, followed and left out."""
    stats: Counter[str] = Counter()
    entries = _index_csv(source / "ICD10CM_2025_Index.csv", stats)
    entries += _xml(source / "icd-10-cm-neoplasm-2025.xml", "neoplasm", NEOPLASM_COLUMNS, stats)
    entries += _xml(source / "icd-10-cm-drug-2025.xml", "drug", DRUG_COLUMNS, stats)
    entries += _xml(source / "icd-10-cm-eindex-2025.xml", "external", None, stats)
    stats["entries"] = len(entries)
    return entries, stats


def write(entries: list[dict[str, Any]], out: Path = OUT) -> None:
    """gzip with a fixed mtime, so the same input always gives the same bytes."""
    payload = "".join(json.dumps(e, ensure_ascii=False, separators=(",", ":")) + "\n" for e in entries)
    with out.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as gz:
        gz.write(payload.encode("utf-8"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, default=SOURCE, help="folder with the FY2025 index files")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    entries, stats = build(args.source)
    write(entries, args.out)
    for key, value in sorted(stats.items()):
        print(f"{key:>20} {value:>7}", file=sys.stderr)
    print(f"wrote {args.out} ({args.out.stat().st_size:,} bytes)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
