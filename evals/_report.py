"""``report.html`` with PNG plots: reliability diagram, per-chapter F1, rejections by rule.

The report holds codes and metrics only, never note text. The plots need matplotlib (the
``medcode[report]`` extra); without it the report is written with its tables and a line saying so.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

__all__ = ["write_report"]


def _plots(out_dir: Path, metrics: dict[str, Any]) -> list[tuple[str, str]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made: list[tuple[str, str]] = []

    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    bins = metrics.get("reliability", [])
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="perfect calibration")
    if bins:
        ax.bar(
            [b["bin"] + 0.05 for b in bins],
            [b["accuracy"] for b in bins],
            width=0.09,
            alpha=0.7,
            label="accuracy per bin",
        )
        ax.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], marker="o", color="black")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence")
    ax.set_ylabel("share correct")
    ax.set_title(f"Reliability (ECE {metrics.get('ece', 0):.3f})")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(out_dir / "reliability.png", dpi=100)
    plt.close(fig)
    made.append(("reliability.png", "Reliability diagram of accepted codes' confidence"))

    chapters = metrics.get("per_chapter", {})
    if chapters:
        names = list(chapters)
        fig, ax = plt.subplots(figsize=(8, 3.5))
        ax.bar(names, [chapters[c]["f1"] for c in names], color="#4a7ab5")
        ax.set_ylim(0, 1)
        ax.set_xlabel("ICD-10-CM chapter")
        ax.set_ylabel("F1")
        ax.set_title("F1 by chapter")
        fig.tight_layout()
        fig.savefig(out_dir / "chapters.png", dpi=100)
        plt.close(fig)
        made.append(("chapters.png", "F1 by chapter"))

    rejections = metrics.get("rejections_by_rule", {})
    if rejections:
        fig, ax = plt.subplots(figsize=(8, 3.5))
        rules = sorted(rejections, key=lambda r: -rejections[r])
        ax.barh(rules[::-1], [rejections[r] for r in rules[::-1]], color="#b55a4a")
        ax.set_xlabel("rejected proposals")
        ax.set_title("Rejections by rule")
        fig.tight_layout()
        fig.savefig(out_dir / "rejections.png", dpi=100)
        plt.close(fig)
        made.append(("rejections.png", "Rejections by rule"))
    return made


_HEADLINE = [
    "n_documents",
    "micro_precision",
    "micro_recall",
    "micro_f1",
    "micro_f1_release",
    "micro_f1_known_gold",
    "gold_codes_in_older_form",
    "macro_f1",
    "exact_match",
    "map",
    "category_f1",
    "candidate_recall",
    "hallucination_rate_raw",
    "hallucination_rate_accepted",
    "unsupported_accepted_rate",
    "unsupported_accepted_by_reason",
    "auto_rate",
    "review_rate",
    "ece",
    "evidence_precision",
    "seconds_per_document",
    "prompt_tokens_per_document",
    "completion_tokens_per_document",
    "gold_codes_not_in_codeset",
]


def write_report(out_dir: Path, metrics: dict[str, Any], rows: list[dict[str, Any]]) -> Path:
    """Write ``report.html`` (and its PNGs, when matplotlib is installed) next to ``metrics.json``."""
    try:
        images = _plots(out_dir, metrics)
        missing_plots = None
    except ModuleNotFoundError as exc:
        if exc.name is None or not exc.name.startswith("matplotlib"):
            raise
        images, missing_plots = [], "plots left out: install the report extra (pip install 'medcode[report]')"
    esc = html.escape
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>medcode evaluation</title>",
        "<style>body{font-family:sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#eee}"
        "td:first-child,th:first-child{text-align:left}</style></head><body>",
        f"<h1>medcode evaluation: {esc(str(metrics.get('dataset', '')))}</h1>",
        "<h2>Headline</h2><table>",
    ]
    for key in _HEADLINE:
        parts.append(f"<tr><td>{esc(key)}</td><td>{esc(str(metrics.get(key)))}</td></tr>")
    parts.append("</table><h2>Versions</h2><table>")
    for key, value in metrics.get("versions", {}).items():
        parts.append(f"<tr><td>{esc(key)}</td><td>{esc(str(value))}</td></tr>")
    parts.append("</table>")
    if missing_plots:
        parts.append(f"<p><em>{esc(missing_plots)}</em></p>")
    for name, caption in images:
        parts.append(f"<h2>{esc(caption)}</h2><img src='{esc(name)}' alt='{esc(caption)}'>")
    parts.append("<h2>Per chapter</h2><table><tr><th>chapter</th><th>title</th><th>tp</th><th>fp</th><th>fn</th>")
    parts.append("<th>precision</th><th>recall</th><th>F1</th></tr>")
    for chapter, row in metrics.get("per_chapter", {}).items():
        parts.append(
            f"<tr><td>{esc(chapter)}</td><td style='text-align:left'>{esc(row['title'])}</td><td>{row['tp']}</td>"
            f"<td>{row['fp']}</td><td>{row['fn']}</td><td>{row['precision']}</td><td>{row['recall']}</td>"
            f"<td>{row['f1']}</td></tr>"
        )
    parts.append("</table><h2>Where the errors come from</h2><table><tr><th>kind</th><th>count</th></tr>")
    accounting = metrics.get("error_accounting", {})
    for side, label in (("false_positives", "false positive"), ("false_negatives", "false negative")):
        for kind, count in accounting.get(side, {}).items():
            parts.append(f"<tr><td>{esc(label)}: {esc(kind.replace('_', ' '))}</td><td>{count}</td></tr>")
    parts.append("</table><h2>Rejections by rule</h2><pre>")
    parts.append(esc(json.dumps(metrics.get("rejections_by_rule", {}), indent=1)))
    parts.append("</pre><h2>Documents</h2><table><tr><th>id</th><th>gold</th><th>predicted</th><th>routing</th></tr>")
    for row in rows:
        routing = row.get("result", {}).get("routing", {}).get("decision", "error")
        parts.append(
            f"<tr><td>{esc(row['id'])}</td><td style='text-align:left'>{esc(' '.join(row['gold']))}</td>"
            f"<td style='text-align:left'>{esc(' '.join(row.get('predicted', [])))}</td><td>{esc(routing)}</td></tr>"
        )
    parts.append("</table></body></html>")
    path = out_dir / "report.html"
    path.write_text("\n".join(parts), encoding="utf-8")
    return path
