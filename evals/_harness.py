"""``medcode eval``: run the real pipeline over a gold dataset and score it.

Writes ``predictions.jsonl`` (one line per document, appended and fsynced, so a rerun resumes),
then ``metrics.json`` and ``report.html`` computed from every line of ``predictions.jsonl``.
Evaluation runs record nothing in the review queue or the audit log.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import sys
import threading
from collections import Counter, defaultdict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medcode.config import Settings
from medcode.errors import InputError, MedcodeError
from medcode.evals._dataset import GoldDocument, read_dataset_reporting
from medcode.evals._metrics import (
    category_f1,
    exact_match,
    expected_calibration_error,
    macro_f1,
    mean_average_precision,
    micro_prf,
    reliability_bins,
)

if TYPE_CHECKING:
    from medcode.agent import MedicalCoder, RayOptions, Runtime
    from medcode.codesets import ICD10CMCodeSet

__all__ = [
    "HALLUCINATION_RULES",
    "GoldForms",
    "compute_metrics",
    "load_predictions",
    "note_for",
    "run_eval",
    "unsupported_reason",
]

# Rules whose firing means the proposal was a hallucinated code or an unsupported justification.
HALLUCINATION_RULES = frozenset(
    {
        "CODE_MALFORMED",
        "CODE_UNKNOWN",
        "CODE_NOT_BILLABLE",
        "SEVENTH_CHARACTER",
        "NOT_A_CANDIDATE",
        "SPAN_NOT_IN_NOTE",
        "SPAN_UNRELATED",
        "SPAN_INSTRUCTION",
        "SPAN_NEGATED",
        "SPAN_FAMILY_HISTORY",
        "SPAN_HYPOTHETICAL",
        "SPAN_UNCERTAIN",
        "SPAN_HISTORICAL",
    }
)


def load_predictions(path: Path) -> list[dict[str, Any]]:
    """Rows of ``predictions.jsonl`` that name a document (a torn last line is cut off the file)."""
    from medcode.agent._results import read_result_lines

    return [row for row in read_result_lines(path) if isinstance(row.get("id"), str)]


def note_for(doc: GoldDocument, max_chars: int) -> Any:
    from medcode.agent import Note

    return Note.checked(
        doc.text,
        max_chars,
        id=doc.id,
        setting=doc.coding_setting,
        note_type=doc.note_type or ("case_report" if doc.setting == "case-report" else "outpatient_visit"),
        age=doc.age,
        sex=doc.sex,
        date_of_service=doc.date_of_service,
    )


def run_eval(
    settings: Settings,
    dataset: Path,
    out_dir: Path,
    *,
    proposer: str = "retrieval",
    limit: int | None = None,
    workers: int = 1,
    strict: bool = False,
    progress: bool = True,
    coder: MedicalCoder | None = None,
    ray: RayOptions | None = None,
) -> dict[str, Any]:
    """Evaluate and return the metrics (also written to ``out_dir``).

    With ``ray`` the documents are coded by Ray workers (``medcode.agent.map_in_order``) and written here in
    dataset order; ``coder`` then only serves the metrics' code set. Raises ``InputError`` for an unreadable
    dataset, a malformed line under ``strict``, or an output directory holding predictions of another proposer;
    ``MissingDependencyError`` (Ray not installed) and ``DistributedError`` with ``ray``.
    """
    from tqdm import tqdm

    from medcode.agent import MedicalCoder

    out_dir.mkdir(parents=True, exist_ok=True)
    pred_path = out_dir / "predictions.jsonl"
    docs, problems = read_dataset_reporting(dataset, command="medcode eval", strict=strict, limit=limit)
    existing = load_predictions(pred_path)
    if existing and any(r.get("proposer") not in (None, proposer) for r in existing):
        raise InputError(f"{pred_path} holds predictions of another proposer; use another --out")
    done = {r["id"] for r in existing}
    todo = [d for d in docs if d.id not in done]
    own_coder = coder is None
    coder = coder or MedicalCoder(settings, proposer=proposer)  # type: ignore[arg-type]
    lock = threading.Lock()
    try:
        if todo and ray is not None:
            _eval_on_ray(settings, todo, pred_path, proposer, ray, progress=progress, label=dataset.name)
            todo = []
        if todo:
            coder.warm_up()
        with pred_path.open("a", encoding="utf-8") as out:

            def one(doc: GoldDocument) -> None:
                row = _predict(coder, doc, settings.max_note_chars, proposer)
                with lock:
                    out.write(json.dumps(row, ensure_ascii=False) + "\n")
                    out.flush()
                    os.fsync(out.fileno())

            bar = tqdm(total=len(todo), desc=f"eval {dataset.name}", unit="doc", file=sys.stderr, disable=not progress)
            if workers <= 1:
                for doc in todo:
                    one(doc)
                    bar.update()
            else:
                with ThreadPoolExecutor(max_workers=workers) as pool:
                    for _ in pool.map(one, todo):
                        bar.update()
            bar.close()
    finally:
        if own_coder:
            coder.close()
    wanted = {d.id for d in docs}
    rows = [r for r in load_predictions(pred_path) if r["id"] in wanted]
    texts = {d.id: d.text for d in docs}
    metrics = compute_metrics(rows, coder.registry.get(), problems=len(problems), texts=texts)
    metrics["dataset"] = str(dataset)
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    from medcode.evals._report import write_report

    write_report(out_dir, metrics, rows)
    return metrics


class _EvalCoder:
    """Builds a Ray worker's coder for an evaluation (no recorder, no autonomy gate; pickled to the workers)."""

    def __init__(self, proposer: str) -> None:
        self.proposer = proposer

    def __call__(self, runtime: Runtime) -> MedicalCoder:
        from medcode.agent import MedicalCoder

        return MedicalCoder(runtime.settings, runtime=runtime, proposer=self.proposer)  # type: ignore[arg-type]


