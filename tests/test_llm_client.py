"""LLMClient against a real local HTTP server that the test starts (no patched client).

The server speaks just enough of the OpenAI chat API to script faults: refused connections, a handler
that sleeps past the timeout, 5xx then success, bodies that are not JSON, completions that do not
validate, 4xx answers. Each test checks what medcode raises and how many requests reached the server.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal

import pytest
from pydantic import BaseModel, ValidationInfo, field_validator

from medcode.agent.llm._client import LLMClient, resolve_mode
from medcode.config import Settings, load_settings
from medcode.errors import ConfigError, LLMError, LLMOutputError, LLMUnavailableError

Reply = tuple[int, bytes, str]  # status, body, content type
Responder = Callable[[dict[str, Any]], Reply]


def completion(
    content: str, *, prompt_tokens: int = 11, completion_tokens: int = 5, finish_reason: str = "stop"
) -> Responder:
    def respond(_request: dict[str, Any]) -> Reply:
        body = {
            "id": "chatcmpl-test",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": "test-model",
            "choices": [
                {"index": 0, "finish_reason": finish_reason, "message": {"role": "assistant", "content": content}}
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
        return 200, json.dumps(body).encode(), "application/json"

    return respond


def status(code: int, message: str = "scripted failure") -> Responder:
    def respond(_request: dict[str, Any]) -> Reply:
        return code, json.dumps({"error": {"message": message, "code": code}}).encode(), "application/json"

    return respond


def raw(body: bytes, content_type: str = "application/json") -> Responder:
    return lambda _request: (200, body, content_type)


class ScriptedEndpoint:
    """A threaded HTTP server on 127.0.0.1 answering chat completions from a script of responders."""

    def __init__(self, script: list[Responder], *, sleep_s: float = 0.0, models: list[str] | None = None) -> None:
        self.script = list(script)
        self.sleep_s = sleep_s
        self.models = models or ["test-model"]
        self.requests: list[dict[str, Any]] = []
        self.auth: list[str] = []
        self.wake = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _send(self, code: int, body: bytes, content_type: str) -> None:
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout test)

            def do_GET(self) -> None:
                if self.path.rstrip("/").endswith("/models"):
                    data = [{"id": m, "object": "model", "created": 0, "owned_by": "test"} for m in outer.models]
                    self._send(200, json.dumps({"object": "list", "data": data}).encode(), "application/json")
                else:
                    self._send(404, b"{}", "application/json")

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                request = json.loads(self.rfile.read(length) or b"{}")
                outer.requests.append(request)
                outer.auth.append(self.headers.get("Authorization", ""))
                if outer.sleep_s:
                    outer.wake.wait(outer.sleep_s)
                responder = outer.script.pop(0) if outer.script else status(500, "script exhausted")
                self._send(*responder(request))

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def __enter__(self) -> ScriptedEndpoint:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wake.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


class Colour(BaseModel):
    colour: Literal["red", "green", "blue"]


class AllowedColour(BaseModel):
    colour: str

    @field_validator("colour")
    @classmethod
    def _in_context(cls, value: str, info: ValidationInfo) -> str:
        allowed = (info.context or {}).get("allowed", [])
        if value not in allowed:
            raise ValueError(f"colour must be one of {allowed}")
        return value


MESSAGES = [{"role": "system", "content": "Answer in JSON."}, {"role": "user", "content": "Sky colour?"}]


def settings_for(tmp_path: Path, url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": tmp_path,
        "llm_base_url": url,
        "llm_model": "test-model",
        "llm_timeout_s": 5.0,
        "llm_max_retries": 2,
        "llm_retry_backoff_s": 0.01,
        "llm_max_reasks": 1,
    }
    values.update(overrides)
    return load_settings(**values)


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port nothing listens on: connecting is refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    yield port


def test_success_returns_parsed_raw_text_usage_and_identity(tmp_path: Path) -> None:
    with ScriptedEndpoint([completion('{"colour": "blue"}')]) as endpoint:
        settings = settings_for(tmp_path, endpoint.url, llm_api_key="sk-secret")
        assert "sk-secret" not in repr(settings) and "sk-secret" not in settings.model_dump_json()
        client = LLMClient(settings)
        result = client.complete(MESSAGES, Colour)
    assert endpoint.auth == ["Bearer sk-secret"]  # the secret is still sent to the endpoint
    assert result.parsed == Colour(colour="blue")
    assert result.raw_text == '{"colour": "blue"}'
    assert result.raw_texts == [result.raw_text]
    assert (result.usage.prompt_tokens, result.usage.completion_tokens, result.usage.calls) == (11, 5, 1)
    assert result.usage.transport_retries == 0
    assert result.identity.model == "test-model"
    assert result.identity.endpoint == endpoint.url
    assert result.identity.mode == "json_schema_mode"
    assert "secret" not in result.identity.model_dump_json()
    sent = endpoint.requests[0]
    assert sent["response_format"]["type"] == "json_schema"
    assert sent["response_format"]["json_schema"]["schema"]["properties"]["colour"]["enum"] == ["red", "green", "blue"]
    assert sent["model"] == "test-model" and sent["temperature"] == 0.0


def test_connection_refused_exhausts_retries_and_raises_unavailable(tmp_path: Path, closed_port: int) -> None:
    client = LLMClient(settings_for(tmp_path, f"http://127.0.0.1:{closed_port}/v1", llm_max_retries=2))
    with pytest.raises(LLMUnavailableError) as info:
        client.complete(MESSAGES, Colour)
    assert info.value.attempts == 3
    assert f"127.0.0.1:{closed_port}" in info.value.endpoint
    assert "connection failed" in str(info.value)


def test_timeout_is_retried_then_unavailable(tmp_path: Path) -> None:
    script = [completion('{"colour": "red"}')] * 3
    with ScriptedEndpoint(script, sleep_s=3.0) as endpoint:
        client = LLMClient(settings_for(tmp_path, endpoint.url, llm_timeout_s=0.3, llm_max_retries=1))
        started = time.monotonic()
        with pytest.raises(LLMUnavailableError) as info:
            client.complete(MESSAGES, Colour)
        elapsed = time.monotonic() - started
        assert len(endpoint.requests) == 2
    assert info.value.attempts == 2
    assert "timed out" in str(info.value)
    assert elapsed < 2.5  # two 0.3 s timeouts, not the handler's 3 s sleep


def test_server_error_then_success_is_retried(tmp_path: Path) -> None:
    script = [status(500), status(503, "Loading model"), completion('{"colour": "green"}')]
    with ScriptedEndpoint(script) as endpoint:
        result = LLMClient(settings_for(tmp_path, endpoint.url)).complete(MESSAGES, Colour)
        assert len(endpoint.requests) == 3
    assert result.parsed.colour == "green"
    assert result.usage.transport_retries == 2
    assert result.usage.calls == 1


def test_persistent_5xx_becomes_unavailable(tmp_path: Path) -> None:
    with ScriptedEndpoint([status(502)] * 5) as endpoint:
        with pytest.raises(LLMUnavailableError, match="HTTP 502"):
            LLMClient(settings_for(tmp_path, endpoint.url, llm_max_retries=1)).complete(MESSAGES, Colour)
        assert len(endpoint.requests) == 2


def test_body_that_is_not_json_is_a_transport_fault(tmp_path: Path) -> None:
    script = [raw(b"<html>proxy error</html>"), raw(b'{"truncated": '), completion('{"colour": "red"}')]
    with ScriptedEndpoint(script) as endpoint:
        result = LLMClient(settings_for(tmp_path, endpoint.url)).complete(MESSAGES, Colour)
        assert len(endpoint.requests) == 3
    assert result.parsed.colour == "red"
    assert result.usage.transport_retries == 2


def test_invalid_body_every_time_becomes_unavailable_not_output_error(tmp_path: Path) -> None:
    with ScriptedEndpoint([raw(b"not json at all")] * 5) as endpoint:
        with pytest.raises(LLMUnavailableError):
            LLMClient(settings_for(tmp_path, endpoint.url, llm_max_retries=1)).complete(MESSAGES, Colour)
        assert len(endpoint.requests) == 2


def test_invalid_json_completion_is_reasked_then_output_error(tmp_path: Path) -> None:
    script = [completion("the sky is blue"), completion('{"colour": "purple"}')]
    with ScriptedEndpoint(script) as endpoint:
        client = LLMClient(settings_for(tmp_path, endpoint.url, llm_max_reasks=1))
        with pytest.raises(LLMOutputError) as info:
            client.complete(MESSAGES, Colour)
        assert len(endpoint.requests) == 2
        reask = endpoint.requests[1]["messages"]
    assert info.value.raw_texts == ["the sky is blue", '{"colour": "purple"}']
    assert info.value.attempts == 2
    assert info.value.prompt_tokens == 22 and info.value.completion_tokens == 10
    assert "colour" in str(info.value)
    assert "purple" not in str(info.value)  # error messages never echo model/note text
    assert len(reask) > len(MESSAGES)  # the re-ask carries the failed answer and the error


def test_validation_context_reaches_validators_and_reask_recovers(tmp_path: Path) -> None:
    script = [completion('{"colour": "blue"}'), completion('{"colour": "red"}')]
    with ScriptedEndpoint(script) as endpoint:
        result = LLMClient(settings_for(tmp_path, endpoint.url)).complete(
            MESSAGES, AllowedColour, validation_context={"allowed": ["red"]}
        )
        assert "colour must be one of ['red']" in json.dumps(endpoint.requests[1]["messages"])
    assert result.parsed.colour == "red"
    assert result.raw_texts == ['{"colour": "blue"}', '{"colour": "red"}']
    assert result.usage.calls == 2
    assert result.usage.prompt_tokens == 22


def test_zero_reasks_fails_on_first_invalid_answer(tmp_path: Path) -> None:
    with ScriptedEndpoint([completion('{"colour": "blue"}')] * 3) as endpoint:
        with pytest.raises(LLMOutputError):
            LLMClient(settings_for(tmp_path, endpoint.url)).complete(
                MESSAGES, AllowedColour, validation_context={"allowed": []}, max_reasks=0
            )
        assert len(endpoint.requests) == 1


def test_output_cut_off_at_max_tokens_is_an_output_error(tmp_path: Path) -> None:
    with ScriptedEndpoint([completion('{"colour": "bl', finish_reason="length")] * 3) as endpoint:
        with pytest.raises(LLMOutputError, match="cut off at max_tokens=7") as info:
            LLMClient(settings_for(tmp_path, endpoint.url)).complete(MESSAGES, Colour, max_tokens=7)
        assert endpoint.requests[0]["max_tokens"] == 7
    assert info.value.raw_texts[0] == '{"colour": "bl'


def test_auth_failure_is_a_config_error_without_retries(tmp_path: Path) -> None:
    with ScriptedEndpoint([status(401, "bad key")] * 3) as endpoint:
        with pytest.raises(ConfigError, match="HTTP 401"):
            LLMClient(settings_for(tmp_path, endpoint.url)).complete(MESSAGES, Colour)
        assert len(endpoint.requests) == 1


def test_bad_request_is_an_llm_error_without_retries(tmp_path: Path) -> None:
    with ScriptedEndpoint([status(400, "the request exceeds the available context size")] * 3) as endpoint:
        with pytest.raises(LLMError, match="exceeds the available context") as info:
            LLMClient(settings_for(tmp_path, endpoint.url)).complete(MESSAGES, Colour)
        assert not isinstance(info.value, LLMUnavailableError | LLMOutputError)
        assert len(endpoint.requests) == 1


def test_model_name_is_discovered_when_not_configured(tmp_path: Path) -> None:
    with ScriptedEndpoint([completion('{"colour": "blue"}')], models=["served-model"]) as endpoint:
        client = LLMClient(settings_for(tmp_path, endpoint.url, llm_model=None))
        result = client.complete(MESSAGES, Colour)
        assert endpoint.requests[0]["model"] == "served-model"
    assert result.identity.model == "served-model"


def test_mode_follows_endpoint_and_setting(tmp_path: Path) -> None:
    assert resolve_mode(load_settings(data_dir=tmp_path)).value == "json_schema_mode"
    openai_settings = load_settings(data_dir=tmp_path, llm_base_url="https://api.openai.com/v1")
    assert resolve_mode(openai_settings).value == "tool_call"
    forced = load_settings(data_dir=tmp_path, llm_base_url="https://api.openai.com/v1", llm_mode="json_schema")
    assert resolve_mode(forced).value == "json_schema_mode"


def test_tools_mode_round_trip(tmp_path: Path) -> None:
    def tool_call(_request: dict[str, Any]) -> Reply:
        message = {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "Colour", "arguments": '{"colour": "green"}'},
                }
            ],
        }
        body = {
            "id": "x",
            "object": "chat.completion",
            "created": 0,
            "model": "test-model",
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": message}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7},
        }
        return 200, json.dumps(body).encode(), "application/json"

    with ScriptedEndpoint([tool_call]) as endpoint:
        result = LLMClient(settings_for(tmp_path, endpoint.url, llm_mode="tools")).complete(MESSAGES, Colour)
        assert endpoint.requests[0]["tools"][0]["function"]["name"] == "Colour"
    assert result.parsed.colour == "green"
    assert result.raw_text == '{"colour": "green"}'
    assert result.identity.mode == "tool_call"
