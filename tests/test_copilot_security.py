"""Issue 17 on the copilot: per-user tokens and roles, 4xx for bad input, escaped logs, note text that does not
outlive its job, keyed note ids, and the audit head anchor. Real app, real stores (no coding needed here)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from shared_data import own_data_dir

from medcode.agent import Note
from medcode.cli import main
from medcode.config import Settings
from medcode.copilot import ErrorInfo, JobStore, create_app
from medcode.review import AuditLog, UserDirectory, stored_note_id

pytestmark = pytest.mark.slow

TOKEN = "security-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
LOOPBACK = ("127.0.0.1", 50000)


@pytest.fixture(scope="module")
def settings(small_index_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return own_data_dir(small_index_settings, tmp_path_factory.mktemp("copilot-security") / "data")


@pytest.fixture(scope="module")
def tokens(settings: Settings) -> dict[str, str]:
    with UserDirectory(settings) as directory:
        return {
            name: directory.add(name, role, by="test")[1]
            for name, role in (("cora", "coder"), ("audrey", "auditor"), ("ada", "admin"), ("gone", "coder"))
        }


@pytest.fixture(scope="module")
def client(settings: Settings, tokens: dict[str, str]) -> Iterator[TestClient]:
    app = create_app(settings, token=TOKEN, proposer="retrieval", warm_up=False)
    with TestClient(app, client=LOOPBACK) as test_client:
        yield test_client


def _as(tokens: dict[str, str], name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens[name]}"}


def test_roles_decide_what_each_user_may_do(client: TestClient, tokens: dict[str, str], settings: Settings) -> None:
    assert client.get("/v1/me", headers=_as(tokens, "cora")).json() == {
        "name": "cora",
        "role": "coder",
        "bootstrap": False,
    }
    assert client.get("/v1/me", headers=AUTH).json()["name"] == "bootstrap-admin"
    # A coder cannot do blinded audits; an auditor cannot open charts or the queue (they show the machine's codes).
    denied = client.get("/v1/audit/tasks", headers=_as(tokens, "cora"))
    assert denied.status_code == 403 and "auditor" in denied.json()["error"]["message"]
    assert client.get("/v1/audit/tasks", headers=_as(tokens, "audrey")).status_code == 200
    for path in ("/v1/charts/1", "/v1/queue", "/v1/metrics"):
        assert client.get(path, headers=_as(tokens, "audrey")).status_code == 403, path
    assert client.get("/v1/queue", headers=_as(tokens, "cora")).status_code == 200
    assert client.get("/v1/audit/tasks", headers=_as(tokens, "ada")).status_code == 200  # admin: everything
    # Naming someone else in the request is refused; the token's user is what gets recorded.
    named = client.get("/v1/audit/tasks", params={"auditor": "somebody"}, headers=_as(tokens, "audrey"))
    assert named.status_code == 403 and "not the signed-in user" in named.json()["error"]["message"]
    # A revoked token stops working (the directory's cache is 2 s; a fresh app has none).
    with UserDirectory(settings) as directory:
        directory.revoke("gone", by="test")
        listed = {u.name: u for u in directory.list()}
    assert listed["gone"].revoked_at is not None and listed["cora"].active
    with TestClient(create_app(settings, token=TOKEN, warm_up=False), client=LOOPBACK) as fresh:
        assert fresh.get("/v1/me", headers=_as(tokens, "gone")).status_code == 401
    # Tokens are stored as digests only, and adding/revoking users are audit events.
    raw = (settings.data_dir / "review.sqlite").read_bytes()
    assert tokens["cora"].encode() not in raw
    with AuditLog(settings) as log:
        events = [(r.event_type, r.payload.get("user")) for r in log.records()]
    assert ("user_added", "cora") in events and ("user_revoked", "gone") in events


def test_the_shared_token_is_for_loopback_clients_only(settings: Settings, tokens: dict[str, str]) -> None:
    with TestClient(create_app(settings, token=TOKEN, warm_up=False), client=("203.0.113.9", 4000)) as remote:
        refused = remote.get("/v1/me", headers=AUTH)
        assert refused.status_code == 401 and "this machine only" in refused.json()["error"]["message"]
        assert remote.get("/v1/me", headers=_as(tokens, "cora")).status_code == 200


def test_bad_input_is_a_4xx_naming_the_field(client: TestClient) -> None:
    # A lone surrogate is valid JSON but not storable text.
    body = '{"text": "Essential hypertension \\ud800 here.", "id": "n-1"}'
    response = client.post("/v1/code", content=body, headers={**AUTH, "Content-Type": "application/json"})
    assert response.status_code == 422 and "text" in response.json()["error"]["message"]
    body = '{"text": "Essential hypertension.", "id": "n-\\udfff"}'
    response = client.post("/v1/code", content=body, headers={**AUTH, "Content-Type": "application/json"})
    assert response.status_code == 422 and "id" in response.json()["error"]["message"]
    huge = "9" * 40
    for path in (f"/v1/charts/{huge}", f"/v1/audit/tasks/{huge}", f"/v1/search?q=asthma&chart_id={huge}"):
        response = client.get(path, headers=AUTH)
        assert response.status_code == 422, (path, response.text)
        assert response.headers["content-type"] == "application/json"
    response = client.post(f"/v1/charts/{huge}/review", json={"expected_version": 1, "finalise": True}, headers=AUTH)
    assert response.status_code == 422 and "chart_id" in response.json()["error"]["message"]


def test_request_paths_are_escaped_in_the_access_log(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="medcode.copilot.access"):
        client.get("/v1/x%0a127.0.0.1 GET /v1/forged 200%00end")
        client.get("/nothing%0d%0aFORGED")
    lines = [r.getMessage() for r in caplog.records if r.name == "medcode.copilot.access"]
    assert len(lines) == 2
    for line in lines:
        assert "\n" not in line and "\r" not in line and "\x00" not in line
    assert "\\x0a127.0.0.1" in lines[0] and "\\x00end" in lines[0] and " 401 " in lines[0]


def test_note_text_does_not_outlive_its_job(settings: Settings, tmp_path: Path) -> None:
    own = settings.model_copy(update={"data_dir": tmp_path})
    marker = "Zanzibar-marker-" + "q" * 40
    store = JobStore(own)
    job = store.add(
        Note.checked(f"Essential hypertension. {marker}", own.max_note_chars, id="n-9"), "retrieval", max_queued=5
    )
    claimed = store.claim()
    assert claimed is not None and claimed[0] == job.job_id
    store.fail(job.job_id, ErrorInfo(type="LLMUnavailableError", message="down"))
    store.close()
    files = [p for p in tmp_path.iterdir() if p.name.startswith("review.sqlite")]
    assert files and not any(marker.encode() in p.read_bytes() for p in files), [p.name for p in files]


def test_note_ids_can_be_stored_as_a_keyed_hash(settings: Settings, tmp_path: Path) -> None:
    keyed = settings.model_copy(update={"data_dir": tmp_path, "note_id_key": SecretStr("k" * 32)})
    hashed = stored_note_id(keyed, "MRN-0012345")
    assert hashed is not None and hashed.startswith("nid:") and "0012345" not in hashed
    assert hashed == stored_note_id(keyed, "MRN-0012345") != stored_note_id(keyed, "MRN-0012346")
    assert stored_note_id(keyed, "visit") == "visit" and stored_note_id(settings, "MRN-0012345") == "MRN-0012345"
    store = JobStore(keyed)
    job = store.add(Note.checked("Essential hypertension.", 1_000, id="MRN-0012345"), "retrieval", max_queued=5)
    assert job.note_id == hashed
    store.close()


def test_audit_anchor_and_expect_head(
    client: TestClient, settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "anchors.jsonl"
    assert main(["--data-dir", str(settings.data_dir), "audit", "anchor", "--out", str(out)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert json.loads(out.read_text()) == printed and printed["seq"] >= 1
    assert client.get("/v1/audit/head", headers=AUTH).json()["hash"] == printed["hash"]
    assert main(["--data-dir", str(settings.data_dir), "audit", "verify", "--expect-head", printed["hash"]]) == 0
    assert main(["--data-dir", str(settings.data_dir), "audit", "verify", "--expect-head", "ab" * 32]) == 1
