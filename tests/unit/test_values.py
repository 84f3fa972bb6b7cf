"""The value rules of spec 3.3: property types, event names, identities and times. Pure, no
database; "now" is always passed in."""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from trackline.errors import InvalidInput
from trackline.ingest import values
from trackline.settings import Limits

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SPEC_DEPTH = 8  # spec 3.3: "nesting depth 8"
DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True)
class Case:
    """One row of a table: an input and either what comes back or the refusal (code, field)."""

    id: str
    value: Any
    expected: Any = None
    code: str | None = None
    field: str | None = None


def ids(cases: list[Case]) -> list[str]:
    return [case.id for case in cases]


@pytest.fixture(scope="module")
def limits() -> Limits:
    return Limits()


def ms_of(when: datetime) -> int:
    """Exact Unix milliseconds of an aware datetime, by integer arithmetic."""
    return (when - EPOCH) // timedelta(milliseconds=1)


def utc(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0, ms: int = 0) -> int:
    return ms_of(datetime(y, mo, d, h, mi, s, ms * 1000, tzinfo=UTC))


def typed(value: Any) -> Any:
    """``value`` with every scalar tagged by its type, so 1, 1.0 and True compare unequal."""
    if isinstance(value, dict):
        return {key: typed(item) for key, item in value.items()}
    if isinstance(value, list):
        return [typed(item) for item in value]
    return (type(value).__name__, value)


def nest(levels: int, *, through_arrays: bool = False) -> dict[str, Any]:
    """Properties whose ``values.depth`` is exactly ``levels`` (the properties object counts)."""
    inner: Any = "leaf"
    for level in range(levels - 1):
        # arrays alternate with objects: an array of arrays is refused for another reason
        inner = [inner] if through_arrays and level % 2 == 0 else {"k": inner}
    return {"a": inner}


def refusal(call: Any, *args: Any, **kwargs: Any) -> InvalidInput:
    with pytest.raises(InvalidInput) as info:
        call(*args, **kwargs)
    return info.value


# --- property values (spec 3.3) -------------------------------------------------------------

ACCEPTED_VALUES = [
    Case("string", "hello"),
    Case("empty-string", ""),
    Case("integer", 42),
    Case("negative-integer", -7),
    Case("big-integer", 2**63),
    Case("float", 99.99),
    Case("zero-float", 0.0),
    Case("true", True),
    Case("false", False),
    Case("null", None),
    Case("iso-time", "2024-04-19T14:23:56+09:00"),
    Case("iso-time-z", "2024-01-15T10:30:00.123Z"),
    Case("array-of-strings", ["product_a", "product_b"]),
    Case("array-of-ints", [1, 2, 3]),
    Case("array-of-floats", [1.5, 2.25]),
    Case("array-mixed-int-float", [1, 2.5, 3]),
    Case("empty-array", []),
    Case("object", {"sku": "PROD-001", "qty": 2}),
    Case("empty-object", {}),
    Case(
        "array-of-objects",
        [{"sku": "PROD-001", "name": "Widget", "quantity": 2}, {"sku": "PROD-002"}],
    ),
    Case("nested-json", {"a": {"b": {"c": [1, 2], "d": ["x"], "e": [{"f": None}]}}}),
]


@pytest.mark.parametrize("case", ACCEPTED_VALUES, ids=ids(ACCEPTED_VALUES))
def test_every_value_type_is_accepted_as_is(case: Case, limits: Limits) -> None:
    props = {"p": case.value}
    before = copy.deepcopy(props)
    result = values.check_properties(props, limits=limits, field="parameters")
    assert typed(result) == typed(before)


