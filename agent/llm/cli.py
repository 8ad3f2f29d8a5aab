"""``medcode llm status|start|stop``: the shared embedded LLM server that outlives one command.

Exit codes: 0 success (also ``stop`` when nothing was running, and ``status`` whether or not a server
runs), 1 the server could not be started or stopped, 2 bad configuration (``start`` with an endpoint
configured or ``llm_keep_alive_s = 0``).
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from medcode.agent.llm._shared import SharedServerStatus
    from medcode.cli import CommandContext

__all__ = ["register"]

_ABOUT = (
    "With no LLM endpoint configured (MEDCODE_LLM_BASE_URL unset), the first medcode command that needs the "
    "embedded model starts a llama.cpp server in the background, and later commands reuse it until it has "
    "been idle for MEDCODE_LLM_KEEP_ALIVE_S seconds (default 600; 0: every command runs and stops its own). "
    "One server per data directory; it listens on 127.0.0.1 only and needs a random API key kept in the "
    "owner-only file <data dir>/llm/server.json."
)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    llm = sub.add_parser(
        "llm",
        help="the embedded LLM server kept alive between commands (status, start, stop)",
        description=_ABOUT,
    )
    llm_sub = llm.add_subparsers(dest="llm_command", metavar="SUBCOMMAND", required=True)

    status = llm_sub.add_parser(
        "status",
        help="is the shared LLM server running? pid, port, model, uptime, idle time, keep-alive, log",
        description="Show the shared embedded LLM server of the data directory: whether it runs, its pid, "
        "port, model, options, uptime, idle time, keep-alive and log file. Read-only; never prints the API key. "
        "Exit 0 whether or not a server runs (see 'running' in --json).",
    )
    status.add_argument("--json", action="store_true", help="print JSON")
    status.set_defaults(handler=_status)

    start = llm_sub.add_parser(
        "start",
        help="start (pre-warm) the shared LLM server now",
        description="Start the shared embedded LLM server for the current settings (model, threads, context) "
        "and return once the model has loaded, so the next 'medcode code' skips the load. A running server for "
        "the same settings is reused; one started with other settings is replaced. Exit 2 when an endpoint is "
        "configured (MEDCODE_LLM_BASE_URL) or MEDCODE_LLM_KEEP_ALIVE_S is 0.",
    )
    start.add_argument("--json", action="store_true", help="print the status as JSON")
    start.set_defaults(handler=_start)

    stop = llm_sub.add_parser(
        "stop",
        help="stop the shared LLM server",
        description="Stop the shared embedded LLM server of the data directory (SIGTERM, then SIGKILL after "
        "10 s) and remove its state file. Exit 0 also when nothing was running.",
    )
    stop.add_argument("--json", action="store_true", help="print what was stopped as JSON")
    stop.set_defaults(handler=_stop)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"


def _print_status(status: SharedServerStatus, ctx: CommandContext) -> None:
    out = sys.stdout
    if status.pid is None:
        out.write(f"shared LLM server: not running (data dir {ctx.settings.data_dir})\n")
        out.write("  the next command that needs the embedded model starts one (or: medcode llm start)\n")
    else:
        state = "running" if status.running else "NOT running"
        out.write(f"shared LLM server: {state} (pid {status.pid}, {status.base_url})\n")
        if status.problem:
            out.write(f"  problem    {status.problem}\n")
        options = status.options
        if options is not None:
            out.write(f"  model      {options.model_id} (sha256 {options.model_sha256[:12]}…) {options.model_path}\n")
            out.write(
                f"  options    threads {options.threads}, context {options.context}, parallel {options.parallel}, "
                f"{options.runtime}\n"
            )
        if status.running:
            out.write(
                f"  uptime     {_duration(status.uptime_s)}; idle {_duration(status.idle_s)}; keep-alive "
                f"{_duration(status.keep_alive_s)} (stops in {_duration(status.stops_in_s)} if unused)\n"
            )
            busy = {True: "yes (a request is in progress)", False: "no", None: "unknown"}[status.busy]
            out.write(f"  busy       {busy}\n")
    out.write(f"  log        {status.log_path}\n")
    if ctx.settings.llm_base_url is not None:
        out.write("  note       MEDCODE_LLM_BASE_URL is set: medcode uses that endpoint, not the embedded server\n")


def _status(args: argparse.Namespace, ctx: CommandContext) -> int:
    from medcode.agent.llm._shared import shared_server_status
    from medcode.cli import print_json

    status = shared_server_status(ctx.settings.data_dir)
    if args.json:
        print_json(status.model_dump(mode="json"))
    else:
        _print_status(status, ctx)
    return 0


def _start(args: argparse.Namespace, ctx: CommandContext) -> int:
    from medcode.agent.llm._shared import SharedLLMServer, shared_server_status
    from medcode.cli import print_json
    from medcode.errors import ConfigError

    settings = ctx.settings
    if settings.llm_base_url is not None:
        raise ConfigError("MEDCODE_LLM_BASE_URL is set: medcode uses that endpoint and starts no embedded server")
    if settings.llm_keep_alive_s <= 0:
        raise ConfigError(
            "MEDCODE_LLM_KEEP_ALIVE_S is 0: a server started now would stop when this command ends "
            "(set a keep-alive in seconds, e.g. 600)"
        )
    server = SharedLLMServer.from_settings(settings)
    try:
        server.ensure_running()
    finally:
        server.close()
    status = shared_server_status(settings.data_dir)
    if args.json:
        print_json(status.model_dump(mode="json"))
    else:
        verb = "started" if server.started_here else "already running"
        print(f"shared LLM server {verb}", file=sys.stderr)
        _print_status(status, ctx)
    return 0


def _stop(args: argparse.Namespace, ctx: CommandContext) -> int:
    from medcode.agent.llm._shared import stop_shared_server
    from medcode.cli import print_json

    stopped = stop_shared_server(ctx.settings.data_dir)
    if args.json:
        print_json(
            {"stopped": stopped is not None and stopped.running, "server": stopped and stopped.model_dump(mode="json")}
        )
        return 0
    if stopped is None:
        print(f"no shared LLM server was running (data dir {ctx.settings.data_dir})")
    elif stopped.running:
        print(
            f"stopped the shared LLM server (pid {stopped.pid}, {stopped.model_id}, up {_duration(stopped.uptime_s)})"
        )
    else:
        print(f"no shared LLM server was running; removed a stale state file ({stopped.problem})")
    return 0
