"""``medcode codes ...``: look up the code sets."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from medcode.cli import CommandContext

__all__ = ["parse_date", "register"]

_SYSTEMS = ("icd10cm", "icd10pcs", "hcpcs", "cpt")


def parse_date(text: str) -> dt.date:
    """``YYYY-MM-DD`` -> date, with an argparse-friendly error."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (expected YYYY-MM-DD): {text!r}") from None


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    codes = sub.add_parser(
        "codes",
        help="look up ICD-10-CM, ICD-10-PCS, HCPCS Level II and CPT codes",
        description="Look up ICD-10-CM (default), ICD-10-PCS, HCPCS Level II or CPT codes (CPT needs your licensed file).",
    )
    codes_sub = codes.add_subparsers(dest="codes_command", metavar="SUBCOMMAND", required=True)

    show = codes_sub.add_parser(
        "show",
        help="print a code's full record",
        description="Print a code's full record. ICD-10-CM: description, billable flag, hierarchy, tabular "
        "notes (own and inherited) and 7th-character rules. ICD-10-PCS: the title, whether CMS lists the code on the "
        "date, and each of the 7 axes (section, body system, root operation, body part, approach, device, qualifier "
        "in Medical and Surgical) with its value and label. HCPCS Level II: short descriptor, whether it is in "
        "force on the date, its span of quarters and OPPS status indicator (built once from the pyoce data). "
        "CPT: the descriptor from your licensed file (MEDCODE_CPT_FILE); medcode ships no CPT text. "
        "Exits 1 for an unknown code, 2 for a malformed one or a missing CPT file.",
    )
    show.add_argument(
        "code",
        help="a code, any case (e.g. s72001a for ICD-10-CM, 0ft44zz for ICD-10-PCS, j1100 for HCPCS, 99213 for CPT)",
    )
    show.add_argument("--system", choices=_SYSTEMS, default="icd10cm", help="code system (default: icd10cm)")
    show.add_argument("--json", action="store_true", help="print JSON")
    show.add_argument("--date", type=parse_date, help="date of service YYYY-MM-DD (default: newest release)")
    show.set_defaults(handler=_show)

    stats = codes_sub.add_parser("stats", help="counts and provenance of the code set", description="Code-set counts.")
    stats.add_argument("--system", choices=_SYSTEMS, default="icd10cm", help="code system (default: icd10cm)")
    stats.add_argument("--json", action="store_true", help="print JSON")
    stats.add_argument("--date", type=parse_date, help="date of service YYYY-MM-DD (default: newest release)")
    stats.set_defaults(handler=_stats)


def _show(args: argparse.Namespace, ctx: CommandContext) -> int:
    from medcode.cli import print_json
    from medcode.codesets import CodeSetRegistry

    if args.system == "icd10pcs":
        return _show_pcs(args, ctx)
    if args.system != "icd10cm":
        return _show_procedure(args, ctx)
    codeset = CodeSetRegistry(ctx.settings).get(args.date)
    record = codeset.get(args.code)
    if args.json:
        print_json(record.model_dump(mode="json"))
        return 0
    out = sys.stdout
    out.write(f"{record.code}  {record.description}\n")
    out.write(f"  release   {record.release}\n  billable  {'yes' if record.billable else 'no (header)'}\n")
    out.write(f"  chapter   {record.chapter}: {record.chapter_title}\n  block     {record.block_title}\n")
    if record.parent:
        out.write(f"  parent    {record.parent}\n")
    if record.children:
        out.write(f"  children  {', '.join(record.children[:20])}{' ...' if len(record.children) > 20 else ''}\n")
    if record.seventh:
        s = record.seventh
        if s.character:
            out.write(f"  7th char  {s.character} = {s.meaning} (defined at {s.defined_at})\n")
        else:
            out.write(f"  7th char  required: one of {''.join(s.allowed)} (defined at {s.defined_at})\n")
        if s.placeholder_x:
            out.write("            uses placeholder X\n")
    for field in ("inclusion_terms", "includes", "excludes1", "excludes2", "code_first", "use_additional", "code_also"):
        for note in record.all_notes(field):
            out.write(
                f"  {field:<15} {note.text}" + (f"  [{note.source}]" if note.source != record.code else "") + "\n"
            )
    return 0