REFUSED_VALUES = [
    Case("mixed-number-string", {"a": [1, "a"]}, code="mixed_array", field="parameters.a"),
    Case("mixed-number-null", {"a": [1, None]}, code="mixed_array", field="parameters.a"),
    Case("mixed-object-number", {"a": [{"a": 1}, 1]}, code="mixed_array", field="parameters.a"),
    Case("mixed-bool-number", {"a": [True, 1]}, code="mixed_array", field="parameters.a"),
    Case("mixed-at-second-key", {"ok": 1, "b": ["x", 2]}, code="mixed_array", field="parameters.b"),
    Case("booleans", {"a": [True, False]}, code="invalid_array", field="parameters.a"),
    Case("nulls", {"a": [None]}, code="invalid_array", field="parameters.a"),
    Case("arrays", {"a": [[1]]}, code="invalid_array", field="parameters.a"),
    Case("arrays-of-strings", {"a": [["x"], ["y"]]}, code="invalid_array", field="parameters.a"),
    Case("too-deep-objects", nest(9), code="too_deep", field="parameters"),
    Case("too-deep-arrays", nest(9, through_arrays=True), code="too_deep", field="parameters"),
    Case("empty-name", {"": 1}, code="invalid_property_name", field="parameters."),
    Case("newline-name", {"a\nb": 1}, code="invalid_property_name", field="parameters.a\nb"),
    Case("nul-name", {"a\x00": 1}, code="invalid_property_name", field="parameters.a\x00"),
    Case("del-name", {"\x7f": 1}, code="invalid_property_name", field="parameters.\x7f"),
    Case(
        "long-name", {"n" * 256: 1}, code="invalid_property_name", field="parameters." + "n" * 256
    ),
    Case("list", [1, 2], code="invalid_properties", field="parameters"),
    Case("string", "a=1", code="invalid_properties", field="parameters"),
    Case("number", 5, code="invalid_properties", field="parameters"),
    Case("boolean", True, code="invalid_properties", field="parameters"),
]


@pytest.mark.parametrize("case", REFUSED_VALUES, ids=ids(REFUSED_VALUES))
def test_refused_properties_name_code_and_path(case: Case, limits: Limits) -> None:
    exc = refusal(values.check_properties, case.value, limits=limits, field="parameters")
    assert (exc.code, exc.field, exc.status) == (case.code, case.field, 400)
    assert exc.message


def test_the_field_prefix_is_kept_in_paths(limits: Limits) -> None:
    props = {"a": [1, "x"]}
    exc = refusal(values.check_properties, props, limits=limits, field="events[3].parameters")
    assert exc.field == "events[3].parameters.a"


@pytest.mark.parametrize("through_arrays", [False, True], ids=["objects", "arrays"])
def test_depth_eight_is_accepted_nine_is_not(through_arrays: bool, limits: Limits) -> None:
    assert limits.depth == SPEC_DEPTH
    ok, deep = nest(8, through_arrays=through_arrays), nest(9, through_arrays=through_arrays)
    assert (values.depth(ok), values.depth(deep)) == (8, 9)
    assert values.check_properties(ok, limits=limits, field="parameters") is ok
    exc = refusal(values.check_properties, deep, limits=limits, field="parameters")
    assert exc.code == "too_deep"


def test_a_255_character_property_name_is_accepted(limits: Limits) -> None:
    props = {"n" * 255: 1}
    assert values.check_properties(props, limits=limits, field="parameters") == props


def test_null_properties_are_empty(limits: Limits) -> None:
    assert values.check_properties(None, limits=limits, field="parameters") == {}


DEPTHS = [
    Case("scalar", 1, expected=0),
    Case("null", None, expected=0),
    Case("empty-object", {}, expected=1),
    Case("empty-array", [], expected=1),
    Case("flat-object", {"a": 1, "b": "x"}, expected=1),
    Case("object-in-object", {"a": {"b": 1}}, expected=2),
    Case("deepest-member-wins", {"a": 1, "b": [{"c": [1]}]}, expected=4),
]


@pytest.mark.parametrize("case", DEPTHS, ids=ids(DEPTHS))
def test_depth(case: Case) -> None:
    assert values.depth(case.value) == case.expected


# --- event names ----------------------------------------------------------------------------

CLIENT_AUTO_COLLECTED = [
    "@clicked",
    "@foreground_received",
    "@background_received",
    "@iam_displayed",
    "@iam_clicked",
    "@iam_closed",
]

GOOD_NAMES = [
    Case("snake", "purchase_completed"),
    Case("dotted", "custom.event_example"),
    Case("spaces", "Signed Up"),
    Case("unicode", "購入完了"),
    Case("one-char", "a"),
    Case("200-chars", "e" * 200),
    Case("at-inside", "mail@sent"),
] + [Case(name, name) for name in CLIENT_AUTO_COLLECTED]


