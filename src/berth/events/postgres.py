"""Postgres LISTEN/NOTIFY bus (see ``berth.events``).

asyncpg is imported when a bus starts, so SQLite installs never load it.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Protocol, cast

from berth.events.core import DEFAULT_QUEUE_SIZE, BusBase, encode_payload, validate_channel

logger = logging.getLogger("berth.events")

# asyncpg ships without type information; these protocols are the part berth uses.
# Timeouts are applied with asyncio.wait_for rather than asyncpg's own parameters.

_NotifyCallback = Callable[[object, int, str, str], None]


class _PgConnection(Protocol):
    async def add_listener(self, channel: str, callback: _NotifyCallback) -> None: ...
    async def remove_listener(self, channel: str, callback: _NotifyCallback) -> None: ...
    def add_termination_listener(self, callback: Callable[[object], None]) -> None: ...
    async def fetchval(self, query: str, *args: object) -> object: ...
    def get_server_pid(self) -> int: ...
    def is_closed(self) -> bool: ...
    def terminate(self) -> None: ...
    async def close(self) -> None: ...


class _PgPool(Protocol):
    async def execute(self, query: str, *args: object) -> str: ...
    async def close(self) -> None: ...
    def terminate(self) -> None: ...


class _Asyncpg(Protocol):
    PostgresConnectionError: type[Exception]
    OperatorInterventionError: type[Exception]  # SQLSTATE class 57: admin shutdown, …
    InterfaceError: type[Exception]
    InternalClientError: type[Exception]

    async def connect(self, dsn: str, *, server_settings: dict[str, str]) -> _PgConnection: ...
    def create_pool(
        self, dsn: str, *, min_size: int, max_size: int, server_settings: dict[str, str]
    ) -> Awaitable[_PgPool]: ...


def _asyncpg() -> _Asyncpg:
    return cast(_Asyncpg, importlib.import_module("asyncpg"))


def is_postgres_url(url: str) -> bool:
    scheme = url.partition("://")[0].partition("+")[0].lower()
    return scheme in ("postgres", "postgresql")


def asyncpg_dsn(url: str) -> str:
    """``postgresql+asyncpg://…`` (SQLAlchemy) or ``postgres://…`` → ``postgresql://…``."""
    if not is_postgres_url(url):
        raise ValueError("not a PostgreSQL URL")
    return "postgresql://" + url.partition("://")[2]


