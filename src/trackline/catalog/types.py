"""Property types, coercion of values to a declared type, and the naming rule. Pure.

Types: ``string``, ``number``, ``boolean``, ``time``, ``array_string``, ``array_number``,
``json``. A declared type coerces a value only when nothing is lost; otherwise it refuses.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from trackline.clock import to_iso
from trackline.errors import InvalidInput
from trackline.ingest import values

TYPES = ("string", "number", "boolean", "time", "array_string", "array_number", "json")
STANDARD_EVENTS = frozenset(
    {
        "signed_up",
        "logged_in",
        "logged_out",
        "purchase_completed",
        "subscription_started",
        "subscription_cancelled",
    }
)
_SNAKE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
_NUMBER = re.compile(r"^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$")


class Refused(Exception):
    """A value that cannot become the declared type without loss."""


def naming(name: str) -> str:
    """``ok`` for an ``object_action`` snake_case name, otherwise what is wrong with it."""
    if name.startswith("@") and name in values.AUTO_COLLECTED:
        return "ok"
    if not _SNAKE.match(name):
        return "not snake_case: use lower-case words joined by _ (object_action)"
    if "_" not in name:
        return "one word: use the object_action form, for example purchase_completed"
    return "ok"


def _to_number(value: Any) -> int | float:
    if isinstance(value, bool):
        raise Refused("a boolean is not a number")
    if isinstance(value, int | float):
        return value
    if isinstance(value, str) and _NUMBER.match(value):
        if "." not in value and "e" not in value.lower():
            integer = int(value)
            if not -(2**63) <= integer < 2**63:
                raise Refused(f"{value!r} is out of the 64-bit integer range")
            return integer
        number = float(value)
        if not math.isfinite(number):
            raise Refused(f"{value!r} is out of range")
        return number
    raise Refused(f"{_show(value)} is not a number")


def _to_string(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    raise Refused(f"{_show(value)} is not a string")


def _to_boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise Refused(f"{_show(value)} is not a boolean")


def _to_time(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise Refused(f"{_show(value)} is not a time")
    if isinstance(value, float) and not value.is_integer():
        raise Refused(f"{value!r} is not a whole number of milliseconds")
    try:
        return to_iso(values.parse_time(value, field=""))
    except InvalidInput as exc:
        raise Refused(exc.message) from None


def _to_array(item: Callable[[Any], Any], kind: str) -> Callable[[Any], list[Any]]:
    def convert(value: Any) -> list[Any]:
        if not isinstance(value, list):
            raise Refused(f"{_show(value)} is not an array of {kind}s")
        try:
            return [item(v) for v in value]
        except Refused as exc:
            raise Refused(f"an element: {exc}") from None

    return convert


def _to_json(value: Any) -> Any:
    if isinstance(value, dict) or (
        isinstance(value, list) and all(isinstance(v, dict) for v in value)
    ):
        return value
    raise Refused(f"{_show(value)} is not an object or an array of objects")


def _strict_string(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise Refused(f"{_show(value)} is not a string")


CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "string": _to_string,
    "number": _to_number,
    "boolean": _to_boolean,
    "time": _to_time,
    "array_string": _to_array(_strict_string, "string"),
    "array_number": _to_array(_to_number, "number"),
    "json": _to_json,
}


def coerce(value: Any, declared: str) -> Any:
    """``value`` as the ``declared`` type, or ``Refused``. ``null`` stays null for every type."""
    if value is None:
        return None
    return CONVERTERS[declared](value)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def check_type(name: Any, *, field: str) -> str:
    if name not in TYPES:
        raise InvalidInput(
            f"unknown type {name!r}; use one of {', '.join(TYPES)}",
            field=field,
            code="invalid_type",
        )
    return str(name)
