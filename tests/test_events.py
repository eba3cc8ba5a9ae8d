"""berth.events: both buses behave the same; Postgres also across replicas and restarts.

The Postgres cases need ``BERTH_TEST_DATABASE_URL``; without it they are skipped.
Every wait is bounded: no sleeps, events are awaited with ``anyio.fail_after``.
"""

from __future__ import annotations

import importlib
import logging
import os
import uuid
from collections.abc import AsyncIterator
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

import anyio
import pytest

from berth.events import (
    MAX_PAYLOAD_BYTES,
    Event,
    EventBus,
    InProcessBus,
    PostgresBus,
    Subscription,
    SubscriptionClosed,
    asyncpg_dsn,
    bus_for_url,
)

DATABASE_URL_ENV = "BERTH_TEST_DATABASE_URL"
WAIT = 10.0  # seconds; a bound on every wait, never a sleep


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def database_url() -> str:
    url = os.environ.get(DATABASE_URL_ENV)
    if not url:
        pytest.skip(f"{DATABASE_URL_ENV} is not set; set it to a PostgreSQL URL to run this test")
    return url


def channel(kind: str = "job") -> str:
    return f"{kind}:{uuid.uuid4()}"


async def next_event(sub: Subscription) -> Event:
    with anyio.fail_after(WAIT):
        event = await sub.get(None)
    assert event is not None
    return event


async def sql(query: str, *args: object) -> object:
    """Run one query on a fresh connection (asyncpg is untyped, hence Any)."""
    asyncpg: Any = importlib.import_module("asyncpg")
    conn: Any = await asyncpg.connect(asyncpg_dsn(database_url()))
    try:
        with anyio.fail_after(WAIT):
            return await conn.fetchval(query, *args)
    finally:
        await conn.close()


class BusFactory(Protocol):
    async def __call__(self, *, queue_size: int = ...) -> EventBus: ...


@pytest.fixture(params=["inprocess", pytest.param("postgres", marks=pytest.mark.postgres)])
def bus_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    if kind == "postgres":
        database_url()
    return kind


@pytest.fixture
async def make_bus(bus_kind: str, anyio_backend: str) -> AsyncIterator[BusFactory]:
    buses: list[EventBus] = []

    async def factory(*, queue_size: int = 256) -> EventBus:
        bus: EventBus
        if bus_kind == "postgres":
            bus = PostgresBus(database_url(), queue_size=queue_size)
        else:
            bus = InProcessBus(queue_size=queue_size)
        with anyio.fail_after(WAIT):
            await bus.start()
        buses.append(bus)
        return bus

    yield factory
    for bus in buses:
        await bus.close()


@pytest.fixture
async def bus(make_bus: BusFactory) -> EventBus:
    return await make_bus()


@pytest.mark.anyio
async def test_publish_subscribe_round_trip(bus: EventBus) -> None:
    ch = channel()
    payload: dict[str, object] = {
        "type": "status",
        "id": "j1",
        "n": 3,
        "ok": True,
        "x": [1, None, {"y": 1.5}],
        "text": "naïve 🚢",
    }
    async with bus.subscribe(ch) as sub:
        assert sub.channels == frozenset({ch})
        await bus.publish(ch, payload)
        assert await next_event(sub) == Event(ch, payload)


@pytest.mark.anyio
async def test_channel_isolation(bus: EventBus) -> None:
    a, b = channel("workspace"), channel("agent")
    async with bus.subscribe(a) as sub_a, bus.subscribe(b) as sub_b:
        await bus.publish(b, {"n": 1})
        await bus.publish(a, {"n": 2})
        assert await next_event(sub_a) == Event(a, {"n": 2})
        assert await next_event(sub_b) == Event(b, {"n": 1})
        assert await sub_a.get(0) is None
        assert await sub_b.get(0) is None


@pytest.mark.anyio
async def test_one_subscription_several_channels_and_iteration(bus: EventBus) -> None:
    a, b = channel("chat"), channel("job")
    async with bus.subscribe(a, b, a) as sub:
        assert sub.channels == frozenset({a, b})
        await bus.publish(a, {"n": 1})
        await bus.publish(b, {"n": 2})
        got: list[Event] = []
        with anyio.fail_after(WAIT):
            async for event in sub:
                got.append(event)
                if len(got) == 2:
                    break
        assert got == [Event(a, {"n": 1}), Event(b, {"n": 2})]


