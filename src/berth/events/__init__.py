"""Events: small JSON messages on named channels, delivered to whoever is listening.

Channels are ``job:<uuid>``, ``workspace:<uuid>``, ``agent:<uuid>``, ``chat:<uuid>`` or
any other name of 1-63 UTF-8 bytes (Postgres' identifier limit) without NUL. Payloads
are JSON objects of ids and states, never secrets, and shorter than 8000 bytes encoded
(Postgres' NOTIFY limit). Consumers treat an event as a hint and re-read the database.

``{"type": "resync"}`` is the bus saying "you may have missed events on this channel":
a subscription's queue overflowed (it drops its oldest event), or the Postgres listener
reconnected. A resync is delivered before the subscription's queued events, so a
consumer that re-reads state on it misses nothing.

A waiter that must wake on an event *or* re-check after N seconds uses
``await sub.get(timeout=N)``, which returns ``None`` on timeout.

Implementations: :class:`InProcessBus` (SQLite, one process) and :class:`PostgresBus`
(LISTEN/NOTIFY across replicas; see its docstring for reconnects). :func:`bus_for_url`
picks one for a database URL. Both are asyncio-only (asyncpg is), and a subscription
has one consumer task. Use::

    async with bus_for_url(url) as bus:            # start() ... close()
        async with bus.subscribe(f"job:{job_id}") as sub:
            while not (await store.job(job_id)).done:  # always re-read the database
                await sub.get(timeout=5.0)          # an event, a resync, or None
"""

from berth.events.core import (
    DEFAULT_QUEUE_SIZE,
    MAX_CHANNEL_BYTES,
    MAX_PAYLOAD_BYTES,
    RESYNC,
    Event,
    EventBus,
    InProcessBus,
    Subscription,
    SubscriptionClosed,
    encode_payload,
    listening,
    pause,
    publish_quietly,
    validate_channel,
)
from berth.events.postgres import PostgresBus, asyncpg_dsn, is_postgres_url

__all__ = [
    "DEFAULT_QUEUE_SIZE",
    "MAX_CHANNEL_BYTES",
    "MAX_PAYLOAD_BYTES",
    "RESYNC",
    "Event",
    "EventBus",
    "InProcessBus",
    "PostgresBus",
    "Subscription",
    "SubscriptionClosed",
    "asyncpg_dsn",
    "bus_for_url",
    "encode_payload",
    "is_postgres_url",
    "listening",
    "pause",
    "publish_quietly",
    "validate_channel",
]


def bus_for_url(database_url: str, *, queue_size: int = DEFAULT_QUEUE_SIZE) -> EventBus:
    """A :class:`PostgresBus` for a PostgreSQL URL, else an :class:`InProcessBus`."""
    if is_postgres_url(database_url):
        return PostgresBus(database_url, queue_size=queue_size)
    return InProcessBus(queue_size=queue_size)
