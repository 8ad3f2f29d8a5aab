"""The shared embedded LLM server: one detached llama.cpp server per data directory, kept alive between commands.

Like Ollama's keep-alive: the first medcode process that needs the embedded model starts the server in
the background; later processes (the next ``medcode code``, the copilot, an evaluation) find it through a
state file and reuse it, skipping the model load; it exits by itself after ``llm_keep_alive_s`` seconds
without a request. ``medcode llm status|start|stop`` shows, pre-warms and stops it.

Files, in ``<data_dir>/llm/`` (created owner-only):

- ``server.json``: pid, port, base URL, model id/sha256/path, the runtime options, start time, keep-alive
  and the server's API key. Written atomically (temporary file + rename) with mode 0600. Its mtime is the
  last time of use (the server's watchdog and every client touch it).
- ``server.lock``: a ``filelock`` held while a process checks-and-starts, replaces or stops the server, and
  by the server while it leaves for idleness; two processes starting at once end up with one server.

The server's log is ``<data_dir>/logs/llm-server.log``, as for the private server.

Choices, and why:

- **One server per data directory; other options replace it.** A server started for another model,
  thread count, context, parallel slots or xllamacpp version is stopped and replaced, not run side by
  side: on the 2-core laptop-class machine medcode targets, two llama.cpp servers would each hold a model
  (1.1 GB for the default) and fight over the same cores, and one configuration per data directory is the
  normal case. Two processes that insist on different options at the same time take turns replacing each
  other (a model load each time): give them separate data directories.
- **The server judges its own idleness** from llama.cpp's counters (see ``_serve.py``) instead of trusting
  clients to report each request: it sees every request, also a long one still running and one from a
  client that crashed, and costs no file write per token. Clients touch the state file when they pick the
  server, so a process about to send its first request is not cut off.
- **Keep-alive follows the latest client** (Ollama's rule): a client with another ``llm_keep_alive_s``
  rewrites it in the state file and the watchdog re-reads it. ``llm_keep_alive_s = 0`` never comes here:
  such a process runs its own private server (``EmbeddedLLMServer``) that ends with it.
- **Security.** 127.0.0.1 only; a random 256-bit API key guards every endpoint but ``/health``; the key
  reaches the child on stdin (a command line is readable by every local user) and is kept only in the
  owner-only state file; ``/slots``, which shows prompt text, is off. Other local users can neither use
  the model nor read prompts (PHI).
- **A pid is signalled only while it is verified as the server**: on Linux ``/proc/PID/cmdline`` must name
  ``_serve.py``; elsewhere the server must answer with its key. A stale state file (after a crash or a
  reboot) never gets an unrelated process that reused the pid killed.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import httpx
from filelock import FileLock, Timeout
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from medcode import __version__
from medcode.agent.llm._serve import parse_activity
from medcode.agent.llm._server import (
    await_address,
    await_health,
    log_hint,
    new_api_key,
    open_server_log,
    server_config,
    spawn_child,
    xllamacpp_version,
)
from medcode.agent.llm._weights import LocalModel, ensure_model
from medcode.config import Settings
from medcode.errors import ConfigError, LLMError, LLMUnavailableError

__all__ = [
    "ServerOptions",
    "ServerState",
    "SharedLLMServer",
    "SharedServerFiles",
    "SharedServerStatus",
    "shared_server_status",
    "stop_shared_server",
]

logger = logging.getLogger(__name__)

_SERVE_SCRIPT_NAME = b"_serve.py"
_CRASH_LOOP_S = 120.0  # a server that dies sooner than this after starting counts towards max_restarts
_Probe = Literal["ok", "refused", "timeout", "foreign", "gone"]


@dataclass(frozen=True)
class SharedServerFiles:
    """Where the shared server of one data directory keeps its state, lock and log."""

    data_dir: Path

    @property
    def directory(self) -> Path:
        return self.data_dir / "llm"

    @property
    def state_file(self) -> Path:
        return self.directory / "server.json"

    @property
    def lock_file(self) -> Path:
        return self.directory / "server.lock"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "logs" / "llm-server.log"

    def lock(self, timeout_s: float) -> FileLock:
        """The state lock (creates the owner-only directory first)."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        return FileLock(self.lock_file, timeout=timeout_s, mode=0o600)


