"""Whether a request refused as a whole names an id (what erasure deletes with a person)."""

from __future__ import annotations

import json

import pytest

from trackline.people.mentions import mentions, number_spellings, spellings


@pytest.mark.parametrize(
    ("payload", "values", "expected"),
    [
        ('{"events": "x", "external_id": "user_1"}', ["user_1"], True),
        ('{"events": "x", "external_id": "user_10"}', ["user_1"], False),
        ('{"events": "x", "external_id": "USER_1"}', ["user_1"], False),  # case counts
        ('{"events": "x", "user_id": 12345}', ["12345"], True),  # sent as a number
        ('{"events": "x", "user_id": 123456}', ["12345"], False),
        ('{"events": "x", "n": 12345.5}', ["12345"], False),
        ('{"events": "x", "flag": true}', ["True"], False),
        (json.dumps({"events": "x", "external_id": "José"}), ["José"], True),  # \u00e9
        ('{"events": "x", "external_id": "a\\/b"}', ["a/b"], True),  # PHP's escaped slash
        ('{"batch": [{"context": {"ids": ["d1", "u_9"]}}]}', ["u_9"], True),  # anywhere
        ('{"external_id": "user_1", "event": ', ["user_1"], True),  # cut short
        ('{"external_id": "user_12", "event": ', ["user_1"], False),
        ('{"user_id": 12345, "event": ', ["12345"], True),
        ('{"user_id": 123456, "event": ', ["12345"], False),
        ('{"external_id": "Jos\\u00e9", "event": ', ["José"], True),
        ('{"events": "x", "properties": {"qty": 5}}', ["5"], False),  # a number, not an id
        ('{"events": [{"anonymousId": 5}]}', ["5"], True),
        ('{"events": [{"qty": 5, "event": ', ["5"], False),  # cut short
        ('{"events": [{"subjectId" : 5, "event": ', ["5"], True),
        ('{"events": "x", "external_id": "a\\u0026b"}', ["a&b"], True),  # Go's escapes
        ('{"external_id": "a\\u0026b", "event": ', ["a&b"], True),
        ('{"external_id": "Jos\\u00E9", "event": ', ["José"], True),  # upper-case hex
        ("not json at all, user_1", ["user_1"], False),  # no quoted id in free text
        ("", ["user_1"], False),
    ],
)
def test_mentions(payload: str, values: list[str], expected: bool) -> None:
    assert mentions(payload, values) is expected


def test_every_spelling_is_searched() -> None:
    assert spellings("José/x") == {
        "José/x",
        "Jos\\u00e9/x",
        "Jos\\u00E9/x",
        "José\\/x",
        "Jos\\u00e9\\/x",
        "Jos\\u00E9\\/x",
    }
    assert spellings('a"b') == {'a\\"b'}
    assert spellings("a&b") == {"a&b", "a\\u0026b"}
    assert number_spellings("42") == {":42", ": 42"}
    assert number_spellings("user_42") == set()
