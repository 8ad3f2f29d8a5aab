"""Load on the copilot: many clients waiting on ``POST /v1/code?wait=`` while others poll /healthz and review.

Before issue 17 every waiting request held one of the server's 40 worker threads, so ~40 waiters starved the
sync routes (/healthz took 9 s). Now a wait is an event on the loop. This script starts a real server
(uvicorn, loopback, an ephemeral port) over a scratch data directory with a small real index, codes a few
notes to get charts, then fires ``--waits`` concurrent ``?wait=`` requests and meanwhile measures /healthz
and review actions (accept/reject toggled on one chart code), and prints p50/p99 in milliseconds as JSON.

    python -m tools.bench_copilot_load --waits 200 --wait-s 15
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

NOTE = "ASSESSMENT AND PLAN:\n1. Essential hypertension, well controlled. Continue lisinopril.\n"
TOKEN = "bench-token-0123456789abcdef"


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile of ``values`` (``q`` in 0-100); raises ``ValueError`` when empty."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def _summary(values: list[float]) -> dict[str, Any]:
    return {
        "n": len(values),
        "p50_ms": round(statistics.median(values) * 1000, 1),
        "p99_ms": round(percentile(values, 99) * 1000, 1),
        "max_ms": round(max(values) * 1000, 1),
    }


async def run_load(base_url: str, token: str, *, waits: int, wait_s: float, probes_s: float) -> dict[str, Any]:
    """Fire ``waits`` concurrent waiting codings; meanwhile time /healthz and review actions. Returns figures.

    Raises ``AssertionError`` when the server cannot code a first note (no chart to review).
    """
    auth = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=waits + 20, max_keepalive_connections=waits + 20)
    async with httpx.AsyncClient(base_url=base_url, timeout=wait_s + 60, limits=limits) as client:
        first = await client.post("/v1/code?wait=60", json={"text": NOTE, "id": "bench-0"}, headers=auth)
        assert first.status_code == 200, first.text
        chart_id = first.json()["chart_id"]
        chart = (await client.get(f"/v1/charts/{chart_id}", headers=auth)).json()
        code, version = chart["codes"][0]["code"], chart["version"]

        async def waiter(i: int) -> int:
            body = {"text": NOTE.replace("well", f"well ({i})"), "id": f"bench-{i}"}
            response = await client.post(f"/v1/code?wait={wait_s}", json=body, headers=auth)
            return response.status_code

        health: list[float] = []
        review: list[float] = []
        tasks = [asyncio.create_task(waiter(i)) for i in range(1, waits + 1)]
        await asyncio.sleep(1.0)  # let the waits arrive and park
        deadline = time.monotonic() + probes_s
        action = "reject"
        while time.monotonic() < deadline:
            started = time.perf_counter()
            assert (await client.get("/healthz")).status_code == 200
            health.append(time.perf_counter() - started)
            started = time.perf_counter()
            body = {"expected_version": version, "actions": [{"action": action, "code": code}], "reason": "bench"}
            answer = await client.post(f"/v1/charts/{chart_id}/review", json=body, headers=auth)
            review.append(time.perf_counter() - started)
            if answer.status_code == 200:
                version = answer.json()["version"]
                action = "accept" if action == "reject" else "reject"
            await asyncio.sleep(0.1)
        statuses = await asyncio.gather(*tasks)
    return {
        "waits": waits,
        "wait_s": wait_s,
        "wait_statuses": {str(s): statuses.count(s) for s in sorted(set(statuses))},
        "healthz": _summary(health),
        "review_action": _summary(review),
    }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_in_thread(settings: Any, port: int) -> tuple[Any, threading.Thread]:
    """Start the copilot with uvicorn on 127.0.0.1:``port`` in a thread; returns (server, thread) once up."""
    import uvicorn

    from medcode.copilot import create_app

    app = create_app(settings, token=TOKEN, proposer="retrieval", warm_up=False)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the copilot did not start")
        time.sleep(0.05)
    return server, thread


def small_data_dir(target: Path) -> Any:
    """Settings over ``target`` with the real code set and a small real index (hypertension, diabetes)."""
    from medcode.codesets import CodeSetRegistry
    from medcode.config import load_settings
    from medcode.retrieval import build_index

    settings = load_settings(data_dir=target, serve_max_queued_jobs=100_000, llm_threads=1)
    codeset = CodeSetRegistry(settings).get()
    codes = sorted(
        {c for h in ("I10", "I11", "E11", "E78") for c in codeset.billable_descendants(h, limit=60)} | {"I10"}
    )
    build_index(settings, codeset, codes=codes, progress=False)
    return settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--waits", type=int, default=200, help="concurrent ?wait= requests (default 200)")
    parser.add_argument("--wait-s", type=float, default=15.0, help="seconds each waits (default 15)")
    parser.add_argument("--probe-s", type=float, default=10.0, help="seconds of /healthz and review probes")
    parser.add_argument("--data-dir", type=Path, help="scratch data dir (default: a temporary one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        settings = small_data_dir(args.data_dir or Path(scratch))
        server, thread = serve_in_thread(settings, _free_port())
        try:
            port = server.config.port
            figures = asyncio.run(
                run_load(f"http://127.0.0.1:{port}", TOKEN, waits=args.waits, wait_s=args.wait_s, probes_s=args.probe_s)
            )
        finally:
            server.should_exit = True
            thread.join(30)
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