class ServerOptions(BaseModel):
    """What a server was started with; a client reuses a server only when these are equal to its own."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model_id: str
    model_sha256: str
    model_path: str
    threads: int
    context: int
    parallel: int
    poll: int | None = None
    runtime: str = Field(description="'xllamacpp <version>' of the process that started the server.")


class ServerState(BaseModel):
    """The content of ``server.json`` (owner-only: it holds the API key)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    format: Literal[1] = 1
    pid: int
    port: int
    base_url: str
    options: ServerOptions
    started_at: float = Field(description="Unix time the server became ready.")
    keep_alive_s: float
    api_key: str
    log_path: str
    medcode_version: str


class SharedServerStatus(BaseModel):
    """What ``medcode llm status`` reports. Never holds the API key."""

    running: bool
    state_file: str
    log_path: str
    pid: int | None = None
    port: int | None = None
    base_url: str | None = None
    model_id: str | None = None
    model_sha256: str | None = None
    model_path: str | None = None
    options: ServerOptions | None = None
    started_at: dt.datetime | None = None
    uptime_s: float | None = None
    idle_s: float | None = Field(default=None, description="Seconds since the server was last used.")
    keep_alive_s: float | None = None
    stops_in_s: float | None = Field(default=None, description="Seconds until it stops for idleness if unused.")
    busy: bool | None = Field(default=None, description="A request is in progress.")
    problem: str | None = Field(default=None, description="Why a server named by the state file is not usable.")


# -- processes and probes ------------------------------------------------------------------------------------


def _pid_alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (an exited child of ours is reaped; a zombie counts as gone).

    Without POSIX signals (Windows) there is no cheap check here: it answers True and the health probe
    decides.
    """
    if pid <= 0:
        return False
    if os.name != "posix":  # pragma: no cover - medcode's embedded server runs on POSIX systems
        return True
    with contextlib.suppress(ChildProcessError, OSError):
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie whose parent does not reap (e.g. a container's init) has exited all the same
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
        return stat.rpartition(")")[2].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return True


def _is_server_process(pid: int, answered: bool) -> bool:
    """Whether ``pid`` is verified as a medcode llama.cpp server (see the module docstring)."""
    proc_dir = Path("/proc/self")
    if proc_dir.exists():
        try:
            return _SERVE_SCRIPT_NAME in Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return False
    return answered


def _probe(state: ServerState, timeout_s: float = 3.0) -> _Probe:
    """Ask the server for its models with its key: ok, refused, timeout, or foreign (another server)."""
    try:
        with httpx.Client(timeout=timeout_s, trust_env=False) as http:
            response = http.get(f"{state.base_url}/v1/models", headers={"Authorization": f"Bearer {state.api_key}"})
    except httpx.TimeoutException:
        return "timeout"
    except httpx.HTTPError:
        return "refused"
    if response.status_code != 200:
        return "foreign"
    return "ok" if state.options.model_id in response.text else "foreign"


def _busy(state: ServerState) -> bool | None:
    try:
        with httpx.Client(timeout=3.0, trust_env=False) as http:
            response = http.get(f"{state.base_url}/metrics", headers={"Authorization": f"Bearer {state.api_key}"})
    except httpx.HTTPError:
        return None
    reading = parse_activity(response.text) if response.status_code == 200 else None
    return reading[1] if reading is not None else None


def _signal(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def _terminate(state: ServerState, *, answered: bool, timeout_s: float) -> bool:
    """SIGTERM the server (SIGKILL after ``timeout_s``) and wait for it to go; False when its pid is not the server."""
    if not _pid_alive(state.pid):
        return True
    if not _is_server_process(state.pid, answered):
        logger.warning("pid %s is no longer the LLM server; not signalling it", state.pid)
        return False
    _signal(state.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while _pid_alive(state.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _pid_alive(state.pid):
        logger.warning("LLM server pid %s did not stop within %.0f s; killing it", state.pid, timeout_s)
        _signal(state.pid, getattr(signal, "SIGKILL", signal.SIGTERM))
        deadline = time.monotonic() + 5.0
        while _pid_alive(state.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
    return True


# -- the state file ------------------------------------------------------------------------------------------


def _read_state(files: SharedServerFiles) -> ServerState | None:
    """The state file's content, or None when there is none; an unreadable one is logged and treated as stale."""
    try:
        text = files.state_file.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        logger.warning("cannot read %s (%s); treating it as stale", files.state_file, exc)
        return None
    try:
        return ServerState.model_validate_json(text)
    except ValidationError:
        logger.warning("%s is not a medcode server state file; treating it as stale", files.state_file)
        return None


def _write_state(files: SharedServerFiles, state: ServerState) -> None:
    """Write the state file atomically, owner-only (0600) from the first byte."""
    files.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = files.state_file.with_name(f".{files.state_file.name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(state.model_dump_json(indent=2))
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, files.state_file)


