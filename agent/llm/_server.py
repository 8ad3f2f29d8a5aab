"""The embedded LLM server: llama.cpp's OpenAI-compatible HTTP server (via xllamacpp) in a child process.

``EmbeddedLLMServer`` starts ``agent/llm/_serve.py`` on 127.0.0.1 with an OS-chosen free port and a fresh
random API key, waits until the model has loaded and ``/health`` answers 200, and restarts the child if it
dies (up to ``max_restarts`` times). A child process rather than an in-process server keeps a llama.cpp
abort from killing the batch, keeps llama.cpp's logs out of the terminal (they go to
``<data_dir>/logs/llm-server.log``) and lets medcode stop it cleanly. The child also exits by itself when
its stdin closes, so it never outlives medcode: this is the server of ``llm_keep_alive_s = 0``. The shared
keep-alive server that outlives one command is ``SharedLLMServer`` (``_shared.py``); both satisfy
``LLMServer``, which is all ``LLMClient`` needs.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import select
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Protocol

import httpx

from medcode.agent.llm._weights import LocalModel, ensure_model
from medcode.config import Settings
from medcode.errors import LLMUnavailableError

__all__ = ["EmbeddedLLMServer", "LLMServer"]

logger = logging.getLogger(__name__)

_SERVE_SCRIPT = Path(__file__).with_name("_serve.py")
_LOG_ROTATE_BYTES = 5 * 1024 * 1024


class LLMServer(Protocol):
    """What ``LLMClient`` needs from an embedded server, private or shared."""

    @property
    def model(self) -> LocalModel: ...

    @property
    def endpoint_label(self) -> str: ...

    @property
    def runtime(self) -> str: ...

    @property
    def pid(self) -> int | None: ...

    @property
    def running(self) -> bool: ...

    @property
    def api_key(self) -> str:
        """The key of the server ``ensure_running`` last returned."""
        ...

    def ensure_running(self) -> str:
        """The base URL (``http://127.0.0.1:PORT``) of a running server; starts one if needed."""
        ...

    def connection_failed(self) -> None:
        """A request could not connect: check the server again (and restart it) on the next ``ensure_running``."""
        ...

    def close(self) -> None:
        """This process is done with the server (a private one stops; a shared one keeps running)."""
        ...

    def stop(self) -> None:
        """Stop the server now."""
        ...


def xllamacpp_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("xllamacpp")
    except PackageNotFoundError:
        return "not installed"


def new_api_key() -> str:
    """A random key for one server (256 bits)."""
    return secrets.token_urlsafe(32)


def open_server_log(log_path: Path | None, model: LocalModel, what: str) -> IO[bytes]:
    """Open the server log for appending (owner-only, rotated at 5 MiB) with a header line."""
    if log_path is None:
        return open(os.devnull, "ab")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        if log_path.stat().st_size > _LOG_ROTATE_BYTES:
            os.replace(log_path, log_path.with_suffix(".log.1"))
    except FileNotFoundError:
        pass
    fh = os.fdopen(os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600), "ab")
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    fh.write(f"\n=== {stamp} medcode starts {what} {model.model_id} ({model.path}) ===\n".encode())
    fh.flush()
    return fh


def log_hint(log_path: Path | None) -> str:
    """Where the server log is, with its last lines (llama.cpp's load errors; never prompts)."""
    if log_path is None:
        return "no server log kept"
    try:
        with log_path.open("rb") as fh:
            fh.seek(max(log_path.stat().st_size - 1500, 0))
            tail = fh.read().decode("utf-8", "replace").strip().splitlines()[-6:]
    except OSError:
        return f"see {log_path}"
    return f"see {log_path}; last lines: " + " | ".join(line.strip() for line in tail)


def server_config(
    model: LocalModel, *, threads: int, context: int, parallel: int, poll: int | None, api_key: str, mode: str
) -> dict[str, object]:
    """The child server's configuration (``_serve.py`` reads it): the model, its threads and slots, any free port."""
    return {
        "gguf": str(model.path),
        "alias": model.model_id,
        "threads": threads,
        "context": context,
        "parallel": parallel,
        "port": 0,
        "poll": poll,
        "api_key": api_key,
        "mode": mode,
    }


