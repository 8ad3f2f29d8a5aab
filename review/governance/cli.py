"""``medcode audit sample|tasks|note|code|adjudicate|show`` and ``medcode autonomy ...``.

Blinded audits and earned autonomy. ``audit note`` prints a chart's note (PHI) to its auditor and
nothing else: no codes, routing or case type. Grants need an explicit, named
``medcode autonomy grant CASE_TYPE --by NAME`` and are refused (exit 1) when the audits do not
meet the case type's targets.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import datetime as dt

    from medcode.cli import CommandContext
    from medcode.config import Settings
    from medcode.review.governance._audits import AuditProgram
    from medcode.review.governance._autonomy import AutonomyReport
    from medcode.review.governance._measure import CaseTypeEvaluation

__all__ = ["code_checker", "register", "register_audit"]


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {value}")
    return value


def code_checker(settings: Settings) -> Any:
    """A ``CodeChecker``: a code must be a billable ICD-10-CM code of the release for the date of service."""
    from medcode.codesets import CodeSetRegistry
    from medcode.errors import InputError

    registry = CodeSetRegistry(settings)

    def check(raw: str, date_of_service: dt.date | None) -> str:
        record = registry.get(date_of_service).get(raw)
        if not record.billable:
            raise InputError(f"{record.code} is a header, not a billable code; pick one of its children")
        return str(record.code)

    return check


def _program(ctx: CommandContext, *, check_codes: bool = False) -> AuditProgram:
    from medcode.review.governance._audits import AuditProgram

    return AuditProgram(ctx.settings, check_code=code_checker(ctx.settings) if check_codes else None, create=False)


# -- medcode audit ... ------------------------------------------------------------------------------


def register_audit(audit_sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the blinded-audit sub-commands to ``medcode audit``."""
    sample = audit_sub.add_parser(
        "sample",
        help="draw charts into a blinded audit batch",
        description="Draw finalised charts into an audit batch, stratified by case type: per case type, "
        "'review_sample' human-reviewed charts at random, and the case type's 'audit_rate' share of the charts "
        "that went out on their own since the last batch. Each becomes a task for blind auditors. Audited in the "
        "audit log (audit_batch) with its seed.",
    )
    sample.add_argument("--by", required=True, help="who draws the sample (recorded)")
    sample.add_argument("--seed", type=int, help="random seed (default: a fresh one, recorded)")
    sample.add_argument("--case-type", action="append", default=[], help="only this case type (repeatable)")
    sample.add_argument("--review-sample", type=_count, metavar="N", help="reviewed charts per case type")
    sample.add_argument("--only", choices=("auto", "review"), help="only this stratum")
    sample.add_argument("--json", action="store_true", help="print JSON")
    sample.set_defaults(handler=_audit_sample)

    tasks = audit_sub.add_parser(
        "tasks",
        help="list audit tasks",
        description="With --auditor: the tasks that auditor can code blind (no codes, routing or case type). "
        "Without: every task with its case type, stratum, status and gold label (governance view, no note text).",
    )
    tasks.add_argument("--auditor", help="list what this auditor can code blind")
    tasks.add_argument("--adjudicator", help="list the disputes this person can adjudicate")
    tasks.add_argument("--status", choices=("open", "disputed", "gold"), help="governance view: only this status")
    tasks.add_argument("--limit", type=_positive_int, default=50)
    tasks.add_argument("--json", action="store_true", help="print JSON")
    tasks.set_defaults(handler=_audit_tasks)

    note = audit_sub.add_parser(
        "note",
        help="print a task's note for its blind auditor (PHI)",
        description="Print the note of an audit task and its note type, setting and date of service: nothing "
        "about its codes. The note is PHI.",
    )
    note.add_argument("task_id", type=_positive_int)
    note.add_argument("--by", required=True, help="the auditor")
    note.add_argument("--json", action="store_true", help="print JSON")
    note.set_defaults(handler=_audit_note)

    code = audit_sub.add_parser(
        "code",
        help="record an auditor's blind codes for a task",
        description="Record the codes an auditor assigns to a task's note, blind. Answers are final. When the "
        "policy's auditors have answered alike, that is the gold label; otherwise the task goes to adjudication.",
    )
    code.add_argument("task_id", type=_positive_int)
    code.add_argument("--by", required=True, help="the auditor")
    code.add_argument("--code", action="append", default=[], metavar="CODE", help="an ICD-10-CM code (repeatable)")
    code.add_argument("--none", action="store_true", help="the note has nothing to code")
    code.set_defaults(handler=_audit_code)

    adjudicate = audit_sub.add_parser(
        "adjudicate",
        help="settle a disputed task: the decision is the gold label",
        description="Show a disputed task's note and the two auditors' answers (--show), or record the "
        "adjudicator's decision as the gold label. The adjudicator may not be one of its auditors.",
    )
    adjudicate.add_argument("task_id", type=_positive_int)
    adjudicate.add_argument("--by", required=True, help="the adjudicator")
    adjudicate.add_argument("--show", action="store_true", help="print the note (PHI) and both answers")
    adjudicate.add_argument("--code", action="append", default=[], metavar="CODE", help="a gold code (repeatable)")
    adjudicate.add_argument("--none", action="store_true", help="the gold label has no codes")
    adjudicate.add_argument("--reason", help="why (recorded)")
    adjudicate.set_defaults(handler=_audit_adjudicate)

    show = audit_sub.add_parser(
        "show",
        help="governance view of a task (no note text)",
        description="Everything about an audit task except the note: chart, case type, stratum, answers, gold.",
    )
    show.add_argument("task_id", type=_positive_int)
    show.set_defaults(handler=_audit_show)


