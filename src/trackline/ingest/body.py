"""Reading a request body with a size limit, gzip included, so a small bomb cannot exhaust
memory: the limit applies to the decompressed bytes."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.requests import Request

from trackline.errors import InvalidInput, PayloadTooLarge

KEEP_ON_REFUSAL = 64 * 1024  # bytes of an oversized body kept in the failed-events store


@dataclass(slots=True)
class Body:
    data: bytes
    too_large: bool = False  # data is then only the first KEEP_ON_REFUSAL bytes


async def read_body(request: Request, *, limit: int) -> Body:
    """The (decompressed) body, or the start of it with ``too_large`` set past ``limit``."""
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("identity", "", "gzip", "deflate"):
        raise InvalidInput(
            f"unsupported Content-Encoding {encoding!r}", code="unsupported_encoding"
        )
    inflater = (
        zlib.decompressobj(wbits=47 if encoding == "gzip" else 15)
        if encoding
        in (
            "gzip",
            "deflate",
        )
        else None
    )
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            data = inflater.decompress(chunk, limit + 1 - size) if inflater else chunk
            size += len(data)
            chunks.append(data)
            if size > limit:
                return Body(b"".join(chunks)[:KEEP_ON_REFUSAL], too_large=True)
        if inflater:
            if not inflater.eof:
                raise InvalidInput(f"the {encoding} body is truncated", code="invalid_encoding")
            tail = inflater.flush()
            size += len(tail)
            chunks.append(tail)
            if size > limit:
                return Body(b"".join(chunks)[:KEEP_ON_REFUSAL], too_large=True)
    except zlib.error as exc:
        raise InvalidInput(
            f"the body is not valid {encoding}: {exc}", code="invalid_encoding"
        ) from exc
    return Body(b"".join(chunks))


def parse_json(body: Body, *, limit: int) -> Any:
    """The body as JSON: 413 when it was over ``limit``, 400 ``invalid_json`` when not JSON."""
    if body.too_large:
        raise too_large(limit)
    return decode_json(body.data)


def decode_json(data: bytes | str) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"the body is not valid JSON: {exc}", code="invalid_json") from None


def too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"the request body is larger than {limit} bytes", code="payload_too_large"
    )
