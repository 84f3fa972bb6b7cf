"""Trackline: a self-hosted customer event platform."""

__version__ = "0.1.0"