def _eval_on_ray(
    settings: Settings,
    todo: list[GoldDocument],
    pred_path: Path,
    proposer: str,
    options: RayOptions,
    *,
    progress: bool,
    label: str,
) -> None:
    """Code ``todo`` on Ray workers and append each prediction row, in dataset order, as it is ready."""
    from functools import partial

    from tqdm import tqdm

    from medcode.agent import map_in_order

    rows = map_in_order(
        settings,
        todo,
        partial(_predict, max_chars=settings.max_note_chars, proposer=proposer),
        make_coder=_EvalCoder(proposer),
        options=options,
    )
    with pred_path.open("a", encoding="utf-8") as out:
        for row in tqdm(
            rows, total=len(todo), desc=f"eval {label} (ray)", unit="doc", file=sys.stderr, disable=not progress
        ):
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
            out.flush()
            os.fsync(out.fileno())


def _predict(coder: MedicalCoder, doc: GoldDocument, max_chars: int, proposer: str) -> dict[str, Any]:
    """One document's prediction row; a failure is recorded, never raised."""
    row: dict[str, Any] = {
        "id": doc.id,
        "proposer": proposer,
        "gold": doc.codes,
        "gold_spans": [s.model_dump() for s in doc.spans],
        "gold_traps": [t.model_dump() for t in doc.traps],
        "setting": doc.coding_setting,
    }
    try:
        result = coder.code(note_for(doc, max_chars))
    except (MedcodeError, ValueError) as exc:
        row["error"] = {"type": type(exc).__name__, "message": str(exc)}
        return row
    accepted = sorted((c for c in result.codes if c.status == "accepted"), key=lambda c: -(c.confidence or 0.0))
    row["predicted"] = [c.code for c in accepted]
    row["result"] = result.model_dump(mode="json")
    return row


