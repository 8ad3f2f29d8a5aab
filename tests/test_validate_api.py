"""``POST /v1/validate``: the `medcode validate --json` contract over HTTP, with the copilot's bearer auth.

The app runs in-process (FastAPI's TestClient, lifespan included) over its own data directory that
shares the session's code set and small index.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from shared_data import own_data_dir

from medcode.cli import main as cli_main
from medcode.config import Settings
from medcode.copilot import create_app

pytestmark = pytest.mark.slow

TOKEN = "validate-token-0123456789abcdef"
LOOPBACK = ("127.0.0.1", 50000)  # the shared token is the bootstrap admin, accepted from loopback only
AUTH = {"Authorization": f"Bearer {TOKEN}"}

NOTE = """ASSESSMENT AND PLAN:
1. Type 2 diabetes mellitus without complications. Continue metformin.
2. Primary osteoarthritis of the left knee.
He denies chest pain.
"""


def _ev(quote: str) -> dict[str, Any]:
    start = NOTE.index(quote)
    return {"text": quote, "start": start, "end": start + len(quote)}


PROPOSAL = {
    "codes": [
        {"code": "E11.9", "evidence": [_ev("Type 2 diabetes mellitus without complications")], "confidence": 0.9},
        {"code": "M17.11", "evidence": [_ev("Primary osteoarthritis of the left knee")], "confidence": 0.8},
        {"code": "R07.9", "evidence": [_ev("chest pain")], "confidence": 0.5},
    ]
}


@pytest.fixture(scope="module")
def settings(small_index_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return own_data_dir(small_index_settings, tmp_path_factory.mktemp("validate-api") / "data")


@pytest.fixture(scope="module")
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(
        create_app(settings, token=TOKEN, proposer="retrieval", warm_up=False), client=LOOPBACK
    ) as test_client:
        yield test_client


def test_validate_needs_the_token(client: TestClient) -> None:
    body = {"note": NOTE, "proposal": PROPOSAL, "no_candidates": True}
    assert client.post("/v1/validate", json=body).status_code == 401
    assert client.post("/v1/validate", json=body, headers={"Authorization": "Bearer wrong"}).status_code == 401


def test_validate_answers_like_the_cli(
    client: TestClient, settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    response = client.post(
        "/v1/validate", json={"note": NOTE, "proposal": PROPOSAL, "no_candidates": True}, headers=AUTH
    )
    assert response.status_code == 200, response.text
    document = response.json()
    statuses = {c["code"]: (c["status"], c["rules"]) for c in document["codes"]}
    assert statuses["E11.9"] == ("accepted", [])
    assert statuses["M17.11"] == ("rejected", ["LATERALITY_CONFLICT"])  # the wrong side
    assert statuses["R07.9"] == ("rejected", ["SPAN_NEGATED"])
    assert document["candidates_checked"] is False and "not checked" in document["notes"][0]
    assert document["routing"]["decision"] == "review"
    reasons = [r["reason"] for c in document["codes"] for r in c["reasons"]]
    assert not any("left knee" in reason for reason in reasons)  # reasons name codes, never quote the note

    note_file, proposal_file = tmp_path / "note.txt", tmp_path / "proposal.json"
    note_file.write_text(NOTE, encoding="utf-8")
    proposal_file.write_text(json.dumps(PROPOSAL), encoding="utf-8")
    args = ["--data-dir", str(settings.data_dir), "validate", "--note", str(note_file)]
    assert cli_main([*args, "--proposal", str(proposal_file), "--json", "--no-candidates"]) == 1
    assert json.loads(capsys.readouterr().out) == document


def test_validate_checks_candidates_when_given(client: TestClient) -> None:
    body = {"note": NOTE, "proposal": PROPOSAL, "candidates": ["E11.9", "M17.12"]}
    document = client.post("/v1/validate", json=body, headers=AUTH).json()
    rules = {c["code"]: c["rules"] for c in document["codes"]}
    assert rules["E11.9"] == [] and "NOT_A_CANDIDATE" in rules["M17.11"]
    assert document["candidates_checked"] is True and document["notes"] == []


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"note": NOTE, "proposal": PROPOSAL}, 422, "candidates are required"),
        ({"note": NOTE, "proposal": PROPOSAL, "candidates": [], "no_candidates": True}, 422, "not both"),
        ({"note": NOTE, "proposal": {"codes": [{"evidence": []}]}, "no_candidates": True}, 422, "code"),
        ({"note": "   ", "proposal": PROPOSAL, "no_candidates": True}, 400, "empty"),
        ({"note": NOTE, "proposal": PROPOSAL, "no_candidates": True, "date_of_service": "1999-01-01"}, 400, "1999"),
    ],
)
def test_validate_bad_requests(client: TestClient, body: dict[str, Any], status: int, message: str) -> None:
    response = client.post("/v1/validate", json=body, headers=AUTH)
    assert response.status_code == status, response.text
    assert message in response.json()["error"]["message"]
