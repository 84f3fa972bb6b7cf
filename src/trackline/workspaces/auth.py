"""Who is calling: the API key from the request, its workspace and scopes."""

from __future__ import annotations

import asyncio
import base64
import binascii
import threading
import time
from dataclasses import dataclass

from starlette.requests import Request

from trackline.errors import Forbidden, Unauthorized
from trackline.storage.database import Database
from trackline.workspaces import store
from trackline.workspaces.service import hash_key


@dataclass(frozen=True, slots=True)
class Principal:
    key_id: str
    workspace_id: str
    scopes: frozenset[str]

    def require(self, scope: str) -> None:
        if scope not in self.scopes and "admin" not in self.scopes:
            raise Forbidden(f"this key lacks the {scope!r} scope", code="insufficient_scope")


class KeyCache:
    """Key look-ups cached for a few seconds per process: a revoked key stops working within
    ``ttl_s``. Unknown keys are cached too, so a flood of bad keys costs no queries. A key's
    requests that miss the cache together share one look-up: when an entry expires under
    load, hundreds of requests in flight would otherwise each query the database for it."""

    def __init__(self, db: Database, ttl_s: float) -> None:
        self.db = db
        self.ttl_s = ttl_s
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[float, Principal | None]] = {}
        self._pending: dict[str, asyncio.Future[Principal | None]] = {}

    async def _lookup(self, key_hash: str) -> Principal | None:
        record = await self.db.reading(store.key_by_hash, key_hash=key_hash)
        if record is None or record.revoked_at is not None:
            return None
        return Principal(record.id, record.workspace_id, frozenset(record.scopes))

    async def principal(self, secret: str) -> Principal | None:
        key_hash = hash_key(secret)
        cached = self._entries.get(key_hash)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        loop = asyncio.get_running_loop()
        pending = self._pending.get(key_hash)
        if pending is None or pending.get_loop() is not loop:
            pending = loop.create_task(self._refresh(key_hash))
            self._pending[key_hash] = pending
        # Shielded: a request that goes away does not cancel the look-up the others wait for.
        return await asyncio.shield(pending)

    async def _refresh(self, key_hash: str) -> Principal | None:
        now = time.monotonic()
        try:
            found = await self._lookup(key_hash)
        finally:
            if self._pending.get(key_hash) is asyncio.current_task():
                self._pending.pop(key_hash, None)
        if self.ttl_s > 0:
            with self._lock:
                if len(self._entries) > 10_000:
                    self._entries.clear()
                self._entries[key_hash] = (now + self.ttl_s, found)
        return found


def secret_from_headers(request: Request, *, allow_basic: bool = False) -> str | None:
    """``Authorization: Bearer <key>``, or with ``allow_basic`` HTTP Basic with the key as user."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    if allow_basic and scheme.lower() == "basic" and value.strip():
        try:
            user = base64.b64decode(value.strip(), validate=True).decode().partition(":")[0]
        except (binascii.Error, UnicodeDecodeError):
            return None
        return user or None
    return None


async def authorize(cache: KeyCache, secret: str | None, scope: str) -> Principal:
    """The caller of ``secret``, who must hold ``scope`` (or ``admin``)."""
    principal = await authenticate(cache, secret)
    principal.require(scope)
    return principal


async def authenticate(cache: KeyCache, secret: str | None) -> Principal:
    if not secret:
        raise Unauthorized("missing API key: send Authorization: Bearer <key>", code="missing_key")
    principal = await cache.principal(secret)
    if principal is None:
        raise Unauthorized("unknown or revoked API key", code="invalid_key")
    return principal
