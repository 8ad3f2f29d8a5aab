"""``LLMClient``: structured calls to the embedded llama.cpp server or any OpenAI-compatible endpoint.

Two kinds of retry, kept apart:

- transport retries (tenacity, ``llm_max_retries``, exponential backoff from ``llm_retry_backoff_s``) for
  timeouts, refused or reset connections, 5xx/408/429 answers and bodies that are not a chat completion;
  exhausted -> ``LLMUnavailableError`` (the orchestrator routes the note to a human, ``LLM_UNAVAILABLE``).
  An embedded server that died (or, for the shared one, left for idleness or was replaced by another
  process) is found again or restarted before the next try: a refused connection makes the server
  handle check the server before the retry.
- re-asks (instructor ``max_retries``, ``llm_max_reasks``) when the output does not parse or fails the
  response model's validators, with the validation error sent back to the model;
  exhausted -> ``LLMOutputError`` carrying every attempt's raw text.

Other answers: 401/403/404 -> ``ConfigError`` (key, model name or URL is wrong: every note would fail);
other 4xx (e.g. a prompt longer than the context) -> ``LLMError``.

PHI: instructor logs raw responses at DEBUG and failed validations (with input values) at ERROR, and the
openai client logs request bodies at DEBUG; this module raises those loggers' levels so ``medcode -vv``
never prints note text. Error messages list validation locations and messages, never input values.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Generic, TypeVar
from urllib.parse import urlsplit, urlunsplit

import instructor
import openai
from instructor.core.exceptions import IncompleteOutputException, InstructorRetryException
from instructor.core.hooks import Hooks
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
    wait_none,
)

from medcode.agent.llm._server import EmbeddedLLMServer, LLMServer
from medcode.agent.llm._shared import SharedLLMServer
from medcode.config import Settings
from medcode.errors import ConfigError, LLMError, LLMOutputError, LLMUnavailableError

__all__ = ["LLMClient", "LLMIdentity", "LLMResult", "LLMUsage", "resolve_mode"]

logger = logging.getLogger(__name__)

ModelT = TypeVar("ModelT", bound=BaseModel)

_MODES: dict[str, instructor.Mode] = {
    "json_schema": instructor.Mode.JSON_SCHEMA,
    "tools": instructor.Mode.TOOLS,
    "json": instructor.Mode.JSON,
    "md_json": instructor.Mode.MD_JSON,
}
_TRANSIENT_STATUS = frozenset({408, 429})
_CONFIG_STATUS = frozenset({401, 403, 404})
# Transport retries of the complete() call running in this thread/context (instructor calls _create).
_RETRY_COUNTER: ContextVar[list[int] | None] = ContextVar("medcode_llm_retry_counter", default=None)


def _quiet_phi_loggers() -> None:
    logging.getLogger("instructor").setLevel(logging.CRITICAL)
    if logging.getLogger("openai").getEffectiveLevel() < logging.INFO:
        logging.getLogger("openai").setLevel(logging.INFO)


class LLMIdentity(BaseModel):
    """What answered: goes into the ``versions`` block of every result."""

    model_config = ConfigDict(frozen=True)

    model: str = Field(description="Embedded registry id / GGUF stem, or the model name at the endpoint.")
    endpoint: str = Field(description="'embedded' or the endpoint URL (no credentials).")
    mode: str = Field(description="instructor mode, e.g. 'json_schema_mode'.")
    runtime: str = Field(description="'xllamacpp <version>' for the embedded server, else 'openai-compatible'.")
    weights_sha256: str | None = Field(default=None, description="sha256 of the GGUF (embedded only).")


class LLMUsage(BaseModel):
    """Token and time accounting of one ``complete`` call, summed over re-asks."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_prompt_tokens: int = Field(default=0, description="Prompt tokens served from the server's KV cache.")
    calls: int = Field(default=0, description="Completions received (1 + re-asks).")
    transport_retries: int = 0
    latency_s: float = Field(default=0.0, description="Wall time of the whole call, retries included.")
    prompt_ms: float | None = Field(default=None, description="llama.cpp prompt-processing time, when reported.")
    generation_ms: float | None = Field(default=None, description="llama.cpp generation time, when reported.")