@pytest.mark.anyio
async def test_multiple_subscribers_each_get_a_copy(bus: EventBus) -> None:
    ch = channel()
    async with bus.subscribe(ch) as first:
        async with bus.subscribe(ch) as second:
            await bus.publish(ch, {"state": "running"})
            one, two = await next_event(first), await next_event(second)
            assert one == two == Event(ch, {"state": "running"})
            assert one.payload is not two.payload
        # the second subscriber left; the first still receives (no early UNLISTEN)
        if isinstance(bus, InProcessBus | PostgresBus):
            assert ch in bus.channels
        if isinstance(bus, PostgresBus):
            assert ch in await bus.server_listening_channels()
        await bus.publish(ch, {"state": "stopped"})
        assert await next_event(first) == Event(ch, {"state": "stopped"})


@pytest.mark.anyio
async def test_subscribe_then_publish_has_no_gap(make_bus: BusFactory) -> None:
    listener, publisher = await make_bus(), await make_bus()
    publisher = publisher if isinstance(listener, PostgresBus) else listener
    for _ in range(20):
        ch = channel()
        async with listener.subscribe(ch) as sub:
            await publisher.publish(ch, {"id": ch})
            assert await next_event(sub) == Event(ch, {"id": ch})


@pytest.mark.anyio
async def test_leaving_unsubscribes(bus: EventBus) -> None:
    ch, other = channel(), channel()
    async with bus.subscribe(ch) as sub:
        if isinstance(bus, PostgresBus):
            assert ch in await bus.server_listening_channels()
    assert sub.closed
    if isinstance(bus, InProcessBus | PostgresBus):
        assert ch not in bus.channels
    if isinstance(bus, PostgresBus):
        assert ch not in await bus.server_listening_channels()
    with pytest.raises(SubscriptionClosed):
        await sub.get(0)
    async with bus.subscribe(other) as watcher:
        await bus.publish(ch, {"n": 1})  # nobody listens
        await bus.publish(other, {"n": 2})  # arrives after ch's would have
        assert await next_event(watcher) == Event(other, {"n": 2})
    with pytest.raises(SubscriptionClosed):
        await sub.get(0)


@pytest.mark.anyio
async def test_get_returns_none_on_timeout(bus: EventBus) -> None:
    async with bus.subscribe(channel()) as sub:
        assert await sub.get(0) is None
        with anyio.fail_after(WAIT):
            assert await sub.get(0.05) is None


@pytest.mark.anyio
@pytest.mark.parametrize(
    "name",
    ["", "x" * 64, "é" * 32, "a\x00b"],
    ids=["empty", "64-bytes", "64-utf8-bytes", "nul"],
)
async def test_bad_channel_names_raise(bus: EventBus, name: str) -> None:
    with pytest.raises(ValueError, match="channel"):
        await bus.publish(name, {})
    with pytest.raises(ValueError, match="channel"):
        bus.subscribe(channel(), name)


@pytest.mark.anyio
async def test_unusual_channel_names_work(bus: EventBus) -> None:
    names = ["x" * 63, "é" * 31, 'Mixed Case "quoted"; DROP', f"agent:{uuid.uuid4()}"]
    async with bus.subscribe(*names) as sub:
        for name in names:
            await bus.publish(name, {"name": name})
        got = {(await next_event(sub)).channel for _ in names}
        assert got == set(names)


@pytest.mark.anyio
async def test_payload_limits(bus: EventBus) -> None:
    ch = channel()
    overhead = len('{"p":""}')
    largest: dict[str, object] = {"p": "x" * (MAX_PAYLOAD_BYTES - overhead)}
    async with bus.subscribe(ch) as sub:
        await bus.publish(ch, largest)
        assert await next_event(sub) == Event(ch, largest)
        with pytest.raises(ValueError, match="bytes"):
            await bus.publish(ch, {"p": "x" * (MAX_PAYLOAD_BYTES - overhead + 1)})
        with pytest.raises(ValueError, match="JSON"):
            await bus.publish(ch, {"p": object()})
        with pytest.raises(ValueError, match="JSON"):
            await bus.publish(ch, {"p": float("nan")})
        assert await sub.get(0) is None


