"""The bus interface, events, subscriptions and the in-process bus (see ``berth.events``)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import AsyncGenerator, Iterable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Protocol, Self, cast

logger = logging.getLogger("berth.events")

MAX_CHANNEL_BYTES = 63
"""Postgres truncates longer identifiers (LISTEN) or rejects them (pg_notify)."""
MAX_PAYLOAD_BYTES = 7999
"""Postgres rejects a NOTIFY payload of 8000 bytes or more."""
DEFAULT_QUEUE_SIZE = 256
RESYNC = "resync"


@dataclass(frozen=True, slots=True)
class Event:
    """One message: the channel it came on and its JSON object payload."""

    channel: str
    payload: dict[str, object]

    @property
    def is_resync(self) -> bool:
        return self.payload.get("type") == RESYNC


class SubscriptionClosed(RuntimeError):
    """``Subscription.get`` after the subscription was left or its bus was closed."""


def validate_channel(channel: str) -> str:
    """Return ``channel`` if it is a usable channel name, else raise ``ValueError``."""
    if not channel:
        raise ValueError("event channel name is empty")
    if "\x00" in channel:
        raise ValueError(f"event channel name contains NUL: {channel!r}")
    if len(channel.encode()) > MAX_CHANNEL_BYTES:
        raise ValueError(
            f"event channel name is longer than {MAX_CHANNEL_BYTES} bytes: {channel!r}"
        )
    return channel


def encode_payload(payload: Mapping[str, object]) -> str:
    """Compact ASCII JSON for ``payload``; ``ValueError`` if not JSON or too large.

    ASCII (``\\uXXXX`` escapes) keeps NOTIFY independent of the server's encoding.
    """
    try:
        text = json.dumps(dict(payload), separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"event payload is not a JSON object: {exc}") from exc
    size = len(text.encode())
    if size > MAX_PAYLOAD_BYTES:
        raise ValueError(f"event payload is {size} bytes; the limit is {MAX_PAYLOAD_BYTES}")
    return text


def _decode_payload(text: str) -> dict[str, object] | None:
    try:
        value: object = json.loads(text)
    except ValueError:
        return None
    return cast(dict[str, object], value) if isinstance(value, dict) else None


class _Inbox:
    """A subscription's bounded queue plus the channels that are owed a resync."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self.events: deque[Event] = deque()
        self.owed_resync: dict[str, None] = {}  # an ordered set
        self.wakeup = asyncio.Event()
        self.closed = False

    def put(self, event: Event) -> None:
        if self.closed:
            return
        if len(self.events) >= self.maxsize:
            dropped = self.events.popleft()
            if dropped.channel not in self.owed_resync:
                logger.warning("event queue full on %s; dropping and resyncing", dropped.channel)
            self.owed_resync[dropped.channel] = None
        self.events.append(event)
        self.wakeup.set()

    def resync(self, channel: str) -> None:
        if not self.closed:
            self.owed_resync[channel] = None
            self.wakeup.set()

    def pop(self) -> Event | None:
        if self.owed_resync:
            channel = next(iter(self.owed_resync))
            del self.owed_resync[channel]
            return Event(channel, {"type": RESYNC})
        return self.events.popleft() if self.events else None

    def close(self) -> None:
        self.closed = True
        self.wakeup.set()


class Subscription:
    """Events on a set of channels; iterate it, or ``get`` with a timeout."""

    def __init__(self, channels: frozenset[str], inbox: _Inbox) -> None:
        self.channels = channels
        self._inbox = inbox

    @property
    def closed(self) -> bool:
        return self._inbox.closed

    def close(self) -> None:
        """End this subscription early: ``get`` returns what is queued, then raises
        :class:`SubscriptionClosed` (as when the bus closes)."""
        self._inbox.close()

    async def get(self, timeout: float | None) -> Event | None:  # noqa: ASYNC109
        """The next event, or ``None`` after ``timeout`` seconds (``None``: wait forever).

        Queued events are still returned after the subscription closes; then
        :class:`SubscriptionClosed` is raised.
        """
        inbox = self._inbox
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            event = inbox.pop()
            if event is not None:
                return event
            if inbox.closed:
                raise SubscriptionClosed(f"subscription to {sorted(self.channels)} is closed")
            inbox.wakeup.clear()
            if deadline is None:
                await inbox.wakeup.wait()
                continue
            remaining = deadline - loop.time()
            if remaining <= 0:
                return None
            try:
                await asyncio.wait_for(inbox.wakeup.wait(), remaining)
            except TimeoutError:
                return inbox.pop()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Event:
        try:
            event = await self.get(None)
        except SubscriptionClosed:
            raise StopAsyncIteration from None
        if event is None:  # pragma: no cover - get(None) waits until there is one
            raise StopAsyncIteration
        return event