def _audit_sample(args: argparse.Namespace, ctx: CommandContext) -> int:
    from medcode.cli import print_json

    strata: tuple[Literal["auto", "review"], ...] = (args.only,) if args.only else ("auto", "review")
    with _program(ctx) as program:
        batch = program.sample(
            by=args.by,
            seed=args.seed,
            case_types=args.case_type or None,
            review_sample=args.review_sample,
            strata=strata,
        )
    if args.json:
        print_json(batch.model_dump(mode="json"))
        return 0
    out = sys.stdout
    out.write(f"audit batch {batch.batch_id} (seed {batch.seed}): {len(batch.task_ids)} task(s)\n")
    for case_type, counts in sorted(batch.strata.items()):
        pool = batch.considered.get(case_type, {})
        out.write(
            f"  {case_type:<28} review {counts.get('review', 0)} of {pool.get('review', 0)}"
            f"   auto {counts.get('auto', 0)} of {pool.get('auto', 0)} new\n"
        )
    return 0


def _audit_tasks(args: argparse.Namespace, ctx: CommandContext) -> int:
    from medcode.cli import print_json

    with _program(ctx) as program:
        if args.auditor:
            rows: list[Any] = program.tasks_for(args.auditor, limit=args.limit)
        elif args.adjudicator:
            rows = program.disputes_for(args.adjudicator, limit=args.limit)
        else:
            rows = program.tasks(status=args.status, limit=args.limit)
    if args.json:
        print_json([r.model_dump(mode="json") for r in rows])
        return 0
    for row in rows:
        data = row.model_dump(mode="json")
        if args.auditor or args.adjudicator:
            sys.stdout.write(
                f"task {data['task_id']:>5}  {data['note_type'] or '-':<20} {data['setting']:<10} "
                f"{data['note_chars']} chars\n"
            )
        else:
            gold = ", ".join(data["gold"]) if data["gold"] is not None else "-"
            sys.stdout.write(
                f"task {data['task_id']:>5}  chart {data['chart_id']:>6}  {data['case_type'] or '-':<26} "
                f"{data['stratum']:<6} {data['status']:<8} answers {len(data['answers'])}  gold {gold}\n"
            )
    if not rows:
        sys.stdout.write("no tasks\n")
    return 0


