"""The benchmark's verdict on its targets, from a run's results (``bench/targets.py``)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture(scope="module")
def targets() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_targets", BENCH / "targets.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module


def _result(batch: float, single: float, p99: float, reads: tuple[float, float] | None) -> dict:
    result: dict = {
        "ratio_batch_to_ceiling": batch,
        "ratio_single_to_bare": {"peak": single, "by_connections": {}},
        "batch_100_at_80pct": {"p99_ms": p99},
    }
    if reads is not None:
        timeline, recent = reads
        result["reads"] = {"read_port": {"timeline_p99_ms": timeline, "recent_p99_ms": recent}}
    return result


def test_each_target_is_met_or_not_by_its_bound(targets: ModuleType) -> None:
    results = {
        "sqlite": _result(0.733, 0.934, 84.8, (4.72, 2.41)),
        "postgresql": _result(0.5, 0.699, 100.0, (11.4, 9.99)),
    }

    found = targets.verdicts(results, ["sqlite", "postgresql"])

    assert [(v.database, v.value, v.met) for v in found] == [
        ("sqlite", 0.733, True),
        ("sqlite", 0.934, True),
        ("sqlite", 84.8, True),
        ("sqlite", 4.72, True),
        ("sqlite", 2.41, True),
        ("postgresql", 0.5, True),  # at least the bound
        ("postgresql", 0.699, False),
        ("postgresql", 100.0, False),  # p99 must be below 100 ms
        ("postgresql", 11.4, False),
        ("postgresql", 9.99, True),
    ]
    assert [v.bound for v in found[:5]] == [
        ">= 0.5 x",
        ">= 0.7 x",
        "< 100 ms",
        "< 10 ms",
        "< 10 ms",
    ]


def test_reads_skipped_are_not_measured_not_failed(targets: ModuleType) -> None:
    found = targets.verdicts({"sqlite": _result(0.6, 0.8, 50, None)}, ["sqlite"])

    assert [v.met for v in found] == [True, True, True, None, None]
    table = targets.render(found)
    assert table.count("not measured") == 2
    assert "NOT MET" not in table
    json.dumps(targets.as_json(found))  # stored with the run's results


def test_the_table_names_every_target_and_verdict(targets: ModuleType) -> None:
    found = targets.verdicts({"postgresql": _result(0.4, 0.9, 150, (5, 5))}, ["postgresql"])

    lines = targets.render(found).splitlines()

    assert lines[0].startswith("targets")
    assert len(lines) == 1 + len(targets.TARGETS)
    assert lines[1].split()[-2:] == ["NOT", "MET"] and "0.4" in lines[1]
    assert lines[3].endswith("NOT MET") and "150" in lines[3]
    assert all(line.endswith(" met") for line in (lines[2], lines[4], lines[5]))
