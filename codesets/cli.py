"""``medcode codes ...``: look up the code sets."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from medcode.cli import CommandContext

__all__ = ["parse_date", "register"]


def parse_date(text: str) -> dt.date:
    """``YYYY-MM-DD`` -> date, with an argparse-friendly error."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (expected YYYY-MM-DD): {text!r}") from None


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    codes = sub.add_parser("codes", help="look up ICD-10-CM codes", description="Look up ICD-10-CM codes.")
    codes_sub = codes.add_subparsers(dest="codes_command", metavar="SUBCOMMAND", required=True)

    show = codes_sub.add_parser(
        "show",
        help="print a code's full record",
        description="Print a code's full record: description, billable flag, hierarchy, tabular notes "
        "(own and inherited) and 7th-character rules. Exits 1 for an unknown code, 2 for a malformed one.",
    )
    show.add_argument("code", help="an ICD-10-CM code, any case, dot optional (e.g. s72001a)")
    show.add_argument("--json", action="store_true", help="print JSON")
    show.add_argument("--date", type=parse_date, help="date of service YYYY-MM-DD (default: newest release)")
    show.set_defaults(handler=_show)

    stats = codes_sub.add_parser("stats", help="counts and provenance of the code set", description="Code-set counts.")
    stats.add_argument("--json", action="store_true", help="print JSON")
    stats.add_argument("--date", type=parse_date, help="date of service YYYY-MM-DD (default: newest release)")
    stats.set_defaults(handler=_stats)


def _show(args: argparse.Namespace, ctx: CommandContext) -> int:
    from codesets import CodeSetRegistry
    from medcode.cli import print_json

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
    from codesets import CodeSetRegistry
    from medcode.cli import print_json

    registry = CodeSetRegistry(ctx.settings)
    stats = registry.get(args.date).stats()
    stats["releases"] = [r["id"] for r in registry.describe()]
    if args.json:
        print_json(stats)
    else:
        for key, value in stats.items():
            sys.stdout.write(f"{key:<16} {value}\n")
    return 0
