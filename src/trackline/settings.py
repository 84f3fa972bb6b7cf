"""One settings tree. Every field reads ``TRACKLINE_<NAME>`` from the environment."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Limits(BaseSettings):
    """Input limits; over a limit the request or item gets a clear error, never a truncation."""

    model_config = SettingsConfigDict(env_prefix="TRACKLINE_LIMIT_")

    event_name_chars: int = Field(200, description="Longest event name, in characters.")
    event_bytes: int = Field(32 * 1024, description="Largest single event, as compact JSON bytes.")
    batch_events: int = Field(1000, description="Most events in one batch request.")
    request_bytes: int = Field(5 * 1024 * 1024, description="Largest request body (decompressed).")
    depth: int = Field(8, description="Deepest nesting of objects/arrays inside properties.")
    identity_chars: int = Field(255, description="Longest user id, device id or message id.")
    property_name_chars: int = Field(255, description="Longest property or attribute name.")
    future_ms: int = Field(
        24 * 3600 * 1000,
        description="How far in the future (ms) an event timestamp may lie before it is refused.",
    )


class WriterSettings(BaseSettings):
    """The group-commit writer: one per server process."""

    model_config = SettingsConfigDict(env_prefix="TRACKLINE_WRITER_")

    max_batch_events: int = Field(
        5000, description="Most events committed in one transaction by the writer."
    )
    max_wait_ms: float = Field(
        2.0,
        description="How long the writer, woken by a first job after an idle spell, waits for "
        "more work to share its commit (ms); work that queued during a commit is taken at once.",
    )
    queue_events: int = Field(
        50_000, description="Events that may wait for the writer before new requests wait."
    )
    enqueue_timeout_s: float = Field(
        2.0, description="How long a request waits for queue room before it gets 503."
    )
    overlap_commits: bool = Field(
        True,
        description="PostgreSQL: commit each transaction on a thread of its own while the "
        "writer runs the next one's statements on another connection (one commit in flight; "
        "transactions still commit in order). False: the writer waits for each COMMIT.",
    )
    retry_after_s: int = Field(1, description="Retry-After (seconds) sent with a 503.")
    switch_interval_s: float = Field(
        0.0005,
        description="Python's thread switch interval in a server process (seconds); short, so "
        "the writer thread is not held up behind the event loop.",
    )
    timeline_move_events: int = Field(
        20_000,
        ge=1,
        description="SQLite: events stored between the starts of moves of the recent "
        "person-timeline entries into the large timeline table (each move writes every "
        "person's page of it once; fewer moves are fewer pages).",
    )
    timeline_move_slice: int = Field(
        2_000,
        ge=1,
        description="SQLite: timeline entries moved in one transaction beyond those the commit "
        "before it stored: a move goes in slices, one after each commit, so the writer pauses a "
        "slice at a time instead of for the whole move, and still outruns large commits.",
    )
    gc_young_objects: int = Field(
        50_000,
        ge=0,
        description="Allocations between collections of Python's youngest garbage-collector "
        "generation in a server process (Python's default is 700; 0 keeps Python's settings). "
        "Ingest allocates a few dozen objects per event, almost none in cycles.",
    )


class Settings(BaseSettings):
    """Settings for the server and the CLI; CLI flags fall back to the same variables."""

    model_config = SettingsConfigDict(env_prefix="TRACKLINE_", env_nested_delimiter="__")

    database_url: str = Field(
        "sqlite:///trackline.db",
        description="SQLAlchemy URL of the database; postgresql://... selects PostgreSQL.",
    )
    host: str = Field("127.0.0.1", description="Address `serve` listens on.")
    port: int = Field(8000, description="Port `serve` listens on.")
    workers: int = Field(1, description="Server processes started by `serve`.")
    read_port: int | None = Field(
        None,
        description="Port of one more process that `serve` starts to answer only reads (GET), "
        "so that reads never wait behind ingest; none by default.",
    )
    sqlite_synchronous: str = Field(
        "FULL", description="SQLite synchronous pragma; FULL keeps every acknowledged commit."
    )
    key_cache_s: float = Field(
        5.0, description="Seconds an API key lookup is cached in a process (revocation delay)."
    )
    parse_thread_bytes: int = Field(
        8192,
        ge=0,
        description="Ingest request bodies (track, batch, FlareLane, Segment) of at least this "
        "many bytes are parsed and checked on a thread of their own, so the event loop goes on "
        "answering other requests meanwhile; smaller ones are parsed on the loop.",
    )
    limits: Limits = Field(default_factory=Limits, description="Input limits.")
    writer: WriterSettings = Field(default_factory=WriterSettings, description="Writer tuning.")
