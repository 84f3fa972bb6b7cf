"""Identifiers: time-ordered event ids (UUIDv7), person UUIDs, workspace and key ids."""

from __future__ import annotations

import os
import secrets
import struct
import threading
import uuid
import weakref

RANDOM_POOL_BYTES = 8192  # randomness drawn from the system at a time: 1,023 single ids


class EventIds:
    """UUIDv7 generator, monotonic within a process even within one millisecond."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_ms = -1
        self._seq = 0
        self._pool = b""  # random bytes from ``os.urandom``, used from ``_used`` on
        self._used = 0
        # A forked child must not reuse its parent's pool: both would make the same ids.
        forget = weakref.WeakMethod(self._forget_pool)
        os.register_at_fork(after_in_child=lambda: (method := forget()) and method())

    def new(self, now_ms: int) -> str:
        return self.many(now_ms, 1)[0]

    def many(self, now_ms: int, count: int) -> list[str]:
        """``count`` ids in order (a commit's worth in one call: one lock, one random draw)."""
        ids = []
        with self._lock:
            # One random value per id, and one for the sequence's start in a new millisecond
            # (a random start keeps the ids unguessable).
            *randoms, start = self._draw(count + 1)
            ms, seq = self._last_ms, self._seq
            for rand in randoms:
                if now_ms <= ms:
                    seq += 1
                    if seq >= 1 << 12:
                        ms += 1
                        seq = 0
                else:  # the first id of the call, once per millisecond at most
                    ms, seq = now_ms, start & 0x3FF
                value = (ms & _MS_BITS) << 80 | _VERSION_SEQ | seq << 64 | _VARIANT | rand & _RAND
                ids.append(f"evt_{value:032x}")
            self._last_ms, self._seq = ms, seq
        return ids

    def _forget_pool(self) -> None:
        self._pool, self._used = b"", 0

    def _draw(self, count: int) -> tuple[int, ...]:
        """``count`` random 64-bit values (with the lock held), from a pool refilled
        ``RANDOM_POOL_BYTES`` at a time. ``os.urandom`` lets go of the interpreter lock for
        its system call, and the event loop, which draws a request's ids, then waits for the
        writer or the parse thread to give it back: once per request, drawn one by one
        (docs/benchmark.md, round 15)."""
        size = 8 * count
        if self._used + size > len(self._pool):
            self._pool, self._used = os.urandom(max(RANDOM_POOL_BYTES, size)), 0
        values = struct.unpack_from(f">{count}Q", self._pool, self._used)
        self._used += size
        return values


_MS_BITS = (1 << 48) - 1
_VERSION_SEQ = 0x7 << 76
_VARIANT = 0b10 << 62
_RAND = (1 << 62) - 1


def new_person_id() -> str:
    return str(uuid.uuid4())


def new_workspace_id() -> str:
    return "ws_" + secrets.token_hex(6)


def new_key_id() -> str:
    return "key_" + secrets.token_hex(8)


def new_key_secret() -> str:
    return "tl_" + secrets.token_urlsafe(32)
