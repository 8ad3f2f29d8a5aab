"""``medcode train``: fit the acceptance model from labelled notes and the review queue; promote it behind a gate."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from medcode.agent import MedicalCoder, Note
    from medcode.cli import CommandContext
    from medcode.config import Settings

__all__ = ["promote", "queue_notes", "register"]

_DEFAULT_GATE = Path(__file__).resolve().parent / "data" / "gold.jsonl"
# Fold assignments the calibration and thresholds are chosen on: with one, the outpatient threshold moved
# 0.14-0.28 between fold seeds on the same features; with three, 0.22-0.26 (2026-12-02).
THRESHOLD_SEEDS = 3
_RANKER_POOL = 200  # candidates a site's ranker re-orders (the packaged ranker's pool)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    tr = sub.add_parser(
        "train",
        help="fit the acceptance model from labelled notes and finalised charts",
        description="Fit the learned acceptance model (the probability that a coder keeps a retrieved code) from "
        "labelled JSONL files (the benchmark format: id, text, codes) and/or the review queue's finalised, "
        "human-reviewed charts (accepted and added codes positive, the rest negative). Runs the real pipeline on "
        "every note (features are cached in OUT/features.jsonl, so a rerun resumes), prints out-of-fold figures "
        "and writes OUT/model.json and OUT/report.json. With --promote the new model replaces the active one only "
        "if `regress` of it against the active model passes on the gate dataset; the switch is audited and "
        "suspends active autonomy grants (their thresholds were the old model's confidences). With --from-queue "
        "the queue's charts also set the confidence level (their kept rate).",
    )
    tr.add_argument("--dataset", type=Path, action="append", default=[], help="labelled JSONL (repeatable)")
    tr.add_argument(
        "--from-queue",
        action="store_true",
        help="also learn from the review queue's finalised charts (their kept rate also sets the confidence level)",
    )
    tr.add_argument("--out", type=Path, required=True, help="output directory (model.json, report.json, cache)")
    tr.add_argument("--cv", type=int, default=5, metavar="K", help="cross-validation folds (default 5)")
    tr.add_argument("--seed", type=int, default=0, help="fold seed of the model's own cross-validation (0)")
    tr.add_argument(
        "--fold-seeds",
        type=int,
        default=1,
        metavar="N",
        help="also report out-of-fold F1 and ECE at N fold seeds (SEED, SEED+1, ...): median and range per dataset, "
        "as small datasets' figures move with the fold assignment; the model is fitted once (default 1)",
    )
    tr.add_argument(
        "--threshold-seeds",
        type=int,
        default=THRESHOLD_SEEDS,
        metavar="N",
        help="fit the calibration and choose the thresholds over N fold assignments (SEED, SEED+1, ...: "
        "out-of-fold margins stacked, F1 curves averaged), so the operating point moves less with the fold "
        f"assignment; costs N cross-validations (default {THRESHOLD_SEEDS})",
    )
    tr.add_argument(
        "--no-floor",
        action="store_true",
        help="choose no floors: a note where no code reaches the threshold gets none (to compare with the default, "
        "which gives it its likeliest candidate when that reaches a floor chosen out of fold)",
    )
    tr.add_argument("--precision-target", type=float, default=0.95, help="for the strict threshold (0.95)")
    tr.add_argument("--limit", type=int, help="first N notes of each dataset only")
    tr.add_argument("--version", help="model version label (default: acceptance-<UTC date>)")
    tr.add_argument("--promote", action="store_true", help="make it the active model if it passes the gate")
    tr.add_argument(
        "--gate-dataset", type=Path, default=_DEFAULT_GATE, help="gold JSONL the gate evaluates on (project gold set)"
    )
    tr.add_argument("--gate-tolerance", type=float, default=0.02, help="allowed fall in micro-F1 at the gate")
    tr.add_argument(
        "--gate-holdout",
        type=int,
        metavar="N",
        help="with --from-queue and --promote: keep the N most recently finalised charts out of training and gate "
        "on them too (the active model against the new one on the site's own charts, besides the gate dataset)",
    )
    tr.add_argument(
        "--with-priors",
        action="store_true",
        help="also fit on how often each code and category is gold in the training labels, per setting with at "
        "least 200 labelled notes (for a site with a large coded history of its own; left out by default: the "
        "packaged model's labels are mostly CodiEsp's case reports, whose coding habits are not every site's)",
    )
    tr.add_argument(
        "--ranker",
        action="store_true",
        help="first fit a candidate ranker on the inpatient notes (case reports) and train the model on its "
        "candidates: OUT/ranker-<version>.json, which the model names and brings along when promoted (with "
        "--with-priors the ranker learns the labels' code shares too)",
    )
    tr.add_argument("--json", action="store_true", help="print the report as JSON")
    tr.set_defaults(handler=_train)


def queue_notes(settings: Settings) -> Iterator[tuple[str, Note, list[str]]]:
    """``("queue", note, final codes)`` for every finalised chart a human reviewed (auto charts are left out).

    In the order the charts were finalised (oldest first).
    """
    for _at, note, final in _queue_charts(settings):
        yield "queue", note, final


def _queue_charts(settings: Settings) -> list[tuple[str, Note, list[str]]]:
    """``(finalised_at, note, final codes)`` of the human-reviewed finalised charts, oldest finalisation first."""
    from medcode.agent import Note
    from medcode.review import ReviewQueue

    found: list[tuple[str, int, Note, list[str]]] = []
    with ReviewQueue(settings, create=False) as queue:
        offset = 0
        while True:
            page = queue.list_charts("finalised", limit=200, offset=offset)
            if not page:
                break
            offset += len(page)
            for summary in page:
                chart = queue.get(summary.chart_id)
                if chart.finalised_by in (None, "auto") or not chart.note_text:
                    continue
                final = [c.code for c in chart.codes if c.decision == "accepted"]
                note = Note.checked(
                    chart.note_text,
                    settings.max_note_chars,
                    id=f"chart-{chart.chart_id}",
                    setting=chart.setting,
                    note_type=chart.note_type or "outpatient_visit",
                    date_of_service=chart.date_of_service,
                )
                found.append((chart.finalised_at or "", chart.chart_id, note, final))
    found.sort(key=lambda row: (row[0], row[1]))
    return [(at, note, final) for at, _id, note, final in found]


def _write_gate(charts: Sequence[tuple[str, Note, list[str]]], path: Path) -> None:
    """The held-out charts as a gold JSONL for the gate (readable by the owner only: it holds note text)."""
    from medcode.evals._dataset import GoldDocument

    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        for _at, note, final in charts:
            doc = GoldDocument(
                id=note.id,
                text=note.text,
                codes=final,
                setting=note.setting,
                note_type=note.note_type,
                date_of_service=note.date_of_service,
            )
            out.write(doc.model_dump_json(exclude_defaults=True) + "\n")


def _dataset_notes(path: Path, settings: Settings, limit: int | None) -> list[tuple[str, Note, list[str]]]:
    """A dataset's notes; each malformed line is reported on stderr (with its number) and skipped."""
    from medcode.evals._dataset import read_dataset_reporting
    from medcode.evals._harness import note_for

    name = path.parent.name + "/" + path.stem if path.parent.name else path.stem
    docs, _problems = read_dataset_reporting(path, command="medcode train", limit=limit)
    return [(name, note_for(doc, settings.max_note_chars), doc.codes) for doc in docs]