def _in_codeset(code: str, codeset: ICD10CMCodeSet) -> bool:
    return code in codeset and codeset.is_billable(code)


class GoldForms:
    """A benchmark's gold codes in the forms of the release in force.

    Benchmarks are coded for the release of their day: CodiEsp writes "R51" (a header since FY2021:
    the code is now R51.9), "M54.5" (now M54.50) and injury codes without their 7th character
    ("T14.90", "W19.XXX"). ``codesets.ReleaseMapper`` steps a header down to its default child or
    to its 7th-character variants, and gives a code written with its placeholder X's but no 7th
    character its variants. The rest (a code the release lacks, a header with several specific
    children) keeps its own form and stays unmatchable, as in the plain metrics.
    """

    def __init__(self, codeset: ICD10CMCodeSet) -> None:
        from medcode.codesets import ReleaseMapper

        self._mapper = ReleaseMapper(codeset)

    def forms(self, code: str) -> tuple[str, ...]:
        """The billable codes of the release that ``code`` stands for (empty when none)."""
        return self._mapper.map(code.upper())[0]

    def align(self, gold: Iterable[str], predicted: Iterable[str]) -> list[str]:
        """``gold`` in the release's forms: each code becomes the form ``predicted`` chose (any of its
        7th-character variants counts), else its first form, else itself."""
        chosen = {c.upper() for c in predicted}
        out = []
        for code in gold:
            forms = self.forms(code)
            hit = sorted(chosen.intersection(forms))
            out.append(hit[0] if hit else forms[0] if forms else code.upper())
        return out


def _evidence_ok(code: dict[str, Any], text_by_offsets: dict[tuple[int, int], str] | None) -> bool:
    evidence = code.get("evidence") or []
    if not evidence:
        return False
    for ev in evidence:
        if ev.get("start") is None or ev.get("end") is None or not str(ev.get("text", "")).strip():
            return False
        if text_by_offsets is not None and text_by_offsets.get((ev["start"], ev["end"])) != ev["text"]:
            return False
    return True


def _overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return min(a[1], b[1]) > max(a[0], b[0])


_WORDS = re.compile(r"[a-z]+")


def _same_condition(a: str, b: str, codeset: ICD10CMCodeSet) -> bool:
    """Two categories of one block whose titles share at least half their words (E10 and E11)."""
    ra, rb = codeset.get(a), codeset.get(b)
    if ra.block != rb.block:
        return False
    wa, wb = set(_WORDS.findall(ra.description.lower())), set(_WORDS.findall(rb.description.lower()))
    return bool(wa | wb) and 2 * len(wa & wb) >= len(wa | wb)


def _siblings(code: str, gold: str, codeset: ICD10CMCodeSet) -> bool:
    """Same category (E11.65 / E11.9, S93.401A / S93.401D, M17.11 / M17.12), or the same subcode in a twin category."""
    a, b = code.replace(".", ""), gold.replace(".", "")
    if a[:3] == b[:3]:
        return True
    return a[3:] == b[3:] != "" and a[:3] in codeset and b[:3] in codeset and _same_condition(a[:3], b[:3], codeset)


def unsupported_reason(
    code: dict[str, Any], row: dict[str, Any], codeset: ICD10CMCodeSet, spans_by_code: dict[str, list[tuple[int, int]]]
) -> str | None:
    """Why gold says an accepted code is unsupported, or None. Uses gold and the code set only, never the validators.

    ``trap``: the note's gold lists the code as a trap (negated, family history, historical, uncertain,
    wrong side or 7th character, an injected instruction); ``sibling``: the code is not gold but a
    sibling of a gold code of the note (same category, or the same subcode of a twin category such as
    E10/E11), i.e. the wrong member of a family the note documents; ``evidence``: the code is gold and
    gold marks its evidence, but none of the accepted evidence spans overlaps a gold span of that code.
    """
    name = str(code["code"]).upper()
    gold = {c.upper() for c in row["gold"]}
    if any(name in {c.upper() for c in trap.get("not_codes", [])} for trap in row.get("gold_traps", [])):
        return "trap"
    if name not in gold:
        if any(_siblings(name, g, codeset) for g in gold):
            return "sibling"
        return None
    gold_spans = spans_by_code.get(name)
    if gold_spans:
        spans = [(e["start"], e["end"]) for e in code.get("evidence", []) if e.get("start") is not None]
        if not any(_overlaps(s, g) for s in spans for g in gold_spans):
            return "evidence"
    return None


