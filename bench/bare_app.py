"""The reference for single-event requests: a bare FastAPI endpoint that only parses the body.
Run by bench/ingest.py as ``python bench/bare_app.py PORT``."""

from __future__ import annotations

import sys

import orjson
import uvicorn
from fastapi import FastAPI, Request
from starlette.responses import Response


def create() -> FastAPI:
    app = FastAPI()

    @app.post("/api/v1/track")
    async def track(request: Request) -> Response:
        orjson.loads(await request.body())
        return Response(b'{"success":true}', media_type="application/json")

    @app.get("/health")
    async def health() -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    return app


if __name__ == "__main__":
    uvicorn.run(
        create(), host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False
    )
