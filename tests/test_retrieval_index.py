"""The code index and HybridRetriever on a small real index (a few hundred codes, real embedder)."""

from __future__ import annotations

import itertools
import json
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import medcode.retrieval._index as index_module
from medcode.cli import main
from medcode.codesets import ICD10CMCodeSet
from medcode.config import Settings, load_settings
from medcode.errors import IndexMismatchError, IndexNotBuiltError, InputError, NoteError
from medcode.retrieval import CodeIndex, HybridRetriever, build_index, index_dir, index_info
from medcode.retrieval._alphabetic import index_entries, main_term
from medcode.retrieval._index import LEXICAL_SCHEMA_VERSION, units_for

pytestmark = pytest.mark.slow

# Enough neighbours that ranking is a real test: every code under these headers is indexed.
_HEADERS = [
    "I10",
    "I11",
    "I20",
    "I21",
    "I25.1",
    "I48",
    "I50",
    "E11.2",
    "E11.6",
    "E11.9",
    "N18",
    "J44",
    "J45.2",
    "K21",
    "S72.03",
    "W18.4",
    "F32",
    "M17",
    "R07",
    "R51",
    "E78",
    "K35.2",
    "G43.0",
    "N39.0",
    "Z94",
]


def _subset(codeset: ICD10CMCodeSet) -> list[str]:
    codes: list[str] = []
    for header in _HEADERS:
        codes += codeset.billable_descendants(header, limit=80)
    return sorted(set(codes))


@pytest.fixture(scope="module")
def small_index(session_settings: Settings, codeset: ICD10CMCodeSet) -> Iterator[Settings]:
    """A subset index built once in the session data dir (so the CLI sees it too)."""
    build_index(session_settings, codeset, codes=_subset(codeset), progress=False)
    yield session_settings


@pytest.fixture(scope="module")
def retriever(small_index: Settings, codeset: ICD10CMCodeSet) -> HybridRetriever:
    return HybridRetriever(small_index, codeset, auto_build=False)


def _codes(cands: list[Any]) -> list[str]:
    return [c.code for c in cands]


def test_build_records_a_complete_manifest(small_index: Settings, codeset: ICD10CMCodeSet) -> None:
    info = index_info(small_index, codeset.version)
    assert info.status == "complete"
    assert info.codeset_version == codeset.version
    assert info.codes == len(_subset(codeset))
    assert info.units is not None and info.units_done == info.units
    # S72.031A..S share one text: fewer Tabular texts than codes.
    tabular = [u for u in units_for(codeset, _subset(codeset), alphabetic=False) if u.kind == "description"]
    assert len(tabular) < info.codes
    assert info.size_bytes and info.size_bytes > 0


def test_alphabetic_index_units_map_onto_the_release(codeset: ICD10CMCodeSet) -> None:
    subset = _subset(codeset)
    units = units_for(codeset, subset)
    alphabetic = [u for u in units if u.kind == "alphabetic_index"]
    assert alphabetic and all(set(u.codes) <= set(subset) for u in alphabetic)
    by_text = {u.text.lower(): u for u in alphabetic}
    assert by_text["diabetes with hyperglycemia"].codes == ("E11.65",)  # Diabetes > with > hyperglycemia
    assert "abdominal migraine" not in by_text or by_text["abdominal migraine"].codes  # aliases carry codes
    assert by_text["gastroesophageal reflux"].codes == ("K21.9",)  # 'Reflux, gastroesophageal' in natural order
    # Deep paths stay lexical-only; main terms and first subterms are embedded.
    assert not by_text["diabetes with hyperglycemia"].dense or len(["diabetes", "with", "hyperglycemia"]) <= 3
    entries, stats = index_entries(codeset)
    assert stats.entries == stats.kept + stats.expanded + stats.variant_groups + stats.dropped_not_in_release + (
        stats.dropped_no_default
    )
    assert stats.kept > 50_000 and stats.dropped_not_in_release > 0  # FY2025 codes that 2026 no longer has
    assert all(codeset.is_billable(c) for e in entries[:2000] for c in e.codes)
    # A main term's other forms are dropped, but words that qualify it are kept: "Break, retina" is not "Break".
    texts = {e.text for e in entries}
    assert "Hypertension" in texts and "Hypertension, hypertensive" not in texts
    assert any(t.startswith("Break retina") for t in texts) and "Break" not in texts
    assert main_term("Pattern, sleep-wake, irregular") == "Pattern sleep-wake irregular"
    assert main_term("Abnormal, abnormality, abnormalities") == "Abnormal"