def _remove_state(files: SharedServerFiles) -> None:
    with contextlib.suppress(FileNotFoundError):
        files.state_file.unlink()


def _touch(files: SharedServerFiles) -> None:
    with contextlib.suppress(OSError):
        os.utime(files.state_file)


# -- status and stop -----------------------------------------------------------------------------------------


def _status(files: SharedServerFiles, state: ServerState | None) -> SharedServerStatus:
    base = SharedServerStatus(running=False, state_file=str(files.state_file), log_path=str(files.log_path))
    if state is None:
        return base
    now = time.time()
    try:
        idle = max(now - files.state_file.stat().st_mtime, 0.0)
    except OSError:
        idle = None
    probe: _Probe = _probe(state) if _pid_alive(state.pid) else "gone"
    problem = {
        "ok": None,
        "timeout": "the server does not answer (busy or hung)",
        "refused": "the server refuses connections",
        "foreign": f"another server answers on port {state.port}",
        "gone": f"pid {state.pid} is gone (the server crashed or was killed); the next request starts a new one",
    }[probe]
    return base.model_copy(
        update={
            "running": probe in ("ok", "timeout"),
            "pid": state.pid,
            "port": state.port,
            "base_url": state.base_url,
            "model_id": state.options.model_id,
            "model_sha256": state.options.model_sha256,
            "model_path": state.options.model_path,
            "options": state.options,
            "started_at": dt.datetime.fromtimestamp(state.started_at, tz=dt.UTC),
            "uptime_s": round(max(now - state.started_at, 0.0), 1),
            "idle_s": round(idle, 1) if idle is not None else None,
            "keep_alive_s": state.keep_alive_s,
            "stops_in_s": round(max(state.keep_alive_s - idle, 0.0), 1) if idle is not None else None,
            "busy": _busy(state) if probe == "ok" else None,
            "problem": problem,
        }
    )


def shared_server_status(data_dir: Path) -> SharedServerStatus:
    """The shared server of ``data_dir``: running or not, pid, port, model, uptime, idle time, keep-alive.

    Read-only: a stale state file is reported (``problem``), not removed. Never raises for a missing or
    unreadable state file.
    """
    files = SharedServerFiles(data_dir)
    return _status(files, _read_state(files))


def stop_shared_server(
    data_dir: Path, *, timeout_s: float = 10.0, lock_timeout_s: float = 330.0
) -> SharedServerStatus | None:
    """Stop the shared server of ``data_dir`` and remove its state file; None when no state file was there.

    Returns the status from just before the stop (``running`` False for a stale file that was cleaned up).
    Waits up to ``lock_timeout_s`` for a process that is starting a server (then stops that one); raises
    ``LLMError`` if the lock stays busy. SIGTERM first, SIGKILL after ``timeout_s``.
    """
    files = SharedServerFiles(data_dir)
    if not files.state_file.exists():
        return None
    try:
        with files.lock(lock_timeout_s):
            state = _read_state(files)
            if state is None:
                _remove_state(files)
                return None
            status = _status(files, state)
            _terminate(state, answered=status.running, timeout_s=timeout_s)
            _remove_state(files)
    except Timeout:
        raise LLMError(
            f"another medcode process holds {files.lock_file} (starting or stopping the LLM server) for over "
            f"{lock_timeout_s:.0f} s"
        ) from None
    logger.info("stopped the shared LLM server (pid %s)", state.pid)
    return status


# -- the client-side handle ----------------------------------------------------------------------------------