def suspend_autonomy(settings: Settings, old: str | None, new: str | None) -> list[str]:
    """Suspend every active autonomy grant before another acceptance model becomes active; their case types.

    A grant's threshold is a confidence of the model whose codes its audits judged: under another model it
    means something else, so the case types go back to review until they are granted again. The
    suspension is a ``drift_alert`` for every case type, handled like monitoring's (audited). Raises
    ``ConfigError`` for an unreadable autonomy policy.
    """
    from medcode.review.governance import AutonomyLedger

    with AutonomyLedger(settings, create=False) as ledger:
        active = sorted(g.case_type for g in ledger.grants() if g.status == "active")
        if active:
            ledger.raise_drift_alert(
                "*",
                source="medcode train --promote",
                detail=f"acceptance model {old or 'packaged'} -> {new}: grant thresholds are the old model's confidences",
            )
    return active


def promote(
    settings: Settings,
    challenger: Path,
    *,
    gate: Path,
    tolerance: float,
    out: Path,
    site_gate: Path | None = None,
) -> tuple[bool, str, dict[str, Any]]:
    """Evaluate the active model and ``challenger`` on ``gate``; install the challenger when it passes.

    With ``site_gate`` (the site's held-out charts, ``--gate-holdout``) both models are evaluated on it too and
    the challenger must pass there as well. Returns (promoted, the comparison tables, details). The switch is one
    audit-log record (``acceptance_model_promoted``) or, on failure, ``acceptance_model_rejected``. Before the
    switch, every active autonomy grant is suspended (``suspend_autonomy``). A challenger that names a candidate
    ranker file (``--ranker``) brings it along: the file is copied beside the active model first.
    """
    from medcode.agent._acceptance import active_model_path, load_acceptance_model
    from medcode.evals._harness import run_eval
    from medcode.evals._regress import compare
    from medcode.review import AuditLog

    champion = load_acceptance_model(settings)
    champion_version = champion.version if champion is not None else None
    chall_settings = settings.model_copy(update={"acceptance_model": challenger})
    details: dict[str, Any] = {"champion": champion_version, "gate": gate.name}
    tables: list[str] = []
    failures: list[str] = []
    for label, path in [("gate", gate), ("site_gate", site_gate)]:
        if path is None:
            continue
        champ_metrics = run_eval(settings, path, out / f"{label}-champion", proposer="retrieval", progress=False)
        chall_metrics = run_eval(
            chall_settings, path, out / f"{label}-challenger", proposer="retrieval", progress=False
        )
        comparison = compare(
            champ_metrics, chall_metrics, tolerance_f1=tolerance, tolerance_raw=tolerance, allow_version_change=True
        )
        details["challenger"] = chall_metrics.get("versions", {}).get("acceptance_model")
        prefix = "" if label == "gate" else "site_gate_"
        details[f"{prefix}champion_micro_f1"] = champ_metrics.get("micro_f1")
        details[f"{prefix}challenger_micro_f1"] = chall_metrics.get("micro_f1")
        if label == "site_gate":
            details["site_gate_charts"] = chall_metrics.get("n_documents")
        failures += [f if label == "gate" else f"site gate: {f}" for f in comparison.failures]
        name = gate.name if label == "gate" else f"the site's {chall_metrics.get('n_documents')} held-out charts"
        tables.append(f"gate on {name}:\n{comparison.table()}")
    details["failures"] = failures
    passed = not failures
    if passed:
        details["autonomy_suspended"] = suspend_autonomy(settings, champion_version, details["challenger"])
    with AuditLog(settings) as audit:
        if passed:
            target = active_model_path(settings)
            target.parent.mkdir(parents=True, exist_ok=True)
            ranker_file = (json.loads(challenger.read_bytes()).get("candidate_ranker") or {}).get("file")
            if ranker_file:  # the ranker the model learned on goes first: the active model never lacks it
                shutil.copyfile(challenger.parent / ranker_file, target.parent / f"{ranker_file}.tmp")
                os.replace(target.parent / f"{ranker_file}.tmp", target.parent / ranker_file)
                details["candidate_ranker"] = ranker_file
            if target.exists():
                stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
                shutil.copy2(target, target.with_name(f"retired-{stamp}.json"))
            tmp = target.with_suffix(".tmp")
            shutil.copyfile(challenger, tmp)
            os.replace(tmp, target)
            audit.append("acceptance_model_promoted", details)
        else:
            audit.append("acceptance_model_rejected", details)
    return passed, "\n".join(tables), details


