"""Drop curated phrase-dictionary terms that the Alphabetic Index already gives with the same code.

``retrieval/data/index_terms.json`` holds hand-curated defaults ("diabetes" -> E11.9). Since the
Alphabetic Index is in the index (and so in the phrase dictionary), a curated term whose key the
Index maps to exactly the same code is redundant; one the Index maps elsewhere or not at all
(abbreviations, "HTN") stays. Prints what it removes and rewrites the file in place.

    python tools/prune_index_terms.py [--data-dir DIR] [--dry-run]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from medcode.codesets import CodeSetRegistry
from medcode.config import load_settings
from medcode.retrieval._alphabetic import index_entries
from medcode.retrieval._expand import _key

TERMS = Path(__file__).resolve().parents[1] / "retrieval" / "data" / "index_terms.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--dry-run", action="store_true")
    args = parser.parse_args(argv)
    settings = load_settings(**({"data_dir": args.data_dir} if args.data_dir else {}))
    entries, _ = index_entries(CodeSetRegistry(settings).get())
    index: dict[str, set[str]] = {}
    for entry in entries:
        if entry.variants:
            continue
        for text in (entry.text, entry.alias):
            if text:
                index.setdefault(_key(text), set()).update(entry.codes)
    data = json.loads(TERMS.read_text(encoding="utf-8"))
    kept, dropped = {}, {}
    for term, code in data["terms"].items():
        (dropped if index.get(_key(term)) == {code} else kept)[term] = code
    for term, code in dropped.items():
        print(f"drop {term!r} -> {code} (the Index gives the same code)")
    print(f"{len(dropped)} of {len(data['terms'])} curated terms are in the Alphabetic Index; {len(kept)} kept")
    if not args.dry_run:
        data["terms"] = kept
        TERMS.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
