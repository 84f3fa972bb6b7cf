"""Domain errors. Each has a stable ``code`` and an HTTP status; one handler renders them all as
``{"success": false, "error": {"code", "message", "field"}}``."""

from __future__ import annotations

from typing import Any


class TracklineError(Exception):
    """Base of every error the API reports."""

    code = "internal_error"
    status = 500

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        if code is not None:
            self.code = code

    def body(self) -> dict[str, Any]:
        return {
            "success": False,
            "error": {"code": self.code, "message": self.message, "field": self.field},
        }

    def headers(self) -> dict[str, str]:
        return {}


class InvalidInput(TracklineError):
    """The request or one event in it is not acceptable; ``code`` says why."""

    code = "invalid_request"
    status = 400


class PayloadTooLarge(TracklineError):
    code = "payload_too_large"
    status = 413


class Unauthorized(TracklineError):
    code = "unauthorized"
    status = 401

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": "Bearer"}


class Forbidden(TracklineError):
    code = "forbidden"
    status = 403


class NotFound(TracklineError):
    code = "not_found"
    status = 404


class ReadOnly(TracklineError):
    """A write sent to the read port (``serve --read-port``), which answers only reads."""

    code = "read_only"
    status = 405

    def headers(self) -> dict[str, str]:
        return {"Allow": "GET"}


class Conflict(TracklineError):
    code = "conflict"
    status = 409


class Overloaded(TracklineError):
    """The writer cannot take more work now; the client should retry after a pause."""

    code = "overloaded"
    status = 503

    def __init__(self, message: str, *, retry_after_s: int = 1) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_s)}


class Unavailable(TracklineError):
    code = "unavailable"
    status = 503

    def headers(self) -> dict[str, str]:
        return {"Retry-After": "5"}
