"""``medcode index ...`` and ``medcode search``: build the code index and query it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from medcode.codesets.cli import parse_date

if TYPE_CHECKING:
    from medcode.cli import CommandContext

__all__ = ["register"]


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if not 1 <= value <= 1000:
        raise argparse.ArgumentTypeError(f"must be from 1 to 1000, not {value}")
    return value


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    index = sub.add_parser(
        "index",
        help="build or inspect the retrieval index",
        description="The retrieval index: every billable ICD-10-CM code embedded (chromadb) plus a lexical "
        "(SQLite FTS5) side, under <data dir>/retrieval/<code-set version>/.",
    )
    index_sub = index.add_subparsers(dest="index_command", metavar="SUBCOMMAND", required=True)
    build = index_sub.add_parser(
        "build",
        help="build the index (resumes an interrupted build)",
        description="Embed the code set and write the index, with a progress bar. An interrupted build resumes "
        "where it stopped; an index built for another code-set version or embedder is rebuilt. A complete, "
        "matching index is left alone unless --rebuild.",
    )
    build.add_argument("--rebuild", action="store_true", help="delete the index and build it again")
    build.add_argument(
        "--date", type=parse_date, help="date of service YYYY-MM-DD picking the release (default newest)"
    )
    build.add_argument(
        "--threads",
        type=int,
        help="torch threads for embedding (default: MEDCODE_EMBED_THREADS, else the usable CPUs, at most 4)",
    )
    build.add_argument("--json", action="store_true", help="print the resulting status as JSON")
    build.set_defaults(handler=_build)

    status = index_sub.add_parser("status", help="show the index status", description="Show the index status.")
    status.add_argument("--date", type=parse_date, help="date of service YYYY-MM-DD (default newest release)")
    status.add_argument("--json", action="store_true", help="print JSON")
    status.set_defaults(handler=_status)

    search = sub.add_parser(
        "search",
        help="rank candidate codes for a phrase or a note",
        description="Rank candidate ICD-10-CM codes for a clinical phrase (dense + lexical retrieval, fused). "
        "Builds the index on first use. Candidates are suggestions for review, not coding decisions.",
    )
    search.add_argument("query", nargs="?", help='the phrase, e.g. "high blood pressure"')
    search.add_argument("--note", metavar="FILE", help="search a whole note from FILE ('-' for stdin) instead")
    search.add_argument("--top", type=_positive, default=10, help="number of candidates (default 10)")
    search.add_argument(
        "--setting",
        choices=("outpatient", "inpatient"),
        help="the note's setting: with --note and a candidate ranker (--ranker, or MEDCODE_CANDIDATE_RANKER=1), "
        "inpatient notes are re-ordered by it",
    )
    search.add_argument(
        "--ranker",
        type=Path,
        metavar="FILE",
        help="with --note: re-order inpatient notes with this candidate ranker file, e.g. the ranker-<version>.json "
        "beside a `medcode train --ranker` model (search does not read the acceptance model, so it does not "
        "follow the model's ranker by itself)",
    )
    search.add_argument("--json", action="store_true", help='print {"results": [...]} as JSON')
    search.add_argument("--date", type=parse_date, help="date of service YYYY-MM-DD (default newest release)")
    search.add_argument(
        "--mode", choices=("hybrid", "dense", "lexical"), default="hybrid", help="retrieval side(s) (default hybrid)"
    )
    search.add_argument("--prefix", action="append", metavar="CODE", help="only codes starting with CODE (repeatable)")
    search.add_argument("--all-codes", action="store_true", help="include non-billable header codes (lexical side)")
    search.set_defaults(handler=_search)


def _build(args: argparse.Namespace, ctx: CommandContext) -> int:
    from medcode.cli import print_json
    from medcode.codesets import CodeSetRegistry
    from medcode.config import load_settings
    from medcode.retrieval._index import build_index

    settings = ctx.settings
    if args.threads is not None:
        settings = load_settings(**{**settings.model_dump(), "embed_threads": args.threads})
    codeset = CodeSetRegistry(settings).get(args.date)
    info = build_index(settings, codeset, rebuild=args.rebuild, progress=True)
    if args.json:
        print_json(info.model_dump(mode="json"))
    else:
        sys.stdout.write(
            f"index {info.status}: {info.codeset_version}, {info.codes} codes, {info.units} texts, "
            f"built in {info.build_seconds} s, {(info.size_bytes or 0) / 1e6:.0f} MB at {info.path}\n"
        )
    return 0


def _status(args: argparse.Namespace, ctx: CommandContext) -> int:
    from medcode.cli import print_json
    from medcode.codesets import CodeSetRegistry
    from medcode.retrieval._index import index_info

    codeset = CodeSetRegistry(ctx.settings).get(args.date)
    info = index_info(ctx.settings, codeset.version)
    if args.json:
        print_json(info.model_dump(mode="json"))
    else:
        for key, value in info.model_dump().items():
            if value not in (None, ""):
                sys.stdout.write(f"{key:<14} {value}\n")
    return 0 if info.status == "complete" else 1


def _search(args: argparse.Namespace, ctx: CommandContext) -> int:
    from medcode._input import read_note_text
    from medcode.cli import print_json
    from medcode.codesets import CodeSetRegistry
    from medcode.errors import InputError
    from medcode.retrieval._retriever import HybridRetriever

    if (args.query is None) == (args.note is None):
        raise InputError("give either a QUERY or --note FILE")
    if args.query is not None and not args.query.strip():
        raise InputError("search query is empty")
    settings = ctx.settings
    if args.ranker is not None:
        if args.note is None:
            raise InputError("--ranker re-orders a note's candidates: give --note FILE")
        settings = settings.model_copy(update={"candidate_ranker": True, "candidate_ranker_file": args.ranker})
    codeset = CodeSetRegistry(settings).get(args.date)
    with HybridRetriever(settings, codeset, mode=args.mode) as retriever:
        if args.note is not None:
            found = retriever.search_note(read_note_text(args.note), top_k=args.top, setting=args.setting)
            rows = [c.model_dump(mode="json", exclude={"hits"}) | {"segments": len(c.hits)} for c in found.candidates]
        else:
            results = retriever.search(
                args.query, top_k=args.top, billable_only=not args.all_codes, code_prefixes=args.prefix
            )
            rows = [c.model_dump(mode="json") for c in results]
    if args.json:
        print_json({"codeset_version": codeset.version, "results": rows})
        return 0
    out = sys.stdout
    out.write(f"{'#':>3}  {'code':<9} {'score':>8}  {'side':<7} description  [matched]\n")
    for row in rows:
        matched = row["matched_text"]
        extra = f"  [{matched}]" if matched and matched.lower() != row["description"].lower() else ""
        out.write(
            f"{row['rank']:>3}  {row['code']:<9} {row['score']:>8.4f}  {row['source']:<7} {row['description']}{extra}\n"
        )
    return 0