def test_see_references_land_on_the_term_they_name() -> None:
    """A "see" reference is followed to the main term it names, not to a main term whose later words match."""
    import gzip
    from importlib import resources

    raw = resources.files("medcode.retrieval").joinpath("data/alphabetic_index.jsonl.gz").read_bytes()
    via: dict[tuple[tuple[str, ...], str], str] = {}
    for line in gzip.decompress(raw).decode("utf-8").splitlines():
        entry = json.loads(line)
        if "via" in entry:
            via[(tuple(entry["p"]), entry["via"])] = entry["c"]
    # 'Converter, tuberculosis' (R76.11) is not 'Tuberculosis' (A15.9); 'Blood-forming organs, disease' is not 'Disease'.
    assert via[(("Consumption",), "see: Tuberculosis")] == "A15.9"
    assert via[(("Infection, infected, infective", "Koch's"), "see: Tuberculosis")] == "A15.9"
    assert not [k for k, code in via.items() if k[1] == "see: Disease"]  # 'Disease, diseased' has no code
    assert via[(("Abnormity",), "see: Anomaly")] == "Q89.9"  # a main term whose own title matches still resolves
    # 'see Neoplasm, malignant' is the Table of Neoplasms by site, not 'Neoplasm > malignant mast cell' (C96.20).
    assert not [k for k in via if k[1].startswith("see: Neoplasm")]


def test_embedding_threads_default_to_the_cpus_the_process_may_use(small_index: Settings) -> None:
    import os

    from medcode.retrieval._embedder import Embedder

    assert small_index.embed_threads is None  # unset unless configured
    assert Embedder.from_settings(small_index).threads == min(4, len(os.sched_getaffinity(0)))
    pinned = small_index.model_copy(update={"embed_threads": 3})
    assert Embedder.from_settings(pinned).threads == 3


def test_cached_encoding_matches_plain_and_keeps_only_the_latest_texts(retriever: HybridRetriever) -> None:
    """``encode(cache=True)``: the same vectors as a plain call, repeats served from memory, oldest texts evicted."""
    import numpy as np

    from medcode.retrieval._embedder import Embedder

    embedder = Embedder(str(retriever.embedder.model_dir), threads=1, cache_size=3)
    texts = ["chest pain", "type 2 diabetes", "chest pain", "fall from ladder"]
    plain = embedder.encode(texts)
    cached = embedder.encode(texts, cache=True)
    assert cached.shape == plain.shape == (4, embedder.dimension)
    assert np.allclose(cached, plain, atol=1e-5)
    assert np.array_equal(cached[0], cached[2])  # a repeat within one call is embedded once
    assert list(embedder._recent) == ["chest pain", "type 2 diabetes", "fall from ladder"]
    again = embedder.encode(["type 2 diabetes"], cache=True)  # served from memory, now the most recent
    assert np.array_equal(again[0], cached[1])
    embedder.encode(["asthma"], cache=True)
    assert list(embedder._recent) == ["fall from ladder", "type 2 diabetes", "asthma"]  # "chest pain" evicted
    assert embedder.encode([], cache=True).shape == (0, embedder.dimension)


def test_lay_terms_find_the_right_codes(retriever: HybridRetriever) -> None:
    assert "I10" in _codes(retriever.search("high blood pressure", top_k=5))
    assert any(c.startswith("I21") for c in _codes(retriever.search("heart attack", top_k=5)))
    assert retriever.search("HTN", top_k=3)[0].code == "I10"


def test_specific_combination_code_ranks_first(retriever: HybridRetriever) -> None:
    results = retriever.search("type 2 diabetes with diabetic chronic kidney disease", top_k=10)
    assert results[0].code == "E11.22"
    assert [c.rank for c in results] == list(range(1, len(results) + 1))
    assert all(a.score >= b.score for a, b in itertools.pairwise(results))
    assert results[0].source in ("dense", "both")


def test_seventh_character_follows_the_query(retriever: HybridRetriever) -> None:
    base = "displaced midcervical fracture of right femur"
    assert retriever.search(base, top_k=3)[0].code == "S72.031A"
    follow_up = retriever.search(base + ", subsequent encounter with routine healing", top_k=3)[0]
    assert follow_up.code == "S72.031D"
    assert "S72.031A" in follow_up.variants
    assert retriever.search(base + ", sequela", top_k=3)[0].code == "S72.031S"
    assert retriever.search("open " + base + " type IIIB, initial encounter", top_k=3)[0].code == "S72.031C"