@pytest.mark.parametrize("case", GOOD_NAMES, ids=ids(GOOD_NAMES))
def test_good_event_names(case: Case, limits: Limits) -> None:
    assert values.check_event_name(case.value, limits=limits) == case.value


BAD_NAMES = [
    Case("missing", None, code="missing_event_name"),
    Case("201-chars", "e" * 201, code="invalid_event_name"),
    Case("empty", "", code="invalid_event_name"),
    Case("number", 5, code="invalid_event_name"),
    Case("boolean", True, code="invalid_event_name"),
    Case("list", ["a"], code="invalid_event_name"),
    Case("object", {"name": "a"}, code="invalid_event_name"),
    Case("newline", "a\nb", code="invalid_event_name"),
    Case("tab", "a\tb", code="invalid_event_name"),
    Case("nul", "a\x00", code="invalid_event_name"),
    Case("del", "a\x7f", code="invalid_event_name"),
    Case("first-session", "@first_session", code="reserved_event_name"),
    Case("other-at-name", "@custom", code="reserved_event_name"),
    Case("bare-at", "@", code="reserved_event_name"),
    Case("at-case-differs", "@Clicked", code="reserved_event_name"),
    Case("at-prefix-of-known", "@clicked_twice", code="reserved_event_name"),
]


@pytest.mark.parametrize("case", BAD_NAMES, ids=ids(BAD_NAMES))
def test_bad_event_names(case: Case, limits: Limits) -> None:
    exc = refusal(values.check_event_name, case.value, limits=limits, field="events[2].event")
    assert (exc.code, exc.field) == (case.code, "events[2].event")


def test_auto_collected_list_is_the_spec_list() -> None:
    assert {"@first_session", *CLIENT_AUTO_COLLECTED} == values.AUTO_COLLECTED
    assert {"@first_session"} == values.SERVER_RECORDED


# --- identities -----------------------------------------------------------------------------

GOOD_IDENTITIES = [
    Case("string", "user_123", expected="user_123"),
    Case(
        "uuid",
        "550e8400-e29b-41d4-a716-446655440000",
        expected="550e8400-e29b-41d4-a716-446655440000",
    ),
    Case("int", 42, expected="42"),
    Case("zero", 0, expected="0"),
    Case("negative-int", -5, expected="-5"),
    Case("255-chars", "i" * 255, expected="i" * 255),
    Case("unicode", "ユーザー", expected="ユーザー"),
    Case("null", None, expected=None),
]


@pytest.mark.parametrize("case", GOOD_IDENTITIES, ids=ids(GOOD_IDENTITIES))
def test_good_identities(case: Case, limits: Limits) -> None:
    assert values.check_identity(case.value, limits=limits, field="user_id") == case.expected


BAD_IDENTITIES = [
    Case("true", True),
    Case("false", False),
    Case("empty", ""),
    Case("256-chars", "i" * 256),
    Case("int-over-255-digits", 10**300),
    Case("float", 1.5),
    Case("list", ["u"]),
    Case("object", {"id": "u"}),
    Case("newline", "user\n1"),
    Case("nul", "\x00"),
    Case("del", "u\x7f"),
]


@pytest.mark.parametrize("case", BAD_IDENTITIES, ids=ids(BAD_IDENTITIES))
def test_bad_identities(case: Case, limits: Limits) -> None:
    exc = refusal(values.check_identity, case.value, limits=limits, field="anonymousId")
    assert (exc.code, exc.field) == ("invalid_identity", "anonymousId")


# --- times ----------------------------------------------------------------------------------