class SharedLLMServer:
    """A handle on the shared, detached llama.cpp server of one data directory.

    ``ensure_running()`` returns the base URL of a healthy server for this model and these options,
    adopting a running one or (under the state lock) replacing a stale or differently configured one and
    starting a new one in the background. ``close()`` leaves the server running for the next process;
    ``stop()`` stops it. Thread-safe.

    Raises ``LLMUnavailableError`` when the model does not load within ``start_timeout_s``, the server
    exits during start-up, more than ``max_restarts`` servers in a row crashed within two minutes of their
    start, or another process holds the state lock for longer than a start may take. A server that left
    for idleness or was stopped is simply started again: a long-lived process (the copilot) outlives many.
    """

    def __init__(
        self,
        model: LocalModel,
        *,
        data_dir: Path,
        keep_alive_s: float,
        threads: int = 2,
        context: int = 4096,
        parallel: int = 1,
        start_timeout_s: float = 300.0,
        max_restarts: int = 3,
        poll: int | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        if keep_alive_s <= 0:
            raise ConfigError("a shared LLM server needs llm_keep_alive_s > 0 (0 means a private server per process)")
        self.model = model
        self.files = SharedServerFiles(data_dir)
        self.keep_alive_s = float(keep_alive_s)
        self.threads = threads
        self.context = context
        self.parallel = parallel
        self.start_timeout_s = start_timeout_s
        self.max_restarts = max_restarts
        self.poll = poll
        self._env = env
        self._lock = threading.RLock()
        self._state: ServerState | None = None
        self._suspect = False
        self._proc: subprocess.Popen[bytes] | None = None  # a server this process started (reaped, never waited)
        self.restarts = 0  # servers this handle used that were replaced (crash, idle exit, stop, other options)
        self._crash_streak = 0
        self.started_here = 0
        self.last_start_s: float | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> SharedLLMServer:
        """A handle for the model and options the settings select (``ensure_model`` checks the weights)."""
        return cls(
            ensure_model(settings),
            data_dir=settings.data_dir,
            keep_alive_s=settings.llm_keep_alive_s,
            threads=settings.llm_threads,
            context=settings.llm_context,
            parallel=settings.llm_parallel,
            start_timeout_s=settings.llm_start_timeout_s,
        )

    # -- state ---------------------------------------------------------------------------------------------

    @property
    def options(self) -> ServerOptions:
        return ServerOptions(
            model_id=self.model.model_id,
            model_sha256=self.model.sha256,
            model_path=str(self.model.path),
            threads=self.threads,
            context=self.context,
            parallel=self.parallel,
            poll=self.poll,
            runtime=self.runtime,
        )

    @property
    def endpoint_label(self) -> str:
        return f"shared embedded llama.cpp server ({self.model.model_id})"

    @property
    def runtime(self) -> str:
        return f"xllamacpp {xllamacpp_version()}"

    @property
    def pid(self) -> int | None:
        return self._state.pid if self._state is not None else None

    @property
    def base_url(self) -> str | None:
        return self._state.base_url if self._state is not None else None

    @property
    def api_key(self) -> str:
        return self._state.api_key if self._state is not None else ""

    @property
    def running(self) -> bool:
        """Whether the server this handle last used is alive (a cheap pid check, no request)."""
        state = self._state
        return state is not None and _pid_alive(state.pid)

    # -- lifecycle -----------------------------------------------------------------------------------------

    def start(self) -> str:
        """Same as ``ensure_running``."""
        return self.ensure_running()

    def ensure_running(self) -> str:
        """The base URL of a healthy shared server for these options, starting or replacing one if needed."""
        with self._lock:
            state = self._state
            if state is not None and not self._suspect and _pid_alive(state.pid) and self._still_registered(state):
                _touch(self.files)
                return state.base_url
            return self._resolve()

    def connection_failed(self) -> None:
        """A request could not connect: the next ``ensure_running`` checks the server and restarts it if dead."""
        self._suspect = True

    def close(self) -> None:
        """Let go of the server; it keeps running for other processes until it is idle for its keep-alive."""
        with self._lock:
            self._state = None
            proc, self._proc = self._proc, None
            if proc is not None and proc.stdout is not None:
                with contextlib.suppress(OSError):
                    proc.stdout.close()

    def stop(self) -> None:
        """Stop the data directory's shared server now (whoever started it) and remove its state file."""
        with self._lock:
            stop_shared_server(self.files.data_dir)
            self._state = None

    def __enter__(self) -> SharedLLMServer:
        self.ensure_running()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        where = f"pid {self.pid} at {self.base_url}" if self._state is not None else "not resolved"
        return f"SharedLLMServer({self.model.model_id!r}, {self.files.data_dir}, {where})"

    # -- internals -----------------------------------------------------------------------------------------

    def _still_registered(self, state: ServerState) -> bool:
        """Whether the state file still names this server (cheap: one small read)."""
        current = _read_state(self.files)
        return current is not None and current.pid == state.pid and current.api_key == state.api_key

    def _resolve(self) -> str:
        previous = self._state
        state = _read_state(self.files)
        if (
            state is not None
            and state.options == self.options
            and state.keep_alive_s == self.keep_alive_s
            and _pid_alive(state.pid)
            and _probe(state) == "ok"
        ):
            return self._adopt(state)  # the common case: no lock needed
        try:
            with self.files.lock(self.start_timeout_s + 60):
                state = _read_state(self.files)
                if state is not None:
                    probe: _Probe = _probe(state) if _pid_alive(state.pid) else "gone"
                    if probe == "timeout":  # busy machine: give it longer before calling it hung
                        probe = _probe(state, timeout_s=15.0)
                    if probe == "ok" and state.options == self.options:
                        if state.keep_alive_s != self.keep_alive_s:
                            state = state.model_copy(update={"keep_alive_s": self.keep_alive_s})
                            _write_state(self.files, state)
                        return self._adopt(state)
                    self._retire(state, probe)
                    if probe != "ok":  # it crashed or hangs (not: left for idleness, stopped, other options)
                        self._count_crash(state)
                if previous is not None:
                    self.restarts += 1
                return self._spawn()
        except Timeout:
            raise LLMUnavailableError(
                f"another medcode process has held {self.files.lock_file} for over "
                f"{self.start_timeout_s + 60:.0f} s while starting the LLM server",
                endpoint=self.endpoint_label,
            ) from None

    def _count_crash(self, state: ServerState) -> None:
        """Give up after ``max_restarts`` crashes in a row of servers that each died within two minutes of
        starting (a crash loop); a server that had run longer starts a new count. Raises ``LLMUnavailableError``."""
        quick = time.time() - state.started_at < _CRASH_LOOP_S
        self._crash_streak = self._crash_streak + 1 if quick else 1
        if self._crash_streak > self.max_restarts:
            raise LLMUnavailableError(
                f"{self.endpoint_label} died {self._crash_streak} times in a row soon after starting; giving up "
                f"({log_hint(self.files.log_path)})",
                endpoint=self.endpoint_label,
            )

    def _adopt(self, state: ServerState) -> str:
        _touch(self.files)
        self._state = state
        self._suspect = False
        return state.base_url

    def _retire(self, state: ServerState, probe: _Probe) -> None:
        """Stop (when it is still there) and forget the server of a stale or mismatched state file."""
        if probe == "ok":
            changed = [
                name
                for name in ServerOptions.model_fields
                if getattr(state.options, name) != getattr(self.options, name)
            ]
            logger.warning(
                "replacing the shared LLM server (pid %s) started with other options (%s)",
                state.pid,
                ", ".join(changed),
            )
        elif probe == "gone":
            logger.warning("the shared LLM server (pid %s) is gone; starting a new one", state.pid)
        else:
            logger.warning("the shared LLM server (pid %s) is unusable (%s); starting a new one", state.pid, probe)
        if probe != "gone":
            _terminate(state, answered=probe in ("ok", "timeout"), timeout_s=10.0)
        _remove_state(self.files)

    def _spawn(self) -> str:
        """Start a detached server and register it; the caller holds the state lock."""
        api_key = new_api_key()
        config = server_config(
            self.model,
            threads=self.threads,
            context=self.context,
            parallel=self.parallel,
            poll=self.poll,
            api_key=api_key,
            mode="detached",
        ) | {
            "keep_alive_s": self.keep_alive_s,
            "state_file": str(self.files.state_file),
            "lock_file": str(self.files.lock_file),
            # a server that no medcode process registers within this time (its starter died) exits
            "orphan_grace_s": self.start_timeout_s + 60,
        }
        label = self.endpoint_label
        hint = lambda: log_hint(self.files.log_path)  # noqa: E731
        started = time.monotonic()
        with open_server_log(self.files.log_path, self.model, "the shared server for") as log_fh:
            try:
                proc = spawn_child(config, log_fh=log_fh, env=self._env, detached=True, cwd=self.files.directory)
            except OSError as exc:
                raise LLMUnavailableError(f"cannot start {label}: {exc}", endpoint=label) from exc
        self.started_here += 1
        deadline = started + self.start_timeout_s
        try:
            root = await_address(
                proc, deadline, label=label, model=self.model, timeout_s=self.start_timeout_s, hint=hint
            )
            await_health(
                root,
                deadline,
                label=label,
                timeout_s=self.start_timeout_s,
                alive=lambda: proc.poll() is None,
                hint=hint,
            )
            state = ServerState(
                pid=proc.pid,
                port=urlsplit(root).port or 0,
                base_url=root,
                options=self.options,
                started_at=time.time(),
                keep_alive_s=self.keep_alive_s,
                api_key=api_key,
                log_path=str(self.files.log_path),
                medcode_version=__version__,
            )
            _write_state(self.files, state)
        except BaseException:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)
            raise
        finally:
            if proc.stdout is not None:
                proc.stdout.close()
        self._proc = proc
        self.last_start_s = time.monotonic() - started
        logger.info("%s ready at %s in %.1f s (pid %s)", label, root, self.last_start_s, proc.pid)
        return self._adopt(state)
