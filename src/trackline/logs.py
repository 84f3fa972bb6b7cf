"""Logging for server processes: Trackline's own messages at INFO in uvicorn's style."""

from __future__ import annotations

import logging


def configure_logging() -> None:
    logger = logging.getLogger("trackline")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s:     %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