def test_remembered_regex_matches_keep_chapter_and_query_apart() -> None:
    """The priors and the 7th-character cues remember a description's matches; the chapter and the query
    still decide (a memo keyed on the description alone would give the first call's answer twice)."""
    from medcode.retrieval._retriever import _priors, _variant_score

    priors = _priors()
    desc = "Other specified disorder, unspecified"
    newborn = priors.adjust(desc, "16", "jaundice", frozenset())
    adult = priors.adjust(desc, "11", "jaundice", frozenset())
    assert newborn == pytest.approx(adult - 0.05)  # newborn_not_asked is for chapter 16 only
    assert priors.adjust(desc, "16", "jaundice in a newborn", frozenset()) == pytest.approx(adult)
    assert priors.adjust(desc, "16", "other jaundice in a newborn", frozenset()) == pytest.approx(adult + 0.03)
    fracture = "Fracture of left wrist, subsequent encounter"
    assert _variant_score(fracture, "follow-up of the wrist fracture") == 1.0
    assert _variant_score(fracture, "wrist fracture") == pytest.approx(-0.1)
    assert _variant_score("Fracture of left wrist, initial encounter", "wrist fracture") == 0.0


def test_bounded_memo_starts_over_at_its_limit() -> None:
    """The shared memo keeps at most ``limit`` entries (emptied, not grown, when full) and refuses no limit."""
    from medcode._memo import remember

    memo: dict[str, int] = {}
    for i in range(5):
        assert remember(memo, f"k{i}", i, limit=3) == i
        assert len(memo) <= 3
    assert memo == {"k3": 3, "k4": 4}  # full at k3's turn: emptied, then k3 and k4 stored
    with pytest.raises(ValueError, match="positive"):
        remember(memo, "k", 0, limit=0)


def test_modes_and_sources(retriever: HybridRetriever) -> None:
    dense = retriever.search("acute appendicitis with perforation", top_k=5, mode="dense")
    lexical = retriever.search("acute appendicitis with perforation", top_k=5, mode="lexical")
    assert {c.source for c in dense} == {"dense"} and all(c.dense_score is not None for c in dense)
    assert {c.source for c in lexical} == {"lexical"} and all(c.lexical_rank is not None for c in lexical)
    assert dense[0].code.startswith("K35.2") and lexical[0].code.startswith("K35.2")


def test_code_prefix_filter(retriever: HybridRetriever) -> None:
    results = retriever.search("chest pain", top_k=10, code_prefixes=["I21", "I20"])
    assert results and all(c.code[:3] in ("I20", "I21") for c in results)
    short = retriever.search("chest pain", top_k=10, code_prefixes=["R"])
    assert short and all(c.code.startswith("R") for c in short)
    with pytest.raises(InputError, match="prefix"):
        retriever.search("chest pain", code_prefixes=["not a code!"])


def test_billable_only_false_adds_headers(retriever: HybridRetriever, codeset: ICD10CMCodeSet) -> None:
    query = "type 2 diabetes mellitus with kidney complications"
    billable = retriever.search(query, top_k=30)
    assert billable and all(codeset.is_billable(c.code) for c in billable)
    everything = retriever.search(query, top_k=30, billable_only=False)
    headers = [c for c in everything if not codeset.is_billable(c.code)]
    assert "E11.2" in _codes(headers)
    assert all(c.source == "lexical" for c in headers)


def test_search_many_matches_single_searches(retriever: HybridRetriever) -> None:
    queries = ["atrial fibrillation", "COPD with acute exacerbation", "migraine without aura"]
    batched = retriever.search_many(queries, top_k=5)
    for query, got in zip(queries, batched, strict=True):
        assert _codes(got) == _codes(retriever.search(query, top_k=5))


@pytest.mark.parametrize("bad", ["", "   ", "x" * 5000])
def test_bad_queries_raise_input_error(retriever: HybridRetriever, bad: str) -> None:
    with pytest.raises(InputError):
        retriever.search(bad)