def _stats(args: argparse.Namespace, ctx: CommandContext) -> int:
    from medcode.cli import print_json
    from medcode.codesets import CodeSetRegistry, open_cpt, open_hcpcs

    if args.system == "icd10pcs":
        from medcode.codesets import open_pcs

        stats = open_pcs(ctx.settings).stats()
    elif args.system == "hcpcs":
        hcpcs = open_hcpcs(ctx.settings, progress=True)
        stats = hcpcs.stats()
        if args.date is not None:
            stats["codes_in_force_on_date"] = sum(1 for _ in hcpcs.iter_codes(args.date))
    elif args.system == "cpt":
        stats = open_cpt(ctx.settings).stats()
    else:
        registry = CodeSetRegistry(ctx.settings)
        stats = registry.get(args.date).stats()
        stats["releases"] = [r["id"] for r in registry.describe()]
    if args.json:
        print_json(stats)
    else:
        for key, value in stats.items():
            sys.stdout.write(f"{key:<16} {value}\n")
    return 0


def _show_procedure(args: argparse.Namespace, ctx: CommandContext) -> int:
    """``codes show --system hcpcs|cpt``. CPT text shown comes only from the user's licensed file."""
    from medcode.cli import print_json
    from medcode.codesets import open_cpt, open_hcpcs

    if args.system == "hcpcs":
        record = open_hcpcs(ctx.settings, progress=True).get(args.code, args.date)
    else:
        record = open_cpt(ctx.settings).get(args.code, args.date)
    if args.json:
        print_json(record.model_dump(mode="json"))
        return 0
    out = sys.stdout
    description = (
        record.description if not record.descriptor_withheld else f"[descriptor withheld: {record.withheld_reason}]"
    )
    out.write(f"{record.code}  {description}\n")
    out.write(f"  system    {record.system}\n  release   {record.release}\n")
    if record.system == "CPT":
        out.write("  source    your licensed CPT file (MEDCODE_CPT_FILE)\n")
        return 0
    as_of = record.as_of.isoformat() if record.as_of else "?"
    out.write(f"  in force  {'yes' if record.valid else 'no'} on {as_of}\n")
    until = record.effective_to.isoformat() if record.effective_to else "still in force"
    since = record.effective_from.isoformat() if record.effective_from else "?"
    out.write(f"  effective {since} .. {until}\n")
    if record.status_indicator:
        out.write(f"  OPPS SI   {record.status_indicator}: {record.status_description or '?'}\n")
    if record.min_age is not None or record.max_age is not None:
        out.write(f"  ages      {record.min_age or 0}..{record.max_age if record.max_age is not None else ''}\n")
    return 0


def _show_pcs(args: argparse.Namespace, ctx: CommandContext) -> int:
    """``codes show --system icd10pcs``: the title, validity on the date and the seven axes."""
    from medcode.cli import print_json
    from medcode.codesets import open_pcs

    record = open_pcs(ctx.settings).get(args.code, args.date)
    if args.json:
        print_json(record.model_dump(mode="json"))
        return 0
    out = sys.stdout
    out.write(f"{record.code}  {record.title or '[no title in the installed data]'}\n")
    out.write(f"  system    ICD-10-PCS\n  release   {record.release}\n")
    out.write(f"  valid     {'yes' if record.valid else 'no'} on {record.as_of.isoformat()}\n")
    until = record.effective_to.isoformat() if record.effective_to else "still valid"
    out.write(f"  effective {record.effective_from.isoformat()} .. {until}\n  table     {record.table}\n")
    for axis in record.axes:
        label = axis.label if axis.label is not None else "(no table labels for this section in the installed data)"
        out.write(f"  {axis.position} {axis.name:<32} {axis.value}  {label}\n")
    if record.root_operation_definition:
        out.write(f"  root operation: {record.root_operation_definition}\n")
    return 0
