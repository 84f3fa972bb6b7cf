"""Identifiers: time-ordered event ids (UUIDv7), person UUIDs, workspace and key ids."""

from __future__ import annotations

import os
import secrets
import struct
import threading
import uuid


class EventIds:
    """UUIDv7 generator, monotonic within a process even within one millisecond."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_ms = -1
        self._seq = 0

    def new(self, now_ms: int) -> str:
        return self.many(now_ms, 1)[0]

    def many(self, now_ms: int, count: int) -> list[str]:
        """``count`` ids in order (a commit's worth in one call: one lock, one random draw)."""
        # One random value per id, and one for the sequence's start in a new millisecond
        # (a random start keeps the ids unguessable).
        *randoms, start = struct.unpack(f">{count + 1}Q", os.urandom(8 * (count + 1)))
        ids = []
        with self._lock:
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
