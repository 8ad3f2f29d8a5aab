"""The KPI page and the documentation-feedback page in a real browser (headless Debian chromium), on a review
database filled with generated charts whose answers are known (a code-mix shift six weeks in, DRG swaps).

``KPI_SCREENSHOT=path`` also saves the KPI page's screenshot there (the README's ``docs/kpi.png``);
``CDI_SCREENSHOT=path`` the documentation-feedback page's.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from chart_streams import make_inpatient_stream, make_stream, populate_queue
from shared_data import own_data_dir
from test_copilot_browser import (  # noqa: F401  (browser is a fixture)
    TOKEN,
    _free_port,
    _need_browser,
    browser,
    sign_in_with,
    user_token,
)

from medcode.config import Settings
from medcode.copilot import create_app
from medcode.monitoring import ALERT_EVENT
from medcode.review import AuditLog

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def settings(small_index_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    _need_browser()
    settings = own_data_dir(small_index_settings, tmp_path_factory.mktemp("monitor-browser") / "data")
    today = dt.datetime.now(dt.UTC).date()
    start = today - dt.timedelta(days=today.weekday()) - dt.timedelta(weeks=8)  # the eight weeks before this one
    streams = [
        *make_stream(weeks=8, per_week=45, start=start, seed=3, shift_week=6, open_last_week=6, auto_share=0.25),
        *make_stream(weeks=8, per_week=20, start=start, seed=4, note_type="ed_note", first_id=5_000, auto_share=0.1),
        *make_inpatient_stream(weeks=8, per_week=10, start=start),
    ]
    populate_queue(settings, streams)
    return settings


@pytest.fixture(scope="module")
def server(settings: Settings) -> Iterator[str]:
    import uvicorn

    port = _free_port()
    app = create_app(settings, token=TOKEN, proposer="retrieval", warm_up=False)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="on")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, name="monitor-test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not srv.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(30)


def _sign_in(driver: Any, url: str, token: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url)
    wait = WebDriverWait(driver, 30)
    if driver.execute_script("return sessionStorage.getItem('medcode.token')") is None:
        sign_in_with(driver, token)
    wait.until(ec.visibility_of_element_located((By.ID, "workspace")))
    assert driver.find_element(By.ID, "who").text == "kim"


def test_kpi_page_shows_every_number_with_plots_and_the_drift_alert(
    browser: Any,  # noqa: F811
    server: str,
    settings: Settings,
    tmp_path: Path,
) -> None:
    import httpx
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import Select, WebDriverWait

    wait = WebDriverWait(browser, 60)
    browser.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride", {"width": 1280, "height": 1500, "deviceScaleFactor": 1, "mobile": False}
    )
    _sign_in(browser, server + "/monitor", user_token(settings, "kim", "coder"))
    wait.until(ec.text_to_be_present_in_element((By.ID, "k-tiles"), "Dollars at risk"))
    api = httpx.get(server + "/v1/monitor/report", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60).json()
    tiles = browser.find_element(By.ID, "k-tiles").text
    k = api["kpis"]
    for label in ("Code accuracy (F1)", "Claims exactly right", "Edit rate", "Override rate", "Time to finalise",
                  "Queue", "Auto share", "Denial risk", "Dollars at risk", "Drift"):  # fmt: skip
        assert label in tiles, label
    assert f"${round(api['dollars']['total']['at_risk_usd']):,}" in tiles
    assert f"{k['queue']['open']}\nopen" in tiles and k["queue"]["open"] == 6
    cal = k["calibration"]
    assert f"ECE {cal['ece']:.3f} · {cal['codes']} suggestions" in tiles and cal["codes"] > 0
    # The known answers: the outpatient code mix shifts six weeks in (an alert), and the inpatient DRG swaps cost money.
    banner = browser.find_element(By.ID, "k-drift")
    assert banner.is_displayed() and "Drift alert" in banner.text
    alerts = browser.find_element(By.ID, "k-alerts").text
    assert "code_mix_psi" in alerts and "outpatient/outpatient_visit" in alerts and "outpatient/ed_note" not in alerts
    assert (
        api["dollars"]["total"]["drg_changed"] > 0
        and api["dollars"]["by_group"]["inpatient/discharge_summary"]["over_usd"] > 0
    )
    assert "inpatient/discharge_summary" in browser.find_element(By.ID, "k-dollars").text
    assert "291 → 293" in browser.find_element(By.ID, "k-charts").text  # the machine's MCC the coder removed
    by_code = api["kpis"]["accuracy_by_code"]
    top = next(iter(by_code))
    assert top in browser.find_element(By.ID, "k-codes").text and by_code[top]["tp"] > 0
    # Plots: server-rendered SVG shown as images, all loaded.
    images = browser.find_elements(By.CSS_SELECTOR, "#k-plots img")
    assert {i.get_attribute("data-plot") for i in images} == {
        "agreement",
        "accuracy",
        "time_to_finalise",
        "dollars",
        "drift",
    }
    wait.until(
        lambda d: all(
            d.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", i) for i in images
        )
    )
    # The alerts went to the audit log once, whichever way the report was read.
    with AuditLog(settings) as log:
        recorded = log.records(event_type=ALERT_EVENT)
        assert log.verify().ok
    assert len(recorded) == len(api["drift"]["alerts"]) > 0
    shot = tmp_path / "kpi.png"
    browser.execute_script("window.scrollTo(0, 0); document.getElementById('toast').hidden = true;")
    browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 50_000
    target = os.environ.get("KPI_SCREENSHOT")
    if target:
        shutil.copyfile(shot, target)
    # Grouping by provider re-reads the report.
    Select(browser.find_element(By.ID, "k-by")).select_by_value("provider_id")
    browser.find_element(By.CSS_SELECTOR, "#kpi-filter button").click()
    wait.until(ec.text_to_be_present_in_element((By.ID, "k-groups"), "H-1"))

    # The documentation-feedback page: the inpatient uncertain pneumonia is a query for its providers.
    browser.get(server + "/cdi")
    wait.until(ec.text_to_be_present_in_element((By.ID, "c-groups"), "provider id: H-1"))
    item = browser.find_element(By.CSS_SELECTOR, '#c-groups li[data-query="UNCERTAIN_DX_AT_DISCHARGE"]')
    assert "Pneumonia, unspecified organism" in item.text and "Examples: dc-" in item.text
    assert "confirmed; ruled out" in item.text
    if os.environ.get("CDI_SCREENSHOT"):
        browser.save_screenshot(os.environ["CDI_SCREENSHOT"])
    logs = [e for e in browser.get_log("browser") if e.get("level") == "SEVERE"]
    assert not logs, logs
