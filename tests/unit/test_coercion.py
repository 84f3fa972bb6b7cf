"""Declared property types: every allowed and every refused conversion, and the naming rule.

Pure: ``trackline.catalog.types`` only. Values are compared with their Python types, so that
``39`` and ``39.0`` (or ``"1"`` and ``1``) are told apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from trackline.catalog import types
from trackline.catalog.types import Refused, coerce, naming
from trackline.clock import to_iso


class _Refusal:
    """Marks a row whose value the declared type must refuse."""

    def __repr__(self) -> str:
        return "REFUSED"


REFUSED: Any = _Refusal()


@dataclass(frozen=True)
class Case:
    declared: str
    value: Any
    want: Any  # the coerced value, or REFUSED

    @property
    def id(self) -> str:
        verdict = "refused" if self.want is REFUSED else "ok"
        return f"{self.declared}-{self.value!r}-{verdict}"


def typed(value: Any) -> Any:
    """``value`` with the Python type of every scalar in it, for exact comparison."""
    if isinstance(value, list):
        return [typed(v) for v in value]
    if isinstance(value, dict):
        return {k: typed(v) for k, v in value.items()}
    return (type(value).__name__, value)


NUMBER = [
    Case("number", 39, 39),
    Case("number", -7, -7),
    Case("number", 0, 0),
    Case("number", 3.5, 3.5),
    Case("number", -0.25, -0.25),
    Case("number", "39", 39),
    Case("number", "-39", -39),
    Case("number", "0", 0),
    Case("number", "-0", 0),
    Case("number", "3.5", 3.5),
    Case("number", "-3.5", -3.5),
    Case("number", "39.0", 39.0),
    Case("number", "1e3", 1000.0),
    Case("number", "1E3", 1000.0),
    Case("number", "2.5e-3", 0.0025),
    Case("number", "1e+2", 100.0),
    Case("number", True, REFUSED),
    Case("number", False, REFUSED),
    Case("number", "two", REFUSED),
    Case("number", " 39", REFUSED),
    Case("number", "39 ", REFUSED),
    Case("number", "", REFUSED),
    Case("number", "+39", REFUSED),
    Case("number", "039", REFUSED),
    Case("number", ".5", REFUSED),
    Case("number", "5.", REFUSED),
    Case("number", "1,000", REFUSED),
    Case("number", "0x10", REFUSED),
    Case("number", "NaN", REFUSED),
    Case("number", "Infinity", REFUSED),
    Case("number", "1e400", REFUSED),
    Case("number", [1], REFUSED),
    Case("number", [], REFUSED),
    Case("number", {"n": 1}, REFUSED),
    Case("number", {}, REFUSED),
]

STRING = [
    Case("string", "hello", "hello"),
    Case("string", "", ""),
    Case("string", "39", "39"),
    Case("string", 9, "9"),
    Case("string", -9, "-9"),
    Case("string", 9.5, "9.5"),
    Case("string", True, "true"),
    Case("string", False, "false"),
    Case("string", ["a"], REFUSED),
    Case("string", [], REFUSED),
    Case("string", {"a": "b"}, REFUSED),
    Case("string", [{"a": "b"}], REFUSED),
]

BOOLEAN = [
    Case("boolean", True, True),
    Case("boolean", False, False),
    Case("boolean", "true", True),
    Case("boolean", "false", False),
    Case("boolean", "TRUE", True),
    Case("boolean", "False", False),
    Case("boolean", "tRuE", True),
    Case("boolean", 1, REFUSED),
    Case("boolean", 0, REFUSED),
    Case("boolean", 1.0, REFUSED),
    Case("boolean", "1", REFUSED),
    Case("boolean", "0", REFUSED),
    Case("boolean", "yes", REFUSED),
    Case("boolean", "no", REFUSED),
    Case("boolean", "", REFUSED),
    Case("boolean", " true", REFUSED),
    Case("boolean", [True], REFUSED),
    Case("boolean", {"b": True}, REFUSED),
]

TIME = [
    Case("time", "2024-04-19T14:23:56+09:00", "2024-04-19T05:23:56.000Z"),
    Case("time", "2024-04-19T14:23:56Z", "2024-04-19T14:23:56.000Z"),
    Case("time", "2024-04-19T14:23:56.250Z", "2024-04-19T14:23:56.250Z"),
    Case("time", "2024-04-19T14:23:56", "2024-04-19T14:23:56.000Z"),  # no offset: UTC
    Case("time", "2024-04-19 14:23:56", "2024-04-19T14:23:56.000Z"),
    Case("time", "2024-04-19T14:23", "2024-04-19T14:23:00.000Z"),
    Case("time", "2024-01-15T10:30:00.000Z", "2024-01-15T10:30:00.000Z"),
    Case("time", 1_700_000_000_000, "2023-11-14T22:13:20.000Z"),
    Case("time", 1_700_000_000_123, "2023-11-14T22:13:20.123Z"),
    Case("time", 100_000_000_000, "1973-03-03T09:46:40.000Z"),  # the smallest "ms" accepted
    Case("time", 1.7e12, "2023-11-14T22:13:20.000Z"),  # a whole float
    Case("time", 1_700_000_000, REFUSED),  # looks like seconds
    Case("time", 99_999_999_999, REFUSED),
    Case("time", 0, REFUSED),
    Case("time", -1, REFUSED),
    Case("time", 1_700_000_000_000.5, REFUSED),  # not a whole number of ms
    Case("time", "1700000000000", REFUSED),  # Unix ms only as a number
    Case("time", "2024-04-19", REFUSED),  # a date without a time
    Case("time", "yesterday", REFUSED),
    Case("time", "", REFUSED),
    Case("time", "2024-13-45T99:99:99Z", REFUSED),
    Case("time", "1969-12-31T23:59:59Z", REFUSED),  # before 1970
    Case("time", True, REFUSED),
    Case("time", False, REFUSED),
    Case("time", ["2024-04-19T14:23:56Z"], REFUSED),
    Case("time", {"at": "2024-04-19T14:23:56Z"}, REFUSED),
]

ARRAY_STRING = [
    Case("array_string", ["a", "b"], ["a", "b"]),
    Case("array_string", [], []),
    Case("array_string", [""], [""]),
    Case("array_string", [1, 2], ["1", "2"]),
    Case("array_string", [9.5], ["9.5"]),
    Case("array_string", ["a", 1], ["a", "1"]),
    Case("array_string", "a", REFUSED),
    Case("array_string", 1, REFUSED),
    Case("array_string", True, REFUSED),
    Case("array_string", {"a": "b"}, REFUSED),
    Case("array_string", [True], REFUSED),
    Case("array_string", ["a", False], REFUSED),
    Case("array_string", [{"a": "b"}], REFUSED),
    Case("array_string", [["a"]], REFUSED),
    Case("array_string", [None], REFUSED),
]

ARRAY_NUMBER = [
    Case("array_number", [1, 2.5], [1, 2.5]),
    Case("array_number", [], []),
    Case("array_number", ["1", "2"], [1, 2]),
    Case("array_number", ["3.5", 4], [3.5, 4]),
    Case("array_number", ["1e3"], [1000.0]),
    Case("array_number", 1, REFUSED),
    Case("array_number", "1", REFUSED),
    Case("array_number", {"n": 1}, REFUSED),
    Case("array_number", ["one"], REFUSED),
    Case("array_number", ["1", "x"], REFUSED),
    Case("array_number", [" 1"], REFUSED),
    Case("array_number", [True], REFUSED),
    Case("array_number", [{"n": 1}], REFUSED),
    Case("array_number", [[1]], REFUSED),
    Case("array_number", [None], REFUSED),
]

JSON = [
    Case("json", {"sku": "a", "qty": 2}, {"sku": "a", "qty": 2}),
    Case("json", {}, {}),
    Case("json", {"nested": {"deep": [1, 2]}}, {"nested": {"deep": [1, 2]}}),
    Case("json", [{"sku": "a"}, {"sku": "b"}], [{"sku": "a"}, {"sku": "b"}]),
    Case("json", [], []),
    Case("json", "x", REFUSED),
    Case("json", '{"sku": "a"}', REFUSED),  # JSON text is a string, not an object
    Case("json", 1, REFUSED),
    Case("json", True, REFUSED),
    Case("json", [1, 2], REFUSED),
    Case("json", ["a"], REFUSED),
    Case("json", [{"sku": "a"}, 1], REFUSED),
    Case("json", [[{"sku": "a"}]], REFUSED),
]

CASES = NUMBER + STRING + BOOLEAN + TIME + ARRAY_STRING + ARRAY_NUMBER + JSON


def test_the_table_covers_every_type_both_ways() -> None:
    for kind in types.TYPES:
        rows = [c for c in CASES if c.declared == kind]
        assert any(c.want is REFUSED for c in rows), kind
        assert any(c.want is not REFUSED for c in rows), kind


@pytest.mark.parametrize("case", [c for c in CASES if c.want is not REFUSED], ids=lambda c: c.id)
def test_allowed_conversion(case: Case) -> None:
    assert typed(coerce(case.value, case.declared)) == typed(case.want)


@pytest.mark.parametrize("case", [c for c in CASES if c.want is REFUSED], ids=lambda c: c.id)
def test_refused_conversion(case: Case) -> None:
    with pytest.raises(Refused) as refused:
        coerce(case.value, case.declared)
    assert str(refused.value)  # a reason a person can read


@pytest.mark.parametrize("declared", types.TYPES)
def test_null_stays_null(declared: str) -> None:
    assert coerce(None, declared) is None


def test_coercion_does_not_change_its_input() -> None:
    sent = ["1", "2"]
    assert coerce(sent, "array_number") == [1, 2]
    assert sent == ["1", "2"]


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(Case("time", "9999-12-31T23:59:59Z", "9999-12-31T23:59:59.000Z"), id="max"),
        pytest.param(Case("time", 253_402_300_799_999, "9999-12-31T23:59:59.999Z"), id="max-ms"),
        pytest.param(
            Case("number", "123456789012345678901234567890", REFUSED),
            id="number-beyond-64-bits",
        ),
        pytest.param(Case("time", 10**17, REFUSED), id="ms-year-3170843"),
        pytest.param(Case("time", 253_402_300_800_000, REFUSED), id="ms-year-10000"),
        pytest.param(
            Case("time", "9999-12-31T23:59:59-05:00", REFUSED),
            id="iso-year-10000",
        ),
    ],
)
def test_range_edges(case: Case) -> None:
    """What the database and the ISO form can hold is kept; what they cannot must be ``Refused``
    (a 400 and a failed event), never another exception (a 500 that loses the request)."""
    if case.want is REFUSED:
        with pytest.raises(Refused):
            coerce(case.value, case.declared)
    else:
        assert coerce(case.value, case.declared) == case.want


@dataclass(frozen=True)
class NameCase:
    name: str
    verdict: str  # "ok", or the start of the reason


NAMES = [
    NameCase("user_signed_up", "ok"),
    NameCase("cart_updated", "ok"),
    NameCase("purchase_completed", "ok"),
    NameCase("user_2fa_enabled", "ok"),
    NameCase("page_viewed2", "ok"),
    NameCase("@first_session", "ok"),
    NameCase("@clicked", "ok"),
    NameCase("@foreground_received", "ok"),
    NameCase("@background_received", "ok"),
    NameCase("@iam_displayed", "ok"),
    NameCase("@iam_clicked", "ok"),
    NameCase("@iam_closed", "ok"),
    NameCase("UserSignedUp", "not snake_case"),
    NameCase("userSignedUp", "not snake_case"),
    NameCase("User_signed_up", "not snake_case"),
    NameCase("user-signed-up", "not snake_case"),
    NameCase("custom.event_example", "not snake_case"),
    NameCase("user signed up", "not snake_case"),
    NameCase("user__signed_up", "not snake_case"),
    NameCase("_user_signed_up", "not snake_case"),
    NameCase("user_signed_up_", "not snake_case"),
    NameCase("2fa_enabled", "not snake_case"),
    NameCase("page/viewed", "not snake_case"),
    NameCase("@custom_event", "not snake_case"),  # not an auto-collected name
    NameCase("signup", "one word"),
    NameCase("purchase", "one word"),
    NameCase("login2", "one word"),
]


@pytest.mark.parametrize("case", NAMES, ids=lambda c: c.name)
def test_naming(case: NameCase) -> None:
    verdict = naming(case.name)
    if case.verdict == "ok":
        assert verdict == "ok"
    else:
        assert verdict.startswith(case.verdict), verdict
        assert len(verdict) > len(case.verdict)  # it says how to fix the name


# Properties. Times are kept to whole seconds where noted: see test_time_keeps_milliseconds.

MS = st.integers(min_value=100_000_000_000, max_value=4_102_444_800_000)
WHOLE_SECONDS_MS = MS.map(lambda ms: ms - ms % 1000)
ISO_TIMES = st.datetimes(
    min_value=datetime(1971, 1, 1),
    max_value=datetime(2099, 12, 31),
    timezones=st.sampled_from([UTC, None]),
).map(lambda d: d.replace(microsecond=0).isoformat())
SCALARS = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=8)
FINITE = st.floats(allow_nan=False, allow_infinity=False)


@given(st.integers(min_value=-(2**63), max_value=2**63 - 1))
def test_an_integer_string_is_that_integer(n: int) -> None:
    assert typed(coerce(str(n), "number")) == typed(n)


@given(FINITE)
def test_a_float_string_is_that_float(x: float) -> None:
    assert typed(coerce(repr(x), "number")) == typed(x)


@given(st.integers(-(2**53), 2**53) | FINITE)
def test_a_number_as_string_comes_back(x: float) -> None:
    assert coerce(coerce(x, "string"), "number") == x


@given(WHOLE_SECONDS_MS)
def test_unix_ms_and_its_iso_form_are_the_same_time(ms: int) -> None:
    assert coerce(ms, "time") == coerce(to_iso(ms), "time") == to_iso(ms)


VALUES: dict[str, st.SearchStrategy[Any]] = {
    "string": SCALARS | FINITE,
    "number": SCALARS | FINITE | FINITE.map(repr) | st.integers().map(str),
    "boolean": SCALARS | st.sampled_from(["true", "false", "TRUE", "False"]),
    # within years 1970..9999 (see test_range_edges)
    "time": st.none()
    | st.booleans()
    | st.text(max_size=8)
    | st.integers(-1, 4_102_444_800_000)
    | WHOLE_SECONDS_MS
    | ISO_TIMES,
    "array_string": st.lists(st.text(max_size=4) | st.integers() | FINITE, max_size=4),
    "array_number": st.lists(st.integers().map(str) | FINITE | st.integers(), max_size=4),
    "json": st.lists(st.dictionaries(st.text(max_size=3), SCALARS, max_size=3), max_size=3)
    | st.dictionaries(st.text(max_size=3), SCALARS, max_size=3),
}


@given(st.sampled_from(types.TYPES).flatmap(lambda t: st.tuples(st.just(t), VALUES[t])))
def test_coercion_is_idempotent(pair: tuple[str, Any]) -> None:
    declared, value = pair
    try:
        once = coerce(value, declared)
    except Refused:
        return
    assert typed(coerce(once, declared)) == typed(once)


@given(MS)
@example(1_077_884_025_972)  # 2004-02-27T12:13:45.972Z comes back as .971Z
def test_time_keeps_milliseconds(ms: int) -> None:
    assert coerce(to_iso(ms), "time") == to_iso(ms)
