"""Waiting clients do not starve the server (issue 17): /healthz stays fast while many ``?wait=`` requests park.

A bounded run of ``tools/bench_copilot_load.py``: a real uvicorn server on loopback over the small real index.
Before the fix each waiter held one of the 40 request threads, so 60 waiters made /healthz wait for a thread
(seconds, up to the wait); now waits park on the event loop.
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest
from shared_data import own_data_dir

from medcode.config import Settings
from tools.bench_copilot_load import TOKEN, run_load, serve_in_thread

pytestmark = pytest.mark.slow


def test_healthz_stays_fast_under_sixty_waiting_requests(small_index_settings: Settings, tmp_path: Path) -> None:
    settings = own_data_dir(small_index_settings, tmp_path / "data", serve_max_queued_jobs=1_000)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    server, thread = serve_in_thread(settings, port)
    try:
        figures = asyncio.run(run_load(f"http://127.0.0.1:{port}", TOKEN, waits=60, wait_s=8.0, probes_s=4.0))
    finally:
        server.should_exit = True
        thread.join(30)
    assert figures["healthz"]["n"] >= 5
    # Generous for a loaded 2-core CI machine, but far below the 8 s a starved request would wait.
    assert figures["healthz"]["max_ms"] < 2_000, figures
    assert figures["review_action"]["max_ms"] < 4_000, figures
    assert sum(figures["wait_statuses"].values()) == 60 and set(figures["wait_statuses"]) <= {"200", "202"}