def spawn_child(
    config: dict[str, Any], *, log_fh: IO[bytes], env: dict[str, str] | None, detached: bool, cwd: Path | None = None
) -> subprocess.Popen[bytes]:
    """Start ``_serve.py`` and hand it ``config`` on stdin. Raises ``OSError`` when it cannot start.

    A private child keeps its stdin pipe open (closing it stops the child); a detached child gets its
    own session and its stdin is closed once the config is written, so nothing ties it to this process.
    """
    child_env = dict(os.environ if env is None else env)
    # llama.cpp's CPU backend uses OpenMP; spinning worker threads collapse generation speed when the
    # cores are shared (bench: 9 -> 19 tok/s with 2 threads under load). Users may still override it.
    child_env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    flags = 0
    if detached and os.name == "nt":  # pragma: no cover - the POSIX session below is what runs here
        flags = getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0) | getattr(subprocess, "DETACHED_PROCESS", 0)
    proc = subprocess.Popen(
        [sys.executable, "-P", str(_SERVE_SCRIPT)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=log_fh,
        env=child_env,
        cwd=cwd,
        # Own session: a terminal's Ctrl-C reaches medcode, which then stops a private child; a detached
        # one ignores the terminal altogether.
        start_new_session=True,
        creationflags=flags,
        close_fds=True,
    )
    assert proc.stdin is not None
    try:
        proc.stdin.write(json.dumps(config).encode() + b"\n")
        proc.stdin.flush()
        if detached:
            proc.stdin.close()
    except OSError:  # the child died at once; await_address reports it with the log
        with contextlib.suppress(OSError):
            proc.stdin.close()
    return proc


def await_address(
    proc: subprocess.Popen[bytes],
    deadline: float,
    *,
    label: str,
    model: LocalModel,
    timeout_s: float,
    hint: Callable[[], str],
) -> str:
    """Read the child's first stdout line: its base URL. Raises ``LLMUnavailableError`` on error or timeout."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    buffer = b""
    while b"\n" not in buffer:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise LLMUnavailableError(
                f"{label} did not load within {timeout_s:.0f} s (llm_start_timeout_s; {hint()})", endpoint=label
            )
        ready, _, _ = select.select([fd], [], [], min(remaining, 0.5))
        if not ready:
            continue
        chunk = os.read(fd, 4096)
        if not chunk:  # child exited before reporting
            code = proc.wait(timeout=10)
            raise LLMUnavailableError(f"{label} exited with code {code} while loading ({hint()})", endpoint=label)
        buffer += chunk
    line = buffer.split(b"\n", 1)[0]
    try:
        message = json.loads(line)
    except json.JSONDecodeError:
        message = {"error": f"unexpected start-up output {line[:200]!r}"}
    if not isinstance(message, dict) or "base_url" not in message:
        error = message.get("error") if isinstance(message, dict) else message
        raise LLMUnavailableError(f"{label} failed to load {model.path.name}: {error} ({hint()})", endpoint=label)
    return str(message["base_url"]).rstrip("/")


def await_health(
    root: str, deadline: float, *, label: str, timeout_s: float, alive: Callable[[], bool], hint: Callable[[], str]
) -> None:
    """Poll ``/health`` until 200; llama.cpp answers 503 while the model is still loading."""
    last = "no answer"
    with httpx.Client(timeout=5.0) as http:
        while time.monotonic() < deadline:
            if not alive():
                raise LLMUnavailableError(f"{label} exited during start-up ({hint()})", endpoint=label)
            try:
                response = http.get(f"{root}/health")
                if response.status_code == 200:
                    return
                last = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                last = type(exc).__name__
            time.sleep(0.2)
    raise LLMUnavailableError(f"{label} not healthy within {timeout_s:.0f} s (last: {last})", endpoint=label)


class EmbeddedLLMServer:
    """A supervised llama.cpp server for one GGUF model, listening on 127.0.0.1, owned by this process.

    Use as a context manager, or call ``start()``/``stop()``; ``ensure_running()`` returns the base URL,
    restarting a dead child first. Every failure to start or restart raises ``LLMUnavailableError``
    with the tail of the server log. Each start makes a new random API key (``api_key``).
    """

    def __init__(
        self,
        model: LocalModel,
        *,
        threads: int = 2,
        context: int = 4096,
        parallel: int = 1,
        start_timeout_s: float = 300.0,
        log_path: Path | None = None,
        max_restarts: int = 3,
        poll: int | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.model = model
        self.threads = threads
        self.context = context
        self.parallel = parallel
        self.start_timeout_s = start_timeout_s
        self.log_path = log_path
        self.max_restarts = max_restarts
        self.poll = poll
        self._env = env
        self._lock = threading.RLock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_fh: IO[bytes] | None = None
        self._base_url: str | None = None
        self._api_key = ""
        self._starts = 0
        self.last_start_s: float | None = None
        self.last_exit_code: int | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> EmbeddedLLMServer:
        """A (not yet started) server for the embedded model the settings select; see ``ensure_model``."""
        return cls(
            ensure_model(settings),
            threads=settings.llm_threads,
            context=settings.llm_context,
            parallel=settings.llm_parallel,
            start_timeout_s=settings.llm_start_timeout_s,
            log_path=settings.data_dir / "logs" / "llm-server.log",
        )

    # -- state ---------------------------------------------------------------------------------------------

    @property
    def endpoint_label(self) -> str:
        return f"embedded llama.cpp server ({self.model.model_id})"

    @property
    def runtime(self) -> str:
        """Runtime name and version for the ``versions`` block."""
        return f"xllamacpp {xllamacpp_version()}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def api_key(self) -> str:
        return self._api_key

    @property
    def restarts(self) -> int:
        return max(self._starts - 1, 0)

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` of the running server (append ``/v1`` for the OpenAI API)."""
        if self._base_url is None or not self.running:
            raise LLMUnavailableError(f"{self.endpoint_label} is not running", endpoint=self.endpoint_label)
        return self._base_url

    # -- lifecycle -----------------------------------------------------------------------------------------

    def start(self) -> str:
        """Start the server if it is not running; return its base URL. Raises ``LLMUnavailableError``."""
        return self.ensure_running()

    def ensure_running(self) -> str:
        """Return the base URL, (re)starting the child first when it is not running.

        Raises ``LLMUnavailableError`` when the model does not load within ``start_timeout_s``, the child
        exits during start-up, or it has already been restarted ``max_restarts`` times.
        """
        with self._lock:
            if self.running and self._base_url is not None:
                return self._base_url
            if self._proc is not None:
                code = self._proc.poll()
                logger.warning("%s (pid %s) exited with code %s", self.endpoint_label, self._proc.pid, code)
                self._cleanup()
                if self._starts > self.max_restarts:
                    raise LLMUnavailableError(
                        f"{self.endpoint_label} died {self._starts} times; giving up ({log_hint(self.log_path)})",
                        endpoint=self.endpoint_label,
                    )
                logger.warning("restarting %s", self.endpoint_label)
            return self._spawn()

    def connection_failed(self) -> None:
        """Nothing to do: ``ensure_running`` sees a dead child by itself."""

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the child: close its stdin, then SIGTERM, then SIGKILL. Safe to call twice."""
        with self._lock:
            proc = self._proc
            if proc is not None and proc.poll() is None:
                try:
                    if proc.stdin is not None:
                        proc.stdin.close()
                    proc.wait(timeout=timeout_s)
                except subprocess.TimeoutExpired:
                    proc.terminate()
                    try:
                        proc.wait(timeout=5)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait(timeout=5)
            self._cleanup()

    def close(self) -> None:
        """Stop the server: it lives only as long as this process uses it."""
        self.stop()

    def __enter__(self) -> EmbeddedLLMServer:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"running at {self._base_url}" if self.running else "stopped"
        return f"EmbeddedLLMServer({self.model.model_id!r}, threads={self.threads}, {state})"

    # -- internals -----------------------------------------------------------------------------------------

    def _cleanup(self) -> None:
        proc, self._proc, self._base_url = self._proc, None, None
        if proc is not None:
            for stream in (proc.stdin, proc.stdout):
                if stream is not None:
                    with contextlib.suppress(OSError):
                        stream.close()
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
            self.last_exit_code = proc.returncode
        if self._log_fh is not None:
            self._log_fh.close()
            self._log_fh = None

    def _spawn(self) -> str:
        api_key = new_api_key()
        config = server_config(
            self.model,
            threads=self.threads,
            context=self.context,
            parallel=self.parallel,
            poll=self.poll,
            api_key=api_key,
            mode="private",
        )
        self._log_fh = open_server_log(self.log_path, self.model, "the embedded server for")
        started = time.monotonic()
        self._starts += 1
        try:
            self._proc = spawn_child(config, log_fh=self._log_fh, env=self._env, detached=False)
        except OSError as exc:
            self._cleanup()
            raise LLMUnavailableError(
                f"cannot start {self.endpoint_label}: {exc}", endpoint=self.endpoint_label
            ) from exc
        deadline = started + self.start_timeout_s
        hint = lambda: log_hint(self.log_path)  # noqa: E731
        try:
            root = await_address(
                self._proc,
                deadline,
                label=self.endpoint_label,
                model=self.model,
                timeout_s=self.start_timeout_s,
                hint=hint,
            )
            await_health(
                root,
                deadline,
                label=self.endpoint_label,
                timeout_s=self.start_timeout_s,
                alive=lambda: self.running,
                hint=hint,
            )
        except LLMUnavailableError:
            self._cleanup()
            raise
        self._base_url = root
        self._api_key = api_key
        self.last_start_s = time.monotonic() - started
        logger.info("%s ready at %s in %.1f s (pid %s)", self.endpoint_label, root, self.last_start_s, self.pid)
        return root