GOOD_TIMES = [
    Case("iso-z", "2024-01-15T10:30:00Z", expected=utc(2024, 1, 15, 10, 30)),
    Case("iso-utc-offset", "2024-01-15T10:30:00+00:00", expected=utc(2024, 1, 15, 10, 30)),
    Case("iso-plus-9", "2024-04-19T14:23:56+09:00", expected=utc(2024, 4, 19, 5, 23, 56)),
    Case(
        "iso-plus-9-ms", "2024-04-19T14:23:56.789+09:00", expected=utc(2024, 4, 19, 5, 23, 56, 789)
    ),
    Case("iso-minus-5", "2024-01-15T21:30:00-05:00", expected=utc(2024, 1, 16, 2, 30)),
    Case("offset-crosses-day", "2024-01-01T01:00:00+09:00", expected=utc(2023, 12, 31, 16)),
    Case("naive-is-utc", "2024-01-15T10:30:00", expected=utc(2024, 1, 15, 10, 30)),
    Case("space-separator", "2024-01-15 10:30:00Z", expected=utc(2024, 1, 15, 10, 30)),
    Case("minutes-only", "2024-01-15T10:30Z", expected=utc(2024, 1, 15, 10, 30)),
    Case("ms-fraction", "2023-11-03T10:15:20.123Z", expected=utc(2023, 11, 3, 10, 15, 20, 123)),
    Case("tenths", "2024-01-15T10:30:00.5Z", expected=utc(2024, 1, 15, 10, 30, 0, 500)),
    Case(
        "micros-cut-to-ms", "2024-01-15T10:30:00.123456Z", expected=utc(2024, 1, 15, 10, 30, 0, 123)
    ),
    Case("epoch", "1970-01-01T00:00:00Z", expected=0),
    Case("epoch-in-plus-9", "1970-01-01T09:00:00+09:00", expected=0),
    Case("unix-ms-int", 1705314600123, expected=1705314600123),
    Case("unix-ms-float", 1705314600123.0, expected=1705314600123),
    Case("smallest-ms", 100_000_000_000, expected=100_000_000_000),
]


@pytest.mark.parametrize("case", GOOD_TIMES, ids=ids(GOOD_TIMES))
def test_good_times(case: Case) -> None:
    result = values.parse_time(case.value, field="ts")
    assert type(result) is int
    assert result == case.expected


BAD_TIMES = [
    Case("seconds", 1705314600),
    Case("seconds-float", 1705314600.5),
    Case("just-below-1e11", 99_999_999_999),
    Case("zero", 0),
    Case("negative", -1),
    Case("date-only", "2024-01-15"),
    Case("date-and-t", "2024-01-15T"),
    Case("hour-only", "2024-01-15T10"),
    Case("garbage", "yesterday"),
    Case("empty", ""),
    Case("bad-month", "2024-13-01T00:00:00Z"),
    Case("bad-hour", "2024-01-15T25:00:00Z"),
    Case("trailing-junk", "2024-01-15T10:30:00Z and more"),
    Case("slashes", "2024/01/15 10:30:00"),
    Case("pre-1970", "1969-12-31T23:59:59Z"),
    Case("pre-1970-ms", "1969-12-31T23:59:59.999Z"),
    Case("pre-1970-by-offset", "1970-01-01T08:59:59+09:00"),
    Case("long-ago", "1900-01-01T00:00:00Z"),
    Case("true", True),
    Case("false", False),
    Case("null", None),
    Case("list", [1705314600000]),
    Case("object", {"ms": 1705314600000}),
]


@pytest.mark.parametrize("case", BAD_TIMES, ids=ids(BAD_TIMES))
def test_bad_times(case: Case) -> None:
    exc = refusal(values.parse_time, case.value, field="events[1].timestamp")
    assert (exc.code, exc.field) == ("invalid_timestamp", "events[1].timestamp")


def test_iso_time_keeps_its_exact_millisecond_near_2004() -> None:
    assert values.parse_time("2004-01-10T16:13:48.182Z", field="ts") == utc(
        2004, 1, 10, 16, 13, 48, 182
    )


def test_a_time_a_fraction_of_a_millisecond_before_1970_is_refused() -> None:
    exc = refusal(values.parse_time, "1969-12-31T23:59:59.9999Z", field="ts")
    assert exc.code == "invalid_timestamp"


NOW = utc(2024, 1, 15, 10, 30)