def test_bad_top_k_and_types(retriever: HybridRetriever) -> None:
    with pytest.raises(InputError, match="top_k"):
        retriever.search("asthma", top_k=0)
    with pytest.raises(InputError, match="list"):
        retriever.search_many("asthma")


def test_search_note_merges_and_points_at_spans(retriever: HybridRetriever) -> None:
    note = (
        "HISTORY OF PRESENT ILLNESS\nPatient with high blood pressure and type 2 diabetes.\n\n"
        "FAMILY HISTORY\nFather had a heart attack.\n\n"
        "ASSESSMENT AND PLAN\n1. Essential hypertension: continue lisinopril.\n2. Diabetes, well controlled.\n"
    )
    found = retriever.search_note(note, top_k=30)
    by_code = {c.code: c for c in found.candidates}
    assert "I10" in by_code
    hits = by_code["I10"].hits
    assert len(hits) >= 2  # HPI and A/P both mention it
    sections = {h.section for h in hits}
    assert {"hpi", "assessment_plan"} <= sections
    for h in hits:
        segment = found.segments[h.segment_id]
        assert segment.start <= h.start < h.end <= segment.end and h.section == segment.section
    # Mentions are searched in the assessment: "Diabetes" alone, split from "Diabetes, well controlled."
    diabetes = by_code["E11.9"].hits
    assert any(note[h.start : h.end] == "Diabetes" and h.section == "assessment_plan" for h in diabetes)
    # ... but not in the HPI, where every span searched is a whole segment.
    segment_spans = {(s.start, s.end) for s in found.segments}
    assert all((h.start, h.end) in segment_spans for c in found.candidates for h in c.hits if h.section == "hpi")
    assert any(c.code.startswith("I21") and c.hits[0].section == "family_history" for c in found.candidates)
    assert [c.rank for c in found.candidates] == list(range(1, len(found.candidates) + 1))
    # Skipping a section removes codes only it found.
    skipped = retriever.search_note(note, top_k=30, skip_sections=["family_history"])
    assert all(h.section != "family_history" for c in skipped.candidates for h in c.hits)
    with pytest.raises(NoteError):
        retriever.search_note("   ")


def test_search_note_ranker_reorders_inpatient_pool_only(retriever: HybridRetriever) -> None:
    note = (
        "A 70-year-old man was admitted with chest pain and shortness of breath. He had type 2 diabetes with "
        "chronic kidney disease, hyperlipidemia and atrial fibrillation. An inferior myocardial infarction was "
        "diagnosed; he later developed heart failure and a urinary tract infection. He also had migraine."
    )
    assert retriever.ranker is None  # off unless MEDCODE_CANDIDATE_RANKER is set
    plain = retriever.search_note(note, top_k=10)
    assert retriever.search_note(note, top_k=10, setting="inpatient") == plain
    on = retriever.settings.model_copy(update={"candidate_ranker": True})
    ranking = HybridRetriever(on, retriever.codeset, index=retriever.index)
    assert ranking.ranker is not None and ranking.ranker.settings == {"inpatient"}
    outpatient = ranking.search_note(note, top_k=10, setting="outpatient")
    assert outpatient == plain  # a setting the ranker was not fitted for keeps the note score's order
    assert all(c.ranker_score is None for c in plain.candidates)
    ranked = ranking.search_note(note, top_k=10, setting="inpatient")
    assert len(ranked.candidates) == 10
    assert [c.rank for c in ranked.candidates] == list(range(1, 11))
    margins = [c.ranker_score for c in ranked.candidates]
    assert all(m is not None for m in margins) and margins == sorted(margins, reverse=True)  # type: ignore[type-var]
    # The pool is larger than the cut: the ranker may bring up codes below the note score's top 10.
    pool = ranking.search_note(note, top_k=ranking.ranker.pool_for(10))
    pool_codes = [c.code for c in pool.candidates]
    assert {c.code for c in ranked.candidates} <= set(pool_codes)
    expected = ranking.ranker.scores(pool.candidates, 10)
    best = sorted(range(len(pool_codes)), key=lambda i: (-expected[i], i))[:10]
    assert [c.code for c in ranked.candidates] == [pool_codes[i] for i in best]


