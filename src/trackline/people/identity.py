"""Identity resolution for a batch of events, in one transaction.

A person is a cluster of identities: at most one user (external) id and any number of device
ids. An unknown identity creates a person. A device seen with a user id joins that user's
person; if the device belonged to an anonymous person, that person is merged into the user's;
if it belonged to another user, the device moves to the new user (its past events stay).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa

from trackline.ids import new_person_id
from trackline.people import store
from trackline.people.store import DEVICE, USER
from trackline.storage import dialect, roundtrips


@dataclass
class Resolution:
    person_ids: list[str]  # the surviving person of each input pair
    new_devices: list[tuple[int, str]]  # (input position, device id) first seen here


@dataclass
class _Resolver:
    conn: sa.Connection
    workspace_id: str
    now_ms: int
    by_user: dict[str, str]
    by_device: dict[str, str]
    user_of: dict[str, str]  # person -> external id
    redirect: dict[str, str] = field(default_factory=dict)
    new_people: list[str] = field(default_factory=list)
    new_identities: list[tuple[str, str, str]] = field(default_factory=list)

    def final(self, person: str) -> str:
        while person in self.redirect:
            person = self.redirect[person]
        return person

    def create(self) -> str:
        person = new_person_id()
        self.new_people.append(person)
        return person

    def claim(self, kind: str, value: str, person: str) -> None:
        self.new_identities.append((kind, value, person))
        if kind == USER:
            self.by_user[value] = person
            self.user_of[person] = value
        else:
            self.by_device[value] = person

    def flush(self) -> None:
        """Write buffered people and identities before an operation that changes stored rows."""
        store.insert_people(
            self.conn, workspace_id=self.workspace_id, ids=self.new_people, now_ms=self.now_ms
        )
        store.insert_identities(
            self.conn, workspace_id=self.workspace_id, rows=self.new_identities, now_ms=self.now_ms
        )
        self.new_people, self.new_identities = [], []

    def link(self, user: str | None, device: str | None) -> tuple[str, bool]:
        """The person for one (user, device) pair, and whether the device is new."""
        person_u = self.final(self.by_user[user]) if user in self.by_user else None
        person_d = self.final(self.by_device[device]) if device in self.by_device else None
        if user is not None and person_u is None:
            if person_d is not None and person_d not in self.user_of:
                self.claim(USER, user, person_d)  # an anonymous person learns its user id
                return person_d, False
            person_u = self.create()
            self.claim(USER, user, person_u)
        if device is None:
            assert person_u is not None
            return person_u, False
        if person_d is None:
            person = person_u or self.create()
            self.claim(DEVICE, device, person)
            return person, True
        if person_u is None or person_u == person_d:
            return person_d, False
        self._join(person_u, person_d, device)
        return person_u, False

    def _join(self, person_u: str, person_d: str, device: str) -> None:
        self.flush()
        if person_d in self.user_of:
            store.move_identity(
                self.conn,
                workspace_id=self.workspace_id,
                kind=DEVICE,
                value=device,
                person_id=person_u,
            )
            self.by_device[device] = person_u
            return
        store.merge(
            self.conn,
            workspace_id=self.workspace_id,
            loser=person_d,
            survivor=person_u,
            now_ms=self.now_ms,
        )
        self.redirect[person_d] = person_u


def resolve(
    conn: sa.Connection,
    *,
    workspace_id: str,
    pairs: list[tuple[str | None, str | None]],
    now_ms: int,
) -> Resolution:
    """Find or create the person of every ``(external_id, device_id)`` pair, linking and
    merging as the pairs say, in order."""
    users = {u for u, _ in pairs if u is not None}
    devices = {d for _, d in pairs if d is not None}
    postgres = conn.dialect.name == "postgresql"
    hold_against_erasure(conn, workspace_id)
    known = _read(conn, workspace_id, users, devices)
    settled = _settled(pairs, *known)
    if settled is not None:
        return Resolution(settled, [])
    if postgres:
        # Serialise with the other writers that touch these identities, then read them again
        # (SQLite admits one writer at a time: what was read stays true).
        dialect.lock_keys(conn, _identity_keys(workspace_id, users, devices))
        known = _read(conn, workspace_id, users, devices)
    resolver = _Resolver(conn, workspace_id, now_ms, *known)
    people, new_devices = [], []
    for position, (user, device) in enumerate(pairs):
        person, is_new = resolver.link(user, device)
        people.append(person)
        if is_new:
            assert device is not None
            new_devices.append((position, device))
    resolver.flush()
    return Resolution([resolver.final(p) for p in people], new_devices)


def look_up_soon(
    conn: sa.Connection, *, workspace_id: str, pairs: list[tuple[str | None, str | None]]
) -> None:
    """PostgreSQL: have the identities of ``pairs`` looked up with the transaction's next
    round trip, for a ``resolve`` of these pairs (or of some of them) that follows: ingest
    sends them with its declarations look-up, one round trip less per commit. The hold
    against erasure goes before them."""
    hold_against_erasure(conn, workspace_id)
    users = {u for u, _ in pairs if u is not None}
    devices = {d for _, d in pairs if d is not None}
    for kind, values in ((USER, users), (DEVICE, devices)):
        if values:
            store.find_identities_ahead(conn, workspace_id=workspace_id, kind=kind, values=values)


def _identity_keys(workspace_id: str, users: set[str], devices: set[str]) -> list[str]:
    """The lock keys of identities: writers that create, link or merge them take these."""
    return [f"{workspace_id}\x1f{USER}\x1f{u}" for u in users] + [
        f"{workspace_id}\x1f{DEVICE}\x1f{d}" for d in devices
    ]


def hold_against_erasure(conn: sa.Connection, workspace_id: str) -> None:
    """Keep erasure out of the workspace until this transaction ends (PostgreSQL; SQLite
    admits one writer at a time). Shared, so writers do not wait for each other; taken before
    any identity lock of the workspace, so it cannot deadlock with them. It is taken once per
    transaction, with the transaction's next statement (``roundtrips.soon``)."""
    if conn.dialect.name == "postgresql" and roundtrips.once(conn, ("erasure", workspace_id)):
        roundtrips.soon(conn, dialect.lock_statement([_erasure_key(workspace_id)], shared=True))


