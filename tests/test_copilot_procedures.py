"""The copilot with procedure coding on: procedures in their own list, accepted or rejected, audited.

The real app in-process (FastAPI's TestClient) on the session's small real index, its own queue and audit log,
the real procedure index and validators; the retrieval proposer (no LLM).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from shared_data import own_data_dir

from medcode.config import Settings
from medcode.copilot import create_app
from medcode.review import AuditLog, UserDirectory

pytestmark = pytest.mark.slow

TOKEN = "test-token-0123456789abcdef"
LOOPBACK = ("127.0.0.1", 50000)  # the shared token is the bootstrap admin, accepted from loopback only
AUTH = {"Authorization": f"Bearer {TOKEN}"}

NOTE = """HISTORY OF PRESENT ILLNESS: 55-year-old woman with type 2 diabetes and right upper quadrant pain.
Her mother underwent a mastectomy.
She underwent laparoscopic cholecystectomy without complication.

ASSESSMENT AND PLAN:
1. Type 2 diabetes mellitus without complications. Continue metformin.
"""


@pytest.fixture(scope="module")
def settings(small_index_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return own_data_dir(small_index_settings, tmp_path_factory.mktemp("copilot-procedures") / "data", procedures=True)


@pytest.fixture(scope="module")
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings, token=TOKEN, proposer="retrieval"), client=LOOPBACK) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def coder1(settings: Settings) -> dict[str, str]:
    """The Authorization header of coder1's own token: the audit log records coder1 for its decisions."""
    with UserDirectory(settings) as directory:
        _, token = directory.add("coder1", "coder", by="test")
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def chart_id(client: TestClient) -> int:
    response = client.post("/v1/code", json={"text": NOTE, "setting": "inpatient", "sex": "F", "age": 55}, headers=AUTH)
    assert response.status_code == 202, response.text
    job_id = response.json()["job_id"]
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}", headers=AUTH).json()
        if job["status"] in ("done", "failed"):
            assert job["status"] == "done", job
            assert job["result"]["procedures"], job["result"]
            return int(job["chart_id"])
        time.sleep(0.2)
    raise AssertionError("coding job did not finish")


def _chart(client: TestClient, chart_id: int, text: bool = True) -> dict[str, Any]:
    response = client.get(f"/v1/charts/{chart_id}?text={'true' if text else 'false'}", headers=AUTH)
    assert response.status_code == 200, response.text
    return dict(response.json())


def _review(client: TestClient, chart_id: int, headers: dict[str, str], **body: Any) -> Any:
    version = _chart(client, chart_id)["version"]
    return client.post(f"/v1/charts/{chart_id}/review", json={"expected_version": version, **body}, headers=headers)


def test_the_chart_lists_procedures_apart_from_codes(client: TestClient, chart_id: int) -> None:
    chart = _chart(client, chart_id)
    procedures = {p["code"]: p for p in chart["procedures"]}
    assert "0FT44ZZ" in procedures and not any(c["code"] == "0FT44ZZ" for c in chart["codes"])
    chole = procedures["0FT44ZZ"]
    assert chole["system"] == "icd10pcs" and chole["status"] == "accepted" and chole["decision"] == "pending"
    assert NOTE[chole["evidence"][0]["start"] : chole["evidence"][0]["end"]] == chole["evidence"][0]["text"]
    family = [p for p in chart["procedures"] if p["status"] == "rejected"]
    assert family and family[0]["reasons"][0]["rule"] == "SPAN_FAMILY_HISTORY"
    assert "procedures" not in chart["decision"]  # shown once, in the list
    hidden = _chart(client, chart_id, text=False)
    assert all("text" not in e for p in hidden["procedures"] for e in p["evidence"])


def test_accept_and_reject_procedures_are_audited(
    client: TestClient, chart_id: int, settings: Settings, coder1: dict[str, str]
) -> None:
    chart = _chart(client, chart_id)
    family = next(p["code"] for p in chart["procedures"] if p["status"] == "rejected")
    # a procedure decision is the signed-in user's: a body naming someone else is refused, nothing changes
    impostor = _review(client, chart_id, coder1, user="mallory", procedures=[{"action": "accept", "code": "0FT44ZZ"}])
    assert impostor.status_code == 403 and impostor.json()["error"]["type"] == "PermissionDeniedError"
    assert _chart(client, chart_id)["version"] == chart["version"]
    response = _review(client, chart_id, coder1, procedures=[{"action": "accept", "code": "0FT44ZZ"}])
    assert response.status_code == 200, response.text
    after = {p["code"]: p for p in response.json()["procedures"]}
    assert after["0FT44ZZ"]["decision"] == "accepted" and after["0FT44ZZ"]["decided_by"] == "coder1"
    assert after[family]["decision"] == "pending"
    assert response.json()["version"] == chart["version"] + 1

    # accepting what the validators rejected needs a reason, and nothing changes without one
    refused = _review(client, chart_id, coder1, procedures=[{"action": "accept", "code": family}])
    assert refused.status_code == 422 and refused.json()["error"]["type"] == "OverrideReasonRequiredError"
    assert {p["code"]: p["decision"] for p in _chart(client, chart_id)["procedures"]}[family] == "pending"
    overridden = _review(
        client, chart_id, coder1, procedures=[{"action": "accept", "code": family}], reason="coder's call"
    )
    assert overridden.status_code == 200, overridden.text
    rejected = _review(
        client, chart_id, coder1, procedures=[{"action": "reject", "code": family}], reason="family history"
    )
    assert {p["code"]: p["decision"] for p in rejected.json()["procedures"]}[family] == "rejected"

    # a code the chart did not propose is refused
    unknown = _review(client, chart_id, coder1, procedures=[{"action": "accept", "code": "0DTJ4ZZ"}])
    assert unknown.status_code == 400 and "not a procedure this chart proposed" in unknown.text

    with AuditLog(settings) as audit:
        assert audit.verify().ok
        events = [r.payload for r in audit.records(event_type="procedure_action") if r.payload["chart_id"] == chart_id]
    assert [(e["action"], e["code"], e["guardrail_override"], e["user"]) for e in events] == [
        ("procedure_accept", "0FT44ZZ", False, "coder1"),
        ("procedure_accept", family, True, "coder1"),
        ("procedure_reject", family, False, "coder1"),
    ]
    assert events[1]["reason"] == "coder's call" and events[1]["rules"] == ["SPAN_FAMILY_HISTORY"]