def compute_metrics(
    rows: list[dict[str, Any]], codeset: ICD10CMCodeSet, *, problems: int = 0, texts: dict[str, str] | None = None
) -> dict[str, Any]:
    """All metrics from prediction rows (see ``evals/_metrics.py`` for the definitions).

    Documents that failed count with no predictions. ``texts`` (id -> note text) enables the
    exact evidence re-check of accepted codes; without it spans are checked for shape only.
    """
    ok_rows = [r for r in rows if "result" in r]
    gold = [r["gold"] for r in rows]
    predicted = [r.get("predicted", []) for r in rows]
    prf = micro_prf(gold, predicted)
    cat = category_f1(gold, predicted)
    gold_codes = [c for g in gold for c in g]
    unknown_gold = sorted({c for c in gold_codes if not _in_codeset(c, codeset)})
    known_gold = [[c for c in g if _in_codeset(c, codeset)] for g in gold]
    prf_known = micro_prf(known_gold, predicted)
    gold_forms = GoldForms(codeset)
    release_gold = [gold_forms.align(g, p) for g, p in zip(gold, predicted, strict=True)]
    prf_release = micro_prf(release_gold, predicted)

    raw_total = raw_bad = 0
    accepted_total = accepted_bad = 0
    unsupported: Counter[str] = Counter()
    rejections: Counter[str] = Counter()
    confidences: list[float] = []
    correct: list[bool] = []
    evidence_hits = evidence_total = 0
    routing: Counter[str] = Counter()
    seconds: list[float] = []
    prompt_tokens: list[int] = []
    completion_tokens: list[int] = []
    offered_hits = 0
    for row in ok_rows:
        result = row["result"]
        gold_set = {c.upper() for c in row["gold"]}
        routing[result["routing"]["decision"]] += 1
        seconds.append(float(result["usage"]["seconds"]))
        prompt_tokens.append(int(result["usage"]["prompt_tokens"]))
        completion_tokens.append(int(result["usage"]["completion_tokens"]))
        offered = set(result.get("candidates", []))
        offered_hits += sum(1 for c in gold_set if c in offered)
        spans_by_code: dict[str, list[tuple[int, int]]] = defaultdict(list)
        for span in row.get("gold_spans", []):
            spans_by_code[span["code"].upper()].append((span["start"], span["end"]))
        text = (texts or {}).get(row["id"])
        for code in result["codes"]:
            raw_total += 1
            if set(code.get("rules", [])) & HALLUCINATION_RULES:
                raw_bad += 1
            for rule in code.get("rules", []):
                rejections[rule] += 1
            if code["status"] != "accepted":
                continue
            accepted_total += 1
            check = (
                None
                if text is None
                else {(e["start"], e["end"]): text[e["start"] : e["end"]] for e in code["evidence"]}
            )
            if not _in_codeset(code["code"], codeset) or not _evidence_ok(code, check):
                accepted_bad += 1
            reason = unsupported_reason(code, row, codeset, spans_by_code)
            if reason is not None:
                unsupported[reason] += 1
            is_correct = code["code"].upper() in gold_set
            if code.get("confidence") is not None:
                confidences.append(float(code["confidence"]))
                correct.append(is_correct)
            gold_spans = spans_by_code.get(code["code"].upper())
            if is_correct and gold_spans:
                for ev in code["evidence"]:
                    evidence_total += 1
                    evidence_hits += any(_overlaps((ev["start"], ev["end"]), g) for g in gold_spans)

    chapters = _chapter_breakdown(gold, predicted, codeset)
    n_ok = len(ok_rows)
    versions = dict(ok_rows[0]["result"]["versions"]) if ok_rows else {}
    metrics: dict[str, Any] = {
        "n_documents": len(rows),
        "n_failed": len(rows) - n_ok,
        "n_skipped_lines": problems,
        "micro_precision": round(prf.precision, 4),
        "micro_recall": round(prf.recall, 4),
        "micro_f1": round(prf.f1, 4),
        "tp": prf.tp,
        "fp": prf.fp,
        "fn": prf.fn,
        "macro_f1": round(macro_f1(gold, predicted), 4),
        "exact_match": round(exact_match(gold, predicted), 4),
        "map": round(mean_average_precision(gold, predicted), 4),
        "map_candidates": round(
            mean_average_precision(gold, [r.get("result", {}).get("candidates", []) for r in rows]), 4
        ),
        "category_f1": round(cat.f1, 4),
        "candidate_recall": round(offered_hits / len(gold_codes), 4) if gold_codes else 0.0,
        "gold_codes": len(gold_codes),
        "gold_codes_not_in_codeset": len([c for c in gold_codes if c in unknown_gold]),
        "gold_codes_not_in_codeset_list": unknown_gold,
        "micro_f1_known_gold": round(prf_known.f1, 4),
        "gold_codes_in_older_form": sum(c.upper() not in f for c in gold_codes if (f := gold_forms.forms(c))),
        "micro_precision_release": round(prf_release.precision, 4),
        "micro_recall_release": round(prf_release.recall, 4),
        "micro_f1_release": round(prf_release.f1, 4),
        "predicted_codes": sum(len(p) for p in predicted),
        "raw_proposals": raw_total,
        "hallucination_rate_raw": round(raw_bad / raw_total, 4) if raw_total else 0.0,
        "accepted_codes": accepted_total,
        "hallucination_rate_accepted": round(accepted_bad / accepted_total, 4) if accepted_total else 0.0,
        "unsupported_accepted": sum(unsupported.values()),
        "unsupported_accepted_rate": round(sum(unsupported.values()) / accepted_total, 4) if accepted_total else 0.0,
        "unsupported_accepted_by_reason": dict(sorted(unsupported.items())),
        "rejections_by_rule": dict(sorted(rejections.items())),
        "auto_rate": round(routing["auto"] / n_ok, 4) if n_ok else 0.0,
        "review_rate": round(routing["review"] / n_ok, 4) if n_ok else 0.0,
        "ece": round(expected_calibration_error(confidences, correct), 4),
        "reliability": [
            {"bin": b, "confidence": round(c, 4), "accuracy": round(a, 4), "count": n}
            for b, c, a, n in reliability_bins(confidences, correct)
        ],
        "evidence_precision": round(evidence_hits / evidence_total, 4) if evidence_total else None,
        "seconds_per_document": round(statistics.median(seconds), 3) if seconds else 0.0,
        "seconds_per_document_p90": round(_quantile(seconds, 0.9), 3) if seconds else 0.0,
        "seconds_total": round(sum(seconds), 1),
        "prompt_tokens_per_document": round(statistics.mean(prompt_tokens), 1) if prompt_tokens else 0.0,
        "completion_tokens_per_document": round(statistics.mean(completion_tokens), 1) if completion_tokens else 0.0,
        "per_chapter": chapters,
        "error_accounting": error_accounting(rows, codeset, gold_forms),
        "versions": versions,
    }
    return metrics


