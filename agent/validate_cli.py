"""``medcode validate``: check anyone's proposed codes against a note with the deterministic rules.

Candidates are required (``--candidates FILE``, the codes the proposer was offered) unless
``--no-candidates`` is passed explicitly; the output then says the NOT_A_CANDIDATE check was skipped.
The same contract as ``POST /v1/validate`` (``agent/_validation.py``).

Exit codes: 0 every code accepted (warnings allowed), 1 at least one code rejected, 2 bad input
(unreadable note, malformed proposal JSON, missing fields, unknown setting, bad age or sex, neither
``--candidates`` nor ``--no-candidates``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from medcode.cli import CommandContext

__all__ = ["register"]


def _age(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"age must be a whole number of years, got {text!r}") from None
    if not 0 <= value <= 130:
        raise argparse.ArgumentTypeError(f"age must be between 0 and 130, got {value}")
    return value


def _sex(text: str) -> str:
    value = text.strip().upper()
    if value not in {"F", "M"}:
        raise argparse.ArgumentTypeError(f"sex must be F or M, got {text!r}")
    return value


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from medcode.codesets.cli import parse_date

    p = sub.add_parser(
        "validate",
        help="check proposed codes against a note with the deterministic rules",
        description=(
            "Check a proposal's codes (from any system) against a clinical note: hallucinated codes "
            "(malformed, unknown, headers, 7th characters), unsupported or mis-asserted evidence quotes "
            "(not in note, unrelated, negated, family history, hypothetical, uncertain, historical), and "
            "the wrong sibling (side, 7th character, type, stage, acuity, 'with'/'without' a complication), and "
            "conventions across codes (Excludes1, code first, use additional, duplicates, age and sex). "
            'The proposal file is JSON: {"codes": [{"code": "E11.9", "evidence": [{"text": "..."} or '
            '{"start": 10, "end": 25, "text": "..."}], "confidence": 0.9}]}. '
            'Procedures go in "procedures": [{"code": "0FT44ZZ" | "G0105" | "45380", "system": "icd10pcs" | "hcpcs" | '
            '"cpt" (default: from the shape), "modifiers": ["59"], "evidence": [...]}]: ICD-10-PCS codes complete and '
            "allowed by their table row, HCPCS/CPT in force, NCCI procedure-to-procedure pairs and modifiers (the "
            "quarter in force), planned, declined or earlier procedures. "
            "Give the codes the proposer was offered with --candidates, or --no-candidates to skip that check. "
            "Exit 0 when every code is accepted, 1 when any is rejected, 2 on bad input."
        ),
    )
    p.add_argument("--note", required=True, metavar="NOTE_FILE", help="the clinical note (UTF-8 text; '-' for stdin)")
    p.add_argument("--proposal", required=True, metavar="PROPOSAL.json", help="the proposed codes with evidence quotes")
    p.add_argument("--json", action="store_true", help="print the verdicts as JSON")
    p.add_argument(
        "--setting",
        choices=("outpatient", "inpatient"),
        default=None,
        help="care setting: uncertain diagnoses are rejected for outpatient, warned for inpatient "
        "(default: the 'setting' configuration value)",
    )
    p.add_argument("--age", type=_age, help="patient age in years (enables the age edits)")
    p.add_argument("--sex", type=_sex, help="patient sex F or M (enables the sex edits)")
    p.add_argument("--date", type=parse_date, help="date of service YYYY-MM-DD (picks the code-set release)")
    p.add_argument("--note-type", default="outpatient_visit", help="note type for the routing policy")
    offered = p.add_mutually_exclusive_group(required=True)
    offered.add_argument(
        "--candidates",
        metavar="FILE",
        help="file of the candidate codes the proposer was offered (one per line, or a JSON list); "
        "codes outside it are rejected NOT_A_CANDIDATE",
    )
    offered.add_argument(
        "--no-candidates",
        action="store_true",
        help="validate without a candidate list: a code the proposer was not offered is not rejected "
        "(the output says so)",
    )
    p.set_defaults(handler=_validate)


def _read_candidates(source: str) -> frozenset[str]:
    import json

    from medcode.errors import InputError

    try:
        raw = Path(source).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read candidates file {source}: {exc}") from None
    stripped = raw.strip()
    if stripped.startswith("["):
        try:
            values = json.loads(stripped)
        except ValueError as exc:
            raise InputError(f"candidates file {source} is not valid JSON: {exc}") from None
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise InputError(f"candidates file {source} must be a JSON list of code strings")
        return frozenset(values)
    return frozenset(line.strip() for line in raw.splitlines() if line.strip() and not line.startswith("#"))


def _validate(args: argparse.Namespace, ctx: CommandContext) -> int:
    from pydantic import ValidationError

    from medcode._input import describe_validation_error, read_note_text
    from medcode.agent._validation import CANDIDATES_SKIPPED, ValidationRequest, validate_proposal
    from medcode.cli import print_json
    from medcode.errors import InputError
    from medcode.validators import ValidatorPipeline, load_proposal

    settings = ctx.settings
    proposal = load_proposal(args.proposal)
    text = read_note_text(args.note)
    try:
        request = ValidationRequest(
            note=text,
            proposal=proposal,
            candidates=sorted(_read_candidates(args.candidates)) if args.candidates else None,
            no_candidates=args.no_candidates,
            setting=args.setting,
            note_type=args.note_type,
            age=args.age,
            sex=args.sex,
            date_of_service=args.date,
        )
    except ValidationError as exc:
        raise InputError(f"invalid validation request ({describe_validation_error(exc)})") from None
    with ValidatorPipeline(settings) as pipeline:
        report, document = validate_proposal(pipeline, settings, request)
    if args.json:
        print_json(document)
    else:
        out = sys.stdout
        out.write(f"code set {report.codeset_version}, rules {report.rules_version}\n")
        if request.candidates is None:
            out.write(f"note: {CANDIDATES_SKIPPED} (--no-candidates)\n")
        else:
            out.write(f"candidates: {len(request.candidates)} offered; codes outside them are rejected\n")
        for v in [*report.verdicts, *report.procedures]:
            label = v.status.upper() + (" (with warnings)" if v.status == "accepted" and v.warnings else "")
            out.write(f"{v.code:<10} {label}  {v.description or ''}\n")
            for r in v.results:
                out.write(f"    {'x' if r.severity == 'reject' else '!'} {r.rule}: {r.reason}\n")
                if r.suggestions:  # codes to use instead, or (CODE_FIRST, USE_ADDITIONAL, NCCI) to add
                    kind = "replace with" if r.replace_with else "suggestions"
                    out.write(f"      {kind}: {', '.join(r.suggestions[:10])}\n")
            for e in v.evidence:
                out.write(f"    evidence [{e.start}:{e.end}] {e.text[:100]!r}\n")
        routing = document["routing"]
        out.write(f"routing: {routing['decision']} ({'; '.join(routing['reasons'][:20])})\n")
    return 0 if report.all_accepted else 1
