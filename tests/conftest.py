"""Shared fixtures: a real ICD-10-CM store built once per test session in a temp data dir."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from codesets import CodeSetRegistry, ICD10CMCodeSet
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