def error_accounting(
    rows: list[dict[str, Any]], codeset: ICD10CMCodeSet, gold_forms: GoldForms | None = None
) -> dict[str, dict[str, int]]:
    """Where the errors come from.

    False positives (accepted codes no gold code matches): ``older_release_form`` (the release's
    form of a gold code written for an older release: R51.9 for "R51"), ``wrong_specificity`` (a gold
    code shares the 3-character category: right family, wrong sibling), ``same_chapter``, ``unrelated``.
    False negatives (gold codes not accepted): ``older_release_form`` (its release form was
    accepted), ``never_a_candidate`` (retrieval never offered it), ``rejected_by_rule`` (proposed,
    then rejected by a validator), ``below_threshold`` (offered but not proposed: the acceptance
    model or the LLM left it out), ``failed_document``.
    """
    forms = gold_forms or GoldForms(codeset)
    fp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    for row in rows:
        gold = {c.upper() for c in row["gold"]}
        result = row.get("result")
        if result is None:
            fn["failed_document"] += len(gold)
            continue
        accepted = {c["code"].upper() for c in result["codes"] if c["status"] == "accepted"}
        rejected = {c["code"].upper() for c in result["codes"] if c["status"] != "accepted"}
        offered = {c.upper() for c in result.get("candidates", [])}
        gold_categories = {c.replace(".", "")[:3] for c in gold}
        gold_chapters = {_chapter_of(c, codeset) for c in gold}
        release_forms = {c: forms.align([c], accepted)[0] for c in gold}
        for code in accepted - gold:
            if code in release_forms.values():
                fp["older_release_form"] += 1
            elif code.replace(".", "")[:3] in gold_categories:
                fp["wrong_specificity"] += 1
            elif _chapter_of(code, codeset) in gold_chapters:
                fp["same_chapter"] += 1
            else:
                fp["unrelated"] += 1
        for code in gold - accepted:
            if release_forms[code] in accepted:
                fn["older_release_form"] += 1
            elif code in rejected:
                fn["rejected_by_rule"] += 1
            elif code in offered:
                fn["below_threshold"] += 1
            else:
                fn["never_a_candidate"] += 1
    fp_keys = ("older_release_form", "wrong_specificity", "same_chapter", "unrelated")
    fn_keys = ("older_release_form", "never_a_candidate", "rejected_by_rule", "below_threshold", "failed_document")
    return {
        "false_positives": {k: fp[k] for k in fp_keys},
        "false_negatives": {k: fn[k] for k in fn_keys},
    }


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _chapter_of(code: str, codeset: ICD10CMCodeSet) -> str:
    return codeset.get(code).chapter if code in codeset else "unknown"


