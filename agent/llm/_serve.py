"""Child process hosting llama.cpp's OpenAI-compatible HTTP server through xllamacpp.

Started by ``agent.llm._server`` as ``python -P <this file>``: run as a script (not ``-m``) so the child
imports only the standard library, xllamacpp and (detached mode) filelock, never the medcode packages.

Protocol: the parent writes one JSON line of configuration to stdin (on stdin, not the command line: it
carries the API key, and any local user can read a process's command line). After the model has loaded
and the server listens on 127.0.0.1, the child prints one JSON line ``{"base_url": "http://127.0.0.1:PORT"}``
to stdout (or ``{"error": "..."}`` and exits 3), then serves until:

- ``mode: "private"`` (the default): stdin reaches end of file (the parent closed it, or died), or
  SIGTERM/SIGINT arrives. The server never outlives the medcode process that started it.
- ``mode: "detached"`` (the shared keep-alive server): SIGTERM/SIGINT, or the watchdog finds it idle for
  ``keep_alive_s``, or the state file no longer names this process (``medcode llm stop``, a replacement,
  a deleted data directory), or no state file names it within ``orphan_grace_s`` of the start (the
  process that started it died before registering it). Idleness is read from llama.cpp's own counters in process
  (``Server.handle_metrics``: requests in progress, prompt and generated tokens), so a request from any
  client counts and a long request is never cut off. The state file's mtime is the last time of use: the
  watchdog touches it when it sees activity, and a medcode client touches it whenever it picks the server
  for a request (so one that is about to send its first request counts too). For an idle exit the child takes the state lock, checks again, removes
  the state file and shuts down before it lets go, so no client starts a second server beside a dying
  one; a client that adopted it a moment earlier meets a refused connection and starts a new one.

Every endpoint but ``/health`` needs the API key; ``/slots`` (which shows prompts: PHI) and the web UI are
off. llama.cpp logs go to stderr, which the parent points at a log file; at the default verbosity they
hold timings, never prompts.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# llama.cpp's counters that change whenever a request is served, and the gauges of requests in flight.
_ACTIVITY_COUNTERS = (
    "llamacpp:prompt_tokens_total",
    "llamacpp:prompt_tokens_cached_total",
    "llamacpp:tokens_predicted_total",
    "llamacpp:n_decode_total",
)
_BUSY_GAUGES = ("llamacpp:requests_processing", "llamacpp:requests_deferred")


def _params(config: dict[str, Any]) -> Any:
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = str(config["gguf"])
    params.model_alias = {str(config["alias"])}
    params.hostnames = ["127.0.0.1"]
    params.port = int(config.get("port", 0))  # 0 = a free port chosen by the OS
    parallel = int(config.get("parallel", 1))
    params.n_parallel = parallel
    params.n_ctx = int(config["context"]) * parallel  # llama.cpp splits n_ctx across slots
    threads = int(config["threads"])
    params.cpuparams.n_threads = threads
    params.cpuparams_batch.n_threads = threads
    if config.get("poll") is not None:
        params.cpuparams.poll = int(config["poll"])
        params.cpuparams_batch.poll = int(config["poll"])
    params.cache_prompt = True  # reuse the KV cache of a shared prompt prefix (system prompt)
    params.verbosity = int(config.get("verbosity", 3))
    if config.get("api_key"):
        params.api_keys = [str(config["api_key"])]
    params.endpoint_metrics = True  # the watchdog reads the counters in process (behind the API key over HTTP)
    params.endpoint_slots = False  # /slots returns the prompt text of each slot
    params.ui = False
    return params


def parse_activity(metrics: str) -> tuple[tuple[float, ...], bool] | None:
    """(counters, busy) from llama.cpp's Prometheus text, or None when it is not readable."""
    values: dict[str, float] = {}
    for line in metrics.splitlines():
        name, _, value = line.partition(" ")
        if name in _ACTIVITY_COUNTERS or name in _BUSY_GAUGES:
            try:
                values[name] = float(value)
            except ValueError:
                return None
    if any(name not in values for name in (*_ACTIVITY_COUNTERS, *_BUSY_GAUGES)):
        return None
    return tuple(values[name] for name in _ACTIVITY_COUNTERS), any(values[name] > 0 for name in _BUSY_GAUGES)


def _log(message: str) -> None:
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    sys.stderr.write(f"{stamp} medcode llm server (pid {os.getpid()}): {message}\n")
    sys.stderr.flush()