def _audit_note(args: argparse.Namespace, ctx: CommandContext) -> int:
    from medcode.cli import print_json

    with _program(ctx) as program:
        task = program.blind_task(args.task_id, args.by)
    if args.json:
        print_json(task.model_dump(mode="json"))
        return 0
    sys.stdout.write(
        f"audit task {task.task_id}: {task.note_type or '-'}, {task.setting}, service {task.date_of_service or '-'}"
        f"{' (you answered already)' if task.answered else ''}\n\n{task.note_text}\n"
    )
    return 0


def _codes(args: argparse.Namespace) -> list[str]:
    from medcode.errors import InputError

    if args.none and args.code:
        raise InputError("give --code or --none, not both")
    if not args.none and not args.code:
        raise InputError("give the codes (--code, repeatable) or --none when there is nothing to code")
    return list(args.code)


def _audit_code(args: argparse.Namespace, ctx: CommandContext) -> int:
    codes = _codes(args)
    with _program(ctx, check_codes=True) as program:
        program.answer(args.task_id, args.by, codes)
    sys.stdout.write(f"recorded {args.by}'s answer for audit task {args.task_id}\n")
    return 0


def _audit_adjudicate(args: argparse.Namespace, ctx: CommandContext) -> int:
    with _program(ctx, check_codes=True) as program:
        if args.show:
            task = program.adjudication_task(args.task_id, args.by)
            out = sys.stdout
            for answer in task.answers:
                out.write(f"auditor {answer.label}: {', '.join(answer.codes) or '(no codes)'}\n")
            out.write(f"\n{task.note_text}\n")
            return 0
        detail = program.adjudicate(args.task_id, args.by, _codes(args), reason=args.reason)
    sys.stdout.write(f"audit task {detail.task_id}: gold {', '.join(detail.gold or []) or '(no codes)'}\n")
    return 0


def _audit_show(args: argparse.Namespace, ctx: CommandContext) -> int:
    from medcode.cli import print_json

    with _program(ctx) as program:
        print_json(program.detail(args.task_id).model_dump(mode="json"))
    return 0


