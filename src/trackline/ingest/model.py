"""The canonical event and the per-item error every wire format produces."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class CanonicalEvent:
    """One event in Trackline's own vocabulary, validated, time in ms UTC."""

    event: str
    external_id: str | None
    device_id: str | None
    parameters: dict[str, Any]
    timestamp: int
    message_id: str | None = None
    group_id: str | None = None
    context: dict[str, Any] = field(default_factory=dict)
    # JSON text of ``parameters`` and ``context`` when the parser made it already (None when
    # not, or when the values changed since): the writer then stores it without serialising.
    # Derived from the fields above, so not part of equality or repr.
    parameters_json: str | None = field(default=None, compare=False, repr=False)
    context_json: str | None = field(default=None, compare=False, repr=False)
    # ``values.property_kinds(parameters)``, what the catalog counts, when worked out already.
    shape: tuple[tuple[str, str], ...] | None = field(default=None, compare=False, repr=False)
    # The id the event is stored under, drawn on the event loop when the request is handed to
    # the writer (None: the writer draws one), so the writer's serial path does not.
    event_id: str | None = field(default=None, compare=False, repr=False)


@dataclass(slots=True)
class IdentifyOp:
    """Attributes for a person, found or created by its identities (``null`` deletes)."""

    external_id: str | None
    device_id: str | None
    attributes: dict[str, Any]


@dataclass(slots=True)
class GroupOp:
    """Link a person to a group (an account) and set the group's traits."""

    external_id: str | None
    device_id: str | None
    group_id: str
    traits: dict[str, Any]


@dataclass(slots=True)
class AliasOp:
    """``previous_id`` (an anonymous or device id) is the same person as user ``external_id``."""

    previous_id: str
    external_id: str


Op = IdentifyOp | GroupOp | AliasOp


@dataclass(slots=True)
class ItemError:
    """Why one item of a request was refused, with the raw item so it can be kept."""

    index: int | None
    code: str
    message: str
    field: str | None
    payload: str
    payload_truncated: bool = False
    external_id: str | None = None
    device_id: str | None = None

    def public(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "code": self.code,
            "message": self.message,
            "field": self.field,
        }


@dataclass(slots=True)
class Parsed:
    """A request body, parsed: the good events with their positions, and the refused items."""

    events: list[tuple[int, CanonicalEvent]]
    errors: list[ItemError]
    size: int = 0
    raws: dict[int, Any] = field(default_factory=dict)  # position -> the item as sent
    ops: list[tuple[int, Op]] = field(default_factory=list)  # identify, group, alias
    prefix: str = ""  # field path of an item, with {index}: "events[{index}]."
