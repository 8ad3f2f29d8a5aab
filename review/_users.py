"""API users: per-person bearer tokens with a role, kept in the review store.

Roles: ``coder`` (code notes, review and finalise charts, read the queue, metrics and reports),
``auditor`` (blinded audits: draw batches, code tasks blind, adjudicate; never the charts, which show the
machine's codes) and ``admin`` (everything). A token is shown once when it is created; the store keeps
only its sha256 digest (a token is 256 random bits, so a fast digest cannot be brute-forced). Adding and
revoking users are audit-log events in the same transaction. The copilot's shared ``MEDCODE_API_TOKEN`` is
not a user: it is the loopback-only bootstrap admin, recorded as ``bootstrap-admin``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
import threading
import time
from typing import Literal

from pydantic import BaseModel, ConfigDict
from sqlalchemy import select

from medcode.config import Settings
from medcode.errors import InputError
from medcode.review._audit import append_record
from medcode.review._store import ReviewStore, users

__all__ = ["BOOTSTRAP_USER", "ROLES", "Principal", "Role", "User", "UserDirectory", "token_digest"]

Role = Literal["coder", "auditor", "admin"]
ROLES: tuple[Role, ...] = ("coder", "auditor", "admin")
BOOTSTRAP_USER = "bootstrap-admin"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$")
_RESERVED = {BOOTSTRAP_USER, "auto"}
_TOKEN_PREFIX = "mc_"


def token_digest(token: str) -> str:
    """Hex sha256 of a token's UTF-8 bytes (what the store keeps)."""
    return hashlib.sha256(token.encode("utf-8", errors="surrogatepass")).hexdigest()


class User(BaseModel):
    """A user as listed: never the token or its digest."""

    model_config = ConfigDict(frozen=True)

    name: str
    role: Role
    created_at: str
    created_by: str
    revoked_at: str | None = None
    revoked_by: str | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


class Principal(BaseModel):
    """Who a request is authenticated as. ``bootstrap`` marks the shared ``MEDCODE_API_TOKEN``."""

    model_config = ConfigDict(frozen=True)

    name: str
    role: Role
    bootstrap: bool = False

    def can(self, *roles: Role) -> bool:
        """Whether this principal holds one of ``roles`` (``admin`` holds every role)."""
        return self.role == "admin" or self.role in roles


def _check_name(name: str) -> str:
    if not _NAME.match(name):
        raise InputError(
            "user name must be 1-100 characters of letters, digits, '.', '_', '@' or '-', starting with a letter "
            "or digit"
        )
    if name in _RESERVED:
        raise InputError(f"user name {name!r} is reserved")
    return name


class UserDirectory:
    """The users of one review database. Thread-safe; ``authenticate`` caches answers for ``cache_s`` seconds.

    Raises ``StoreError`` when the database cannot be opened or written (see ``ReviewStore``).
    """

    def __init__(self, settings: Settings, *, create: bool = True, cache_s: float = 2.0) -> None:
        self.store = ReviewStore(settings, create=create, what="user directory")
        self.store_note_text = settings.audit_store_note_text
        self.cache_s = cache_s
        self._cache: dict[str, tuple[float, Principal | None]] = {}
        self._lock = threading.Lock()

    def __enter__(self) -> UserDirectory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the store's connections."""
        self.store.close()

    def add(self, name: str, role: str, *, by: str) -> tuple[User, str]:
        """Create a user; returns the user and their token (shown once, never stored).

        Raises ``InputError`` for a bad or taken name (a revoked user's name stays taken) or an unknown role.
        """
        name = _check_name(name)
        if role not in ROLES:
            raise InputError(f"unknown role {role!r}; choose one of {', '.join(ROLES)}")
        token = _TOKEN_PREFIX + secrets.token_urlsafe(32)
        at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        with self.store.write() as conn:
            if conn.execute(select(users.c.user_id).where(users.c.name == name)).first() is not None:
                raise InputError(f"user {name!r} already exists (revoked names are not reused)")
            conn.execute(
                users.insert().values(
                    name=name, role=role, token_sha256=token_digest(token), created_at=at, created_by=by
                )
            )
            payload = {"user": name, "role": role, "by": by}
            append_record(self.store, conn, "user_added", payload, chart_id=None, allow_text=self.store_note_text)
        return User(name=name, role=role, created_at=at, created_by=by), token

    def revoke(self, name: str, *, by: str) -> User:
        """Revoke a user's token at once (cached answers expire within ``cache_s``).

        Raises ``InputError`` for an unknown or already revoked user.
        """
        at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        with self.store.write() as conn:
            row = conn.execute(select(users.c.revoked_at).where(users.c.name == name)).first()
            if row is None:
                raise InputError(f"no user {name!r} (see 'medcode users list')")
            if row[0] is not None:
                raise InputError(f"user {name!r} was already revoked at {row[0]}")
            conn.execute(users.update().where(users.c.name == name).values(revoked_at=at, revoked_by=by))
            append_record(self.store, conn, "user_revoked", {"user": name, "by": by}, chart_id=None, allow_text=False)
        with self._lock:
            self._cache.clear()
        return next(u for u in self.list() if u.name == name)

    def list(self) -> list[User]:
        """Every user, active and revoked, by name."""
        columns = (
            users.c.name,
            users.c.role,
            users.c.created_at,
            users.c.created_by,
            users.c.revoked_at,
            users.c.revoked_by,
        )
        with self.store.read() as conn:
            rows = conn.execute(select(*columns).order_by(users.c.name)).all()
        return [
            User(name=r[0], role=r[1], created_at=r[2], created_by=r[3], revoked_at=r[4], revoked_by=r[5]) for r in rows
        ]

    def authenticate(self, token: str) -> Principal | None:
        """The active user holding ``token``, or None. Raises ``StoreError`` when the store cannot be read."""
        digest = token_digest(token)
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(digest)
        if cached is not None and now - cached[0] < self.cache_s:
            return cached[1]
        with self.store.read() as conn:
            row = conn.execute(
                select(users.c.name, users.c.role).where(users.c.token_sha256 == digest, users.c.revoked_at.is_(None))
            ).first()
        principal = Principal(name=row[0], role=row[1]) if row else None
        with self._lock:
            if len(self._cache) > 1_000:
                self._cache.clear()
            self._cache[digest] = (now, principal)
        return principal