# -- medcode autonomy ... ---------------------------------------------------------------------------


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    autonomy = sub.add_parser(
        "autonomy",
        help="earned autonomy: measured accuracy, grants, suspensions",
        description="Per case type of the autonomy policy (MEDCODE_AUTONOMY_POLICY_FILE): accuracy measured by "
        "blinded audits, the confidence threshold derived from calibrated confidence, and the grants that let "
        "a case type's notes go out without a coder.",
    )
    autonomy_sub = autonomy.add_subparsers(dest="autonomy_command", metavar="SUBCOMMAND", required=True)

    report = autonomy_sub.add_parser(
        "report",
        help="per case type: machine and first-coder accuracy with Wilson 95%% intervals, grants",
        description="Per case type, over gold-labelled audits: per-code precision and recall, per-claim "
        "precision and exact match of the machine's codes and of the first coder's, each with a Wilson 95% "
        "interval; the derived threshold; eligibility; the grant and why it was suspended.",
    )
    report.add_argument("--json", action="store_true", help="print JSON")
    report.set_defaults(handler=_autonomy_report)

    evaluate = autonomy_sub.add_parser(
        "evaluate",
        help="propose grants: case types whose audits meet their targets",
        description="A case type is eligible when a confidence threshold meets its targets in expectation and "
        "the lower Wilson bound of the audited claim precision (and code precision) of the charts that would go "
        "out alone at it is at or above target, over at least min_audited charts. Proposals only: grant with "
        "'medcode autonomy grant'. With --by the proposals go to the audit log.",
    )
    evaluate.add_argument("--case-type", help="only this case type")
    evaluate.add_argument("--by", help="record the proposals in the audit log under this name")
    evaluate.add_argument("--json", action="store_true", help="print JSON")
    evaluate.set_defaults(handler=_autonomy_evaluate)

    grant = autonomy_sub.add_parser(
        "grant",
        help="grant a case type autonomy (only when its audits meet the targets)",
        description="Evaluate the case type now and, when eligible, grant it autonomy at the derived threshold; "
        "its fully accepted, unwarned notes above the threshold then go out without a coder. Exit 1 (and an "
        "autonomy_grant_refused audit record) when it is not eligible.",
    )
    grant.add_argument("case_type")
    grant.add_argument("--by", required=True, help="who grants it (recorded)")
    grant.add_argument("--reason", help="why (recorded)")
    grant.set_defaults(handler=_autonomy_grant)

    for name, verb in (("suspend", "suspend"), ("revoke", "revoke")):
        cmd = autonomy_sub.add_parser(
            name,
            help=f"{verb} a case type's grant by hand",
            description=f"{verb.capitalize()} a case type's grant; its notes go to review. Recorded in the audit log.",
        )
        cmd.add_argument("case_type")
        cmd.add_argument("--by", required=True, help="who (recorded)")
        cmd.add_argument("--reason", required=True, help="why (recorded)")
        cmd.set_defaults(handler=_autonomy_end, end=name)

    check = autonomy_sub.add_parser(
        "check",
        help="judge every grant again; suspend those below target or under a drift alert",
        description="Handle new drift_alert records, then judge every active grant on its running bound and on "
        "the audits of its auto-coded charts; suspend those below target. Exit 0 either way.",
    )
    check.add_argument("--json", action="store_true", help="print JSON")
    check.set_defaults(handler=_autonomy_check)

    drift = autonomy_sub.add_parser(
        "drift",
        help="raise a drift alert for a case type (suspends its grant)",
        description="Append a drift_alert record (what the monitoring room does) and suspend the grant it names.",
    )
    drift.add_argument("case_type", help="a case type id, or '*' for all")
    drift.add_argument("--source", required=True, help="who or what raised it")
    drift.add_argument("--detail", help="what drifted (no PHI)")
    drift.set_defaults(handler=_autonomy_drift)


def _ledger(ctx: CommandContext, *, create: bool = False) -> Any:
    from medcode.review.governance._autonomy import AutonomyLedger

    return AutonomyLedger(ctx.settings, create=create)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _write_evaluation(out: Any, evaluation: CaseTypeEvaluation) -> None:
    e = evaluation
    out.write(
        f"  audited {e.audited} (review {e.audited_by_stratum.get('review', 0)}, "
        f"auto {e.audited_by_stratum.get('auto', 0)}); targets claim {e.claim_precision_target}"
        f"{'' if e.code_precision_target is None else f', code {e.code_precision_target}'}, "
        f"min {e.min_audited}\n"
    )
    for label, acc in (("machine", e.machine), ("first coder", e.human), ("went out alone", e.autonomous)):
        out.write(
            f"    {label:<15} claim precision {acc.claim_precision.describe()}  exact {acc.claim_exact.describe()}\n"
            f"    {'':<15} code precision  {acc.code_precision.describe()}  recall {acc.code_recall.describe()}\n"
        )
    d = e.derivation
    if e.threshold is None:
        out.write(f"    threshold: none ({d.reason})\n")
    else:
        out.write(
            f"    threshold {e.threshold:.3f} (expected claim precision {_pct(d.expected_claim_precision)}, code "
            f"{_pct(d.expected_code_precision)}); at it: claim precision {e.at_threshold.claim_precision.describe()}"
            f", code precision {e.at_threshold.code_precision.describe()}\n"
        )
    out.write(f"    {'ELIGIBLE' if e.eligible else 'not eligible: ' + ', '.join(e.reasons)}\n")


