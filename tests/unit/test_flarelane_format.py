"""FlareLane's track call (spec 7, seed 001): subjectType/subjectId, type, data, timestamp,
strictness about unknown fields, field paths under FlareLane's own names, and the limits.
Pure, no database: the parser gets an explicit ``now_ms``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from trackline.errors import InvalidInput, PayloadTooLarge
from trackline.ingest.formats import flarelane
from trackline.ingest.model import CanonicalEvent, Parsed
from trackline.settings import Limits

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
NOW = (datetime(2024, 4, 19, 6, 0, tzinfo=UTC) - EPOCH) // timedelta(milliseconds=1)
DAY = 24 * 3600 * 1000
EVENT_BYTES = 32 * 1024
# Seed 001's example body, as its curl command shows it.
SEED_BODY = (
    '{ "events": [ { "subjectType": "user", "subjectId": "userid1", "type": "purchase", '
    '"data": { "productId": "123", "productName": "Product Name", "amount": 10000 } } ]}'
)


@pytest.fixture(scope="module")
def limits() -> Limits:
    return Limits()


def parse(items: list[Any], limits: Limits) -> Parsed:
    body = {"events": items}
    return flarelane.parse(body, now_ms=NOW, limits=limits, size=len(orjson.dumps(body)))


def item(**fields: Any) -> dict[str, Any]:
    """A valid FlareLane event (user ``u1``, type ``purchase``) with ``fields`` changed."""
    return {"subjectType": "user", "subjectId": "u1", "type": "purchase", **fields}


def test_seed_example(limits: Limits) -> None:
    body = orjson.loads(SEED_BODY)
    parsed = flarelane.parse(body, now_ms=NOW, limits=limits, size=len(SEED_BODY))
    assert parsed.errors == []
    assert parsed.events == [
        (
            0,
            CanonicalEvent(
                event="purchase",
                external_id="userid1",
                device_id=None,
                parameters={"productId": "123", "productName": "Product Name", "amount": 10000},
                timestamp=NOW,
            ),
        )
    ]
    assert parsed.raws == {0: body["events"][0]}


@dataclass(frozen=True)
class Case:
    """One row: a FlareLane event and the canonical attributes it yields."""

    id: str
    item: dict[str, Any]
    expected: dict[str, Any]


MAPPINGS = [
    Case("user_subject", item(), {"external_id": "u1", "device_id": None}),
    Case(
        "device_subject",
        item(subjectType="device", subjectId="dev-9"),
        {"external_id": None, "device_id": "dev-9"},
    ),
    Case("integer_subject_id", item(subjectId=123), {"external_id": "123"}),
    Case("type_is_the_event", item(type="@clicked"), {"event": "@clicked"}),
    Case(
        "data_is_the_parameters",
        item(data={"tags": ["a", "b"], "n": [1, 2.5], "ok": True, "gone": None}),
        {"parameters": {"tags": ["a", "b"], "n": [1, 2.5], "ok": True, "gone": None}},
    ),
    Case("no_data", item(), {"parameters": {}}),
    Case("null_data", item(data=None), {"parameters": {}}),
    Case("no_timestamp_is_now", item(), {"timestamp": NOW}),
    Case(
        "iso_timestamp_with_offset",
        item(timestamp="2024-04-19T14:23:56+09:00"),
        {"timestamp": NOW - (36 * 60 + 4) * 1000},  # 05:23:56Z
    ),
    Case("unix_ms_timestamp", item(timestamp=1681721331085), {"timestamp": 1681721331085}),
    Case("no_message_or_group", item(), {"message_id": None, "group_id": None, "context": {}}),
]


@pytest.mark.parametrize("case", MAPPINGS, ids=[c.id for c in MAPPINGS])
def test_mapping(case: Case, limits: Limits) -> None:
    parsed = parse([case.item], limits)
    assert parsed.errors == []
    [(position, event)] = parsed.events
    assert position == 0
    assert {name: getattr(event, name) for name in case.expected} == case.expected


@dataclass(frozen=True)
class Refusal:
    """One row: a FlareLane event at position 1 and the code and field path it is refused with."""

    id: str
    item: Any
    code: str
    field: str | None


REFUSALS = [
    Refusal("bad_subject_type", item(subjectType="person"), "invalid_subject_type", "subjectType"),
    Refusal(
        "subject_type_case",
        item(subjectType="User"),
        "invalid_subject_type",
        "subjectType",
    ),
    Refusal(
        "missing_subject_type",
        {"subjectId": "u1", "type": "e"},
        "invalid_subject_type",
        "subjectType",
    ),
    Refusal(
        "missing_subject_id",
        {"subjectType": "user", "type": "e"},
        "missing_identity",
        "subjectId",
    ),
    Refusal("null_subject_id", item(subjectId=None), "missing_identity", "subjectId"),
    Refusal("empty_subject_id", item(subjectId=""), "invalid_identity", "subjectId"),
    Refusal(
        "device_subject_id_too_long",
        item(subjectType="device", subjectId="d" * 256),
        "invalid_identity",
        "subjectId",
    ),
    Refusal("subject_id_object", item(subjectId={"id": 1}), "invalid_identity", "subjectId"),
    Refusal("unknown_field", item(properties={"a": 1}), "unknown_field", "properties"),
    Refusal("native_field_not_accepted", item(user_id="u1"), "unknown_field", "user_id"),
    Refusal(
        "missing_type",
        {"subjectType": "user", "subjectId": "u1"},
        "missing_event_name",
        "type",
    ),
    Refusal("type_not_a_string", item(type=5), "invalid_event_name", "type"),
    Refusal("reserved_type", item(type="@first_session"), "reserved_event_name", "type"),
    Refusal("mixed_array_in_data", item(data={"x": ["a", 1]}), "mixed_array", "data.x"),
    Refusal("invalid_array_in_data", item(data={"x": [True]}), "invalid_array", "data.x"),
    Refusal("data_not_an_object", item(data=[1, 2]), "invalid_properties", "data"),
    Refusal("nul_in_data", item(data={"x": "a\x00"}), "invalid_character", "data.x"),
    Refusal("bad_timestamp", item(timestamp="19/04/2024"), "invalid_timestamp", "timestamp"),
    Refusal("seconds_timestamp", item(timestamp=1681721331), "invalid_timestamp", "timestamp"),
    Refusal("future_timestamp", item(timestamp=NOW + 2 * DAY), "timestamp_in_future", "timestamp"),
    Refusal("not_an_object", "purchase", "invalid_event", None),
]


@pytest.mark.parametrize("case", REFUSALS, ids=[c.id for c in REFUSALS])
def test_refusal_uses_flarelane_field_names(case: Refusal, limits: Limits) -> None:
    parsed = parse([item(), case.item, item()], limits)
    assert [p for p, _ in parsed.events] == [0, 2]
    [error] = parsed.errors
    field = "events[1]" + (f".{case.field}" if case.field else "")
    assert (error.index, error.code, error.field) == (1, case.code, field)
    assert orjson.loads(error.payload) == case.item


def test_refused_item_names_its_subject_for_erasure(limits: Limits) -> None:
    [error] = parse([item(subjectType="device", subjectId="dev-1", type=None)], limits).errors
    assert (error.external_id, error.device_id) == (None, "dev-1")


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        ("events[0].parameters.a.b", "events[0].data.a.b"),
        ("events[0].external_id", "events[0].subjectId"),
        ("events[0].device_id", "events[0].subjectId"),
        ("events[0].event", "events[0].type"),
        ("events[0].timestamp", "events[0].timestamp"),
        ("events[0].parameters", "events[0].data"),
        ("events[1].parameters.x", "events[1].parameters.x"),  # another item's prefix: untouched
        (None, None),
    ],
)
def test_field_path_renaming(field: str | None, expected: str | None) -> None:
    assert flarelane._their_field(field, "events[0].") == expected


def test_oversized_item_refused_others_kept(limits: Limits) -> None:
    big = item(data={"blob": "x" * EVENT_BYTES})
    parsed = parse([item(), big], limits)
    assert [p for p, _ in parsed.events] == [0]
    [error] = parsed.errors
    assert (error.index, error.code, error.field) == (1, "event_too_large", "events[1]")


def test_item_at_the_size_limit_is_accepted(limits: Limits) -> None:
    padding = EVENT_BYTES - len(orjson.dumps(item(data={"blob": ""})))
    exact = item(data={"blob": "x" * padding})
    assert len(orjson.dumps(exact)) == EVENT_BYTES
    assert len(parse([exact, exact], limits).events) == 2
    over = item(data={"blob": "x" * (padding + 1)})
    assert parse([over, exact], limits).errors[0].code == "event_too_large"


@pytest.mark.parametrize(
    "body",
    [[], {"event": []}, {"events": {"subjectType": "user"}}, None, "events"],
    ids=["list", "wrong_key", "events_not_list", "null", "string"],
)
def test_invalid_body(body: Any, limits: Limits) -> None:
    with pytest.raises(InvalidInput) as info:
        flarelane.parse(body, now_ms=NOW, limits=limits, size=10)
    assert (info.value.code, info.value.field) == ("invalid_batch", "events")


def test_request_limit_of_events(limits: Limits) -> None:
    assert len(parse([item()] * 1000, limits).events) == 1000
    with pytest.raises(PayloadTooLarge) as info:
        parse([item()] * 1001, limits)
    assert (info.value.code, info.value.field, info.value.status) == (
        "batch_too_large",
        "events",
        413,
    )


def test_empty_events_list_is_accepted(limits: Limits) -> None:
    parsed = parse([], limits)
    assert (parsed.events, parsed.errors) == ([], [])
