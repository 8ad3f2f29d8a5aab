"""Proposing procedure codes: mentions (``retrieval.procedure_mentions``) searched in the procedure index.

Inpatient notes are searched against ICD-10-PCS, outpatient notes against HCPCS Level II (CPT has no
text medcode may ship; a licensed file's descriptors are not indexed yet). Each mention proposes its
best code with the mention as the evidence span; the validators then judge them like any proposal.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from pathlib import Path

from medcode.codesets import CodeSystems
from medcode.config import Settings
from medcode.retrieval._procedures import ProcedureCandidate, ProcedureIndex, procedure_mentions
from medcode.validators import Evidence, ProposedProcedure, Setting

__all__ = ["ProcedureProposer", "open_procedure_index", "procedure_index_entries"]

log = logging.getLogger(__name__)

_SYSTEM_FOR: dict[str, str] = {"inpatient": "icd10pcs", "outpatient": "hcpcs"}


def procedure_index_entries(systems: CodeSystems, day: dt.date | None = None) -> Iterator[tuple[str, str, str]]:
    """``(code, system, text)`` for every PCS code valid on the day (title | axis labels) and HCPCS code in force.

    Raises ``CodeSetBuildError`` when the PCS or HCPCS data is not installed.
    """
    for entry in systems.icd10pcs().iter_codes(day):
        labels = " ".join(label for label in entry.labels[1:] if label and label not in {"No Device", "No Qualifier"})
        yield entry.code, "icd10pcs", f"{entry.title} | {labels}"
    hcpcs = systems.hcpcs()
    for h in hcpcs.iter_codes():
        if h.description:
            yield h.code, "hcpcs", h.description


def open_procedure_index(settings: Settings, systems: CodeSystems) -> ProcedureIndex:
    """The procedure index of the installed code sets, built on first use (a few seconds) under the data dir."""
    pcs, hcpcs = systems.icd10pcs(), systems.hcpcs()
    path = Path(settings.data_dir) / "retrieval" / f"procedures-{pcs.version}-{hcpcs.version}.sqlite"
    if path.is_file():
        import sqlite3

        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
        return ProcedureIndex(conn, version=path.stem)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    ProcedureIndex.build(procedure_index_entries(systems), str(tmp)).close()
    tmp.replace(path)
    return open_procedure_index(settings, systems)


class ProcedureProposer:
    """One procedure code per procedure mention, the mention quoted as evidence. Never raises for odd text."""

    def __init__(self, index: ProcedureIndex, min_terms: int = 1) -> None:
        self.index = index
        self.min_terms = min_terms

    def candidates(self, note: str, setting: Setting, top: int = 5) -> list[tuple[int, int, list[ProcedureCandidate]]]:
        """``(start, end, candidates)`` per mention, in text order. A diagnostic test that needs a body site keeps
        only candidates whose title names one of the mention's site words (none: the mention proposes nothing)."""
        system = _SYSTEM_FOR[setting]
        lexicon = self.index.lexicon
        out = []
        for mention in procedure_mentions(note, lexicon=lexicon):
            found = self.index.search(mention.text, system, top)
            test = mention.trigger.removeprefix("test:")
            if found and test != mention.trigger and test in lexicon.tests_needing_site:
                # a test named with its site ("abdominal ultrasound"): only codes whose title names the site
                sites = self.index.site_terms(mention.text, test)
                found = [c for c in found if sites & set(c.description.lower().replace(",", " ").split())]
            if found:
                out.append((mention.start, mention.end, found))
        return out

    def propose(self, note: str, setting: Setting) -> list[ProposedProcedure]:
        """The best code of each mention (a code found twice is proposed once, with both quotes)."""
        by_code: dict[str, ProposedProcedure] = {}
        for start, end, found in self.candidates(note, setting, top=1):
            best = found[0]
            quote = Evidence(text=note[start:end], start=start, end=end)
            if best.code in by_code:
                by_code[best.code].evidence.append(quote)
                continue
            by_code[best.code] = ProposedProcedure(code=best.code, system=best.system, evidence=[quote])  # type: ignore[arg-type]
        return list(by_code.values())