class EventBus(Protocol):
    """Publish/subscribe on named channels. ``start`` before use; ``close`` after."""

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def publish(self, channel: str, payload: Mapping[str, object]) -> None:
        """Send ``payload`` to every current subscriber of ``channel`` (all replicas)."""
        ...

    def subscribe(self, *channels: str) -> AbstractAsyncContextManager[Subscription]:
        """Subscribe for the ``async with`` block; effective once ``__aenter__`` returns."""
        ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class BusBase:
    """Subscription bookkeeping shared by both buses."""

    def __init__(self, *, queue_size: int = DEFAULT_QUEUE_SIZE) -> None:
        if queue_size < 1:
            raise ValueError("queue_size must be at least 1")
        self._queue_size = queue_size
        self._inboxes: dict[str, set[_Inbox]] = {}
        self._state = "new"  # -> "starting" -> "running" -> "closed"

    @property
    def channels(self) -> frozenset[str]:
        """Channels with at least one subscriber in this process."""
        return frozenset(self._inboxes)

    async def start(self) -> None:
        """Make the bus usable; a no-op if it is already running."""
        if self._begin_start():
            self._state = "running"

    async def close(self) -> None:
        """End every subscription (queued events stay readable) and release resources."""
        self._state = "closed"
        for inboxes in self._inboxes.values():
            for inbox in inboxes:
                inbox.close()
        self._inboxes.clear()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def subscribe(self, *channels: str) -> AbstractAsyncContextManager[Subscription]:
        if not channels:
            raise ValueError("subscribe needs at least one channel")
        return self._subscription(frozenset(validate_channel(c) for c in channels))

    @asynccontextmanager
    async def _subscription(self, channels: frozenset[str]) -> AsyncGenerator[Subscription]:
        self._check_running()
        inbox = _Inbox(self._queue_size)
        for channel in channels:
            self._inboxes.setdefault(channel, set()).add(inbox)
        try:
            await self._listen(channels)
            yield Subscription(channels, inbox)
        finally:
            inbox.close()
            emptied: list[str] = []
            for channel in channels:
                inboxes = self._inboxes.get(channel)
                if inboxes is not None:
                    inboxes.discard(inbox)
                    if not inboxes:
                        del self._inboxes[channel]
                        emptied.append(channel)
            if emptied and self._state == "running":
                await self._unlisten(emptied)

    def _begin_start(self) -> bool:
        """False if already running; raises if starting or closed; else marks starting."""
        if self._state == "running":
            return False
        if self._state != "new":
            raise RuntimeError(f"event bus cannot start: it is {self._state}")
        self._state = "starting"
        return True

    def _check_running(self) -> None:
        if self._state != "running":
            raise RuntimeError(f"event bus is not running (it is {self._state})")

    def _deliver(self, channel: str, text: str) -> None:
        inboxes = self._inboxes.get(channel, ())
        if inboxes and _decode_payload(text) is None:
            logger.warning("non-JSON-object event on %s; resyncing", channel)
        for inbox in inboxes:
            payload = _decode_payload(text)  # a fresh dict for each subscriber
            if payload is None:
                inbox.resync(channel)
            else:
                inbox.put(Event(channel, payload))

    def _resync_all(self) -> None:
        for channel, inboxes in self._inboxes.items():
            for inbox in inboxes:
                inbox.resync(channel)

    async def _listen(self, channels: Iterable[str]) -> None:
        """Start receiving ``channels`` (already registered in ``_inboxes``)."""

    async def _unlisten(self, channels: Iterable[str]) -> None:
        """Stop receiving ``channels`` (no longer in ``_inboxes``)."""


class InProcessBus(BusBase):
    """Delivery within this process only: the bus for SQLite and tests."""

    async def publish(self, channel: str, payload: Mapping[str, object]) -> None:
        validate_channel(channel)
        text = encode_payload(payload)
        self._check_running()
        self._deliver(channel, text)


async def publish_quietly(
    bus: EventBus | None, channel: str, payload: Mapping[str, object]
) -> None:
    """Publish, logging instead of raising: events are hints, the database is the truth.

    A lost event only delays a waiter until its next re-check, so a publisher that has
    committed its change must not fail because the bus hiccupped.
    """
    if bus is None:
        return
    try:
        await bus.publish(channel, payload)
    except Exception:
        logger.warning("could not publish on %s", channel, exc_info=True)


@asynccontextmanager
async def listening(bus: EventBus | None, *channels: str) -> AsyncGenerator[Subscription | None]:
    """A subscription to ``channels`` for the block, or ``None`` without a bus.

    Waiters subscribe *before* their first check of the database, so no change between
    the check and the wait is missed; with ``None`` they simply re-check on a timer.
    """
    if bus is None:
        yield None
        return
    async with bus.subscribe(*channels) as subscription:
        yield subscription


async def pause(subscription: Subscription | None, seconds: float) -> None:
    """Until an event arrives on ``subscription`` or ``seconds`` pass (at once if ≤ 0)."""
    if seconds <= 0:
        return
    if subscription is None:
        await asyncio.sleep(seconds)
    else:
        await subscription.get(timeout=seconds)
