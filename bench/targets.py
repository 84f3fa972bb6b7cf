"""The targets a benchmark run is held to (docs/benchmark.md), checked against its results:
what ``ingest.py`` prints last and stores under ``targets``."""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

_AT_LEAST = (">=", operator.ge)
_BELOW = ("<", operator.lt)


@dataclass(frozen=True)
class Target:
    name: str
    path: tuple[str, ...]  # where the figure is in a database's results
    bound: float
    compare: tuple[str, Callable[[float, float], bool]]
    unit: str = ""


TARGETS = [
    Target("100-event batches / raw ceiling", ("ratio_batch_to_ceiling",), 0.5, _AT_LEAST, "x"),
    Target(
        "single events / bare FastAPI (peaks)",
        ("ratio_single_to_bare", "peak"),
        0.7,
        _AT_LEAST,
        "x",
    ),
    Target("p99 at 80 % of peak", ("batch_100_at_80pct", "p99_ms"), 100, _BELOW, "ms"),
    Target(
        "timeline p99 under ingest (read port)",
        ("reads", "read_port", "timeline_p99_ms"),
        10,
        _BELOW,
        "ms",
    ),
    Target(
        "recent events p99 under ingest (read port)",
        ("reads", "read_port", "recent_p99_ms"),
        10,
        _BELOW,
        "ms",
    ),
]


@dataclass(frozen=True)
class Verdict:
    database: str
    target: str
    value: float | None  # None: not measured in this run
    bound: str
    met: bool | None


def verdicts(results: dict[str, Any], databases: list[str]) -> list[Verdict]:
    """Each target for each database benchmarked, met or not (None when not measured: a run
    with ``--read-events 0``)."""
    found = []
    for database in databases:
        for target in TARGETS:
            value = _figure(results.get(database, {}), target.path)
            sign, compare = target.compare
            met = None if value is None else compare(value, target.bound)
            bound = f"{sign} {target.bound:g}{' ' + target.unit if target.unit else ''}"
            found.append(Verdict(database, target.name, value, bound, met))
    return found


def _figure(result: dict[str, Any], path: tuple[str, ...]) -> float | None:
    value: Any = result
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return float(value)


def as_json(found: list[Verdict]) -> list[dict[str, Any]]:
    return [asdict(verdict) for verdict in found]


def render(found: list[Verdict]) -> str:
    """A table to read at a glance, one target per line."""
    lines = ["targets (this machine, this run):"]
    for v in found:
        value = "-" if v.value is None else f"{v.value:g}"
        met = {True: "met", False: "NOT MET", None: "not measured"}[v.met]
        lines.append(f"  {v.database:<11} {v.target:<44} {value:>8}  {v.bound:<9} {met}")
    return "\n".join(lines)
