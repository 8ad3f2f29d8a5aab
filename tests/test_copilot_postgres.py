"""Two copilot servers (``medcode serve`` processes) on one PostgreSQL review database, with concurrent reviewers.

Each server has its own data directory: the queue and the audit log they share live only in the database.
Needs the ``postgres_url`` fixture (a throwaway server from Debian's ``postgresql``, or MEDCODE_TEST_POSTGRES_URL).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from medcode.agent._routing import RoutingPolicy
from medcode.cli import main
from medcode.codesets import ICD10CMCodeSet
from medcode.config import load_settings
from medcode.review import AuditLog, CodingDecision, ReviewQueue, UserDirectory
from medcode.validators import CodeVerdict

httpx = pytest.importorskip("httpx")
pytest.importorskip("uvicorn", reason="the serve extra is not installed")

TOKEN = "two-servers-test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CHARTS = 6


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _data_dir(path: Path, codeset: ICD10CMCodeSet) -> Path:
    path.mkdir(parents=True)
    (path / "codesets").symlink_to(codeset.path.parent, target_is_directory=True)
    return path


@pytest.fixture()
def servers(tmp_path: Path, empty_postgres_url: str, codeset: ICD10CMCodeSet) -> Iterator[list[str]]:
    """Two ``medcode serve`` processes on loopback, each with its own data dir, one database."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("MEDCODE_")},
        "MEDCODE_DATABASE_URL": empty_postgres_url,
        "MEDCODE_API_TOKEN": TOKEN,
        "MEDCODE_CONFIG": str(tmp_path / "no-config.toml"),
        "HF_HUB_OFFLINE": "1",
    }
    ReviewQueue(load_settings(data_dir=tmp_path / "seed", database_url=empty_postgres_url)).close()  # migrate once
    procs: list[subprocess.Popen[bytes]] = []
    urls = []
    logs = [(tmp_path / f"server-{name}.log").open("wb") for name in ("a", "b")]
    try:
        for name, log in zip(("a", "b"), logs, strict=True):
            port = _free_port()
            data_dir = _data_dir(tmp_path / f"server-{name}", codeset)
            cmd = [sys.executable, "-m", "medcode.cli", "--data-dir", str(data_dir), "serve", "--port", str(port)]
            procs.append(
                subprocess.Popen(
                    [*cmd, "--no-warm-up", "--proposer", "retrieval"],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=log,
                )
            )
            urls.append(f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + 90
        for url, proc in zip(urls, procs, strict=True):
            while True:
                assert proc.poll() is None, "a server exited; see server-*.log in the test's temp dir"
                try:
                    if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.2)
        yield urls
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for log in logs:
            log.close()


def _decision(i: int) -> CodingDecision:
    verdicts = [
        CodeVerdict(code="I10", canonical="I10", status="accepted", confidence=0.9),
        CodeVerdict(code="E11.9", canonical="E11.9", status="accepted", confidence=0.8),
    ]
    return CodingDecision(
        note_text=f"Note {i}: essential hypertension; type 2 diabetes.",
        verdicts=verdicts,
        routing=RoutingPolicy().decide(verdicts, "progress"),
    )


def test_two_servers_one_database_no_lost_update_409_and_a_valid_chain(
    servers: list[str], empty_postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = load_settings(data_dir=tmp_path / "seed", database_url=empty_postgres_url)
    with ReviewQueue(settings) as queue:
        chart_ids = [queue.enqueue(_decision(i)) for i in range(CHARTS)]
    # Each reviewer signs in with a token of their own (users live in the shared database, so both servers
    # know them); the audit log records the token's user, never a name from the body.
    auth: dict[str, dict[str, str]] = {}
    with UserDirectory(settings) as directory:
        for name in ("ann", "bob"):
            auth[name] = {"Authorization": f"Bearer {directory.add(name, 'coder', by='test')[1]}"}

    statuses: dict[tuple[int, str], list[int]] = {}
    errors: list[BaseException] = []

    def reviewer(server: str, user: str, code: str, barrier: threading.Barrier) -> None:
        """Both reviewers of a chart start from version 1 at once; the loser re-reads and tries again."""
        try:
            with httpx.Client(base_url=server, headers=auth[user], timeout=30) as client:
                for chart_id in chart_ids:
                    body: dict[str, Any] = {
                        "expected_version": 1,
                        "actions": [{"action": "reject", "code": code}],
                        "reason": "not documented",
                    }
                    barrier.wait(30)
                    seen = statuses.setdefault((chart_id, user), [])
                    while True:
                        r = client.post(f"/v1/charts/{chart_id}/review", json=body)
                        seen.append(r.status_code)
                        if r.status_code != 409:
                            assert r.status_code == 200, r.text
                            break
                        body["expected_version"] = client.get(f"/v1/charts/{chart_id}?text=false").json()["version"]
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    barrier = threading.Barrier(2)
    threads = [
        threading.Thread(target=reviewer, args=(servers[0], "ann", "I10", barrier)),
        threading.Thread(target=reviewer, args=(servers[1], "bob", "E11.9", barrier)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    for chart_id in chart_ids:
        # Both started from version 1: exactly one of them got 200 first, the other 409, then 200.
        first = sorted(statuses[(chart_id, u)][0] for u in ("ann", "bob"))
        assert first == [200, 409], (chart_id, statuses)
        assert all(statuses[(chart_id, u)][-1] == 200 for u in ("ann", "bob"))

    # No lost update: every chart holds both reviewers' changes, whichever server they went through.
    with httpx.Client(base_url=servers[1], headers=AUTH, timeout=30) as client:
        for chart_id in chart_ids:
            chart = client.get(f"/v1/charts/{chart_id}?text=false").json()
            assert chart["version"] == 3
            assert {c["code"]: c["selected"] for c in chart["codes"]} == {"I10": False, "E11.9": False}
        # Two finalisers of one version on the two servers: one wins, the other gets 409.
        results: list[int] = []

        def finalise(server: str, user: str) -> None:
            with httpx.Client(base_url=server, headers=auth[user], timeout=30) as c:
                body = {"expected_version": 3, "finalise": True}
                results.append(c.post(f"/v1/charts/{chart_ids[0]}/review", json=body).status_code)

        finalisers = [
            threading.Thread(target=finalise, args=(s, u)) for s, u in zip(servers, ("ann", "bob"), strict=True)
        ]
        for t in finalisers:
            t.start()
        for t in finalisers:
            t.join(60)
        assert sorted(results) == [200, 409]

    # One hash chain over both servers' writes; the CLI verifies it from a third data dir.
    monkeypatch.setenv("MEDCODE_DATABASE_URL", empty_postgres_url)
    assert main(["--data-dir", str(tmp_path / "verifier"), "audit", "verify"]) == 0
    with AuditLog(settings) as log:
        result = log.verify()
    # enqueue + 2 reviews (action + status records) per chart + the finalise: more than one record each
    assert result.ok and result.records > CHARTS * 3
