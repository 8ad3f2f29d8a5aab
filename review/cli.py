"""``medcode queue ...`` and ``medcode audit ...``: the review queue and the audit log.

Note text is PHI: ``queue show`` prints it (and evidence quotes, and the raw model output)
only with ``--show-text``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from medcode.cli import CommandContext
    from medcode.review._queue import Chart, ReviewQueue
    from medcode.validators import ValidatorPipeline

__all__ = ["register"]

_STATUSES = ("pending", "coding", "in_review", "finalised")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _code_span(text: str) -> tuple[str, int, int]:
    code, sep, span = text.partition("=")
    start, colon, end = span.partition(":")
    try:
        if not sep or not colon or not code.strip():
            raise ValueError
        return code.strip(), int(start), int(end)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected CODE=START:END (e.g. E11.65=120:151), got {text!r}") from None


def _code_quote(text: str) -> tuple[str, str]:
    code, sep, quote = text.partition("=")
    if not sep or not code.strip() or not quote.strip():
        raise argparse.ArgumentTypeError(f'expected CODE=QUOTE (e.g. E11.65="poorly controlled"), got {text!r}')
    return code.strip(), quote


def _replacement(text: str) -> tuple[str, str]:
    old, sep, new = text.partition("=")
    if not sep or not old.strip() or not new.strip():
        raise argparse.ArgumentTypeError(f"expected OLD=NEW (e.g. E11.9=E11.65), got {text!r}")
    return old.strip(), new.strip()


def _since(text: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date or time (expected YYYY-MM-DD[THH:MM]): {text!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    _register_queue(sub)
    _register_audit(sub)
    _register_users(sub)


def _register_users(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    users = sub.add_parser(
        "users",
        help="add, revoke and list the copilot's API users",
        description="Per-user API tokens for the copilot, with a role: coder (code, review, finalise), auditor "
        "(blinded audits; no access to charts) or admin (everything). The token is printed once; the review "
        "database keeps only its sha256. Adding and revoking users are audit-log events. Anyone who can run "
        "this command can write the review database, so it is not itself access-controlled.",
    )
    users_sub = users.add_subparsers(dest="users_command", metavar="SUBCOMMAND", required=True)
    add = users_sub.add_parser("add", help="create a user and print their token once")
    add.add_argument("name", help="user name (letters, digits, '.', '_', '@', '-'; recorded in the audit log)")
    add.add_argument("--role", choices=("coder", "auditor", "admin"), required=True, help="the user's role")
    add.add_argument("--by", default=None, help="who is adding the user (default: your login name)")
    add.add_argument("--json", action="store_true", help="print JSON (with the token)")
    add.set_defaults(handler=_users_add)
    revoke = users_sub.add_parser("revoke", help="revoke a user's token (within 2 s on a running copilot)")
    revoke.add_argument("name", help="the user")
    revoke.add_argument("--by", default=None, help="who is revoking (default: your login name)")
    revoke.set_defaults(handler=_users_revoke)
    lst = users_sub.add_parser("list", help="list users (never tokens)")
    lst.add_argument("--json", action="store_true", help="print JSON")
    lst.set_defaults(handler=_users_list)


def _login_name() -> str:
    import getpass

    try:
        return "cli:" + getpass.getuser()
    except (KeyError, OSError):
        return "cli"


def _users_add(args: argparse.Namespace, ctx: CommandContext) -> int:
    from medcode.cli import print_json
    from medcode.review._users import UserDirectory

    with UserDirectory(ctx.settings) as directory:
        user, token = directory.add(args.name, args.role, by=args.by or _login_name())
    if args.json:
        print_json({**user.model_dump(mode="json"), "token": token})
    else:
        sys.stdout.write(f"user {user.name} ({user.role}) added; their token, shown only now:\n{token}\n")
    return 0


def _users_revoke(args: argparse.Namespace, ctx: CommandContext) -> int:
    from medcode.review._users import UserDirectory

    with UserDirectory(ctx.settings, create=False) as directory:
        user = directory.revoke(args.name, by=args.by or _login_name())
    sys.stdout.write(f"user {user.name} revoked at {user.revoked_at}\n")
    return 0


def _users_list(args: argparse.Namespace, ctx: CommandContext) -> int:
    from medcode.cli import print_json
    from medcode.review._users import UserDirectory

    with UserDirectory(ctx.settings, create=False) as directory:
        listed = directory.list()
    if args.json:
        print_json([u.model_dump(mode="json") for u in listed])
        return 0
    if not listed:
        sys.stdout.write("no users ('medcode users add NAME --role coder')\n")
    for u in listed:
        state = f"revoked {u.revoked_at}" if u.revoked_at else "active"
        sys.stdout.write(f"{u.name:<24} {u.role:<8} {state:<32} added {u.created_at} by {u.created_by}\n")
    return 0


def _register_queue(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    queue = sub.add_parser(
        "queue",
        help="list, show and resolve charts waiting for a coder",
        description="The review queue, in the review database (<data-dir>/review.sqlite or MEDCODE_DATABASE_URL). "
        "Every change is written to the audit log in the same transaction.",
    )
    queue_sub = queue.add_subparsers(dest="queue_command", metavar="SUBCOMMAND", required=True)

    lst = queue_sub.add_parser(
        "list", help="list charts, oldest first", description="List charts, oldest first (never note text)."
    )
    lst.add_argument("--status", choices=_STATUSES, help="only charts with this status")
    lst.add_argument("--note-type", help="only charts of this note type")
    lst.add_argument("--limit", type=_positive_int, default=50, help="at most this many charts (default 50)")
    lst.add_argument("--json", action="store_true", help="print JSON")
    lst.set_defaults(handler=_queue_list)

    show = queue_sub.add_parser(
        "show",
        help="print one chart",
        description="Print one chart: routing reasons, codes with verdicts and coder decisions, history. "
        "Note text, evidence quotes and the raw model output are PHI and shown only with --show-text.",
    )
    show.add_argument("chart_id", type=_positive_int, help="the chart id (from 'medcode queue list')")
    show.add_argument("--show-text", action="store_true", help="also print the note text and evidence quotes (PHI)")
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(handler=_queue_show)

    resolve = queue_sub.add_parser(
        "resolve",
        help="accept, reject, replace or add codes on a chart, and finalise it",
        description="Record coder decisions on a chart, in one all-or-nothing change; each is audited. "
        "Codes not decided when the chart is finalised keep their suggestion (validator-accepted codes "
        "are billed, rejected ones are not). Accepting a code the validators rejected needs --reason. "
        "New codes (--add, --replace) must be billable codes of the ICD-10-CM release for the chart's date of "
        "service, and go through the validators against the note and the chart's other codes (Excludes1, "
        "code first, duplicates; with --evidence or --quote also the evidence rules, as for a suggestion; "
        "without, the verdict warns NO_EVIDENCE_GIVEN). A new code the validators reject needs --reason "
        "(exit 2 without one) and is audited as a guardrail override. "
        "Exits 1 when someone else changed the chart first (re-run after 'queue show').",
    )
    resolve.add_argument("chart_id", type=_positive_int, help="the chart id")
    resolve.add_argument("--user", required=True, help="who is making the change (recorded in the audit log)")
    resolve.add_argument("--accept", action="append", default=[], metavar="CODE", help="keep this code (repeatable)")
    resolve.add_argument("--reject", action="append", default=[], metavar="CODE", help="drop this code (repeatable)")
    resolve.add_argument("--add", action="append", default=[], metavar="CODE", help="add a missed code (repeatable)")
    resolve.add_argument(
        "--replace",
        action="append",
        default=[],
        type=_replacement,
        metavar="OLD=NEW",
        help="replace a code with another, e.g. E11.9=E11.65 (repeatable)",
    )
    resolve.add_argument(
        "--evidence",
        action="append",
        default=[],
        type=_code_span,
        metavar="CODE=START:END",
        help="evidence for a code you add or substitute: character offsets into the note, end exclusive "
        "('queue show --show-text' prints the note) (repeatable)",
    )
    resolve.add_argument(
        "--quote",
        action="append",
        default=[],
        type=_code_quote,
        metavar="CODE=QUOTE",
        help="evidence for a code you add or substitute: a verbatim quote from the note (repeatable)",
    )
    resolve.add_argument("--reason", help="why (required to accept, add or substitute a code the validators rejected)")
    resolve.add_argument("--finalise", action="store_true", help="finalise the chart after the changes")
    resolve.add_argument(
        "--expect-version",
        type=_positive_int,
        metavar="N",
        help="fail if the chart is no longer at this version (default: the version read just before)",
    )
    resolve.add_argument("--json", action="store_true", help="print the updated chart as JSON (no note text)")
    resolve.set_defaults(handler=_queue_resolve)

    metrics = queue_sub.add_parser(
        "metrics",
        help="acceptance, edit and override rates; queue size and age",
        description="Coder acceptance/edit/override rates (overall, by chapter, by note type) over finalised "
        "human-reviewed charts, auto vs review share, open charts by status and age, rejection reasons.",
    )
    metrics.add_argument("--since", type=_since, help="only charts created at or after YYYY-MM-DD[THH:MM] (UTC)")
    metrics.add_argument("--note-type", help="only charts of this note type")
    metrics.add_argument("--json", action="store_true", help="print JSON")
    metrics.set_defaults(handler=_queue_metrics)


def _register_audit(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    audit = sub.add_parser(
        "audit",
        help="verify or read the hash-chained audit log",
        description="The append-only, hash-chained audit log, in the review database (<data-dir>/review.sqlite or "
        "MEDCODE_DATABASE_URL).",
    )
    audit_sub = audit.add_subparsers(dest="audit_command", metavar="SUBCOMMAND", required=True)
    from medcode.review.governance.cli import register_audit

    register_audit(audit_sub)  # the governance room's blinded audits: sample, tasks, note, code, adjudicate, show

    verify = audit_sub.add_parser(
        "verify",
        help="check that no record was edited, removed or reordered",
        description="Recompute every record's hash and the chain. Exit 0 when the log verifies, 1 when a record "
        "was edited, removed, reordered or truncated. Keep the printed head hash somewhere safe and pass it "
        "later with --expect-head to also catch a log rewritten from scratch.",
    )
    verify.add_argument("--expect-head", metavar="SHA256", help="a head hash taken earlier; it must be in the log")
    verify.add_argument("--json", action="store_true", help="print JSON")
    verify.set_defaults(handler=_audit_verify)

    anchor = audit_sub.add_parser(
        "anchor",
        help="print (or write to a file) the current head hash, to keep outside this machine",
        description="Print the audit log's head (record number and hash) as JSON, or append it to --out. Keep it "
        "somewhere the database's writers cannot reach (a ticket, another host, a WORM bucket); later, "
        "'medcode audit verify --expect-head HASH' fails if the log was rewritten from scratch, which the "
        "chain alone cannot show.",
    )
    anchor.add_argument("--out", metavar="FILE", help="append the head as one JSON line to FILE")
    anchor.set_defaults(handler=_audit_anchor)

    tail = audit_sub.add_parser(
        "tail", help="print the last records", description="Print the last records as JSON lines, oldest first."
    )
    tail.add_argument("-n", type=_positive_int, default=10, help="how many records (default 10)")
    tail.add_argument("--chart", type=_positive_int, help="only records of this chart")
    tail.set_defaults(handler=_audit_tail)


# -- handlers ------------------------------------------------------------------------


def _queue(ctx: CommandContext, validators: ValidatorPipeline | None = None) -> ReviewQueue:
    from medcode.review._queue import ReviewQueue

    return ReviewQueue(ctx.settings, create=False, validators=validators)


def _queue_list(args: argparse.Namespace, ctx: CommandContext) -> int:
    from medcode.cli import print_json

    with _queue(ctx) as queue:
        charts = queue.list_charts(args.status, args.limit, note_type=args.note_type)
    if args.json:
        print_json([c.model_dump(mode="json") for c in charts])
        return 0
    if not charts:
        sys.stdout.write("no charts\n")
        return 0
    sys.stdout.write(
        f"{'ID':>6}  {'STATUS':<10} {'ROUTE':<6} {'AGE':>7}  {'CODES':>5} {'REJ':>3}  {'TYPE':<16} REASONS\n"
    )
    for c in charts:
        reasons = ", ".join(c.reasons[:3]) + (" ..." if len(c.reasons) > 3 else "")
        sys.stdout.write(
            f"{c.chart_id:>6}  {c.status:<10} {c.routing:<6} {_age(c.age_seconds):>7}  {c.n_codes:>5} "
            f"{c.n_rejected:>3}  {(c.note_type or '-')[:16]:<16} {reasons}\n"
        )
    return 0


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    if seconds < 172_800:
        return f"{seconds / 3600:.0f}h"
    return f"{seconds / 86_400:.0f}d"


def _print_chart(chart: Chart, show_text: bool) -> None:
    out = sys.stdout
    out.write(f"chart {chart.chart_id}  version {chart.version}  {chart.status}  routed {chart.routing}\n")
    out.write(
        f"  note       id {chart.note_id or '-'}  type {chart.note_type or '-'}  {chart.setting}  "
        f"sha256 {chart.note_sha256[:16]}...\n"
    )
    if chart.date_of_service:
        out.write(f"  service    {chart.date_of_service.isoformat()}\n")
    versions = {k: chart.decision.get(k) for k in ("llm_model", "prompt_version", "codeset_version", "rules_version")}
    out.write("  versions   " + "  ".join(f"{k}={v}" for k, v in versions.items() if v) + "\n")
    for reason in chart.reasons:
        out.write(f"  reason     {reason}\n")
    if chart.assigned_to:
        out.write(f"  assigned   {chart.assigned_to}\n")
    if chart.finalised_by:
        out.write(f"  finalised  by {chart.finalised_by} at {chart.finalised_at}\n")
    out.write("  codes\n")
    for code in chart.codes:
        mark = "x" if code.selected else " "
        verdict = (code.proposed_status or "-") if code.origin == "proposed" else "added"
        extra = []
        if code.origin == "added":
            checked = f"validators {code.check.status}" if code.check is not None else "not validated"
            extra.append(checked + (f"; replaces {code.replaces}" if code.replaces else ""))
        if code.rules:
            extra.append("rules " + ",".join(code.rules))
        if code.warnings:
            extra.append("warnings " + ",".join(code.warnings))
        if code.confidence is not None:
            extra.append(f"conf {code.confidence:.2f}")
        if code.decision != "pending":
            who = " (pre-filled suggestion)" if code.prefilled else f" by {code.decided_by}"
            extra.append(f"{code.decision}{who}" + (f" -> {code.replaced_by}" if code.replaced_by else ""))
        out.write(f"   [{mark}] {code.code:<9} {verdict:<9} {(code.description or '')[:60]}\n")
        if extra:
            out.write(f"       {'; '.join(extra)}\n")
        for ev in code.evidence:
            where = f"[{ev.start}:{ev.end}]" if ev.start is not None else "[?]"
            out.write(f"       evidence {where} " + (repr(ev.text) if show_text else f"({len(ev.text)} chars)") + "\n")
    if chart.procedures:
        out.write("  procedures\n")
        decided = chart.procedure_decisions
        for proc in chart.procedures:
            proc_code = proc.canonical or proc.code
            rules = f"  rules {','.join(proc.rules)}" if proc.rules else ""
            action = decided.get(proc_code)
            by = f"  {action.action.removeprefix('procedure_')} by {action.user}" if action else "  pending"
            out.write(f"       {proc_code:<9} {proc.system or '-':<8} {proc.status:<9}{rules}{by}\n")
            for ev in proc.evidence:
                where = f"[{ev.start}:{ev.end}]" if ev.start is not None else "[?]"
                out.write(
                    f"       evidence {where} " + (repr(ev.text) if show_text else f"({len(ev.text)} chars)") + "\n"
                )
    if chart.actions:
        out.write("  history\n")
        for a in chart.actions:
            what = a.action + (f" {a.code}" if a.code else "") + (f" -> {a.new_code}" if a.new_code else "")
            if a.to_status:
                what += f" ({a.from_status} -> {a.to_status})"
            out.write(f"    v{a.version:<3} {a.at[:19]}  {a.user:<12} {what}\n")
    if show_text and chart.note_text is not None:
        out.write("  note text\n")
        for line in chart.note_text.splitlines():
            out.write(f"    | {line}\n")


def _queue_show(args: argparse.Namespace, ctx: CommandContext) -> int:
    from medcode.cli import print_json

    with _queue(ctx) as queue:
        chart = queue.get(args.chart_id, include_text=args.show_text)
    if args.json:
        print_json(chart.to_display(show_text=args.show_text))
    else:
        _print_chart(chart, args.show_text)
    return 0


def _queue_resolve(args: argparse.Namespace, ctx: CommandContext) -> int:
    from pydantic import ValidationError

    from medcode._input import describe_validation_error
    from medcode.cli import print_json
    from medcode.errors import InputError
    from medcode.review._newcodes import EvidenceSpan, code_key
    from medcode.validators import ValidatorPipeline

    actions: list[tuple[str, str, str | None]] = []
    actions += [("reject", code, None) for code in args.reject]
    actions += [("accept", code, None) for code in args.accept]
    actions += [("replace", old, new) for old, new in args.replace]
    actions += [("add", code, None) for code in args.add]
    if not actions and not args.finalise:
        raise InputError("nothing to do: give --accept, --reject, --replace, --add and/or --finalise")
    evidence: dict[str, list[EvidenceSpan]] = {}
    try:
        for code, start, end in args.evidence:
            evidence.setdefault(code, []).append(EvidenceSpan(start=start, end=end))
        for code, quote in args.quote:
            evidence.setdefault(code, []).append(EvidenceSpan(text=quote))
    except ValidationError as exc:  # offsets in the wrong order, an over-long quote
        raise InputError(f"bad evidence ({describe_validation_error(exc)})") from None
    adds_codes = bool(args.add or args.replace)
    with (
        ValidatorPipeline(ctx.settings) if adds_codes else contextlib.nullcontext() as validators,
        _queue(ctx, validators) as queue,
    ):
        current = queue.get(args.chart_id, include_text=False)
        version = args.expect_version or current.version
        chart = queue.resolve(
            args.chart_id,
            user=args.user,
            expected_version=version,
            actions=actions,
            reason=args.reason,
            finalise=args.finalise,
            evidence=evidence,
        )
    if args.json:
        print_json(chart.to_display(show_text=False))
        return 0
    state = "finalised" if chart.status == "finalised" else chart.status
    out = sys.stdout
    out.write(
        f"chart {chart.chart_id} now version {chart.version} ({state}); codes: "
        f"{', '.join(chart.selected_codes) or 'none'}\n"
    )
    new_keys = {code_key(new if action == "replace" and new else code) for action, code, new in actions}
    for code in chart.codes:
        if code.origin != "added" or code.check is None or code_key(code.code) not in new_keys:
            continue  # a new code is never already on the chart: these are the ones this change added
        check = code.check
        verdict = "accepted by the validators" if check.status == "accepted" else "REJECTED by the validators"
        extra = " (kept against them: guardrail override, reason recorded)" if check.status == "rejected" else ""
        out.write(f"  {code.code}: {verdict}{extra}\n")
        for r in check.results:
            out.write(f"    {'x' if r.severity == 'reject' else '!'} {r.rule}: {r.reason}\n")
    return 0


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _queue_metrics(args: argparse.Namespace, ctx: CommandContext) -> int:
    from medcode.cli import print_json

    with _queue(ctx) as queue:
        metrics = queue.metrics(since=args.since, note_type=args.note_type)
    if args.json:
        print_json(metrics.as_dict())
        return 0
    out = sys.stdout
    out.write(
        f"charts           {metrics.charts} (auto {metrics.routing.get('auto', 0)}, "
        f"review {metrics.routing.get('review', 0)}; auto share {_rate(metrics.auto_share)})\n"
    )
    by_status = ", ".join(f"{k} {v}" for k, v in metrics.open_by_status.items())
    out.write(f"open             {metrics.open_charts}" + (f" ({by_status})" if by_status else "") + "\n")
    if metrics.oldest_open_age_s is not None and metrics.median_open_age_s is not None:
        out.write(
            f"open age         oldest {_age(metrics.oldest_open_age_s)}, median {_age(metrics.median_open_age_s)}\n"
        )
    rows: list[tuple[str, Any]] = [("overall", metrics.overall)]
    rows += [(f"chapter {k}", v) for k, v in metrics.by_chapter.items()]
    rows += [(f"type {k}", v) for k, v in metrics.by_note_type.items()]
    out.write(f"{'':<22} {'charts':>6} {'accept':>7} {'edit':>7} {'override':>8}\n")
    for name, group in rows:
        out.write(
            f"{name[:22]:<22} {group.charts:>6} {_rate(group.acceptance_rate):>7} "
            f"{_rate(group.edit_rate):>7} {_rate(group.override_rate):>8}\n"
        )
    for title, counts in (
        ("validator rejections", metrics.validator_rejections),
        ("routing reasons", metrics.routing_reasons),
    ):
        if counts:
            out.write(f"{title}: " + ", ".join(f"{k} {v}" for k, v in counts.items()) + "\n")
    return 0


def _audit_verify(args: argparse.Namespace, ctx: CommandContext) -> int:
    from medcode.cli import print_json
    from medcode.review._audit import AuditLog

    with AuditLog(ctx.settings, create=False) as log:
        result = log.verify(expected_head=args.expect_head)
    if args.json:
        print_json(result.model_dump(mode="json"))
    elif result.ok:
        sys.stdout.write(f"ok: {result.records} records verify; head {result.last_seq} {result.last_hash}\n")
    else:
        sys.stderr.write(f"medcode: audit log TAMPERED: {result.message}\n")
    return 0 if result.ok else 1


def _audit_anchor(args: argparse.Namespace, ctx: CommandContext) -> int:
    import json

    from medcode.review._audit import AuditLog

    with AuditLog(ctx.settings, create=False) as log:
        result = log.verify()
    if not result.ok:
        sys.stderr.write(f"medcode: audit log TAMPERED, not anchoring it: {result.message}\n")
        return 1
    anchor = {
        "seq": result.last_seq,
        "hash": result.last_hash,
        "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    line = json.dumps(anchor, sort_keys=True)
    if args.out:
        try:
            with open(args.out, "a", encoding="utf-8") as handle:
                handle.write(line + "\n")
        except OSError as exc:
            from medcode.errors import InputError

            raise InputError(f"cannot write {args.out}: {exc.strerror or exc}") from None
        sys.stderr.write(f"head {result.last_seq} {result.last_hash} appended to {args.out}\n")
    sys.stdout.write(line + "\n")
    return 0


def _audit_tail(args: argparse.Namespace, ctx: CommandContext) -> int:
    from medcode.review._audit import AuditLog

    with AuditLog(ctx.settings, create=False) as log:
        records = log.tail(args.n) if args.chart is None else log.records(chart_id=args.chart)[-args.n :]
    for record in records:
        sys.stdout.write(record.model_dump_json() + "\n")
    return 0
