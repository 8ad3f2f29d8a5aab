"""Fuzzing the inputs (issue 17): no request body gets a 500, and no batch line breaks the JSONL reader.

Hypothesis generates JSON-ish values (lone surrogates, huge numbers, deep nesting, wrong types) for the copilot's
request models, sent through the real app (warm-up off: coding is not the point), and raw bytes for the
``code-batch`` line reader. Kept small (max_examples modest, no deadline) to fit the CI budget.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from shared_data import own_data_dir

from medcode.agent.cli import read_batch_lines
from medcode.config import Settings
from medcode.copilot import create_app

pytestmark = pytest.mark.slow

TOKEN = "fuzz-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}

text = st.one_of(st.text(max_size=40), st.sampled_from(["\ud800", "a\udfff", "\x00", "x" * 300, "", " "]))
scalar = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70), st.floats(), text)
value = st.recursive(
    scalar, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3), max_leaves=8
)
FIELDS = [
    "text",
    "id",
    "setting",
    "note_type",
    "age",
    "sex",
    "date_of_service",
    "metadata",
    "expected_version",
    "actions",
    "reason",
    "finalise",
    "user",
    "codes",
    "auditor",
    "seed",
    "note",
    "proposal",
    "candidates",
]
body = st.dictionaries(st.sampled_from(FIELDS), value, max_size=6)
ROUTES = [
    "/v1/code",
    "/v1/validate",
    "/v1/charts/1/review",
    "/v1/audit/batches",
    "/v1/audit/tasks/1/answer",
    "/v1/audit/disputes/1/decision",
]


@pytest.fixture(scope="module")
def client(small_index_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = own_data_dir(
        small_index_settings, tmp_path_factory.mktemp("fuzz") / "data", serve_max_queued_jobs=10_000
    )
    app = create_app(settings, token=TOKEN, proposer="retrieval", warm_up=False)
    with TestClient(app, client=("127.0.0.1", 50000), raise_server_exceptions=False) as test_client:
        yield test_client


def _dumps(payload: Any) -> str:
    return json.dumps(payload, allow_nan=True)  # NaN/Infinity and lone surrogates (as \\ud800) are sent as such


@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(route=st.sampled_from(ROUTES), payload=body)
def test_no_request_body_gets_a_500(client: TestClient, route: str, payload: dict[str, Any]) -> None:
    response = client.post(route, content=_dumps(payload), headers=AUTH)
    assert response.status_code < 500 or response.status_code == 503, (route, response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    if response.status_code >= 400:
        assert response.json()["error"]["message"]


@hsettings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path_id=st.one_of(st.integers(min_value=-(2**80), max_value=2**80).map(str), text.map(lambda t: t or "x")))
def test_no_path_or_query_gets_a_500(client: TestClient, path_id: str) -> None:
    from urllib.parse import quote

    encoded = quote(path_id.encode("utf-8", "surrogatepass"), safe="")
    for path in (f"/v1/charts/{encoded}", f"/v1/jobs/{encoded}", f"/v1/search?q={encoded}&chart_id={encoded}"):
        response = client.get(path, headers=AUTH)
        assert response.status_code < 500 or response.status_code == 503, (path, response.text)


@hsettings(max_examples=200, deadline=None)
@given(
    data=st.lists(
        st.one_of(st.binary(max_size=60), value.map(lambda v: _dumps(v).encode("utf-8", "surrogatepass"))), max_size=6
    )
)
def test_the_batch_reader_never_raises(data: list[bytes]) -> None:
    blob = b"\n".join(data)
    parsed = read_batch_lines(blob)
    assert len(parsed) <= blob.count(b"\n") + 1
    for lineno, row, problem in parsed:
        assert (row is None) != (problem is None)
        if problem is not None:
            assert problem.startswith(f"line {lineno}:")