def test_cli_search_json_and_table(small_index: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    data_dir = str(small_index.data_dir)
    assert main(["--data-dir", data_dir, "search", "high blood pressure", "--top", "5", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert "I10" in [r["code"] for r in payload["results"]]
    assert {"code", "description", "score", "matched_text", "source", "rank"} <= set(payload["results"][0])
    assert main(["--data-dir", data_dir, "search", "heart attack", "--top", "5"]) == 0
    table = capsys.readouterr().out
    assert "I21" in table and "code" in table.splitlines()[0]
    assert main(["--data-dir", data_dir, "search", "  ", "--json"]) == 2
    assert "empty" in capsys.readouterr().err


def test_cli_search_note_with_a_ranker_file(
    small_index: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--ranker FILE`` re-orders an inpatient note's candidates with that ranker; bad use is exit 2."""
    from importlib import resources

    data_dir = str(small_index.data_dir)
    note = tmp_path / "note.txt"
    note.write_text(
        "A 70-year-old man was admitted with chest pain. He had type 2 diabetes with chronic kidney disease, "
        "hyperlipidemia and atrial fibrillation. An inferior myocardial infarction was diagnosed.",
        encoding="utf-8",
    )
    args = ["--data-dir", data_dir, "search", "--note", str(note), "--setting", "inpatient", "--json", "--top", "5"]
    assert main(args) == 0
    plain = json.loads(capsys.readouterr().out)["results"]
    assert all(r["ranker_score"] is None for r in plain)
    ranker = Path(str(resources.files("medcode.retrieval").joinpath("data/candidate_ranker.json")))
    assert main([*args, "--ranker", str(ranker)]) == 0
    ranked = json.loads(capsys.readouterr().out)["results"]
    margins = [r["ranker_score"] for r in ranked]
    assert all(m is not None for m in margins) and margins == sorted(margins, reverse=True)
    assert main([*args, "--ranker", str(tmp_path / "missing.json")]) == 2
    assert "cannot read candidate ranker" in capsys.readouterr().err
    assert main(["--data-dir", data_dir, "search", "chest pain", "--ranker", str(ranker)]) == 2
    assert "give --note FILE" in capsys.readouterr().err


# -- index lifecycle on copies of the small index -------------------------------------------


@pytest.fixture()
def copied(small_index: Settings, codeset: ICD10CMCodeSet, tmp_path: Path) -> Settings:
    settings = load_settings(data_dir=tmp_path)
    shutil.copytree(index_dir(small_index, codeset.version), index_dir(settings, codeset.version))
    return settings


def _manifest(settings: Settings, codeset: ICD10CMCodeSet) -> Path:
    return index_dir(settings, codeset.version) / "manifest.json"


def test_missing_index_is_a_clear_error(tmp_path: Path, codeset: ICD10CMCodeSet) -> None:
    with pytest.raises(IndexNotBuiltError, match="medcode index build"):
        CodeIndex.open(load_settings(data_dir=tmp_path), codeset)


def test_corrupt_manifest_is_a_clear_error_and_rebuild_fixes_it(copied: Settings, codeset: ICD10CMCodeSet) -> None:
    _manifest(copied, codeset).write_text("{not json", encoding="utf-8")
    with pytest.raises(IndexNotBuiltError, match="corrupt"):
        CodeIndex.open(copied, codeset)
    assert index_info(copied, codeset.version).status == "corrupt"
    info = build_index(copied, codeset, codes=["I10", "I21.9"], progress=False)
    assert info.status == "complete" and info.codes == 2
    assert CodeIndex.open(copied, codeset).manifest["dense_units"] == info.units


def test_corrupt_lexical_store_is_a_clear_error(copied: Settings, codeset: ICD10CMCodeSet) -> None:
    (index_dir(copied, codeset.version) / "lexical.sqlite").write_bytes(b"garbage" * 100)
    with pytest.raises(IndexNotBuiltError, match="rebuild"):
        CodeIndex.open(copied, codeset)


def test_lexical_index_of_an_older_schema_is_refused_then_rebuilt_without_embedding(
    copied: Settings, codeset: ICD10CMCodeSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    lexical = index_dir(copied, codeset.version) / "lexical.sqlite"
    conn = sqlite3.connect(lexical)
    conn.execute("PRAGMA user_version = 0")  # what the release before the stamp wrote
    conn.commit()
    conn.close()
    with pytest.raises(
        IndexMismatchError,
        match=rf"schema version 0, this medcode needs {LEXICAL_SCHEMA_VERSION}; run `medcode index build --rebuild`",
    ):
        CodeIndex.open(copied, codeset)
    embedded: list[int] = []
    real_upsert = index_module._upsert

    def counting_upsert(collection: Any, chunk: Any, *args: Any) -> None:
        embedded.append(len(chunk))
        real_upsert(collection, chunk, *args)

    monkeypatch.setattr(index_module, "_upsert", counting_upsert)
    info = build_index(copied, codeset, codes=_subset(codeset), progress=False)
    assert info.status == "complete" and embedded == []  # only the lexical side was rebuilt
    index = CodeIndex.open(copied, codeset)
    assert index.lexical("hypertension", 3)
    assert sqlite3.connect(lexical).execute("PRAGMA user_version").fetchone() == (LEXICAL_SCHEMA_VERSION,)
    index.close()


def test_other_embedder_or_version_is_refused_then_rebuilt(copied: Settings, codeset: ICD10CMCodeSet) -> None:
    path = _manifest(copied, codeset)
    manifest = json.loads(path.read_text())
    manifest["embedder"] = "some-other-model==1"
    path.write_text(json.dumps(manifest))
    with pytest.raises(IndexMismatchError, match="some-other-model"):
        CodeIndex.open(copied, codeset)
    manifest["embedder"] = json.loads(path.read_text())["embedder"]
    manifest["codeset_version"] = "icd10cm-2019-10"
    path.write_text(json.dumps(manifest))
    with pytest.raises(IndexMismatchError, match="icd10cm-2019-10"):
        CodeIndex.open(copied, codeset)
    info = build_index(copied, codeset, codes=["I10"], progress=False)
    assert info.status == "complete" and info.codeset_version == codeset.version and info.codes == 1


def test_interrupted_build_resumes_without_redoing_chunks(
    tmp_path: Path, codeset: ICD10CMCodeSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = load_settings(data_dir=tmp_path)
    codes = codeset.billable_descendants("I21", limit=40) + codeset.billable_descendants("E11.6", limit=40)
    calls: list[int] = []
    real_upsert = index_module._upsert

    def flaky_upsert(collection: Any, chunk: Any, *args: Any) -> None:
        calls.append(len(chunk))
        if len(calls) == 3:
            raise KeyboardInterrupt  # the user pressed Ctrl-C mid-build
        real_upsert(collection, chunk, *args)

    monkeypatch.setattr(index_module, "_upsert", flaky_upsert)
    with pytest.raises(KeyboardInterrupt):
        build_index(settings, codeset, codes=codes, progress=False, chunk_size=8)
    half = index_info(settings, codeset.version)
    assert half.status == "building" and half.units_done == 16
    with pytest.raises(IndexNotBuiltError, match="half-built"):
        CodeIndex.open(settings, codeset)
    calls.clear()
    monkeypatch.setattr(index_module, "_upsert", real_upsert)
    counted: list[int] = []

    def counting_upsert(collection: Any, chunk: Any, *args: Any) -> None:
        counted.append(len(chunk))
        real_upsert(collection, chunk, *args)

    monkeypatch.setattr(index_module, "_upsert", counting_upsert)
    done = build_index(settings, codeset, codes=codes, progress=False, chunk_size=8)
    assert done.status == "complete"
    assert done.units is not None and sum(counted) == done.units - 16  # only the missing chunks were embedded
    retriever = HybridRetriever(settings, codeset, auto_build=False)
    assert retriever.search("type 2 diabetes with hyperglycemia", top_k=3)[0].code == "E11.65"


def test_coding_defaults_rank_first(retriever: HybridRetriever) -> None:
    """Priors and the phrase dictionary: unspecified defaults, laterality, curated index terms."""
    assert retriever.search("heart failure", top_k=5)[0].code == "I50.9"  # not I50.89 "Other heart failure"
    assert retriever.search("osteoarthritis of left knee", top_k=5)[0].code == "M17.12"
    assert retriever.search("osteoarthritis of right knee", top_k=5)[0].code == "M17.11"
    top = retriever.search("Diabetes.", top_k=5)[0]
    assert top.code == "E11.9" and top.matched_text == "Diabetes"
    without = HybridRetriever(retriever.settings, retriever.codeset, index=retriever.index, use_priors=False)
    without.use_terms = False
    assert (
        without.search("heart failure", top_k=5)[0].code != "I50.9"
        or without.search("osteoarthritis of left knee", top_k=5)[0].code != "M17.12"
    ), "the priors should be doing some work on these queries"
