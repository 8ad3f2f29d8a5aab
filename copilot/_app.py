"""The copilot's FastAPI app: the ``/v1`` JSON API, the coder pages and the API docs.

Every ``/v1`` route needs ``Authorization: Bearer <token>`` (401 otherwise, checked before the
body is read): a user's own token (``medcode users add``), or the shared ``MEDCODE_API_TOKEN``, the
bootstrap admin, from loopback clients only (``api_token_loopback_only``). Each route needs a role
(coder: coding and review; auditor: blinded audits; admin: all), else 403; the audit log records the
authenticated user, and a name in the request that is not that user is refused (403). Request bodies over
``max_request_bytes`` get 413. Errors are JSON: ``{"error": {"type": ..., "message": ...}}`` with 400
(bad input), 401, 403, 404 (no such chart or job), 409 (stale chart version or already finalised), 413,
422 (malformed request naming the field, a FHIR resource that is invalid or unusable: with ``path``, or a
code the validators rejected kept or added without a reason: with ``rules`` and ``verdicts``), 501 (FHIR
asked of a server without the ``fhir`` extra), 503 (coding queue full, index, LLM or store unavailable).
Pages and static files carry a strict Content-Security-Policy (no inline script, nothing from other
origins). Request logs name method, escaped path and status only: never the body or query string (both may
hold PHI). ``POST /v1/code?wait=`` waits on the event loop (no thread held), so waiting clients cannot
starve the other routes, and ``/healthz`` answers on the loop with its own small thread limit.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import hmac
import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import anyio
from fastapi import APIRouter, Body, Depends, FastAPI, Query, Request, Security
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.security import HTTPBearer
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from medcode import __version__
from medcode.agent import (
    FHIR_MEDIA_TYPE,
    CodingResult,
    ValidationRequest,
    is_fhir_resource,
    operation_outcome,
    require_fhir,
    result_to_fhir,
    validate_proposal,
)
from medcode.config import Settings
from medcode.copilot._models import (
    AdjudicationRequest,
    AuditAnswerRequest,
    AuditSampleRequest,
    CodeRequest,
    CodingJob,
    ReviewRequest,
    SearchHit,
)
from medcode.copilot._service import CopilotService, QueueFilter
from medcode.copilot.cli import is_loopback
from medcode.errors import (
    AuditTaskNotFoundError,
    ChartConflictError,
    ChartNotFoundError,
    ConfigError,
    DateOutOfRangeError,
    FHIRError,
    InputError,
    JobNotFoundError,
    JobQueueFullError,
    LLMError,
    MedcodeError,
    MissingDependencyError,
    OverrideReasonRequiredError,
    PermissionDeniedError,
    RetrievalError,
    StoreError,
    UnknownCodeError,
)
from medcode.monitoring import GroupBy
from medcode.review import BOOTSTRAP_USER, Principal, Role, UserDirectory

__all__ = ["JobWaiters", "acting_as", "create_app", "loggable_path", "principal", "require"]

log = logging.getLogger("medcode.copilot.access")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_DATA = Path(__file__).resolve().parent / "data"


@dataclass(frozen=True)
class Page:
    """A coder page: its path, its body file (``data/pages/NAME.html``), title and navigation label."""

    path: str
    name: str
    page: str
    title: str
    label: str


PAGES: tuple[Page, ...] = (
    Page("/", "index", "review", "medcode copilot", "Review"),
    Page("/metrics", "metrics", "metrics", "medcode copilot · metrics", "Metrics"),
    Page("/audit", "audit", "audit", "medcode copilot · audit", "Audit"),
    Page("/autonomy", "autonomy", "autonomy", "medcode copilot · autonomy", "Autonomy"),
    Page("/monitor", "monitor", "monitor", "medcode copilot · KPIs", "KPIs"),
    Page("/cdi", "cdi", "cdi", "medcode copilot · documentation feedback", "Documentation"),
)
_HELP_BUTTON = (
    '\n      <button type="button" class="link" id="help-button" title="Keyboard shortcuts (?)">Shortcuts</button>'
)


@functools.cache
def render_page(name: str) -> str:
    """One page: ``shell.html`` (header, navigation, sign-in, toast) around the page's body file.

    Raises ``KeyError`` for an unknown page name and ``OSError`` when a packaged file is missing."""
    page = next(p for p in PAGES if p.name == name)
    pages = _DATA / "pages"
    current = ' aria-current="page"'
    nav = "\n".join(f'      <a href="{p.path}"{current if p is page else ""}>{p.label}</a>' for p in PAGES)
    parts = {
        "title": page.title,
        "page": page.page,
        "nav": nav,
        "session_extra": _HELP_BUTTON if page.page == "review" else "",
        "body": (pages / f"{name}.html").read_text(encoding="utf-8").split("-->\n", 1)[-1].rstrip("\n"),
    }
    html = (pages / "shell.html").read_text(encoding="utf-8")
    for key, value in parts.items():
        html = html.replace("{{" + key + "}}", value)
    return html


def _page_endpoint(name: str) -> Callable[[], HTMLResponse]:
    def endpoint() -> HTMLResponse:
        return HTMLResponse(render_page(name))

    endpoint.__name__ = f"{name}_page"
    return endpoint


_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
_DOC_PATHS = ("/docs", "/redoc", "/static-offline-docs")
Person = Annotated[
    str | None, Query(min_length=1, max_length=100, description="Deprecated: the signed-in user is used.")
]
_MAX_ID = 2**63 - 1  # the databases' integer range: a larger id is a 422, not an overflow
ChartId = Annotated[int, PathParam(ge=1, le=_MAX_ID, description="The chart id.")]
TaskId = Annotated[int, PathParam(ge=1, le=_MAX_ID, description="The audit task id.")]
_PRINCIPAL = "medcode.principal"


def loggable_path(path: str, limit: int = 300) -> str:
    """A request path safe for one log line: non-ASCII as ``\\uXXXX``, control characters (a decoded ``%0a``,
    NUL) as ``\\xNN``, cut at ``limit`` characters. A client cannot forge a log line with it."""
    ascii_only = path.encode("ascii", "backslashreplace").decode("ascii")
    escaped = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in ascii_only)
    return escaped if len(escaped) <= limit else escaped[:limit] + "..."


def _error_body(kind: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"type": kind, "message": message, **extra}}


async def _send_json(
    send: Send, status: int, body: dict[str, Any], headers: tuple[tuple[bytes, bytes], ...] = ()
) -> None:
    data = json.dumps(body).encode("utf-8")
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()), *headers],
        }
    )
    await send({"type": "http.response.body", "body": data})


class _Guard:
    """ASGI middleware: request log, security headers, bearer auth for ``/v1``, request size cap."""

    def __init__(self, app: ASGIApp, *, token: str, max_body: int, users: UserDirectory, loopback_only: bool) -> None:
        self.app = app
        self._token = token.encode("utf-8")
        self.max_body = max_body
        self.users = users
        self.loopback_only = loopback_only

    def _principal(self, scope: Scope) -> tuple[Principal | None, str]:
        """Who the bearer token belongs to, or None and why not."""
        credentials = None
        for name, value in scope.get("headers", []):
            if name == b"authorization":
                scheme, _, rest = value.partition(b" ")
                credentials = rest.strip() if scheme.lower() == b"bearer" else None
                break
        if not credentials:
            return None, "missing or wrong bearer token (Authorization: Bearer <your token>)"
        if hmac.compare_digest(credentials, self._token):
            client = scope.get("client")
            if self.loopback_only and not (client and is_loopback(str(client[0]))):
                return None, (
                    "the shared MEDCODE_API_TOKEN is accepted from this machine only; sign in with your own "
                    "token (medcode users add)"
                )
            return Principal(name=BOOTSTRAP_USER, role="admin", bootstrap=True), ""
        try:
            token = credentials.decode("ascii")
        except UnicodeDecodeError:
            return None, "missing or wrong bearer token (Authorization: Bearer <your token>)"
        principal = self.users.authenticate(token)
        if principal is None:
            return None, "missing, wrong or revoked bearer token (Authorization: Bearer <your token>)"
        return principal, ""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        started = time.perf_counter()
        status = 500

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = list(message.get("headers", []))
                extra = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer")]
                if not path.startswith(_DOC_PATHS):
                    extra += [(b"content-security-policy", _CSP.encode()), (b"x-frame-options", b"DENY")]
                if path.startswith("/v1"):
                    extra.append((b"cache-control", b"no-store"))
                message["headers"] = headers + extra
            await send(message)

        try:
            await self._guarded(scope, receive, send_with_headers, path)
        finally:
            user = scope.get(_PRINCIPAL)
            log.info(
                "%s %s %d %.0fms %s",
                loggable_path(str(scope.get("method", ""))),
                loggable_path(path),
                status,
                (time.perf_counter() - started) * 1000,
                user.name if isinstance(user, Principal) else "-",
            )

    async def _guarded(self, scope: Scope, receive: Receive, send: Send, path: str) -> None:
        if path == "/v1" or path.startswith("/v1/"):
            try:
                principal, why = self._principal(scope)
            except StoreError:
                await _send_json(send, 503, _error_body("StoreError", "the user directory cannot be read; retry"))
                return
            if principal is None:
                await _send_json(
                    send, 401, _error_body("unauthorized", why), ((b"www-authenticate", b'Bearer realm="medcode"'),)
                )
                return
            scope[_PRINCIPAL] = principal
        length = next((v for k, v in scope.get("headers", []) if k == b"content-length"), None)
        too_big = _error_body(
            "request_too_large", f"request body is over {self.max_body:,} bytes (MEDCODE_MAX_REQUEST_BYTES)"
        )
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                await _send_json(send, 400, _error_body("bad_request", "Content-Length is not a number"))
                return
            if declared > self.max_body:
                await _send_json(send, 413, too_big)
                return
            await self.app(scope, receive, send)
            return
        if scope.get("method") not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        # No Content-Length (chunked): read up to the cap, then replay the body to the app.
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if len(body) > self.max_body:
                await _send_json(send, 413, too_big)
                return
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def _status_for(exc: MedcodeError) -> int:
    if isinstance(exc, ChartNotFoundError | JobNotFoundError | AuditTaskNotFoundError):
        return 404
    if isinstance(exc, ChartConflictError):
        return 409
    if isinstance(exc, PermissionDeniedError):
        return 403
    if isinstance(exc, OverrideReasonRequiredError | FHIRError):
        return 422  # well-formed JSON, but the verdict needs a reason / the FHIR resource is unusable
    if isinstance(exc, InputError | UnknownCodeError):
        return 400
    if isinstance(exc, JobQueueFullError | RetrievalError | LLMError | StoreError):
        return 503
    if isinstance(exc, MissingDependencyError):
        return 501  # e.g. FHIR asked of a server installed without the 'fhir' extra
    return 500


def principal(request: Request) -> Principal:
    """The authenticated user of a ``/v1`` request (set by the guard)."""
    found = request.scope.get(_PRINCIPAL)
    if not isinstance(found, Principal):  # a route outside /v1 asked: never happens for the API
        raise PermissionDeniedError("not signed in")
    return found


def require(*roles: Role) -> Callable[[Request], Awaitable[Principal]]:
    """A dependency (run on the event loop, no thread) that refuses principals without one of ``roles``."""

    async def check(request: Request) -> Principal:
        who = principal(request)
        if not who.can(*roles):
            raise PermissionDeniedError(
                f"user {who.name!r} has role {who.role}; this needs {' or '.join(roles)} (or admin)"
            )
        return who

    return check


def acting_as(who: Principal, claimed: str | None, field: str) -> str:
    """The name to record: always the authenticated user's. Raises ``PermissionDeniedError`` when the request
    names someone else in ``field``."""
    if claimed is not None and claimed.strip() != who.name:
        raise PermissionDeniedError(
            f"{field} {claimed.strip()[:100]!r} is not the signed-in user {who.name!r}: the audit log records the "
            f"token's user; leave {field} out"
        )
    return who.name


class JobWaiters:
    """Clients waiting on the event loop for coding jobs; the worker thread wakes them (no thread per waiter)."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._events: dict[str, set[asyncio.Event]] = {}
        self._lock = threading.Lock()

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def register(self, job_id: str) -> asyncio.Event:
        event = asyncio.Event()
        with self._lock:
            self._events.setdefault(job_id, set()).add(event)
        return event

    def unregister(self, job_id: str, event: asyncio.Event) -> None:
        with self._lock:
            waiting = self._events.get(job_id)
            if waiting is not None:
                waiting.discard(event)
                if not waiting:
                    del self._events[job_id]

    def job_finished(self, job_id: str) -> None:
        """Called on the worker thread."""
        with self._lock:
            events = list(self._events.get(job_id, ()))
        loop = self._loop
        if loop is not None and not loop.is_closed():
            for event in events:
                loop.call_soon_threadsafe(event.set)