@pytest.mark.anyio
async def test_overflow_drops_oldest_and_resyncs(make_bus: BusFactory) -> None:
    bus = await make_bus(queue_size=2)
    ch, marker = channel(), channel()
    async with bus.subscribe(ch) as slow, bus.subscribe(marker) as fast:
        for n in range(5):
            await bus.publish(ch, {"n": n})
        await bus.publish(marker, {})  # delivered after all of ch's, in order
        await next_event(fast)
        got = [await next_event(slow) for _ in range(3)]
        assert got == [Event(ch, {"type": "resync"}), Event(ch, {"n": 3}), Event(ch, {"n": 4})]
        assert await slow.get(0) is None


@pytest.mark.anyio
async def test_lifecycle(make_bus: BusFactory) -> None:
    bus = await make_bus()
    await bus.start()  # already running: no-op
    ch = channel()
    async with bus.subscribe(ch) as sub:
        await bus.publish(ch, {"n": 1})
        assert await next_event(sub) == Event(ch, {"n": 1})
        if isinstance(bus, InProcessBus):
            await bus.publish(ch, {"n": 2})  # queued synchronously
        await bus.close()
        await bus.close()  # idempotent
        assert sub.closed
        if isinstance(bus, InProcessBus):
            assert await sub.get(0) == Event(ch, {"n": 2})  # queued events stay readable
        with pytest.raises(SubscriptionClosed):
            await sub.get(None)
        assert [e async for e in sub] == []
    with pytest.raises(RuntimeError, match="not running"):
        await bus.publish(ch, {})
    with pytest.raises(RuntimeError, match="not running"):
        async with bus.subscribe(ch):
            pass
    with pytest.raises(RuntimeError, match="cannot start"):
        await bus.start()


@pytest.mark.anyio
async def test_unstarted_bus_refuses_work(bus_kind: str, anyio_backend: str) -> None:
    bus = PostgresBus(database_url()) if bus_kind == "postgres" else InProcessBus()
    with pytest.raises(RuntimeError, match="not running"):
        await bus.publish(channel(), {})
    async with bus:
        await bus.publish(channel(), {})
    with pytest.raises(RuntimeError, match="not running"):
        await bus.publish(channel(), {})


def test_bus_for_url() -> None:
    assert isinstance(bus_for_url("sqlite+aiosqlite:////tmp/berth.db"), InProcessBus)
    assert isinstance(bus_for_url("sqlite:///:memory:"), InProcessBus)
    pg = bus_for_url("postgresql+asyncpg://berth:pw@db:5432/berth?sslmode=disable")
    assert isinstance(pg, PostgresBus)
    assert pg.dsn == "postgresql://berth:pw@db:5432/berth?sslmode=disable"
    assert isinstance(bus_for_url("postgres://u@h/d"), PostgresBus)
    assert asyncpg_dsn("PostgreSQL://u@h/d") == "postgresql://u@h/d"
    with pytest.raises(ValueError, match="PostgreSQL"):
        PostgresBus("sqlite:///x.db")
    with pytest.raises(ValueError, match="queue_size"):
        InProcessBus(queue_size=0)


# --- Postgres only ------------------------------------------------------------------------


@pytest.fixture
async def pg_bus(anyio_backend: str) -> AsyncIterator[PostgresBus]:
    async with PostgresBus(database_url(), application_name=f"berth-test-{uuid.uuid4()}") as bus:
        yield bus


@pytest.mark.anyio
@pytest.mark.postgres
async def test_publish_from_another_replica_is_received(pg_bus: PostgresBus) -> None:
    ch = channel()
    async with PostgresBus(database_url()) as replica, pg_bus.subscribe(ch) as sub:
        await replica.publish(ch, {"from": "replica"})
        assert await next_event(sub) == Event(ch, {"from": "replica"})
        async with replica.subscribe(ch) as sub2:
            await pg_bus.publish(ch, {"from": "first"})
            assert await next_event(sub) == Event(ch, {"from": "first"})
            assert await next_event(sub2) == Event(ch, {"from": "first"})


@pytest.mark.anyio
@pytest.mark.postgres
async def test_foreign_non_json_notify_becomes_resync(pg_bus: PostgresBus) -> None:
    ch = channel()
    async with pg_bus.subscribe(ch) as sub:
        await sql("SELECT pg_notify($1, 'not json')", ch)
        assert await next_event(sub) == Event(ch, {"type": "resync"})
        await sql("SELECT pg_notify($1, '[1, 2]')", ch)
        assert await next_event(sub) == Event(ch, {"type": "resync"})


