"""Shared fixtures: a real ICD-10-CM store built once per test session in a temp data dir."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from medcode.codesets import CodeSetRegistry, ICD10CMCodeSet
from medcode.config import Settings, load_settings


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """No test reads the developer's config file or MEDCODE_* variables by accident."""
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


# -- PostgreSQL: MEDCODE_TEST_POSTGRES_URL, else a throwaway server of Debian's postgresql package ----------------

# Read at import: the autouse fixture above clears MEDCODE_* variables for every test.
_GIVEN_POSTGRES_URL = os.environ.get("MEDCODE_TEST_POSTGRES_URL", "")


def _postgres_bin() -> Path | None:
    """The newest ``/usr/lib/postgresql/<major>/bin`` holding ``initdb`` and ``pg_ctl``, if any."""
    found = [p.parent for p in Path("/usr/lib/postgresql").glob("*/bin/initdb") if (p.parent / "pg_ctl").exists()]
    return max(found, key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0) if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL database for the store tests: ``MEDCODE_TEST_POSTGRES_URL`` when set, else a throwaway cluster
    (``initdb`` + ``pg_ctl`` in a temp dir, loopback, a free port, run as the ``postgres`` user when we are root:
    initdb refuses root), stopped and deleted at the end of the session. Skips when neither is available."""
    if _GIVEN_POSTGRES_URL:
        yield _GIVEN_POSTGRES_URL
        return
    pytest.importorskip("psycopg", reason="psycopg is not installed (pip install 'medcode[postgres]')")
    bindir = _postgres_bin()
    if bindir is None:
        pytest.skip("no PostgreSQL server: apt-get install postgresql (or set MEDCODE_TEST_POSTGRES_URL)")
    as_user: list[str] = []
    owner: tuple[int, int] | None = None
    if os.geteuid() == 0:
        try:
            entry = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user for initdb")
        as_user, owner = ["runuser", "-u", "postgres", "--"], (entry.pw_uid, entry.pw_gid)
    root = Path(tempfile.mkdtemp(prefix="medcode-pg-"))
    data = root / "data"
    if owner is not None:
        os.chown(root, *owner)
    port = _free_port()

    def run(*cmd: str) -> None:
        done = subprocess.run([*as_user, *cmd], capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{Path(cmd[0]).name} failed: {done.stderr.strip() or done.stdout.strip()}")

    try:
        run(str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync")
        options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=60"
        run(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-o", options, "-w", "start")
    except (RuntimeError, subprocess.TimeoutExpired, OSError) as exc:
        shutil.rmtree(root, ignore_errors=True)
        pytest.fail(f"could not start a throwaway PostgreSQL server: {exc}")
    try:
        from sqlalchemy import create_engine

        engine = create_engine(f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres", isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.exec_driver_sql("CREATE DATABASE medcode_test")
        engine.dispose()
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/medcode_test"
    finally:
        subprocess.run(
            [*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
            capture_output=True,
            timeout=60,
            check=False,
        )
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture()
def empty_postgres_url(postgres_url: str) -> str:
    """The test database with its ``public`` schema dropped and recreated: the test starts with no tables."""
    from sqlalchemy import create_engine

    url = postgres_url
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP SCHEMA public CASCADE")
        conn.exec_driver_sql("CREATE SCHEMA public")
    engine.dispose()
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def review_engine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Runs a store test on both engines. For "postgresql" the test database is emptied and
    ``MEDCODE_DATABASE_URL`` points at it, so every ``load_settings`` of the test (CLI runs too) uses it.
    A test marked ``sqlite_only`` (it reads the SQLite file itself) is skipped on PostgreSQL."""
    engine: str = request.param
    if engine == "postgresql":
        if request.node.get_closest_marker("sqlite_only") is not None:
            pytest.skip("reads the SQLite file directly")
        url: str = request.getfixturevalue("empty_postgres_url")
        monkeypatch.setenv("MEDCODE_DATABASE_URL", url)
    return engine