def _job_view(job: CodingJob, *, fhir: bool = False) -> dict[str, Any]:
    job.status_url = f"/v1/jobs/{job.job_id}" + ("?format=fhir" if fhir else "")
    return job.model_dump(mode="json")


OutputFormat = Annotated[
    Literal["json", "fhir"] | None,
    Query(
        alias="format",
        description="fhir: a finished result as a FHIR R4 Bundle (draft Claim, Provenance); the same as "
        "`Accept: application/fhir+json`. Default: json.",
    ),
]


def _asks_for_fhir(request: Request) -> bool:
    """The client speaks FHIR: ``?format=fhir``, or ``application/fhir+json`` in ``Accept`` or ``Content-Type``."""
    if request.query_params.get("format") == "fhir":
        return True
    named = ",".join((request.headers.get("accept", ""), request.headers.get("content-type", "")))
    return any(part.split(";")[0].strip().lower() == FHIR_MEDIA_TYPE for part in named.split(","))


def _wants_fhir(request: Request, output: str | None) -> bool:
    """FHIR output asked for by ``?format=fhir`` or an ``Accept`` naming ``application/fhir+json`` (and not
    overridden by ``?format=json``). Raises ``MissingDependencyError`` without the ``fhir`` extra."""
    if output is None:
        accept = request.headers.get("accept", "")
        wanted = any(part.split(";")[0].strip().lower() == FHIR_MEDIA_TYPE for part in accept.split(","))
    else:
        wanted = output == "fhir"
    if wanted:
        require_fhir()
    return wanted


