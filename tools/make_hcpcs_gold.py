"""Write ``evals/data/hcpcs_gold.jsonl``: the outpatient HCPCS procedure gold set with traps.

Usage: ``python tools/make_hcpcs_gold.py [--out evals/data/hcpcs_gold.jsonl]``. Deterministic: the notes are
short, synthetic (no patient data) and written by hand below; the pairs are HCPCS Level II pairs of the NCCI
quarter from 2026-04-01 (I/OCE 27.1.0, pyoce's archive) and the codes are in force in the HCPCS 2026-04 file.
Each record is checked against the record model (``medcode.evals.ProcedureGoldCase``) before it is written.
Nothing here was tuned on the proposer's output: the notes were written before it was run on them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from medcode.evals import ProcedureGoldCase

DOS = "2026-05-04"


def _line(
    code: str, quote: str, expect: str = "accepted", modifiers: tuple[str, ...] = (), warning: str | None = None
) -> dict[str, Any]:
    row: dict[str, Any] = {"code": code, "quote": quote, "expect": expect, "modifiers": list(modifiers)}
    if warning:
        row["warning"] = warning
    return row


def _gold(*codes: str | tuple[str, tuple[str, ...]]) -> list[dict[str, Any]]:
    out = []
    for c in codes:
        code, mods = (c, ()) if isinstance(c, str) else c
        out.append({"code": code, "modifiers": list(mods)})
    return out


FLU = "Influenza vaccine administered in the left deltoid."
FOOT = "Initial foot examination of a patient with diabetic neuropathy and loss of protective sensation performed."
NAILS = "Toenails trimmed, all ten."
COLO = "Screening colonoscopy performed; patient not at high risk for colorectal cancer."
SI = "Sacroiliac joint injection of anesthetic under fluoroscopic guidance was performed."
VISIT = "Seen in the hospital outpatient clinic for cough and fever; lungs clear."
NAILS_SEPARATE = "In a separate session later the same day, her toenails were trimmed."
PELVIC = "Screening pelvic and breast examination performed."
WAX = "Impacted cerumen was removed from the right ear with a curette."

CASES: list[dict[str, Any]] = [
    {
        "id": "hg-01",
        "trap": "clean",
        "note": f"CHIEF COMPLAINT: Annual influenza vaccination.\n\nPROCEDURES:\n- {FLU}\n",
        "gold": _gold("G0008"),
        "lines": [_line("G0008", FLU)],
    },
    {
        "id": "hg-02",
        "trap": "ncci_bundled",
        "note": f"HPI: 67-year-old man with type 2 diabetes.\n\nPROCEDURES:\n- {FOOT}\n- {NAILS}\n",
        "gold": _gold("G0245"),
        "lines": [_line("G0245", FOOT), _line("G0127", NAILS, "NCCI_PTP_BUNDLED")],
    },
    {
        "id": "hg-03",
        "trap": "ncci_bundled",
        "note": f"INDICATION: Average-risk colorectal cancer screening.\n\nPROCEDURES:\n- {COLO}\n",
        "gold": _gold("G0121"),
        "lines": [_line("G0121", COLO), _line("G0105", COLO, "NCCI_PTP_BUNDLED")],
    },
    {
        "id": "hg-04",
        "trap": "ncci_bundled",
        "note": f"HPI: Chronic low back pain radiating to the buttock.\n\nPROCEDURES:\n- {SI}\n",
        "gold": _gold("G0260"),
        "lines": [_line("G0260", SI), _line("G0259", SI, "NCCI_PTP_BUNDLED")],
    },
    {
        "id": "hg-05",
        "trap": "ncci_modifier_required",
        "note": f"HPI: {VISIT}\n{NAILS_SEPARATE}\n",
        "gold": _gold("G0127", ("G0463", ("XU",))),
        "lines": [_line("G0127", NAILS_SEPARATE), _line("G0463", VISIT, "NCCI_MODIFIER_REQUIRED")],
    },
    {
        "id": "hg-06",
        "trap": "ncci_modifier_bypass",
        "note": f"HPI: {VISIT}\n{NAILS_SEPARATE}\n",
        "gold": _gold("G0127", ("G0463", ("59",))),
        "lines": [
            _line("G0127", NAILS_SEPARATE),
            _line("G0463", VISIT, modifiers=("59",), warning="NCCI_MODIFIER_BYPASS"),
        ],
    },
    {
        "id": "hg-07",
        "trap": "ncci_modifier_bypass",
        "note": f"HPI: {VISIT}\n{NAILS_SEPARATE}\n",
        "gold": _gold(("G0127", ("XS",)), "G0463"),
        "lines": [
            _line("G0127", NAILS_SEPARATE, modifiers=("XS",)),
            _line("G0463", VISIT, warning="NCCI_MODIFIER_BYPASS"),
        ],
    },
    {
        "id": "hg-08",
        "trap": "ncci_modifier_required",
        "note": f"HPI: {VISIT}\n\nPROCEDURES:\n- {PELVIC}\n",
        "gold": _gold("G0101", ("G0463", ("25",))),
        "lines": [_line("G0101", PELVIC), _line("G0463", VISIT, "NCCI_MODIFIER_REQUIRED")],
    },
    {
        "id": "hg-09",
        "trap": "declined",
        "note": "PLAN: Offered pneumococcal vaccination. Patient declined the pneumococcal vaccine today.\n",
        "gold": [],
        "lines": [_line("G0009", "Patient declined the pneumococcal vaccine today.", "SPAN_NEGATED")],
    },
    {
        "id": "hg-10",
        "trap": "scheduled",
        "note": "PLAN: She is scheduled for a screening colonoscopy next month.\n",
        "gold": [],
        "lines": [_line("G0121", "She is scheduled for a screening colonoscopy next month.", "SPAN_HYPOTHETICAL")],
    },
    {
        "id": "hg-11",
        "trap": "earlier",
        "note": "HPI: 72-year-old man, s/p flexible sigmoidoscopy in 2019, normal. Here for blood pressure follow-up.\n",
        "gold": [],
        "lines": [_line("G0104", "s/p flexible sigmoidoscopy in 2019", "SPAN_HISTORICAL")],
    },
    {
        "id": "hg-12",
        "trap": "duplicate",
        "note": f"PROCEDURES:\n- {WAX}\n",
        "gold": _gold("G0268"),
        "lines": [_line("G0268", WAX), _line("G0268", WAX, "PROC_DUPLICATE")],
    },
    {
        "id": "hg-13",
        "trap": "unknown_code",
        "note": f"PROCEDURES:\n- {FLU}\n",
        "gold": _gold("G0008"),
        "lines": [_line("G0008", FLU), _line("G0999", FLU, "PROC_CODE_UNKNOWN")],
    },
    {
        "id": "hg-14",
        "trap": "declined",
        "note": "PLAN: Cerumen impaction discussed.\nNo cerumen removal was performed today; drops prescribed.\n",
        "gold": [],
        "lines": [_line("G0268", "No cerumen removal was performed today", "SPAN_NEGATED")],
    },
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "evals/data/hcpcs_gold.jsonl")
    args = parser.parse_args(argv)
    rows = []
    for case in CASES:
        record = ProcedureGoldCase.model_validate({**case, "date_of_service": DOS, "setting": "outpatient"})
        rows.append(json.dumps(record.model_dump(mode="json"), ensure_ascii=False, sort_keys=True))
    args.out.write_text("\n".join(rows) + "\n", encoding="utf-8")
    sys.stdout.write(f"wrote {len(rows)} records to {args.out}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
