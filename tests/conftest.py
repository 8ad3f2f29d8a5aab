"""Shared fixtures: a real ICD-10-CM store built once per test session in a temp data dir."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from medcode.codesets import CodeSetRegistry, ICD10CMCodeSet
from medcode.config import Settings, load_settings


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """No test reads the developer's config file or MEDCODE_* variables by accident."""
    import os

    for key in list(os.environ):
        if key.startswith("MEDCODE_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("MEDCODE_CONFIG", str(tmp_path_factory.getbasetemp() / "no-such-config.toml"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session", autouse=True)
def _no_llm_server_outlives_the_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Stop every shared keep-alive LLM server a test left in a test data dir (they would idle for 10 min)."""
    yield
    from medcode.agent.llm import stop_shared_server

    for state_file in tmp_path_factory.getbasetemp().rglob("llm/server.json"):
        stop_shared_server(state_file.parent.parent)


@pytest.fixture(scope="session")
def session_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("medcode-data")


@pytest.fixture(scope="session")
def session_settings(session_data_dir: Path) -> Settings:
    return load_settings(data_dir=session_data_dir)


@pytest.fixture(scope="session")
def codeset(session_settings: Settings) -> Iterator[ICD10CMCodeSet]:
    """The real April 2026 ICD-10-CM release (store built once, ~3 s)."""
    registry = CodeSetRegistry(session_settings)
    yield registry.get()


# Conditions of the end-to-end test notes, with their neighbours so that ranking is a real test.
SMALL_INDEX_HEADERS = [
    "E11",
    "E10",
    "I10",
    "I11",
    "I16",
    "I12",
    "I13",
    "N18",
    "I50",
    "R07",
    "R06.0",
    "R50",
    "C50.91",
    "Z80",
    "Z86.3",
    "I21.0",
    "J44",
    "J45",
    "E78",
    "S93.4",
    "S82",
    "K21",
    "F32",
    "M17",
    "G43.0",
    "N39.0",
    "J18",
    "J06",
]


@pytest.fixture(scope="session")
def small_index_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A data dir with the real code set and a real index over a few hundred codes (built once).

    The embedded LLM is SmolLM2-135M (fast enough for CI), one thread.
    """
    from medcode.retrieval import build_index

    data_dir = tmp_path_factory.mktemp("small-index")
    settings = load_settings(data_dir=data_dir, llm_model="smollm2-135m", llm_threads=1)
    codeset = CodeSetRegistry(settings).get()
    codes: list[str] = []
    for header in SMALL_INDEX_HEADERS:
        codes += codeset.billable_descendants(header, limit=120)
    build_index(settings, codeset, codes=sorted(set(codes)), progress=False)
    return settings