def _fhir_response(result: dict[str, Any]) -> JSONResponse:
    bundle = result_to_fhir(CodingResult.model_validate(result))
    return JSONResponse(bundle, status_code=200, media_type=FHIR_MEDIA_TYPE)


def _code_request(body: dict[str, Any]) -> CodeRequest:
    """``body`` as a ``CodeRequest``; its validation errors answer 422 as any malformed request's do."""
    try:
        return CodeRequest.model_validate(body)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**err, "loc": ("body", *err.get("loc", ()))} for err in exc.errors(include_input=False)]
        ) from None


def create_app(
    settings: Settings,
    *,
    token: str | None = None,
    proposer: Literal["llm", "retrieval"] | None = None,
    warm_up: bool = True,
) -> FastAPI:
    """The copilot app. The service (coder, worker, stores) starts with the app's lifespan.

    ``token`` defaults to ``settings.api_token``. Raises ``ConfigError`` when there is no token.
    """
    secret = token if token is not None else (settings.api_token.get_secret_value() if settings.api_token else None)
    if not secret or not secret.strip():
        raise ConfigError("the copilot needs an API token: set MEDCODE_API_TOKEN (at least 16 characters)")

    users = UserDirectory(settings)
    waiters = JobWaiters()
    health_limiter = anyio.CapacityLimiter(4)  # /healthz never queues behind the request thread pool

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        waiters.bind(asyncio.get_running_loop())
        service = CopilotService(settings, proposer=proposer, warm_up=warm_up)
        service.worker.listeners.append(waiters.job_finished)
        service.start()
        app.state.service = service
        try:
            yield
        finally:
            service.close()
            users.close()

    app = FastAPIOffline(
        title="medcode copilot",
        version=__version__,
        description="Review ICD-10-CM code suggestions: code a note, read the evidence, accept, edit or reject, "
        "finalise. Every `/v1` route needs `Authorization: Bearer $MEDCODE_API_TOKEN`. `POST /v1/code` queues "
        "the note for the coding worker and answers 202 with a job (poll its `status_url`); with `?wait=S` it "
        "waits up to S seconds and answers 200 with the `medcode code --json` document if coding finished.",
        lifespan=lifespan,
        favicon_url="/static/favicon.svg",
    )
    app.add_middleware(
        _Guard,
        token=secret.strip(),
        max_body=settings.max_request_bytes,
        users=users,
        loopback_only=settings.api_token_loopback_only,
    )
    app.mount("/static", StaticFiles(directory=_DATA / "static"), name="static")

    @app.exception_handler(MedcodeError)
    async def _medcode_error(request: Request, exc: MedcodeError) -> JSONResponse:
        status = _status_for(exc)
        extra: dict[str, Any] = {}
        if isinstance(exc, ChartConflictError):
            extra["current_version"] = exc.current_version
        if isinstance(exc, UnknownCodeError):
            extra["suggestions"] = exc.suggestions[:10]
        if isinstance(exc, OverrideReasonRequiredError):
            extra["rules"] = exc.rules
            extra["verdicts"] = exc.details
        if isinstance(exc, FHIRError):
            if _asks_for_fhir(request):  # a FHIR client reads an OperationOutcome
                return JSONResponse(operation_outcome(exc), status_code=status, media_type=FHIR_MEDIA_TYPE)
            extra["path"] = exc.path
        headers = {"Retry-After": "30"} if isinstance(exc, JobQueueFullError) else None
        if status >= 500:
            logging.getLogger("copilot").error(
                "%s %s failed: %s", request.method, loggable_path(request.url.path), type(exc).__name__
            )
        return JSONResponse(_error_body(type(exc).__name__, str(exc), **extra), status_code=status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        details = [
            {"loc": [str(p) for p in err.get("loc", ())], "msg": str(err.get("msg", ""))} for err in exc.errors()
        ]  # no "input": it may echo the note
        first = details[0] if details else {"loc": [], "msg": "invalid request"}
        where = ".".join(p for p in first["loc"] if p != "body") or "request"
        message = f"{where}: {first['msg']}" + (f" (+{len(details) - 1} more)" if len(details) > 1 else "")
        return JSONResponse(_error_body("validation_error", message, details=details), status_code=422)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        logging.getLogger("copilot").error(
            "%s %s failed: unexpected %s", request.method, loggable_path(request.url.path), type(exc).__name__
        )
        return JSONResponse(_error_body("internal_error", "unexpected server error (see the server log)"), 500)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(
            _error_body("http_error", str(exc.detail)), status_code=exc.status_code, headers=exc.headers
        )

    def service(request: Request) -> CopilotService:
        svc: CopilotService = request.app.state.service
        return svc

    # -- pages (no data in them: the page's script fetches /v1 with the token) ---------------
    for page in PAGES:
        app.add_api_route(
            page.path, _page_endpoint(page.name), methods=["GET"], include_in_schema=False, response_class=HTMLResponse
        )

    @app.get("/healthz", tags=["service"], summary="Liveness and the coding worker's state (no auth)")
    async def healthz(request: Request) -> dict[str, Any]:
        health: dict[str, Any] = await anyio.to_thread.run_sync(service(request).health, limiter=health_limiter)
        return health

    # -- the API -----------------------------------------------------------------------------
    bearer = Security(HTTPBearer(auto_error=False))
    signed_in = APIRouter(prefix="/v1", dependencies=[bearer, Depends(require("coder", "auditor"))])
    api = APIRouter(prefix="/v1", dependencies=[bearer, Depends(require("coder"))])
    audits = APIRouter(prefix="/v1", dependencies=[bearer, Depends(require("auditor"))])

    @signed_in.get("/me", tags=["service"], summary="Who you are signed in as, and your role")
    async def me(request: Request) -> dict[str, Any]:
        return principal(request).model_dump()

    @signed_in.get("/audit/head", tags=["audit"], summary="The audit log's head: keep it elsewhere (anchoring)")
    def audit_head(request: Request) -> dict[str, Any]:
        seq, digest = service(request).audit.head()
        return {"seq": seq, "hash": digest, "verify": f"medcode audit verify --expect-head {digest}"}

    @api.post(
        "/code",
        tags=["coding"],
        summary="Code a note (queued for the coding worker)",
        status_code=202,
        response_model=CodingJob,
        description="The body is a `CodeRequest` (the note as `text`), or a FHIR R4 `DocumentReference` (the note "
        "as a text/plain attachment, base64 `data`) or a `Bundle` holding one with its Patient (age, sex) and "
        "Encounter (date of service, class: the setting); `Content-Type: application/json` or "
        "`application/fhir+json`. A FHIR resource that is invalid or unusable answers 422 with `error.path` "
        "naming the element.",
        responses={
            200: {
                "description": "With ?wait: coding finished in time; the `medcode code --json` document, or with "
                "`?format=fhir` / `Accept: application/fhir+json` a FHIR R4 Bundle (README 'FHIR R4')."
            },
            422: {"description": "A malformed request, or unusable FHIR (`error.path`: the bad element)."},
        },
    )
    async def code_note(
        request: Request,
        body: Annotated[CodeRequest | dict[str, Any], Body(description="A CodeRequest or a FHIR R4 resource.")],
        wait: Annotated[float, Query(ge=0, le=60, description="Seconds to wait for the result (0 = answer now).")] = 0,
        output: OutputFormat = None,
        setting: Annotated[
            Literal["outpatient", "inpatient"] | None,
            Query(description="For a FHIR body: the coding setting, overriding the Encounter's class."),
        ] = None,
    ) -> Response:
        svc = service(request)
        fhir = _wants_fhir(request, output)
        if isinstance(body, CodeRequest):
            if setting is not None:
                raise InputError("?setting is for a FHIR body; a CodeRequest names its setting in the body")
            job = await run_in_threadpool(svc.submit, body)
        elif is_fhir_resource(body):
            job = await run_in_threadpool(functools.partial(svc.submit_fhir, body, setting=setting))
        else:
            job = await run_in_threadpool(svc.submit, _code_request(body))  # raises: the body was neither
        if wait > 0:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + wait
            while job.status not in ("done", "failed"):
                left = deadline - loop.time()
                if left <= 0:
                    break
                event = waiters.register(job.job_id)
                try:
                    job = await run_in_threadpool(svc.job, job.job_id)  # finished before we registered?
                    if job.status in ("done", "failed"):
                        break
                    with anyio.move_on_after(min(left, 5.0)):  # 5 s: a job another process finished
                        await event.wait()
                finally:
                    waiters.unregister(job.job_id, event)
                job = await run_in_threadpool(svc.job, job.job_id)
            if job.status == "done" and job.result is not None:
                if fhir:
                    return await run_in_threadpool(_fhir_response, job.result)
                return JSONResponse(job.result, status_code=200)
        view = _job_view(job, fhir=fhir)
        return JSONResponse(view, status_code=202, headers={"Location": view["status_url"]})

    @api.post(
        "/validate",
        tags=["coding"],
        summary="Check anyone's proposed codes against a note (the `medcode validate --json` document)",
        responses={400: {"description": "Empty or oversized note, or no release for the date of service."}},
    )
    def validate_codes(request: Request, body: ValidationRequest) -> dict[str, Any]:
        """The same rules as `medcode validate`: hallucinated codes, unsupported or mis-asserted evidence, the
        wrong sibling, conventions across codes. `candidates` (the codes the proposer was offered) are required
        unless `no_candidates` is true; the answer says when the candidate check was skipped. Synchronous:
        nothing is queued or stored."""
        svc = service(request)
        try:
            _, document = validate_proposal(svc.coder.validators, svc.settings, body)
        except DateOutOfRangeError as exc:
            raise InputError(str(exc)) from None
        return document

    @api.get(
        "/jobs/{job_id}",
        tags=["coding"],
        summary="A coding job; `result` once done",
        description="With `?format=fhir` (or `Accept: application/fhir+json`) a finished job answers its result "
        "as a FHIR R4 Bundle; a job not finished (or failed) answers the job.",
        response_model=CodingJob,
    )
    def get_job(
        request: Request, job_id: Annotated[str, PathParam(max_length=64)], output: OutputFormat = None
    ) -> Response:
        job = service(request).job(job_id)
        fhir = _wants_fhir(request, output)
        if fhir and job.status == "done" and job.result is not None:
            return _fhir_response(job.result)
        return JSONResponse(_job_view(job, fhir=fhir))

    @api.get("/queue", tags=["review"], summary="Charts (oldest first, no note text) and coding jobs in flight")
    def get_queue(
        request: Request,
        status: QueueFilter = "open",
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
        offset: Annotated[int, Query(ge=0)] = 0,
        note_type: Annotated[str | None, Query(max_length=100)] = None,
    ) -> dict[str, Any]:
        svc = service(request)
        charts = svc.list_charts(status, limit=limit, offset=offset, note_type=note_type)
        return {
            "charts": [c.model_dump(mode="json") for c in charts],
            "jobs": [_job_view(j) for j in svc.jobs.active()],
        }

    @api.get("/charts/{chart_id}", tags=["review"], summary="One chart: note, codes, verdicts, history")
    def get_chart(
        request: Request,
        chart_id: ChartId,
        text: Annotated[bool, Query(description="Include the note text and evidence quotes (PHI).")] = True,
    ) -> dict[str, Any]:
        return service(request).chart(chart_id, include_text=text)

    @api.post(
        "/charts/{chart_id}/review",
        tags=["review"],
        summary="Accept, reject, replace or add codes, and/or finalise (one audited change)",
        description="New codes (`add`, and `replace`'s `new_code`) go through the validators against the note and "
        "the chart's other codes, with the coder's optional `evidence` spans; a code the validators rejected (a "
        "suggestion to accept, or a new code) needs a `reason`, and is audited as a guardrail override.",
        responses={
            409: {"description": "The chart changed since expected_version, or is finalised."},
            422: {
                "description": "A malformed request, or a code the validators rejected without a reason "
                "(`error.type` OverrideReasonRequiredError; `error.rules`: code -> rule ids; `error.verdicts`: "
                "per code its rules, reasons and warnings)."
            },
        },
    )
    def review_chart(request: Request, chart_id: ChartId, body: ReviewRequest) -> dict[str, Any]:
        user = acting_as(principal(request), body.user, "user")
        return service(request).review(chart_id, body, user=user)

    @signed_in.get(
        "/search",
        tags=["review"],
        summary="Find a code to add: exact code, then retrieval",
        response_model=list[SearchHit],
    )
    def search_codes(
        request: Request,
        q: Annotated[str, Query(min_length=1, max_length=500, description="A code or words.")],
        top_k: Annotated[int, Query(ge=1, le=50)] = 10,
        chart_id: Annotated[
            int | None, Query(ge=1, le=_MAX_ID, description="Use this chart's date of service.")
        ] = None,
        date_of_service: dt.date | None = None,
    ) -> list[SearchHit]:
        svc = service(request)
        if chart_id is not None:
            date_of_service = svc.queue.get(chart_id, include_text=False).date_of_service
        return svc.search(q, top_k=top_k, date_of_service=date_of_service)

    @api.get("/metrics", tags=["metrics"], summary="Acceptance, edit and override rates; queue size and age")
    def get_metrics(
        request: Request,
        since: Annotated[dt.datetime | None, Query(description="Charts created at or after (UTC if no zone).")] = None,
        note_type: Annotated[str | None, Query(max_length=100)] = None,
    ) -> dict[str, Any]:
        if since is not None and since.tzinfo is None:
            since = since.replace(tzinfo=dt.UTC)
        return service(request).metrics(since=since, note_type=note_type)

    # -- blinded audits: an auditor sees the note only; an adjudicator the note and both answers ----
    @audits.post("/audit/batches", tags=["audit"], summary="Draw charts into a blinded audit batch")
    def audit_sample(request: Request, body: AuditSampleRequest) -> dict[str, Any]:
        by = acting_as(principal(request), body.by, "by")
        batch = service(request).audit_sample(by=by, seed=body.seed, review_sample=body.review_sample)
        return batch.model_dump(mode="json")

    @audits.get("/audit/tasks", tags=["audit"], summary="Tasks you can code blind (no codes, routing or case type)")
    def audit_tasks(request: Request, auditor: Person = None) -> list[dict[str, Any]]:
        name = acting_as(principal(request), auditor, "auditor")
        return [t.model_dump(mode="json") for t in service(request).audit_tasks(name)]

    @audits.get("/audit/tasks/{task_id}", tags=["audit"], summary="A task's note and metadata, blind")
    def audit_task(request: Request, task_id: TaskId, auditor: Person = None) -> dict[str, Any]:
        name = acting_as(principal(request), auditor, "auditor")
        return service(request).audit_task(task_id, name).model_dump(mode="json")

    @audits.post("/audit/tasks/{task_id}/answer", tags=["audit"], summary="Your blind codes for the note (final)")
    def audit_answer(request: Request, task_id: TaskId, body: AuditAnswerRequest) -> dict[str, Any]:
        name = acting_as(principal(request), body.auditor, "auditor")
        return service(request).audit_answer(task_id, name, body.codes).model_dump(mode="json")

    @audits.get("/audit/disputes", tags=["audit"], summary="Disputed tasks you can adjudicate")
    def audit_disputes(request: Request, adjudicator: Person = None) -> list[dict[str, Any]]:
        name = acting_as(principal(request), adjudicator, "adjudicator")
        return [t.model_dump(mode="json") for t in service(request).disputes(name)]

    @audits.get("/audit/disputes/{task_id}", tags=["audit"], summary="A dispute: the note and both answers (A, B)")
    def audit_dispute(request: Request, task_id: TaskId, adjudicator: Person = None) -> dict[str, Any]:
        name = acting_as(principal(request), adjudicator, "adjudicator")
        return service(request).dispute(task_id, name).model_dump(mode="json")

    @audits.post("/audit/disputes/{task_id}/decision", tags=["audit"], summary="Decide the gold label")
    def audit_decide(request: Request, task_id: TaskId, body: AdjudicationRequest) -> dict[str, Any]:
        name = acting_as(principal(request), body.adjudicator, "adjudicator")
        detail = service(request).adjudicate(task_id, name, body.codes, body.reason)
        return {"task_id": detail.task_id, "status": detail.status, "gold": detail.gold}

    @signed_in.get("/autonomy", tags=["audit"], summary="Earned autonomy: measured accuracy, thresholds, grants")
    def autonomy_report(request: Request) -> dict[str, Any]:
        return service(request).autonomy_report()

    def _utc(moment: dt.datetime | None) -> dt.datetime | None:
        return moment.replace(tzinfo=dt.UTC) if moment is not None and moment.tzinfo is None else moment

    @api.get(
        "/monitor/report",
        tags=["monitoring"],
        summary="KPIs per window, drift status and alerts, dollars at risk, denial risk, with SVG plots",
    )
    def get_monitor_report(
        request: Request,
        since: Annotated[dt.datetime | None, Query(description="Charts coded at or after (UTC if no zone).")] = None,
        until: Annotated[dt.datetime | None, Query(description="Charts coded before (UTC if no zone).")] = None,
        window: Annotated[str, Query(max_length=10, description="week, day, month or N days like 14d.")] = "week",
        by: GroupBy = "case_type",
    ) -> dict[str, Any]:
        return service(request).monitor_report(since=_utc(since), until=_utc(until), window=window, group_by=by)

    @api.get(
        "/monitor/cdi",
        tags=["monitoring"],
        summary="Clinician documentation feedback: the most frequent gaps per group as CDI queries",
    )
    def get_cdi_report(
        request: Request,
        since: Annotated[dt.datetime | None, Query()] = None,
        until: Annotated[dt.datetime | None, Query()] = None,
        by: GroupBy = "provider_id",
        limit: Annotated[int, Query(ge=1, le=200)] = 20,
    ) -> dict[str, Any]:
        return service(request).cdi_report(since=_utc(since), until=_utc(until), group_by=by, limit=limit)

    app.include_router(signed_in)
    app.include_router(api)
    app.include_router(audits)
    return app