def exclude_for_erasure(conn: sa.Connection, workspace_id: str) -> None:
    """Wait for every writer of the workspace's identities and events to commit, and keep new
    ones out until the erasing transaction ends: nothing can then be stored for, linked to or
    merged into the person being erased. Erasure takes it first, holding no other lock."""
    dialect.lock_keys(conn, [_erasure_key(workspace_id)])


def _erasure_key(workspace_id: str) -> str:
    return f"{workspace_id}\x1ferasure"


def _read(
    conn: sa.Connection, workspace_id: str, users: set[str], devices: set[str]
) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """``(user -> person, device -> person, person -> user)`` for the identities that exist."""
    by_user = store.find_identities(conn, workspace_id=workspace_id, kind=USER, values=users)
    by_device = store.find_identities(conn, workspace_id=workspace_id, kind=DEVICE, values=devices)
    user_of = {person: user for user, person in by_user.items()}
    missing = set(by_device.values()) - set(user_of)
    user_of.update(store.users_of(conn, workspace_id=workspace_id, person_ids=missing))
    return by_user, by_device, user_of


def _settled(
    pairs: list[tuple[str | None, str | None]],
    by_user: dict[str, str],
    by_device: dict[str, str],
    user_of: dict[str, str],
) -> list[str] | None:
    """The persons of the pairs when nothing is to be created, linked or merged and every one
    is an identified person (one with a user id): such a person is never merged away, and a
    device moving to another user keeps its past events, so no lock is needed to store
    events for them. None when any pair needs the locked path."""
    people = []
    for user, device in pairs:
        if user is not None:
            person = by_user.get(user)
        elif device is not None:
            person = by_device.get(device)
        else:
            return None
        if person is None or person not in user_of:
            return None
        if user is not None and device is not None and by_device.get(device) != person:
            return None
        people.append(person)
    return people
