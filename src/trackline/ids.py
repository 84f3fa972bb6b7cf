"""Identifiers: time-ordered event ids (UUIDv7), person UUIDs, workspace and key ids."""

from __future__ import annotations

import os
import secrets
import threading
import uuid


class EventIds:
    """UUIDv7 generator, monotonic within a process even within one millisecond."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_ms = -1
        self._seq = 0
        self._random = b""  # drawn from os.urandom 8 KiB at a time: one system call per 1k ids
        self._used = 0

    def new(self, now_ms: int) -> str:
        with self._lock:
            if now_ms <= self._last_ms:
                now_ms = self._last_ms
                self._seq += 1
                if self._seq >= 1 << 12:
                    now_ms += 1
                    self._seq = 0
            else:
                self._seq = self._draw() & 0x3FF
            self._last_ms = now_ms
            seq = self._seq
            rand = self._draw() & ((1 << 62) - 1)
        value = (now_ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | seq << 64 | 0b10 << 62 | rand
        return "evt_" + f"{value:032x}"

    def _draw(self) -> int:
        """64 random bits (with the lock held)."""
        if self._used + 8 > len(self._random):
            self._random, self._used = os.urandom(8192), 0
        self._used += 8
        return int.from_bytes(self._random[self._used - 8 : self._used], "big")


def new_person_id() -> str:
    return str(uuid.uuid4())


def new_workspace_id() -> str:
    return "ws_" + secrets.token_hex(6)


def new_key_id() -> str:
    return "key_" + secrets.token_hex(8)


def new_key_secret() -> str:
    return "tl_" + secrets.token_urlsafe(32)