def _chapter_breakdown(
    gold: Iterable[list[str]], predicted: Iterable[list[str]], codeset: ICD10CMCodeSet
) -> dict[str, dict[str, Any]]:
    tp: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    for gold_codes, predicted_codes in zip(gold, predicted, strict=True):
        gs, ps = {c.upper() for c in gold_codes}, {c.upper() for c in predicted_codes}
        for c in gs & ps:
            tp[_chapter_of(c, codeset)] += 1
        for c in ps - gs:
            fp[_chapter_of(c, codeset)] += 1
        for c in gs - ps:
            fn[_chapter_of(c, codeset)] += 1
    out = {}
    for chapter in sorted(set(tp) | set(fp) | set(fn), key=lambda c: (not c.isdigit(), int(c) if c.isdigit() else 0)):
        t, f_p, f_n = tp[chapter], fp[chapter], fn[chapter]
        precision = t / (t + f_p) if t + f_p else 0.0
        recall = t / (t + f_n) if t + f_n else 0.0
        out[chapter] = {
            "title": codeset.chapter_title(chapter) if chapter != "unknown" else "not in the code set",
            "tp": t,
            "fp": f_p,
            "fn": f_n,
            "precision": round(precision, 4),
            "recall": round(recall, 4),
            "f1": round(2 * precision * recall / (precision + recall), 4) if precision + recall else 0.0,
        }
    return out
