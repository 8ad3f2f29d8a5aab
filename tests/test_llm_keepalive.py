"""The shared keep-alive LLM server, with the real SmolLM2-135M model and real processes (no mocks).

Every test has its own data directory and stops its server at the end (``keepalive_settings``); the
session fixture in ``conftest.py`` stops any shared server left in a test data directory. Processes that
must be separate (reuse by a later command, concurrent starters, a process that exits) are subprocesses;
``medcode llm status|stop`` run in process through ``medcode.cli.main``, the same code.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest
from pydantic import BaseModel

from medcode.agent import Runtime
from medcode.agent.llm import (
    EmbeddedLLMServer,
    LLMClient,
    SharedLLMServer,
    ensure_model,
    shared_server_status,
    stop_shared_server,
)
from medcode.cli import main
from medcode.config import Settings, load_settings
from medcode.errors import LLMUnavailableError

pytestmark = pytest.mark.slow

_SMOL = {"MEDCODE_LLM_MODEL": "smollm2-135m", "MEDCODE_LLM_THREADS": "1", "MEDCODE_LLM_CONTEXT": "1024"}
_MESSAGES = [{"role": "user", "content": "Which side is 'pain in the left knee'?"}]


class Side(BaseModel):
    side: Literal["left", "right", "bilateral", "unspecified"]


@pytest.fixture
def keepalive_settings(tmp_path: Path) -> Iterator[Settings]:
    """A fresh data dir for SmolLM2, one thread; its shared server is stopped after the test."""
    settings = load_settings(
        data_dir=tmp_path / "data",
        llm_model="smollm2-135m",
        llm_threads=1,
        llm_context=1024,
        llm_max_output_tokens=64,
        llm_start_timeout_s=120,
        llm_retry_backoff_s=0.2,
    )
    yield settings
    stop_shared_server(settings.data_dir)


def _env(settings: Settings, **extra: str) -> dict[str, str]:
    return {**os.environ, **_SMOL, "MEDCODE_DATA_DIR": str(settings.data_dir), **extra}


def _run_cli(settings: Settings, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``medcode ARGS`` in a separate process."""
    return subprocess.run(
        [sys.executable, "-m", "medcode.cli", *args],
        env=_env(settings, **env),
        capture_output=True,
        text=True,
        timeout=180,
    )