def _train(args: argparse.Namespace, ctx: CommandContext) -> int:
    from medcode.agent import MedicalCoder, Runtime
    from medcode.agent._acceptance import FEATURE_NAMES, MIN_PRIOR_NOTES, TRAINING_FEATURES
    from medcode.errors import InputError, MissingDependencyError
    from medcode.evals._training import (
        check_cache,
        collect_examples,
        fold_seed_spread,
        pipeline_identity,
        train_model,
    )

    try:
        import sklearn  # noqa: F401
    except ImportError:
        raise MissingDependencyError("medcode train needs scikit-learn: pip install 'medcode[train]'") from None

    if not args.dataset and not args.from_queue:
        raise InputError("give at least one --dataset FILE or --from-queue")
    if args.cv < 2:
        raise InputError("--cv must be at least 2")
    if args.fold_seeds < 1:
        raise InputError("--fold-seeds must be at least 1")
    if args.threshold_seeds < 1:
        raise InputError("--threshold-seeds must be at least 1")
    if not 0.5 <= args.precision_target < 1.0:
        raise InputError("--precision-target must be in [0.5, 1)")
    for path in args.dataset:
        if not path.is_file():
            raise InputError(f"dataset not found: {path}")
    if args.gate_holdout is not None and not (args.from_queue and args.promote):
        raise InputError("--gate-holdout needs --from-queue and --promote (it holds out the queue's newest charts)")
    if args.gate_holdout is not None and args.gate_holdout < 1:
        raise InputError("--gate-holdout must be at least 1")
    settings = ctx.settings
    args.out.mkdir(parents=True, exist_ok=True)
    notes: list[tuple[str, Note, list[str]]] = []
    for path in args.dataset:
        notes += _dataset_notes(path, settings, args.limit)
    held_out: list[tuple[str, Note, list[str]]] = []
    queue_through: str | None = None
    if args.from_queue:
        charts = _queue_charts(settings)
        if args.gate_holdout is not None:
            if args.gate_holdout >= len(charts):
                raise InputError(
                    f"--gate-holdout {args.gate_holdout}: the queue has {len(charts)} finalised, human-reviewed "
                    "charts; hold out fewer, so the new model learns from some of them"
                )
            charts, held_out = charts[: -args.gate_holdout], charts[-args.gate_holdout :]
        notes += [("queue", note, final) for _at, note, final in charts]
        queue_through = charts[-1][0] if charts else None
    if not notes:
        raise InputError("no labelled notes found")
    ranker_report: dict[str, Any] | None = None
    if args.ranker:
        ranker_file, ranker_report = _fit_ranker(settings, notes, args)
        settings = settings.model_copy(update={"candidate_ranker": True, "candidate_ranker_file": ranker_file})
    coder: MedicalCoder
    # The features come from the ranker the settings name (or none), never the active model's: the new
    # model records the ranker it learned on.
    with (
        Runtime(settings, model_ranker=False) as runtime,
        MedicalCoder(settings, runtime=runtime, proposer="retrieval") as coder,
    ):
        ranker = coder.retriever().ranker
        cache = args.out / ("features.jsonl" if ranker is None else f"features-ranker-{ranker.version}.jsonl")
        check_cache(cache, pipeline_identity(coder))
        examples = collect_examples(coder, notes, cache=cache, total=len(notes))
    version = args.version or f"acceptance-{dt.datetime.now(dt.UTC):%Y-%m-%d}"
    features = FEATURE_NAMES if args.with_priors else TRAINING_FEATURES
    margins: dict[int, Any] = {}  # out-of-fold margins per fold seed, shared with --fold-seeds
    model, oof = train_model(
        examples,
        k=args.cv,
        seed=args.seed,
        precision_target=args.precision_target,
        version=version,
        features=features,
        site="queue" if args.from_queue else None,
        threshold_seeds=args.threshold_seeds,
        margins=margins,
        with_floors=not args.no_floor,
    )
    thin = [f"{s} ({n})" for s, n in sorted(model["priors"]["n_docs"].items()) if n < MIN_PRIOR_NOTES]
    if args.with_priors and thin:
        print(
            f"medcode train: --with-priors: no priors for {', '.join(thin)}: a setting needs {MIN_PRIOR_NOTES} "
            "labelled notes (fewer give noisy shares)",
            file=sys.stderr,
        )
    if ranker is not None:
        model["candidate_ranker"] = _ranker_spec(settings, ranker.version, args.out)
    # The newest queue chart learned from: a later --gate-holdout can tell which held-out charts this model saw.
    model["provenance"]["queue_through"] = queue_through
    model_path = args.out / "model.json"
    model_path.write_text(json.dumps(model, separators=(",", ":")) + "\n", encoding="utf-8")
    report = {"version": version, "thresholds": model["thresholds"], "strict_thresholds": model["strict_thresholds"]}
    report["floors"] = model["floors"]
    report["threshold_fold_seeds"] = list(range(args.seed, args.seed + args.threshold_seeds))
    report["confidence_offsets"] = model["confidence_offsets"]
    if ranker is not None:
        report["candidate_ranker"] = model["candidate_ranker"] | (ranker_report or {})
    report |= {"out_of_fold": oof, "trained_on": model["provenance"]["trained_on"]}
    if args.fold_seeds > 1:
        report["out_of_fold_seeds"] = fold_seed_spread(
            examples,
            [args.seed + i for i in range(args.fold_seeds)],
            k=args.cv,
            precision_target=args.precision_target,
            features=features,
            known={args.seed: oof},
            threshold_seeds=args.threshold_seeds,
            margins=margins,
            with_floors=not args.no_floor,
        )
    (args.out / "report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print_report(report)
        print(f"wrote {model_path} and {args.out / 'report.json'}")
    if not args.promote:
        return 0
    with tempfile.TemporaryDirectory(prefix="medcode-gate-") as tmp:
        site_gate = None
        if held_out:
            site_gate = Path(tmp) / "site-gate.jsonl"
            _write_gate(held_out, site_gate)
            seen = _seen_by_active(settings, held_out)
            print(
                f"site gate: the {len(held_out)} most recently finalised charts (from {held_out[0][0]}) are held out"
                + (
                    f"; the active model learned from {seen} of them, so its figures there are in-sample"
                    if seen
                    else ""
                ),
                file=sys.stderr,
            )
        ok, table, details = promote(
            settings,
            model_path,
            gate=args.gate_dataset,
            tolerance=args.gate_tolerance,
            out=Path(tmp),
            site_gate=site_gate,
        )
    print(table)
    print("PROMOTED: the new model is active" if ok else "NOT PROMOTED: the gate failed", file=sys.stderr)
    if details.get("autonomy_suspended"):
        print(
            f"autonomy suspended for {', '.join(details['autonomy_suspended'])}: its thresholds were the old "
            "model's confidences; audit and grant again (`medcode autonomy grant`)",
            file=sys.stderr,
        )
    return 0 if ok else 1


def _fit_ranker(
    settings: Settings, notes: Sequence[tuple[str, Note, Sequence[str]]], args: argparse.Namespace
) -> tuple[Path, dict[str, Any]]:
    """Fit a candidate ranker on the inpatient notes' pools (cached in OUT/ranker-pools.jsonl); its file and figures.

    Raises ``InputError`` when there are fewer inpatient notes than folds or nothing to learn from.
    """
    from tqdm import tqdm

    from medcode.agent import Runtime
    from medcode.agent._results import read_result_lines
    from medcode.errors import InputError, MedcodeError
    from medcode.evals._training import DEFAULT_TOP_K, check_cache, retrieval_identity
    from medcode.retrieval._ranker import CandidateRanker
    from medcode.retrieval._ranker_fit import fit_ranker, pool_row

    inpatient = [(name, note, gold) for name, note, gold in notes if note.setting == "inpatient"]
    if len(inpatient) < args.cv:
        raise InputError(
            f"--ranker: {len(inpatient)} inpatient notes (case reports, discharge summaries); the ranker covers "
            f"inpatient notes and needs at least --cv ({args.cv}) of them"
        )
    cache = args.out / "ranker-pools.jsonl"
    rows: list[dict[str, Any]] = []
    with Runtime(settings, model_ranker=False) as runtime:
        check_cache(cache, retrieval_identity(runtime.retriever()) | {"pool": str(_RANKER_POOL)})
        # A torn last line (a crash mid-write) is cut off the file, so the next append starts clean.
        done = {(r["dataset"], r["id"]): r for r in read_result_lines(cache) if {"dataset", "id"} <= r.keys()}
        with cache.open("a", encoding="utf-8") as handle:
            for name, note, gold in tqdm(inpatient, desc="ranker pools", unit="note", file=sys.stderr):
                row = done.get((name, note.id))
                if row is None:
                    try:
                        row = pool_row(
                            runtime.retriever(note.date_of_service),
                            note.text,
                            gold,
                            dataset=name,
                            doc_id=note.id,
                            pool=_RANKER_POOL,
                        )
                    except MedcodeError as exc:
                        print(f"medcode train: {name}:{note.id}: skipped: {exc}", file=sys.stderr)
                        continue
                    handle.write(json.dumps(row) + "\n")
                    handle.flush()
                rows.append(row)
    try:
        fit = fit_ranker(
            rows,
            pool=_RANKER_POOL,
            cut=DEFAULT_TOP_K["inpatient"],
            cv=args.cv,
            with_priors=args.with_priors,
            seed=args.seed,
        )
    except ValueError as exc:
        raise InputError(f"--ranker: {exc}") from None
    raw = (json.dumps(fit.data, separators=(",", ":")) + "\n").encode("utf-8")
    path = args.out / f"ranker-{CandidateRanker.file_version(raw)}.json"
    path.write_bytes(raw)
    print(
        f"candidate ranker: out-of-fold recall@{fit.cut} on {len(rows)} inpatient notes "
        f"{fit.recall_before:.3f} -> {fit.recall_after:.3f}; wrote {path}",
        file=sys.stderr,
    )
    return path, {"notes": len(rows), "recall_before": fit.recall_before, "recall_after": fit.recall_after}


def _seen_by_active(settings: Settings, charts: Sequence[tuple[str, Note, list[str]]]) -> int:
    """How many of ``charts`` the active model learned from (finalised no later than its ``queue_through``)."""
    from medcode.agent._acceptance import load_acceptance_model

    champion = load_acceptance_model(settings)
    through = champion.data.get("provenance", {}).get("queue_through") if champion is not None else None
    return sum(at <= through for at, _note, _final in charts) if isinstance(through, str) else 0


def _ranker_spec(settings: Settings, version: str, out: Path) -> dict[str, Any]:
    """How the model names the ranker it learned on: the packaged one, or a copy of its file in ``out``."""
    named = settings.candidate_ranker_file
    if named is None:
        return {"version": version, "file": None}
    target = out / f"ranker-{version}.json"
    if named.resolve() != target.resolve():
        shutil.copyfile(named, target)
    return {"version": version, "file": target.name}


def _print_report(report: dict[str, Any]) -> None:
    out = sys.stdout
    chosen_on = report["threshold_fold_seeds"]
    over = f"fold seed {chosen_on[0]}" if len(chosen_on) == 1 else f"fold seeds {chosen_on[0]}-{chosen_on[-1]}"
    out.write(
        f"model {report['version']}; thresholds {report['thresholds']} (calibration and thresholds over {over}); "
        f"strict {report['strict_thresholds']}; floors for notes with no code at the threshold "
        f"{report.get('floors') or 'none'}\n"
    )
    if report.get("confidence_offsets"):
        out.write(
            f"confidence offsets from the queue's charts (logit; thresholds move with them): "
            f"{report['confidence_offsets']}; the figures below are before them\n"
        )
    out.write(f"out-of-fold, per dataset (fold seed {chosen_on[0]}):\n")
    out.write(f"  {'dataset':<22} {'notes':>5} {'P':>6} {'R':>6} {'F1':>6} {'ECE':>6} {'cand.R':>7}\n")
    rows: Sequence[tuple[str, dict[str, Any]]] = sorted(report["out_of_fold"].items())
    for name, row in rows:
        out.write(
            f"  {name:<22} {row['notes']:>5} {row['precision']:>6.3f} {row['recall']:>6.3f} {row['f1']:>6.3f} "
            f"{row['ece_proposed']:>6.3f} {row['candidate_recall']:>7.3f}\n"
        )
    spread: dict[str, dict[str, dict[str, Any]]] = report.get("out_of_fold_seeds") or {}
    if spread:
        seeds = next(iter(spread.values()))["f1"]["seeds"]
        out.write(f"out-of-fold over fold seeds {seeds[0]}-{seeds[-1]}, median [min-max]:\n")
        for name, figures in sorted(spread.items()):
            f1, ece = figures["f1"], figures["ece_proposed"]
            out.write(
                f"  {name:<22} F1 {f1['median']:.3f} [{f1['min']:.3f}-{f1['max']:.3f}]  "
                f"ECE {ece['median']:.3f} [{ece['min']:.3f}-{ece['max']:.3f}]\n"
            )