class _Watchdog:
    """Decides when a detached server should exit: idle for keep-alive, or no longer named by the state file."""

    def __init__(self, server: Any, config: dict[str, Any]) -> None:
        self.server = server
        self.state_file = Path(config["state_file"])
        self.lock_file = Path(config["lock_file"])
        self.keep_alive_s = float(config["keep_alive_s"])
        self.orphan_grace_s = float(config.get("orphan_grace_s", 600.0))
        self.started = time.monotonic()
        self.last_active = self.started
        self.counters: tuple[float, ...] | None = None
        self.seen_state = False

    def _state(self) -> tuple[dict[str, Any] | None, float | None]:
        """The state file's content and mtime (wall clock) if it names this process, else (None, None)."""
        try:
            mtime = self.state_file.stat().st_mtime
            state = json.loads(self.state_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None, None
        if not isinstance(state, dict) or state.get("pid") != os.getpid():
            return None, None
        return state, mtime

    def idle_for(self, state: dict[str, Any], mtime: float) -> float:
        """Seconds since the last sign of use; 0 while a request is in flight or the counters moved."""
        now = time.monotonic()
        try:
            reading = parse_activity(str(self.server.handle_metrics()))
        except Exception:  # unreadable counters: count as busy rather than exit under a client
            reading = None
        if reading is None or reading[1] or reading[0] != self.counters:
            self.last_active = now
            if reading is not None:
                self.counters = reading[0]
            with contextlib.suppress(OSError):
                os.utime(self.state_file)  # the mtime is the "last used" time that `medcode llm status` shows
            return 0.0
        touched_ago = max(time.time() - mtime, 0.0)
        return min(now - self.last_active, touched_ago)

    def keep_alive(self, state: dict[str, Any]) -> float:
        value = state.get("keep_alive_s", self.keep_alive_s)
        return float(value) if isinstance(value, int | float) else self.keep_alive_s

    def should_exit(self) -> str | None:
        """A reason to exit now, or None."""
        state, mtime = self._state()
        if state is None or mtime is None:
            if self.seen_state:
                return "the state file no longer names this server"
            if not self.state_file.parent.is_dir():
                return "its data directory is gone"
            if time.monotonic() - self.started > self.orphan_grace_s:
                return "no medcode process registered this server"
            return None
        self.seen_state = True
        keep_alive = self.keep_alive(state)
        idle = self.idle_for(state, mtime)
        if keep_alive > 0 and idle >= keep_alive:
            return f"idle for {idle:.0f} s (keep-alive {keep_alive:g} s)"
        return None

    def exit_idle(self, shutdown: Callable[[], None]) -> bool:
        """Under the state lock, check idleness once more, remove the state file and shut the server down.

        Returns False (keep serving) when it was used meanwhile or the lock is busy: a medcode process is
        starting, stopping or adopting a server, so look again at the next tick.
        """
        import filelock

        try:
            with filelock.FileLock(self.lock_file, timeout=1.0):
                state, mtime = self._state()
                if state is not None and mtime is not None:
                    keep_alive = self.keep_alive(state)
                    if keep_alive <= 0 or self.idle_for(state, mtime) < keep_alive:
                        return False
                    with contextlib.suppress(FileNotFoundError):
                        self.state_file.unlink()
                shutdown()
                return True
        except filelock.Timeout:
            return False

    @property
    def tick_s(self) -> float:
        return min(1.0, max(0.2, self.keep_alive_s / 10))


def main(argv: list[str]) -> int:
    line = sys.stdin.buffer.readline()
    try:
        config = json.loads(line)
        if not isinstance(config, dict):
            raise ValueError("not an object")
    except ValueError as exc:
        print(json.dumps({"error": f"expected one JSON config line on stdin ({exc})"}), flush=True)
        return 2
    stop = threading.Event()

    def _on_signal(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    try:
        import xllamacpp

        server = xllamacpp.Server(_params(config))
    except Exception as exc:  # report any load failure to the parent, which raises a medcode error
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}), flush=True)
        return 3
    print(json.dumps({"base_url": server.listening_address}), flush=True)

    if config.get("mode", "private") != "detached":

        def _watch_stdin() -> None:
            try:
                while sys.stdin.buffer.read(4096):
                    pass
            except OSError:
                pass
            stop.set()

        threading.Thread(target=_watch_stdin, name="stdin-watch", daemon=True).start()
        while not stop.wait(0.5):
            pass
        del server  # ~Server stops the HTTP listener and the inference loop
        return 0

    # Detached: the parent reads the line above and goes away; nothing may write to its pipe again.
    with open(os.devnull, "wb") as devnull:
        os.dup2(devnull.fileno(), sys.stdout.fileno())
    watchdog = _Watchdog(server, config)
    _log(f"serving {config['alias']} at {server.listening_address}, keep-alive {watchdog.keep_alive_s:g} s")

    def shutdown() -> None:
        nonlocal server
        watchdog.server = None
        server = None  # the last reference: ~Server stops the HTTP listener and the inference loop

    reason = "stopped by a signal"
    while not stop.wait(watchdog.tick_s):
        found = watchdog.should_exit()
        if found is None:
            continue
        if found.startswith("idle") and not watchdog.exit_idle(shutdown):
            continue
        reason = found
        break
    _log(f"exiting: {reason}")
    shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