def _write_report(report: AutonomyReport) -> None:
    out = sys.stdout
    out.write(f"autonomy policy {report.policy_version} ({report.policy_source}); {report.hcc_version}\n")
    for status in report.case_types:
        grant = status.grant
        line = f"\n{status.case_type.id}: {status.case_type.title}\n  state: {status.grant_state}"
        if grant is not None:
            line += f" (grant {grant.grant_id} at threshold {grant.threshold:.3f} by {grant.granted_by}, {grant.granted_at})"
            if grant.end:
                line += f"; ended by {grant.ended_by}: {', '.join(grant.end.get('reasons', []))}"
        out.write(line + "\n")
        _write_evaluation(out, status.evaluation)


def _autonomy_report(args: argparse.Namespace, ctx: CommandContext) -> int:
    from medcode.cli import print_json

    with _ledger(ctx) as ledger:
        report = ledger.report()
    if args.json:
        print_json(report.model_dump(mode="json"))
    else:
        _write_report(report)
    return 0


def _autonomy_evaluate(args: argparse.Namespace, ctx: CommandContext) -> int:
    from medcode.cli import print_json

    with _ledger(ctx) as ledger:
        results = ledger.evaluate(args.case_type, record_by=args.by)
    if args.json:
        print_json([r.model_dump(mode="json") for r in results])
        return 0
    for evaluation in results:
        sys.stdout.write(f"{evaluation.case_type}: {evaluation.title}\n")
        _write_evaluation(sys.stdout, evaluation)
    eligible = [r.case_type for r in results if r.eligible]
    sys.stdout.write(
        f"\nproposed grants: {', '.join(eligible)} (grant with 'medcode autonomy grant CASE_TYPE --by NAME')\n"
        if eligible
        else "\nno case type is eligible\n"
    )
    return 0


def _autonomy_grant(args: argparse.Namespace, ctx: CommandContext) -> int:
    from medcode.agent import load_acceptance_model

    model = load_acceptance_model(ctx.settings)  # the grant holds while this model gives the confidences
    with _ledger(ctx) as ledger:
        grant = ledger.grant(
            args.case_type, by=args.by, reason=args.reason, model_version=model.version if model else None
        )
    under = f" under acceptance model {model.version}" if model else ""
    sys.stdout.write(
        f"granted {grant.case_type} autonomy (grant {grant.grant_id}) at confidence threshold "
        f"{grant.threshold:.3f}{under}\n"
    )
    return 0


def _autonomy_end(args: argparse.Namespace, ctx: CommandContext) -> int:
    with _ledger(ctx) as ledger:
        method = ledger.suspend if args.end == "suspend" else ledger.revoke
        grant = method(args.case_type, by=args.by, reason=args.reason)
    sys.stdout.write(f"{grant.case_type}: grant {grant.grant_id} {grant.status}\n")
    return 0


def _autonomy_check(args: argparse.Namespace, ctx: CommandContext) -> int:
    from medcode.cli import print_json

    with _ledger(ctx) as ledger:
        suspended = ledger.check()
    if args.json:
        print_json([g.model_dump(mode="json") for g in suspended])
    elif suspended:
        for grant in suspended:
            reasons = ", ".join((grant.end or {}).get("reasons", []))
            sys.stdout.write(f"suspended {grant.case_type} (grant {grant.grant_id}): {reasons}\n")
    else:
        sys.stdout.write("every active grant holds\n")
    return 0


def _autonomy_drift(args: argparse.Namespace, ctx: CommandContext) -> int:
    with _ledger(ctx) as ledger:
        record = ledger.raise_drift_alert(args.case_type, source=args.source, detail=args.detail)
        suspended = [g for g in ledger.grants() if g.end and f"DRIFT_ALERT:{record.seq}" in g.end.get("reasons", [])]
    sys.stdout.write(
        f"drift alert {record.seq} for {args.case_type}; suspended: "
        f"{', '.join(g.case_type for g in suspended) or 'none (no active grant)'}\n"
    )
    return 0