class LLMResult(BaseModel, Generic[ModelT]):
    """A validated answer with its raw text (audit log) and accounting."""

    parsed: ModelT
    raw_text: str = Field(description="Completion text of the accepted attempt (may quote the note: PHI).")
    raw_texts: list[str] = Field(description="Every attempt's completion text in order; the last was accepted.")
    usage: LLMUsage
    identity: LLMIdentity


def resolve_mode(settings: Settings) -> instructor.Mode:
    """The instructor mode: the ``llm_mode`` setting, or for ``auto`` JSON_SCHEMA (llama.cpp, vLLM, Ollama
    enforce it with a grammar) except TOOLS for api.openai.com."""
    if settings.llm_mode != "auto":
        return _MODES[settings.llm_mode]
    host = urlsplit(settings.llm_base_url or "").hostname or ""
    if host == "api.openai.com" or host.endswith(".openai.azure.com"):
        return instructor.Mode.TOOLS
    return instructor.Mode.JSON_SCHEMA


def _public_url(url: str) -> str:
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code >= 500 or exc.status_code in _TRANSIENT_STATUS
    return isinstance(
        exc,
        openai.APIConnectionError  # includes APITimeoutError
        | openai.APIResponseValidationError
        | json.JSONDecodeError
        | _MalformedCompletion
        | _ServerReplaced,
    )


class _MalformedCompletion(Exception):
    """The endpoint answered 200 with something that is not a chat completion."""


class _ServerReplaced(Exception):
    """The embedded server's port answered 401 to its own key: another server took the port."""


def _describe(exc: BaseException) -> str:
    if isinstance(exc, openai.APIStatusError):
        return f"HTTP {exc.status_code}"
    if isinstance(exc, openai.APITimeoutError):
        return "timed out"
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__
        return f"connection failed ({type(cause).__name__ if cause else 'no detail'})"
    return type(exc).__name__


def _completion_text(response: Any) -> str:
    try:
        message = response.choices[0].message
    except (AttributeError, IndexError, TypeError):
        return ""
    if message.content:
        return str(message.content)
    calls = getattr(message, "tool_calls", None) or []
    return "\n".join(str(call.function.arguments) for call in calls if getattr(call, "function", None))


def _validation_summary(exc: BaseException) -> str:
    """A PHI-free summary: field locations and messages, never the input values."""
    if isinstance(exc, ValidationError):
        items = [
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}"
            for err in exc.errors(include_input=False, include_url=False)
        ]
        return "; ".join(items[:8]) + (f" (+{len(items) - 8} more)" if len(items) > 8 else "")
    if isinstance(exc, json.JSONDecodeError):
        return f"not valid JSON ({exc.msg} at char {exc.pos})"
    return type(exc).__name__