EVENT_TIMES = [
    Case("default-now", None, expected=NOW),
    Case("past", "2020-05-01T00:00:00Z", expected=utc(2020, 5, 1)),
    Case("now", NOW, expected=NOW),
    Case("exactly-24h-ahead-ms", NOW + DAY_MS, expected=NOW + DAY_MS),
    Case("exactly-24h-ahead-iso", "2024-01-16T10:30:00Z", expected=NOW + DAY_MS),
    Case("24h-ahead-in-plus-9", "2024-01-16T19:30:00+09:00", expected=NOW + DAY_MS),
    Case("1ms-over-ms", NOW + DAY_MS + 1, code="timestamp_in_future"),
    Case("1ms-over-iso", "2024-01-16T10:30:00.001Z", code="timestamp_in_future"),
    Case("next-year", "2025-01-15T10:30:00Z", code="timestamp_in_future"),
    Case("seconds", NOW // 1000, code="invalid_timestamp"),
]


@pytest.mark.parametrize("case", EVENT_TIMES, ids=ids(EVENT_TIMES))
def test_event_time(case: Case, limits: Limits) -> None:
    assert limits.future_ms == DAY_MS
    if case.code is None:
        assert values.check_event_time(case.value, now_ms=NOW, limits=limits) == case.expected
        return
    exc = refusal(values.check_event_time, case.value, now_ms=NOW, limits=limits)
    assert (exc.code, exc.field) == (case.code, "timestamp")


def test_event_time_field_name_is_passed_through(limits: Limits) -> None:
    exc = refusal(
        values.check_event_time, "soon", now_ms=NOW, limits=limits, field="events[0].timestamp"
    )
    assert exc.field == "events[0].timestamp"


# --- inferred types -------------------------------------------------------------------------

INFERRED = [
    Case("null", None, expected="null"),
    Case("true", True, expected="boolean"),
    Case("false", False, expected="boolean"),
    Case("int", 3, expected="number"),
    Case("float", 2.5, expected="number"),
    Case("string", "hello", expected="string"),
    Case("empty-string", "", expected="string"),
    Case("date-only-is-string", "2024-01-15", expected="string"),
    Case("invalid-date-is-string", "2024-13-45T99:99", expected="string"),
    Case("time-z", "2024-01-15T10:30:00Z", expected="time"),
    Case("time-offset", "2024-04-19T14:23:56+09:00", expected="time"),
    Case("time-naive", "2024-01-15T10:30:00", expected="time"),
    Case("time-space", "2024-01-15 10:30", expected="time"),
    Case("array-string", ["a", "b"], expected="array_string"),
    Case("array-number", [1, 2.5], expected="array_number"),
    Case("empty-array", [], expected="array"),
    Case("object", {"a": 1}, expected="json"),
    Case("empty-object", {}, expected="json"),
    Case("array-of-objects", [{"sku": "x"}], expected="json"),
]


@pytest.mark.parametrize("case", INFERRED, ids=ids(INFERRED))
def test_infer_type(case: Case) -> None:
    assert values.infer_type(case.value) == case.expected


ISO_TEXT = [
    Case("z", "2024-01-15T10:30:00Z", expected=True),
    Case("offset", "2024-04-19T14:23:56+09:00", expected=True),
    Case("fraction", "2024-01-15T10:30:00.123Z", expected=True),
    Case("naive", "2024-01-15T10:30:00", expected=True),
    Case("minutes", "2024-01-15T10:30", expected=True),
    Case("space", "2024-01-15 10:30:00", expected=True),
    Case("date-only", "2024-01-15", expected=False),
    Case("bad-month", "2024-13-01T00:00:00", expected=False),
    Case("trailing-junk", "2024-01-15T10:30:00Z!", expected=False),
    Case("word", "hello", expected=False),
    Case("empty", "", expected=False),
    Case("unix-ms-text", "1705314600000", expected=False),
]


@pytest.mark.parametrize("case", ISO_TEXT, ids=ids(ISO_TEXT))
def test_is_iso_datetime(case: Case) -> None:
    assert values.is_iso_datetime(case.value) is case.expected


# --- properties (hypothesis) ----------------------------------------------------------------

NAMES = st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=12)
NUMBERS = st.one_of(st.integers(), st.floats(allow_nan=False, allow_infinity=False))
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, st.text(max_size=20))


@functools.cache
def valid_values(depth_left: int) -> SearchStrategy[Any]:
    """A valid property value with at most ``depth_left`` levels of containers."""
    options: list[SearchStrategy[Any]] = [SCALARS]
    if depth_left >= 1:
        options += [
            st.lists(st.text(max_size=8), max_size=4),
            st.lists(NUMBERS, max_size=4),
            st.dictionaries(NAMES, st.deferred(lambda: valid_values(depth_left - 1)), max_size=3),
        ]
    if depth_left >= 2:
        objects = st.dictionaries(NAMES, valid_values(depth_left - 2), max_size=3)
        options.append(st.lists(objects, min_size=1, max_size=3))
    return st.one_of(options)


