"""The copilot's audit and autonomy API on the real pipeline: blind tasks never leak codes; adjudication.

A note is coded through ``/v1/code`` (retrieval proposer, small real index) with the earned-autonomy
gate wired in, finalised by a coder, drawn into an audit batch, coded blind by two auditors who
disagree, and settled by an adjudicator.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from shared_data import own_data_dir

from medcode.config import Settings
from medcode.copilot import create_app
from medcode.review import AuditLog, ReviewQueue, UserDirectory

pytestmark = pytest.mark.slow

TOKEN = "audit-token-0123456789abcdef"
LOOPBACK = ("127.0.0.1", 50000)  # the shared token is the bootstrap admin, accepted from loopback only
AUTH = {"Authorization": f"Bearer {TOKEN}"}
NOTE = """CHIEF COMPLAINT: Blood pressure and cholesterol follow-up.

ASSESSMENT AND PLAN:
1. Essential hypertension, well controlled. Continue lisinopril.
2. Pure hypercholesterolemia. Continue atorvastatin.
"""


@pytest.fixture(scope="module")
def settings(small_index_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return own_data_dir(small_index_settings, tmp_path_factory.mktemp("copilot-audit") / "data")


@pytest.fixture(scope="module")
def who(settings: Settings) -> dict[str, dict[str, str]]:
    """Each person's own token: a coder, an auditor who draws batches, two auditors and an adjudicator."""
    roles = {"carol": "coder", "gina": "auditor", "ann": "auditor", "bob": "auditor", "dora": "auditor"}
    with UserDirectory(settings) as directory:
        return {n: {"Authorization": f"Bearer {directory.add(n, r, by='test')[1]}"} for n, r in roles.items()}


@pytest.fixture(scope="module")
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings, token=TOKEN, proposer="retrieval"), client=LOOPBACK) as test_client:
        yield test_client


def test_blind_audit_and_adjudication_through_the_api(
    client: TestClient, settings: Settings, tmp_path: Path, who: dict[str, dict[str, str]]
) -> None:
    coded = client.post("/v1/code?wait=60", json={"text": NOTE, "note_type": "outpatient_visit"}, headers=AUTH)
    assert coded.status_code == 200, coded.text
    result = coded.json()
    routing = result["routing"]
    assert routing["decision"] == "review" and routing["case_type"] == "outpatient-chronic"
    assert "CASE_TYPE_NOT_GRANTED:outpatient-chronic" in routing["reasons"]  # no grant: human-assisted
    assert routing["autonomy_version"].startswith("2026.11-example+")
    chart_id = result["chart_id"]
    machine = [c["code"] for c in result["codes"] if c["status"] == "accepted"]
    assert machine and "I10" in machine
    chart = client.get(f"/v1/charts/{chart_id}", headers=AUTH).json()
    review = {"expected_version": chart["version"], "finalise": True}
    assert client.post(f"/v1/charts/{chart_id}/review", json=review, headers=who["carol"]).status_code == 200

    batch = client.post("/v1/audit/batches", json={"seed": 11}, headers=who["gina"]).json()
    assert batch["strata"]["outpatient-chronic"]["review"] == 1
    (task_id,) = batch["task_ids"]

    # The auditor's list and task: the note and its metadata, nothing else.
    listed = client.get("/v1/audit/tasks", headers=who["ann"]).json()
    task = client.get(f"/v1/audit/tasks/{task_id}", headers=who["ann"]).json()
    assert [t["task_id"] for t in listed] == [task_id] and task["note_text"] == NOTE
    for view in (*listed, task):
        assert not {"codes", "routing", "reasons", "case_type", "stratum", "chart_id", "answers", "confidence"} & set(
            view
        )
        outside_note = json.dumps({k: v for k, v in view.items() if k != "note_text"})
        for leak in [*machine, "outpatient-chronic", "CASE_TYPE_NOT_GRANTED", "carol"]:
            assert leak not in outside_note, leak
    assert not [c for c in machine if c in NOTE]  # so the note itself cannot leak them either
    # The coder who finalised it has no auditor role; an auditor cannot open the chart (the machine's codes).
    assert client.get(f"/v1/audit/tasks/{task_id}", headers=who["carol"]).status_code == 403
    assert client.get(f"/v1/charts/{chart_id}", headers=who["ann"]).status_code == 403
    assert client.get("/v1/audit/tasks/999", headers=who["ann"]).status_code == 404
    bad = client.post(f"/v1/audit/tasks/{task_id}/answer", json={"codes": ["I10.99"]}, headers=who["ann"])
    assert bad.status_code == 400

    # Two auditors disagree; the receipt says nothing about the other answer.
    one = client.post(f"/v1/audit/tasks/{task_id}/answer", json={"codes": ["I10", "E78.00"]}, headers=who["ann"])
    assert one.status_code == 200 and one.json() == {"task_id": task_id, "recorded": True}
    two = client.post(f"/v1/audit/tasks/{task_id}/answer", json={"codes": ["i10"]}, headers=who["bob"])
    assert two.json() == {"task_id": task_id, "recorded": True}
    again = client.post(f"/v1/audit/tasks/{task_id}/answer", json={"codes": ["I10"]}, headers=who["bob"])
    assert again.status_code == 400

    disputes = client.get("/v1/audit/disputes", headers=who["dora"]).json()
    assert [d["task_id"] for d in disputes] == [task_id]
    assert client.get("/v1/audit/disputes", headers=who["ann"]).json() == []
    dispute = client.get(f"/v1/audit/disputes/{task_id}", headers=who["dora"]).json()
    assert dispute["answers"] == [{"label": "A", "codes": ["I10", "E78.00"]}, {"label": "B", "codes": ["I10"]}]
    assert not {"routing", "reasons", "case_type", "chart_id"} & set(dispute) and "ann" not in json.dumps(dispute)
    decision = {"codes": ["I10", "E78.00"], "reason": "hypercholesterolemia is documented"}
    decided = client.post(f"/v1/audit/disputes/{task_id}/decision", json=decision, headers=who["dora"]).json()
    assert decided == {"task_id": task_id, "status": "gold", "gold": ["I10", "E78.00"]}

    report = client.get("/v1/autonomy", headers=AUTH).json()
    chronic = next(c for c in report["case_types"] if c["case_type"]["id"] == "outpatient-chronic")
    assert chronic["evaluation"]["audited"] == 1 and chronic["grant_state"] == "not_granted"
    assert chronic["evaluation"]["human"]["claim_exact"]["n"] == 1
    assert not chronic["evaluation"]["eligible"]

    with AuditLog(settings) as log:
        assert log.verify().ok
        events = [r.event_type for r in log.records()]
    for event in ("audit_batch", "audit_answer", "audit_disputed", "audit_gold"):
        assert event in events
    with ReviewQueue(settings) as queue:
        assert queue.get(chart_id).finalised_by == "carol"
    for page in ("/audit", "/autonomy"):
        response = client.get(page)
        assert response.status_code == 200 and "app.js" in response.text
