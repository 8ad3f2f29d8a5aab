"""``medcode serve``: the coder copilot (web app + HTTP API)."""

from __future__ import annotations

import argparse
import ipaddress
import secrets
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from medcode.cli import CommandContext

__all__ = ["is_loopback", "register"]


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine (``localhost``, 127.0.0.0/8, ::1)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 1-65535, got {value}")
    return value


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    serve = sub.add_parser(
        "serve",
        help="run the coder copilot (web app and HTTP API)",
        description="Serve the coder copilot: a page for coders at / (paste a note or open a chart from the "
        "review queue, see the evidence, accept / edit / reject codes, finalise), a metrics page at /metrics, "
        "the JSON API under /v1 and its docs at /docs. Every /v1 route needs 'Authorization: Bearer "
        "$MEDCODE_API_TOKEN'; the page asks for the token once per browser tab. Without MEDCODE_API_TOKEN a "
        "loopback server prints a one-time token; a non-loopback address is refused. Charts and decisions go "
        "to the same review queue and audit log as 'medcode queue'. Ctrl+C stops.",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=_port, default=8000, help="port (default 8000)")
    serve.add_argument(
        "--proposer",
        choices=("llm", "retrieval"),
        help="proposer of the coding worker (default: MEDCODE_SERVE_PROPOSER, else retrieval)",
    )
    serve.add_argument(
        "--no-warm-up",
        action="store_true",
        help="do not load the index and LLM at start (the first note then waits for them)",
    )
    serve.set_defaults(handler=_serve)


def _serve(args: argparse.Namespace, ctx: CommandContext) -> int:
    from medcode.errors import ConfigError, MissingDependencyError

    try:
        import uvicorn

        from medcode.copilot._app import create_app
    except ModuleNotFoundError as exc:
        raise MissingDependencyError(
            f"medcode serve needs the serve extra ({exc.name} is not installed): pip install 'medcode[serve]'"
        ) from None

    settings = ctx.settings
    token = settings.api_token.get_secret_value() if settings.api_token else None
    if token is None:
        if not is_loopback(args.host):
            raise ConfigError(
                f"refusing to serve on {args.host} without an API token: set MEDCODE_API_TOKEN (16+ characters), "
                "or bind 127.0.0.1"
            )
        token = secrets.token_urlsafe(24)
        print(f"medcode: no MEDCODE_API_TOKEN set; one-time token for this run: {token}", file=sys.stderr)
    app = create_app(settings, token=token, proposer=args.proposer, warm_up=not args.no_warm_up)
    shown = f"[{args.host}]" if ":" in args.host else args.host
    print(
        f"medcode copilot on http://{shown}:{args.port}/ (API docs /docs); data in {settings.data_dir}; Ctrl+C stops",
        file=sys.stderr,
    )
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_config=None,
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=15,
    )
    return 0