_CLIENT_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from typing import Literal
    from pydantic import BaseModel
    from medcode.agent.llm import LLMClient
    from medcode.config import load_settings

    class Side(BaseModel):
        side: Literal["left", "right", "bilateral", "unspecified"]

    with LLMClient(load_settings(llm_max_output_tokens=64)) as client:
        result = client.complete([{"role": "user", "content": "Side of 'left ear pain'?"}], Side, max_reasks=0)
        server = client.server
        print(json.dumps({"pid": server.pid, "side": result.parsed.side, "kind": type(server).__name__}))
    """
)

_STARTER_SCRIPT = textwrap.dedent(
    """
    import json
    from medcode.agent.llm import SharedLLMServer
    from medcode.config import load_settings

    server = SharedLLMServer.from_settings(load_settings())
    url = server.ensure_running()
    print(json.dumps({"pid": server.pid, "url": url, "started_here": server.started_here}))
    server.close()
    """
)


def _run_python(settings: Settings, script: str, **env: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", script], env=_env(settings, **env), capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stderr[-2000:]
    answer: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return answer


def _alive(pid: int) -> bool:
    """Whether pid runs (a zombie, which this container's init may leave unreaped, counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return True


def _wait_gone(pid: int, timeout_s: float) -> float:
    """Seconds until pid is gone; fails the test after timeout_s."""
    started = time.monotonic()
    while _alive(pid):
        if time.monotonic() - started > timeout_s:
            pytest.fail(f"pid {pid} still running after {timeout_s} s")
        time.sleep(0.1)
    return time.monotonic() - started


def _servers_in(data_dir: Path) -> list[int]:
    """Pids of live llama.cpp server processes working in this data dir (their cwd is <data_dir>/llm)."""
    found = []
    target = (data_dir / "llm").resolve()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ours = Path(os.readlink(entry / "cwd")) == target and b"_serve.py" in (entry / "cmdline").read_bytes()
            if ours and _alive(int(entry.name)):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def _state(settings: Settings) -> dict[str, Any]:
    state: dict[str, Any] = json.loads((settings.data_dir / "llm" / "server.json").read_text())
    return state


needs_proc = pytest.mark.skipif(not Path("/proc/self/cwd").exists(), reason="counts server processes through /proc")


def test_a_later_process_reuses_the_server_an_earlier_command_started(
    keepalive_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _run_cli(keepalive_settings, "llm", "start")
    assert first.returncode == 0, first.stderr
    assert "started" in first.stderr
    state = _state(keepalive_settings)
    assert _alive(state["pid"])  # it outlived the command that started it
    second = _run_python(keepalive_settings, _CLIENT_SCRIPT)
    assert second == {"pid": state["pid"], "side": second["side"], "kind": "SharedLLMServer"}
    assert _state(keepalive_settings)["pid"] == state["pid"]
    for key, value in _SMOL.items():
        monkeypatch.setenv(key, value)
    assert main(["--data-dir", str(keepalive_settings.data_dir), "llm", "start"]) == 0
    assert _state(keepalive_settings)["pid"] == state["pid"]
    # in process: an LLMClient of this process adopts it too
    with LLMClient(keepalive_settings) as client:
        assert client.complete(_MESSAGES, Side, max_reasks=0).parsed.side
        assert client.server is not None and client.server.pid == state["pid"]


def test_the_state_file_and_the_key_stay_private(keepalive_settings: Settings) -> None:
    server = SharedLLMServer.from_settings(keepalive_settings)
    url = server.ensure_running()
    llm_dir = keepalive_settings.data_dir / "llm"
    assert stat.S_IMODE((llm_dir / "server.json").stat().st_mode) == 0o600
    assert stat.S_IMODE(llm_dir.stat().st_mode) == 0o700
    state = _state(keepalive_settings)
    assert state["api_key"] == server.api_key and len(server.api_key) >= 40
    assert state["base_url"] == url and url.startswith("http://127.0.0.1:")
    assert httpx.get(f"{url}/health", timeout=5).status_code == 200
    for path in ("/v1/models", "/metrics", "/props", "/slots"):
        assert httpx.get(f"{url}{path}", timeout=5).status_code == 401, path
    auth = {"Authorization": f"Bearer {server.api_key}"}
    assert httpx.get(f"{url}/v1/models", headers=auth, timeout=5).status_code == 200
    assert httpx.get(f"{url}/slots", headers=auth, timeout=5).status_code == 501  # prompt text stays unexposed
    assert server.api_key.encode() not in Path(f"/proc/{server.pid}/cmdline").read_bytes()
    status = shared_server_status(keepalive_settings.data_dir).model_dump_json()
    assert server.api_key not in status
    server.close()


def test_llm_stop_stops_it_and_status_says_so(keepalive_settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run_cli(keepalive_settings, "llm", "start").returncode == 0
    pid, url = _state(keepalive_settings)["pid"], _state(keepalive_settings)["base_url"]
    base = ["--data-dir", str(keepalive_settings.data_dir), "llm"]
    capsys.readouterr()
    assert main([*base, "status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["running"] is True and status["pid"] == pid and status["model_id"] == "smollm2-135m"
    assert status["keep_alive_s"] == 600 and 0 <= status["idle_s"] < 60 and status["busy"] is False
    assert status["log_path"].endswith("llm-server.log") and "api_key" not in status
    assert main([*base, "stop"]) == 0
    assert f"stopped the shared LLM server (pid {pid}" in capsys.readouterr().out
    assert not _alive(pid)
    assert not (keepalive_settings.data_dir / "llm" / "server.json").exists()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/health", timeout=5)
    assert main([*base, "status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["running"] is False
    assert main([*base, "stop"]) == 0  # nothing running is not an error
    assert "no shared LLM server was running" in capsys.readouterr().out


def test_a_killed_server_is_restarted_on_the_next_call(
    keepalive_settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run_cli(keepalive_settings, "llm", "start").returncode == 0  # started by another process
    with LLMClient(keepalive_settings) as client:
        client.complete(_MESSAGES, Side, max_reasks=0)
        server = client.server
        assert isinstance(server, SharedLLMServer)
        old = server.pid
        assert old is not None
        os.kill(old, signal.SIGKILL)
        result = client.complete(_MESSAGES, Side, max_reasks=0)  # no error: found dead, restarted once
        assert result.parsed.side
        assert server.pid != old and server.restarts == 1
        assert _state(keepalive_settings)["pid"] == server.pid and _alive(server.pid)
        # killed again, and this time the request goes out before the pid is seen dead: connection refused
        newer = server.pid
        os.kill(newer, signal.SIGKILL)
        assert client.complete(_MESSAGES, Side, max_reasks=0).parsed.side
        assert server.pid not in (old, newer) and server.restarts == 2
    # a crash between commands: status says so, the next command starts a new server
    pid = _state(keepalive_settings)["pid"]
    os.kill(pid, signal.SIGKILL)
    _wait_gone(pid, 10)
    capsys.readouterr()
    assert main(["--data-dir", str(keepalive_settings.data_dir), "llm", "status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["running"] is False and status["pid"] == pid and "gone" in status["problem"]
    later = SharedLLMServer.from_settings(keepalive_settings)
    later.ensure_running()
    assert later.pid not in (pid, None) and later.restarts == 0  # a new handle: a fresh start, not a restart


def test_an_idle_server_exits_after_its_keep_alive_but_not_while_used(keepalive_settings: Settings) -> None:
    settings = keepalive_settings.model_copy(update={"llm_keep_alive_s": 2.0})
    with LLMClient(settings) as client:
        for _ in range(4):  # 4 s of use, one request a second: longer than the keep-alive, never idle for it
            client.complete(_MESSAGES, Side, max_reasks=0)
            time.sleep(1.0)
        assert client.server is not None
        pid = client.server.pid
        assert pid is not None and _alive(pid)
    idle_exit = _wait_gone(pid, timeout_s=20)
    assert 0.5 < idle_exit < 10.0  # about the keep-alive after the last use (about 1 s ago)
    assert not (settings.data_dir / "llm" / "server.json").exists()
    log = (settings.data_dir / "logs" / "llm-server.log").read_text()
    assert re.search(r"exiting: idle for \d+ s \(keep-alive 2 s\)", log)


def test_the_latest_keep_alive_wins(keepalive_settings: Settings) -> None:
    SharedLLMServer.from_settings(keepalive_settings).ensure_running()
    pid = _state(keepalive_settings)["pid"]
    assert _state(keepalive_settings)["keep_alive_s"] == 600
    shorter = keepalive_settings.model_copy(update={"llm_keep_alive_s": 2.0})
    with LLMClient(shorter) as client:
        client.complete(_MESSAGES, Side, max_reasks=0)
        assert client.server is not None and client.server.pid == pid  # adopted, not restarted
    assert _state(keepalive_settings)["keep_alive_s"] == 2.0
    _wait_gone(pid, timeout_s=15)


def test_keep_alive_0_runs_a_private_server_that_ends_with_the_process(keepalive_settings: Settings) -> None:
    answer = _run_python(keepalive_settings, _CLIENT_SCRIPT, MEDCODE_LLM_KEEP_ALIVE_S="0")
    assert answer["kind"] == "EmbeddedLLMServer"
    _wait_gone(answer["pid"], timeout_s=10)
    assert not (keepalive_settings.data_dir / "llm" / "server.json").exists()
    runtime = Runtime(keepalive_settings.model_copy(update={"llm_keep_alive_s": 0.0}))
    server = runtime.llm().server
    assert isinstance(server, EmbeddedLLMServer)
    server.ensure_running()
    pid = server.pid
    assert pid is not None
    runtime.close()
    assert not _alive(pid)


def test_runtime_close_leaves_the_shared_server_running(keepalive_settings: Settings) -> None:
    runtime = Runtime(keepalive_settings)
    server = runtime.llm().server
    assert isinstance(server, SharedLLMServer)
    server.ensure_running()
    pid = server.pid
    assert pid is not None
    runtime.close()
    assert _alive(pid)
    status = shared_server_status(keepalive_settings.data_dir)
    assert status.running and status.pid == pid


@needs_proc
def test_concurrent_starters_get_one_server(keepalive_settings: Settings) -> None:
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _STARTER_SCRIPT], env=_env(keepalive_settings), stdout=subprocess.PIPE, text=True
        )
        for _ in range(3)
    ]
    answers = []
    for proc in procs:
        out, _ = proc.communicate(timeout=180)
        assert proc.returncode == 0
        answers.append(json.loads(out.strip().splitlines()[-1]))
    assert len({a["pid"] for a in answers}) == 1
    assert len({a["url"] for a in answers}) == 1
    assert sorted(a["started_here"] for a in answers) == [0, 0, 1]
    assert _servers_in(keepalive_settings.data_dir) == [answers[0]["pid"]]


@needs_proc
def test_a_server_for_other_options_is_replaced(keepalive_settings: Settings) -> None:
    first = SharedLLMServer.from_settings(keepalive_settings)
    first.ensure_running()
    old = first.pid
    assert old is not None
    other = SharedLLMServer.from_settings(keepalive_settings.model_copy(update={"llm_context": 2048}))
    other.ensure_running()
    assert other.pid != old and not _alive(old)
    assert _state(keepalive_settings)["options"]["context"] == 2048
    assert _servers_in(keepalive_settings.data_dir) == [other.pid]
    # the first handle notices on its next use and replaces it back (one configuration per data dir)
    first.ensure_running()
    assert first.pid not in (old, other.pid)
    assert _servers_in(keepalive_settings.data_dir) == [first.pid]


def test_a_server_nobody_can_find_exits(keepalive_settings: Settings) -> None:
    log = keepalive_settings.data_dir / "logs" / "llm-server.log"
    server = SharedLLMServer.from_settings(keepalive_settings)
    server.ensure_running()
    pid = server.pid
    assert pid is not None
    time.sleep(1.5)  # the watchdog (1 s ticks at this keep-alive) has seen its state file
    (keepalive_settings.data_dir / "llm" / "server.json").unlink()
    _wait_gone(pid, timeout_s=10)
    assert "exiting: the state file no longer names this server" in log.read_text()
    server.ensure_running()  # a new one; then the whole llm directory goes, as with a deleted data dir
    pid = server.pid
    assert pid is not None
    shutil.rmtree(keepalive_settings.data_dir / "llm")
    _wait_gone(pid, timeout_s=10)
    assert "exiting: its data directory is gone" in log.read_text()


def test_medcode_code_leaves_the_server_for_the_next_medcode_code(
    small_index_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    smol = {"MEDCODE_LLM_MODEL": "smollm2-135m", "MEDCODE_LLM_THREADS": "1"}  # as small_index_settings
    for key, value in smol.items():
        monkeypatch.setenv(key, value)
    data_dir = small_index_settings.data_dir
    stop_shared_server(data_dir)  # cold, whatever earlier tests left running
    note = tmp_path / "note.txt"
    note.write_text("ASSESSMENT:\n1. Type 2 diabetes mellitus without complications.\n2. Essential hypertension.\n")
    command = ["--data-dir", str(data_dir), "code", str(note), "--no-record", "--json", "--proposer", "llm"]
    assert main(command) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["usage"]["llm_seconds"] > 0
    state_file = data_dir / "llm" / "server.json"
    pid = json.loads(state_file.read_text())["pid"]
    assert _alive(pid)  # the command ended, its server did not
    later = subprocess.run(
        [sys.executable, "-m", "medcode.cli", *command], env={**os.environ, **smol}, capture_output=True, text=True
    )
    assert later.returncode == 0, later.stderr[-2000:]
    assert json.loads(later.stdout)["usage"]["llm_seconds"] > 0
    assert json.loads(state_file.read_text())["pid"] == pid  # reused, not restarted


def test_a_long_lived_client_outlives_many_stopped_servers_but_not_a_crash_loop(keepalive_settings: Settings) -> None:
    with LLMClient(keepalive_settings) as client:
        for _ in range(4):  # more than max_restarts (3): idle exits and stops are not crashes
            client.complete(_MESSAGES, Side, max_reasks=0)
            stop_shared_server(keepalive_settings.data_dir)
        assert client.complete(_MESSAGES, Side, max_reasks=0).parsed.side
        assert isinstance(client.server, SharedLLMServer) and client.server.restarts == 4
    server = SharedLLMServer(
        ensure_model(keepalive_settings),
        data_dir=keepalive_settings.data_dir,
        keep_alive_s=600,
        threads=1,
        context=1024,
        max_restarts=1,
    )
    server.ensure_running()
    for crash in range(2):
        pid = server.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        _wait_gone(pid, 10)
        if crash == 0:
            server.ensure_running()  # one restart is allowed
    with pytest.raises(LLMUnavailableError, match="died 2 times in a row"):
        server.ensure_running()
