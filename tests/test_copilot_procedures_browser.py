"""The copilot page's procedure list in headless Debian chromium, on a real uvicorn server (procedure coding on).

Uses the server and browser fixtures of test_copilot_browser.py with a data dir of its own.
"""

from __future__ import annotations

import json
import time
import urllib.request
from typing import Any

import pytest
from shared_data import own_data_dir
from test_copilot_browser import TOKEN, browser, server, sign_in_with, user_token  # noqa: F401  (fixtures)

from medcode.config import Settings
from medcode.review import AuditLog

pytestmark = pytest.mark.slow

NOTE = """HISTORY OF PRESENT ILLNESS: 55-year-old woman with right upper quadrant pain.
Her mother underwent a mastectomy.
She underwent laparoscopic cholecystectomy without complication.
"""


@pytest.fixture(scope="module")
def settings(small_index_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return own_data_dir(
        small_index_settings, tmp_path_factory.mktemp("copilot-procedures-browser") / "data", procedures=True
    )


def _api(base: str, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        base + path,
        data=data,
        method=method,
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def test_procedures_listed_and_decided_in_the_browser(browser: Any, server: str, settings: Settings) -> None:  # noqa: F811
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    job = _api(server, "POST", "/v1/code", {"text": NOTE, "setting": "inpatient"})
    deadline = time.monotonic() + 180
    while job["status"] not in ("done", "failed") and time.monotonic() < deadline:
        time.sleep(0.2)
        job = _api(server, "GET", f"/v1/jobs/{job['job_id']}")
    assert job["status"] == "done", job
    chart_id = job["chart_id"]

    wait = WebDriverWait(browser, 30, ignored_exceptions=(StaleElementReferenceException,))
    css = By.CSS_SELECTOR
    browser.get(server + "/")
    sign_in_with(browser, user_token(settings, "alice", "coder"))  # her own token: the page sends no name
    wait.until(ec.visibility_of_element_located((By.ID, "workspace")))
    assert browser.find_element(By.ID, "who").text == "alice"
    browser.get(f"{server}/#/chart/{chart_id}")
    wait.until(ec.visibility_of_element_located((By.ID, "procedures-card")))

    item = '#procedures li.procedure[data-code="0FT44ZZ"]'
    wait.until(ec.presence_of_element_located((css, item)))
    assert "icd10pcs" in browser.find_element(css, item).text
    assert browser.find_element(css, item).get_attribute("data-decision") == "pending"
    blocked = browser.find_elements(css, "#procedures li.procedure")
    assert any("SPAN_FAMILY_HISTORY" in li.text for li in blocked)  # the mother's mastectomy, with its rule

    browser.find_element(css, item + ' button[data-action="procedure-accept"]').click()
    wait.until(lambda d: d.find_element(css, item).get_attribute("data-decision") == "accepted")
    assert "accepted by alice" in browser.find_element(css, item).text
    with AuditLog(settings) as audit:
        events = [r.payload for r in audit.records(event_type="procedure_action")]
    assert [(e["action"], e["code"], e["user"]) for e in events] == [("procedure_accept", "0FT44ZZ", "alice")]