class PostgresBus(BusBase):
    """LISTEN/NOTIFY: one shared listener connection, a small pool for publishing.

    The listener LISTENs on a channel when its first subscriber arrives and UNLISTENs
    when the last one leaves. When the listener connection drops (server restart,
    ``pg_terminate_backend``, a failed health check) the bus reconnects with
    exponential backoff (``min_backoff`` doubling to ``max_backoff``, forever until
    closed), re-LISTENs every subscribed channel, then sends ``{"type": "resync"}`` on
    each of them. Subscriptions opened while disconnected are served the same way.
    A publish that hits a dead pooled connection is retried once.
    """

    def __init__(
        self,
        dsn: str,
        *,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        pool_size: int = 4,
        min_backoff: float = 0.05,
        max_backoff: float = 2.0,
        connect_timeout: float = 10.0,
        command_timeout: float = 10.0,
        health_check_interval: float | None = 30.0,
        application_name: str | None = "berth-events",
    ) -> None:
        super().__init__(queue_size=queue_size)
        self._dsn = asyncpg_dsn(dsn)
        self._pool_size = pool_size
        self._min_backoff = min_backoff
        self._max_backoff = max_backoff
        self._connect_timeout = connect_timeout
        self._command_timeout = command_timeout
        self._health_check_interval = health_check_interval
        self._server_settings = {"application_name": application_name} if application_name else {}
        self._lock = asyncio.Lock()  # serialises commands on the listener connection
        self._conn: _PgConnection | None = None
        self._lost = asyncio.Event()
        self._pool: _PgPool | None = None
        self._supervisor: asyncio.Task[None] | None = None

    @property
    def dsn(self) -> str:
        return self._dsn

    @property
    def listener_pid(self) -> int | None:
        """The server process id of the listener connection, while connected."""
        conn = self._conn
        return None if conn is None or conn.is_closed() else conn.get_server_pid()

    async def start(self) -> None:
        """Open the publish pool and the listener connection; raises if unreachable."""
        if not self._begin_start():
            return
        try:
            pool = await asyncio.wait_for(
                _asyncpg().create_pool(
                    self._dsn,
                    min_size=1,
                    max_size=self._pool_size,
                    server_settings=self._server_settings,
                ),
                self._connect_timeout,
            )
        except BaseException:
            self._state = "new"
            raise
        try:
            await self._connect_listener()
        except BaseException:
            pool.terminate()
            self._state = "new"
            raise
        self._pool = pool
        self._state = "running"
        self._supervisor = asyncio.create_task(self._supervise(), name="berth.events listener")

    async def close(self) -> None:
        if self._state == "closed":
            return
        await super().close()
        if self._supervisor is not None:
            self._supervisor.cancel()
            await asyncio.gather(self._supervisor, return_exceptions=True)
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                await asyncio.wait_for(conn.close(), self._command_timeout)
            except Exception:
                conn.terminate()
        pool, self._pool = self._pool, None
        if pool is not None:
            try:
                await asyncio.wait_for(pool.close(), self._command_timeout)
            except Exception:
                pool.terminate()

    async def publish(self, channel: str, payload: Mapping[str, object]) -> None:
        validate_channel(channel)
        text = encode_payload(payload)
        self._check_running()
        pool = self._pool
        if pool is None:  # _check_running passed, so start() made it
            raise RuntimeError("event bus has no connection pool")
        pg = _asyncpg()
        retryable = (
            OSError,  # includes TimeoutError
            pg.PostgresConnectionError,
            pg.OperatorInterventionError,
            pg.InterfaceError,
            # A pool connection whose backend was terminated mid-use can fail with
            # "cannot switch to state …; another operation is in progress"; the pool
            # drops it, and the retry gets a fresh one.
            pg.InternalClientError,
        )
        for attempt in (1, 2):
            try:
                await asyncio.wait_for(
                    pool.execute("SELECT pg_notify($1, $2)", channel, text), self._command_timeout
                )
                return
            except retryable as exc:
                if attempt == 2:
                    raise
                # A duplicate notification is harmless: consumers re-read the database.
                logger.warning("publish on %s failed (%s); retrying once", channel, exc)

    async def server_listening_channels(self) -> frozenset[str]:
        """What the listener connection LISTENs on, as the server reports it."""
        async with self._lock:
            if self._conn is None:
                return frozenset()
            query = "SELECT coalesce(array_agg(c), '{}') FROM pg_listening_channels() AS c"
            value = await asyncio.wait_for(self._conn.fetchval(query), self._command_timeout)
        return frozenset(cast(list[str], value))

    def _on_notify(self, conn: object, pid: int, channel: str, payload: str) -> None:
        if conn is self._conn:
            self._deliver(channel, payload)

    def _on_terminated(self, conn: object) -> None:
        if conn is self._conn:
            self._lost.set()

    async def _listen(self, channels: Iterable[str]) -> None:
        async with self._lock:
            for channel in channels:
                if self._conn is None:
                    return  # the reconnect will LISTEN and resync
                if channel in self._inboxes:
                    await self._command(self._conn.add_listener(channel, self._on_notify))

    async def _unlisten(self, channels: Iterable[str]) -> None:
        async with self._lock:
            for channel in channels:
                if self._conn is None:
                    return
                if channel not in self._inboxes:
                    try:
                        await self._command(self._conn.remove_listener(channel, self._on_notify))
                    except Exception as exc:  # a stray LISTEN is harmless: nobody receives it
                        logger.warning("UNLISTEN %s failed: %s", channel, exc)

    async def _command(self, command: Awaitable[None]) -> None:
        """Run a listener command; if the connection is dead, leave it to the reconnect."""
        conn = self._conn
        if conn is None:
            return  # no listener connection: the reconnect listens afresh
        try:
            await asyncio.wait_for(command, self._command_timeout)
        except Exception as exc:
            if not isinstance(exc, TimeoutError) and not conn.is_closed():
                raise
            logger.warning("event listener command failed (%s); reconnecting", exc)
            conn.terminate()
            self._conn = None
            self._lost.set()

    async def _connect_listener(self) -> None:
        conn = await asyncio.wait_for(
            _asyncpg().connect(self._dsn, server_settings=self._server_settings),
            self._connect_timeout,
        )
        try:
            conn.add_termination_listener(self._on_terminated)
            async with self._lock:
                for channel in list(self._inboxes):
                    await asyncio.wait_for(
                        conn.add_listener(channel, self._on_notify), self._command_timeout
                    )
                self._conn = conn
                self._lost.clear()
            if conn.is_closed():
                self._lost.set()
        except BaseException:
            conn.terminate()
            raise

    async def _supervise(self) -> None:
        try:
            while True:
                await self._wait_until_lost()
                await self._reconnect()
        except Exception:
            logger.exception("event listener supervisor failed; events are no longer received")
            raise

    async def _wait_until_lost(self) -> None:
        interval = self._health_check_interval
        while not self._lost.is_set():
            try:
                await asyncio.wait_for(self._lost.wait(), interval)
            except TimeoutError:
                await self._health_check()

    async def _health_check(self) -> None:
        async with self._lock:
            conn = self._conn
            if conn is None:
                return
            try:
                await asyncio.wait_for(conn.fetchval("SELECT 1"), self._command_timeout)
            except Exception as exc:
                logger.warning("event listener health check failed: %s", exc)
                conn.terminate()
                self._lost.set()

    async def _reconnect(self) -> None:
        old, self._conn = self._conn, None
        if old is not None:
            old.terminate()
        logger.warning("event listener connection lost; reconnecting")
        delay, attempt = self._min_backoff, 1
        while True:
            try:
                await self._connect_listener()
                break
            except Exception as exc:
                logger.warning(
                    "event listener reconnect attempt %d failed (%s); next in %.2fs",
                    attempt,
                    exc,
                    delay,
                )
            await asyncio.sleep(delay)
            delay, attempt = min(delay * 2, self._max_backoff), attempt + 1
        logger.info(
            "event listener reconnected (attempt %d); resyncing %d channel(s)",
            attempt,
            len(self._inboxes),
        )
        self._resync_all()