@settings(max_examples=150, deadline=None)
@given(props=st.dictionaries(NAMES, valid_values(SPEC_DEPTH - 1), max_size=5))
def test_valid_properties_pass_unchanged(props: dict[str, Any]) -> None:
    before = typed(copy.deepcopy(props))
    assert values.depth(props) <= SPEC_DEPTH
    result = values.check_properties(props, limits=Limits(), field="parameters")
    assert typed(result) == before


@settings(max_examples=150, deadline=None)
@given(
    data=st.tuples(
        st.text(max_size=5),
        NUMBERS,
        st.lists(st.one_of(SCALARS, st.just({"o": 1}), st.just([1])), max_size=4),
    ).flatmap(lambda parts: st.permutations([parts[0], parts[1], *parts[2]]))
)
def test_any_array_mixing_a_string_and_a_number_is_refused(data: list[Any]) -> None:
    exc = refusal(values.check_properties, {"a": data}, limits=Limits(), field="parameters")
    assert (exc.code, exc.field) == ("mixed_array", "parameters.a")


OFFSETS = st.integers(-(23 * 60 + 59), 23 * 60 + 59).map(lambda m: timezone(timedelta(minutes=m)))
AWARE_MS = st.datetimes(
    min_value=datetime(1973, 1, 1), max_value=datetime(9000, 1, 1), timezones=OFFSETS
).map(lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000))


@settings(max_examples=200, deadline=None)
@given(when=AWARE_MS)
@example(when=datetime(2004, 1, 10, 16, 13, 48, 182000, tzinfo=UTC))
def test_parse_time_round_trips_to_the_exact_millisecond(when: datetime) -> None:
    zulu = when.astimezone(UTC).isoformat().replace("+00:00", "Z")
    assert values.parse_time(when.isoformat(), field="ts") == ms_of(when)
    assert values.parse_time(zulu, field="ts") == ms_of(when)


@settings(max_examples=200, deadline=None)
@given(when=AWARE_MS)
def test_parse_time_is_the_same_instant_in_every_offset(when: datetime) -> None:
    zulu = when.astimezone(UTC).isoformat().replace("+00:00", "Z")
    in_offset = values.parse_time(when.isoformat(), field="ts")
    assert in_offset == values.parse_time(zulu, field="ts")
    assert abs(in_offset - ms_of(when)) <= 1


@settings(max_examples=100, deadline=None)
@given(when=AWARE_MS.map(lambda d: d.replace(microsecond=0)))
def test_parse_time_round_trips_whole_seconds(when: datetime) -> None:
    assert values.parse_time(when.isoformat(), field="ts") == ms_of(when)


TEXT_NOT_TIME = st.text(max_size=20).filter(lambda s: not values.is_iso_datetime(s))
ISO_TIMES = AWARE_MS.map(lambda d: d.isoformat())
TYPED_VALUES = st.one_of(
    st.tuples(st.just("null"), st.none()),
    st.tuples(st.just("boolean"), st.booleans()),
    st.tuples(st.just("number"), NUMBERS),
    st.tuples(st.just("string"), TEXT_NOT_TIME),
    st.tuples(st.just("time"), ISO_TIMES),
    st.tuples(st.just("array_string"), st.lists(st.text(max_size=5), min_size=1, max_size=4)),
    st.tuples(st.just("array_number"), st.lists(NUMBERS, min_size=1, max_size=4)),
    st.tuples(st.just("json"), st.dictionaries(NAMES, SCALARS, max_size=3)),
    st.tuples(st.just("json"), st.lists(st.dictionaries(NAMES, SCALARS, max_size=3), min_size=1)),
)


@settings(max_examples=200, deadline=None)
@given(pair=TYPED_VALUES)
def test_infer_type_matches_the_generated_type(pair: tuple[str, Any]) -> None:
    kind, value = pair
    assert values.infer_type(value) == kind