class LLMClient:
    """Structured completions from the configured endpoint.

    With ``llm_base_url`` unset it uses the embedded server it is given, or else the embedded model the
    settings select: with ``llm_keep_alive_s > 0`` through the data directory's shared server
    (``SharedLLMServer``: adopted if one runs for the same options, started in the background otherwise,
    left running on ``close``); with ``llm_keep_alive_s = 0`` through a private server of its own that
    ``close`` stops. With ``llm_base_url`` set, the OpenAI-compatible endpoint there with ``llm_model`` (or
    the endpoint's first listed model) and ``llm_api_key``. Thread-safe; cheap to create. Raises
    ``ModelWeightsError``/``ConfigError`` when the embedded model cannot be found or verified.
    """

    def __init__(self, settings: Settings, *, server: LLMServer | None = None) -> None:
        _quiet_phi_loggers()
        self._settings = settings
        self._mode = resolve_mode(settings)
        self._lock = threading.Lock()
        self._openai: openai.OpenAI | None = None
        self._openai_target: tuple[str, str] | None = None
        self._remote_model: str | None = settings.llm_model
        if settings.llm_base_url is None:
            self._owns_server = server is None
            self._server: LLMServer | None = server or _embedded_server(settings)
        else:
            if server is not None:
                raise ConfigError("llm_base_url is set: an embedded server cannot be used at the same time")
            self._owns_server = False
            self._server = None
        self._instructor = instructor.Instructor(
            client=None,
            create=instructor.patch(create=self._create, mode=self._mode),
            mode=self._mode,
        )

    # -- identity ------------------------------------------------------------------------------------------

    @property
    def server(self) -> LLMServer | None:
        """The embedded server (private or shared), or None for a remote endpoint."""
        return self._server

    @property
    def identity(self) -> LLMIdentity:
        """Model and endpoint; for a remote endpoint without ``llm_model`` this asks ``/models`` once."""
        if self._server is not None:
            return LLMIdentity(
                model=self._server.model.model_id,
                endpoint="embedded",
                mode=self._mode.value,
                runtime=self._server.runtime,
                weights_sha256=self._server.model.sha256,
            )
        assert self._settings.llm_base_url is not None
        return LLMIdentity(
            model=self._model_name(),
            endpoint=_public_url(self._settings.llm_base_url),
            mode=self._mode.value,
            runtime="openai-compatible",
        )

    # -- calls ---------------------------------------------------------------------------------------------

    def complete(
        self,
        messages: Sequence[Mapping[str, Any]],
        response_model: type[ModelT],
        *,
        validation_context: Mapping[str, Any] | None = None,
        max_reasks: int | None = None,
        max_tokens: int | None = None,
        temperature: float = 0.0,
        seed: int | None = 0,
    ) -> LLMResult[ModelT]:
        """Ask for ``response_model``; validators see ``validation_context`` (pydantic ``info.context``).

        ``messages`` are OpenAI chat messages (keep the system prompt identical across notes so the
        server's prompt cache reuses it). Raises ``LLMUnavailableError`` after ``llm_max_retries``
        transport retries, ``LLMOutputError`` after ``max_reasks`` (default ``llm_max_reasks``) failed
        re-asks or when the output hits ``max_tokens``, ``ConfigError`` for 401/403/404 and ``LLMError``
        for other client errors.
        """
        reasks = self._settings.llm_max_reasks if max_reasks is None else max_reasks
        responses: list[_Attempt] = []
        retries = [0]
        hooks = Hooks()
        hooks.on("completion:response", lambda response: responses.append(_Attempt.of(response)))
        kwargs: dict[str, Any] = {
            "model": self._model_name(),
            "max_tokens": max_tokens or self._settings.llm_max_output_tokens,
            "temperature": temperature,
        }
        if seed is not None:
            kwargs["seed"] = seed
        started = time.monotonic()
        token = _RETRY_COUNTER.set(retries)
        try:
            parsed, _completion = self._instructor.create_with_completion(
                messages=[dict(m) for m in messages],  # type: ignore[misc]
                response_model=response_model,
                max_retries=reasks,
                context=dict(validation_context) if validation_context is not None else None,
                hooks=hooks,
                **kwargs,
            )
        except InstructorRetryException as exc:
            cause = exc.__cause__
            if isinstance(cause, LLMError | ConfigError):
                raise cause from None
            raise self._output_error(
                f"model output failed validation after {len(responses)} attempt(s): "
                f"{_validation_summary(cause) if cause else type(exc).__name__}",
                responses,
                retries[0],
                started,
            ) from None
        except IncompleteOutputException:
            raise self._output_error(
                f"model output was cut off at max_tokens={kwargs['max_tokens']} after {len(responses)} attempt(s)",
                responses,
                retries[0],
                started,
            ) from None
        finally:
            _RETRY_COUNTER.reset(token)
        answer = _as_declared(parsed, response_model)
        raw_texts = [r.text for r in responses]
        return LLMResult[response_model](  # type: ignore[valid-type]
            parsed=answer,
            raw_text=raw_texts[-1] if raw_texts else "",
            raw_texts=raw_texts,
            usage=self._usage(responses, retries[0], started),
            identity=self.identity,
        )

    def close(self) -> None:
        """Close the HTTP connections and let go of the embedded server this client chose: a private one
        stops, the shared keep-alive one keeps running for the next process. A server passed in is left alone."""
        with self._lock:
            if self._openai is not None:
                self._openai.close()
            self._openai = None
            self._openai_target = None
        if self._owns_server and self._server is not None:
            self._server.close()

    def __enter__(self) -> LLMClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- internals -----------------------------------------------------------------------------------------

    @property
    def _endpoint_label(self) -> str:
        if self._server is not None:
            return self._server.endpoint_label
        return _public_url(self._settings.llm_base_url or "")

    def _client(self) -> openai.OpenAI:
        """The OpenAI client for the current base URL and key (the embedded server may have moved or restarted)."""
        if self._server is not None:
            url = self._server.ensure_running() + "/v1"
            key = self._server.api_key
        else:
            url = (self._settings.llm_base_url or "").rstrip("/")
            secret = self._settings.llm_api_key
            key = secret.get_secret_value() if secret is not None else "not-needed"
        with self._lock:
            if self._openai is None or self._openai_target != (url, key):
                if self._openai is not None:
                    self._openai.close()
                timeout = self._settings.llm_timeout_s
                self._openai = openai.OpenAI(
                    base_url=url,
                    api_key=key or "not-needed",
                    max_retries=0,  # tenacity below owns transport retries
                    timeout=openai.Timeout(timeout, connect=min(timeout, 10.0)),
                    # the embedded server is on 127.0.0.1: never route prompts (PHI) through a proxy from the environment
                    http_client=openai.DefaultHttpxClient(trust_env=False) if self._server is not None else None,
                )
                self._openai_target = (url, key)
            return self._openai

    def _retrying(self) -> Retrying:
        backoff = self._settings.llm_retry_backoff_s

        def _note(state: RetryCallState) -> None:
            counter = _RETRY_COUNTER.get()
            if counter is not None:
                counter[0] += 1
            exc = state.outcome.exception() if state.outcome else None
            logger.warning(
                "LLM call to %s failed (%s); retry %d of %d",
                self._endpoint_label,
                _describe(exc) if exc else "?",
                state.attempt_number,
                self._settings.llm_max_retries,
            )

        return Retrying(
            stop=stop_after_attempt(self._settings.llm_max_retries + 1),
            wait=wait_exponential(multiplier=backoff, min=backoff, max=30.0) if backoff > 0 else wait_none(),
            retry=retry_if_exception(_is_transient),
            before_sleep=_note,
            reraise=True,
        )

    def _call_once(self, kwargs: dict[str, Any]) -> Any:
        try:
            response = self._client().chat.completions.create(**kwargs)
        except openai.APIConnectionError:
            if self._server is not None:
                self._server.connection_failed()  # the retry finds the server again or restarts it
            raise
        except openai.AuthenticationError:
            if self._server is not None:
                self._server.connection_failed()
                raise _ServerReplaced("the embedded server's port answered 401 to its key") from None
            raise
        if not getattr(response, "choices", None):
            raise _MalformedCompletion("the endpoint answered without choices")
        return response

    def _create(self, **kwargs: Any) -> Any:
        """One chat completion with transport retries; what instructor calls for every (re-)ask."""
        attempts = 0
        try:
            for attempt in self._retrying():
                with attempt:
                    attempts += 1
                    return self._call_once(kwargs)
        except openai.APIStatusError as exc:
            if exc.status_code in _CONFIG_STATUS:
                raise ConfigError(
                    f"LLM endpoint {self._endpoint_label} answered HTTP {exc.status_code} for model "
                    f"{kwargs.get('model')!r}: check llm_base_url, llm_model and llm_api_key"
                ) from None
            if not _is_transient(exc):
                raise LLMError(
                    f"LLM endpoint {self._endpoint_label} rejected the request: HTTP {exc.status_code} "
                    f"{_status_detail(exc)}"
                ) from None
            raise self._unavailable(exc, attempts) from exc
        except LLMUnavailableError:
            raise
        except Exception as exc:
            if _is_transient(exc):
                raise self._unavailable(exc, attempts) from exc
            raise
        raise AssertionError("unreachable: tenacity either returns or raises")

    def _unavailable(self, exc: BaseException, attempts: int) -> LLMUnavailableError:
        return LLMUnavailableError(
            f"LLM endpoint {self._endpoint_label} unavailable after {attempts} attempt(s): {_describe(exc)}",
            endpoint=self._endpoint_label,
            attempts=attempts,
        )

    def _model_name(self) -> str:
        if self._server is not None:
            return self._server.model.model_id
        if self._remote_model is None:
            self._remote_model = self._discover_model()
        return self._remote_model

    def _discover_model(self) -> str:
        """The first model the endpoint lists (for servers that host one model, e.g. llama.cpp)."""
        try:
            for attempt in self._retrying():
                with attempt:
                    listed = self._client().models.list()
                    ids = [m.id for m in listed.data]
        except openai.APIStatusError as exc:
            if not _is_transient(exc):
                raise ConfigError(
                    f"llm_model is not set and {self._endpoint_label} cannot list its models "
                    f"(HTTP {exc.status_code}); set MEDCODE_LLM_MODEL"
                ) from None
            raise self._unavailable(exc, self._settings.llm_max_retries + 1) from exc
        except Exception as exc:
            if _is_transient(exc):
                raise self._unavailable(exc, self._settings.llm_max_retries + 1) from exc
            raise
        if not ids:
            raise ConfigError(f"llm_model is not set and {self._endpoint_label} lists no models; set MEDCODE_LLM_MODEL")
        return ids[0]

    def _output_error(self, message: str, responses: list[_Attempt], retries: int, started: float) -> LLMOutputError:
        usage = self._usage(responses, retries, started)
        return LLMOutputError(
            message,
            raw_texts=[r.text for r in responses],
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
        )

    def _usage(self, responses: list[_Attempt], retries: int, started: float) -> LLMUsage:
        usage = LLMUsage(
            prompt_tokens=sum(r.prompt_tokens for r in responses),
            completion_tokens=sum(r.completion_tokens for r in responses),
            cached_prompt_tokens=sum(r.cached_tokens for r in responses),
            calls=len(responses),
            transport_retries=retries,
            latency_s=time.monotonic() - started,
        )
        timed = [r for r in responses if r.prompt_ms is not None]
        if timed:
            usage.prompt_ms = sum(r.prompt_ms or 0.0 for r in timed)
            usage.generation_ms = sum(r.generation_ms or 0.0 for r in timed)
        return usage


