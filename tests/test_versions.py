"""Every data file that changes behaviour is hashed into a version that results carry and regress compares."""

from __future__ import annotations

from importlib import resources

from medcode.evals._regress import VERSION_KEYS, compare
from medcode.retrieval import _data as retrieval_data
from medcode.validators import _data as validators_data


def _files(package: str) -> set[str]:
    root = resources.files(package).joinpath("data")
    return {p.name for p in root.iterdir() if p.is_file() and p.name.endswith((".json", ".jsonl", ".csv", ".gz"))}


def test_every_retrieval_and_validator_data_file_is_hashed() -> None:
    # The candidate ranker is off by default; when on, results carry its own version (versions.candidate_ranker).
    assert set(retrieval_data.DATA_FILES) | {"candidate_ranker.json"} == _files("medcode.retrieval")
    assert "candidate_ranker" in VERSION_KEYS
    assert set(validators_data.DATA_FILES) == _files("medcode.validators")
    assert retrieval_data.data_version().startswith("retrieval-data+")


def test_a_changed_retrieval_data_version_fails_regress() -> None:
    assert "retrieval_data" in VERSION_KEYS
    base = {
        "micro_f1": 0.5,
        "hallucination_rate_raw": 0.1,
        "hallucination_rate_accepted": 0.0,
        "unsupported_accepted_rate": 0.0,
    }
    old = {**base, "versions": {"retrieval_data": "retrieval-data+aaaaaaaaaaaa"}}
    new = {**base, "versions": {"retrieval_data": retrieval_data.data_version()}}
    result = compare(old, new)
    assert not result.ok and any("retrieval_data" in f for f in result.failures)
    assert compare(old, new, allow_version_change=True).ok


def test_every_monitoring_data_file_is_hashed() -> None:
    from medcode.monitoring import _data as monitoring_data

    assert set(monitoring_data.DATA_FILES) == _files("medcode.monitoring")
    assert monitoring_data.monitoring_data_version().startswith("monitoring-data+")
    for loaded in (monitoring_data.load_drift_thresholds(), monitoring_data.load_cdi_queries()):
        assert loaded.version.startswith(loaded.series + "+") and len(loaded.version) == len(loaded.series) + 13