@pytest.mark.anyio
@pytest.mark.postgres
async def test_reconnects_after_listener_is_terminated(pg_bus: PostgresBus) -> None:
    a, b, late = channel(), channel("chat"), channel()
    async with pg_bus.subscribe(a, b) as sub, pg_bus.subscribe(a) as other:
        pid = pg_bus.listener_pid
        assert pid is not None
        assert await sql("SELECT pg_terminate_backend($1)", pid) is True
        got = [await next_event(sub), await next_event(sub)]
        assert all(event.is_resync for event in got)
        assert {event.channel for event in got} == {a, b}
        assert await next_event(other) == Event(a, {"type": "resync"})
        new_pid = pg_bus.listener_pid
        assert new_pid is not None
        assert new_pid != pid
        assert {a, b} <= await pg_bus.server_listening_channels()
        await pg_bus.publish(b, {"after": "reconnect"})
        assert await next_event(sub) == Event(b, {"after": "reconnect"})
        async with pg_bus.subscribe(late) as late_sub:
            await pg_bus.publish(late, {"n": 1})
            assert await next_event(late_sub) == Event(late, {"n": 1})


@pytest.mark.anyio
@pytest.mark.postgres
async def test_recovers_when_every_connection_is_terminated(pg_bus: PostgresBus) -> None:
    """Like a server restart: the listener and the publish pool both lose their backends."""
    ch = channel()
    async with pg_bus.subscribe(ch) as sub:
        app = f"berth-test-{uuid.uuid4()}"
        doomed = PostgresBus(database_url(), application_name=app)
        async with doomed, doomed.subscribe(ch) as doomed_sub:
            await doomed.publish(ch, {"n": 0})
            assert await next_event(doomed_sub) == Event(ch, {"n": 0})
            assert await next_event(sub) == Event(ch, {"n": 0})
            killed = await sql(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE application_name = $1",
                app,
            )
            assert isinstance(killed, int)
            assert killed >= 2  # the listener and at least one pool connection
            assert await next_event(doomed_sub) == Event(ch, {"type": "resync"})
            await doomed.publish(ch, {"n": 1})
            assert await next_event(doomed_sub) == Event(ch, {"n": 1})
            assert await next_event(sub) == Event(ch, {"n": 1})


class LogSignal(logging.Handler):
    """Sets ``seen`` when a ``berth.events`` record containing ``needle`` is logged."""

    def __init__(self, needle: str) -> None:
        super().__init__()
        self.needle = needle
        self.seen = anyio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.needle in record.getMessage():
            self.seen.set()


@pytest.mark.anyio
@pytest.mark.postgres
async def test_reconnect_backs_off_while_the_server_refuses(anyio_backend: str) -> None:
    """Logins fail for a while (a role made NOLOGIN); the bus keeps retrying, then resyncs."""
    role, password = f"berth_events_test_{uuid.uuid4().hex[:12]}", "events-test-pw"
    parts = urlsplit(asyncpg_dsn(database_url()))
    host = parts.hostname or "127.0.0.1"
    netloc = f"{role}:{password}@{host}" + (f":{parts.port}" if parts.port else "")
    url = urlunsplit(parts._replace(netloc=netloc))
    await sql(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'")
    signal = LogSignal("reconnect attempt 2 failed")
    logger = logging.getLogger("berth.events")
    logger.addHandler(signal)
    try:
        ch = channel()
        async with PostgresBus(url, max_backoff=0.2) as bus, bus.subscribe(ch) as sub:
            await sql(f"ALTER ROLE {role} NOLOGIN")
            assert await sql("SELECT pg_terminate_backend($1)", bus.listener_pid) is True
            with anyio.fail_after(WAIT):
                await signal.seen.wait()
            assert bus.listener_pid is None
            await sql(f"ALTER ROLE {role} LOGIN")
            assert await next_event(sub) == Event(ch, {"type": "resync"})
            await bus.publish(ch, {"n": 1})
            assert await next_event(sub) == Event(ch, {"n": 1})
    finally:
        logger.removeHandler(signal)
        await sql(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE usename = $1",
            role,
        )
        await sql(f"DROP ROLE IF EXISTS {role}")