@dataclass(frozen=True)
class _Attempt:
    """What one completion said and cost, copied when it arrives (instructor later rewrites
    ``response.usage`` into a running total)."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    prompt_ms: float | None
    generation_ms: float | None

    @classmethod
    def of(cls, response: Any) -> _Attempt:
        u = getattr(response, "usage", None)
        details = getattr(u, "prompt_tokens_details", None)
        timings = (getattr(response, "model_extra", None) or {}).get("timings")
        timings = timings if isinstance(timings, dict) else {}
        cached = getattr(details, "cached_tokens", None) or timings.get("cache_n") or 0
        return cls(
            text=_completion_text(response),
            prompt_tokens=int(getattr(u, "prompt_tokens", 0) or 0),
            completion_tokens=int(getattr(u, "completion_tokens", 0) or 0),
            cached_tokens=int(cached),
            prompt_ms=float(timings["prompt_ms"]) if "prompt_ms" in timings else None,
            generation_ms=float(timings["predicted_ms"]) if "predicted_ms" in timings else None,
        )


def _as_declared(parsed: BaseModel, response_model: type[ModelT]) -> ModelT:
    """The validated answer as an instance of ``response_model`` itself.

    instructor returns an instance of a subclass it derives (with the completion pinned on it); copy the
    already-validated values into the declared class, without re-running validators.
    """
    fields = {k: v for k, v in parsed.__dict__.items() if k in response_model.model_fields}
    clean = response_model.model_construct(_fields_set=set(parsed.model_fields_set), **fields)
    if parsed.__pydantic_extra__ is not None:
        object.__setattr__(clean, "__pydantic_extra__", dict(parsed.__pydantic_extra__))
    private = parsed.__pydantic_private__
    if private:
        kept = {k: v for k, v in private.items() if k not in ("_raw_response", "_total_usage")}
        object.__setattr__(clean, "__pydantic_private__", kept)
    return clean


def _status_detail(exc: openai.APIStatusError) -> str:
    """The server's own error message (llama.cpp and OpenAI do not echo the prompt), shortened."""
    body = exc.body
    message: object = None
    if isinstance(body, dict):
        error = body.get("error")
        message = error.get("message") if isinstance(error, dict) else body.get("message")
    return f"({str(message)[:200]})" if message else ""


def _embedded_server(settings: Settings) -> LLMServer:
    """The shared keep-alive server handle, or with ``llm_keep_alive_s = 0`` a private server."""
    if settings.llm_keep_alive_s > 0:
        return SharedLLMServer.from_settings(settings)
    return EmbeddedLLMServer.from_settings(settings)
