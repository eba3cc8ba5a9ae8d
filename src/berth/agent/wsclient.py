"""A small RFC 6455 WebSocket client on the standard library: what the agent needs.

The agent must run on a bare ``python3`` (≥ 3.9), so it cannot install a WebSocket
library, and vendoring one (websockets, ~15,000 lines) cost ~200 ms of imports at every
start. This is the client side of RFC 6455 and no more: no extensions (so no
compression), no subprotocols, no proxies, no redirects.

* :func:`connect` does the opening handshake over ``socket``/``ssl`` (``ws://``,
  ``wss://``) and checks ``Sec-WebSocket-Accept``. Any answer but ``101`` raises
  :class:`HandshakeError` with the HTTP status, because the caller must tell a refused
  token (401/403: give up) from a restarting server (5xx: retry).
* :class:`WebSocket` sends text and binary messages, masked and cut into frames of at
  most ``fragment_size`` so that control frames (a pong, a close) can go out between
  the fragments of a large message; it reassembles fragmented messages up to
  ``max_size``, answers pings, matches pongs to :meth:`~WebSocket.ping`, and closes
  with a code and a reason.

Threads: any number may :meth:`~WebSocket.send`, :meth:`~WebSocket.ping` and
:meth:`~WebSocket.close` at once; one reads with :meth:`~WebSocket.recv`. There is no
background thread: control frames from the server are handled while the reader reads,
which the agent does all the time (its ``recv`` timeout is its heartbeat clock).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import re
import selectors
import socket
import sys
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    import ssl

CONT, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
NORMAL_CLOSURE, PROTOCOL_ERROR, INVALID_DATA, MESSAGE_TOO_BIG = 1000, 1002, 1007, 1009
NO_STATUS = 1005  # reported when the server's close frame had no code; never sent
ABNORMAL_CLOSURE = 1006  # reported when the connection ended without a close; never sent

_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 §1.3
_MAX_HEAD = 64 * 1024
_READ_CHUNK = 256 * 1024


def _tls_pending(sock: socket.socket) -> bool:
    """Whether a TLS socket holds decrypted bytes that ``select`` cannot see (``ssl`` is
    imported only for ``wss://``: without it no socket is a TLS one)."""
    if "ssl" not in sys.modules:
        return False
    import ssl

    return isinstance(sock, ssl.SSLSocket) and sock.pending() > 0


class WebSocketError(Exception):
    """The base of this module's errors."""


class HandshakeError(WebSocketError):
    """The server did not open a WebSocket.

    ``status`` is the HTTP status it answered (``None`` when it sent no usable answer),
    kept apart from the message because 401/403 mean "give up" and a 5xx "retry".
    """

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ConnectionClosed(WebSocketError):
    """The connection is over: closed by the server or by us, or lost (``code`` 1006).

    ``code`` and ``reason`` are those of the server's close frame if one came, else of
    our close frame or of the failure that ended the connection.
    """

    def __init__(self, code: int, reason: str = "") -> None:
        super().__init__(f"closed with code {code}" + (f" ({reason})" if reason else ""))
        self.code, self.reason = code, reason


class _Failure(ConnectionClosed):
    """Internal: the connection must fail with this close code (RFC 6455 §7.1.7)."""


def connect(
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    user_agent: str | None = None,
    open_timeout: float = 10.0,
    close_timeout: float = 2.0,
    io_timeout: float = 60.0,
    max_size: int = 16 * 1024 * 1024,
    fragment_size: int = 1024 * 1024,
    ssl_context: ssl.SSLContext | None = None,
) -> WebSocket:
    """Open a WebSocket to a ``ws://`` or ``wss://`` URL.

    ``open_timeout`` bounds the whole opening (TCP, TLS, HTTP); afterwards
    ``io_timeout`` bounds each socket operation, so a server that stops reading cannot
    hang a sender forever. Raises ``ValueError`` for a bad URL or header,
    :class:`HandshakeError`, or ``OSError`` (``TimeoutError`` included).
    """
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise ValueError(f"not a ws:// or wss:// URL: {url!r}")
    fields = {**(headers or {}), **({"User-Agent": user_agent} if user_agent else {})}
    if any(c in item for item in (*fields, *fields.values()) for c in "\r\n"):
        raise ValueError("header names and values cannot contain line breaks")
    secure, host = parts.scheme == "wss", parts.hostname
    netloc = (f"[{host}]" if ":" in host else host) + (f":{parts.port}" if parts.port else "")
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET {parts.path or '/'}{'?' + parts.query if parts.query else ''} HTTP/1.1\r\n"
        f"Host: {netloc}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        + "".join(f"{name}: {value}\r\n" for name, value in fields.items())
        + "\r\n"
    )
    deadline = time.monotonic() + open_timeout
    sock = socket.create_connection((host, parts.port or (443 if secure else 80)), open_timeout)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # frames are small
        if secure:
            sock.settimeout(_left(deadline))
            import ssl  # only for wss://: a sandbox's agent dials its relay in plain ws

            context = ssl_context or ssl.create_default_context()
            sock = context.wrap_socket(sock, server_hostname=host)
        sock.settimeout(_left(deadline))
        sock.sendall(request.encode("latin-1"))
        rest = _read_upgrade(sock, key, deadline)
        sock.settimeout(io_timeout)
    except socket.timeout as err:  # not yet TimeoutError on 3.9
        sock.close()
        raise TimeoutError(f"timed out opening a WebSocket to {url}") from err
    except BaseException:
        sock.close()
        raise
    return WebSocket(sock, rest, max_size, fragment_size, close_timeout)


def _left(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise socket.timeout("timed out")
    return left


def _read_upgrade(sock: socket.socket, key: str, deadline: float) -> bytes:
    """Read and check the answer to the upgrade (RFC 6455 §4.1); the bytes after it."""
    data = b""
    while b"\r\n\r\n" not in data:
        if len(data) > _MAX_HEAD:
            raise HandshakeError("the server's HTTP response headers are too long")
        sock.settimeout(_left(deadline))
        chunk = sock.recv(4096)
        if not chunk:
            raise HandshakeError("the server closed the connection during the handshake")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    match = re.match(r"HTTP/1\.\d (\d{3})(?: (.*))?$", status_line)
    if match is None:
        raise HandshakeError(f"not an HTTP response: {status_line[:80]!r}")
    status = int(match.group(1))
    if status != 101:
        text = f"server rejected WebSocket connection: HTTP {status} {match.group(2) or ''}"
        raise HandshakeError(text.rstrip(), status)
    fields: dict[str, str] = {}
    for line in lines:
        name, _, value = line.partition(":")
        name, value = name.strip().lower(), value.strip()
        fields[name] = f"{fields[name]}, {value}" if name in fields else value
    digest = hashlib.sha1((key + _GUID).encode(), usedforsecurity=False).digest()
    connection = [token.strip().lower() for token in fields.get("connection", "").split(",")]
    if fields.get("upgrade", "").lower() != "websocket" or "upgrade" not in connection:
        problem = "it does not upgrade to websocket"
    elif fields.get("sec-websocket-accept") != base64.b64encode(digest).decode():
        problem = "its Sec-WebSocket-Accept does not match the key"
    elif "sec-websocket-extensions" in fields or "sec-websocket-protocol" in fields:
        problem = "it chose an extension or subprotocol that was not offered"
    else:
        return rest
    raise HandshakeError(f"invalid WebSocket handshake response: {problem}", status)


def _frame(opcode: int, payload: bytes | memoryview, fin: bool = True) -> bytes:
    """One client frame, masked (RFC 6455 §5.3) with one big-integer XOR."""
    size = len(payload)
    if size < 126:
        head = bytes([(0x80 if fin else 0) | opcode, 0x80 | size])
    else:
        wide = size >= 1 << 16
        head = bytes([(0x80 if fin else 0) | opcode, 0x80 | (127 if wide else 126)])
        head += size.to_bytes(8 if wide else 2, "big")
    mask = os.urandom(4)
    if not size:
        return head + mask
    key = int.from_bytes((mask * (size // 4 + 1))[:size], "little")
    return head + mask + (int.from_bytes(payload, "little") ^ key).to_bytes(size, "little")


class WebSocket:
    """An open client connection, made by :func:`connect`."""

    def __init__(
        self,
        sock: socket.socket,
        buffered: bytes,
        max_size: int,
        fragment_size: int,
        close_timeout: float,
    ) -> None:
        self.max_size, self.fragment_size = max_size, max(1, fragment_size)
        self.close_timeout = close_timeout
        self._sock = sock
        self._buf = bytearray(buffered)  # received, not yet parsed into frames
        self._selector = selectors.DefaultSelector()  # to wait for data with a timeout
        self._selector.register(sock, selectors.EVENT_READ)
        self._recv_lock = threading.Lock()  # the one reader (or close() awaiting a reply)
        self._message_lock = threading.Lock()  # the fragments of a message go out together
        self._write_lock = threading.Lock()  # one frame at a time onto the socket
        self._lock = threading.Lock()  # for the two below
        self.closed: ConnectionClosed | None = None  # how it ended; None while open
        self._pings: dict[bytes, threading.Event] = {}  # unanswered pings, oldest first
        self._opcode: int | None = None  # of the message being reassembled
        self._fragments: list[bytes] = []
        self._size = 0
        self._closing: ConnectionClosed | None = None  # set once a close frame went out
        self._released = False

    def send(self, message: str | bytes) -> None:
        """Send a text (``str``) or binary message; :class:`ConnectionClosed` if closed."""
        opcode = TEXT if isinstance(message, str) else BINARY
        view = memoryview(message.encode("utf-8") if isinstance(message, str) else message)
        step = self.fragment_size
        with self._message_lock:
            for start in range(0, max(len(view), 1), step):
                fin = start + step >= len(view)
                self._send_frame(opcode if start == 0 else CONT, view[start : start + step], fin)

    def ping(self, data: bytes | None = None) -> threading.Event:
        """Send a ping; the event is set when its pong (or a later ping's) comes back.

        Pongs are noticed by the reader, so only while a thread is in :meth:`recv`.
        """
        payload = os.urandom(4) if data is None else data
        if len(payload) > 125:
            raise ValueError("a ping carries at most 125 bytes")
        event = threading.Event()
        with self._lock:
            if payload in self._pings:
                raise ValueError("a ping with this payload is already waiting for its pong")
            self._pings[payload] = event
        self._send_frame(PING, payload)
        return event

    def recv(self, timeout: float | None = None) -> str | bytes:
        """The next message: ``str`` for text, ``bytes`` for binary.

        Answers pings and notes pongs on the way. Raises ``TimeoutError`` if no whole
        message came within ``timeout`` seconds (a partial one is kept for the next
        call), and :class:`ConnectionClosed` once the connection is over: closed by
        either side, lost (1006), or failed here for a protocol error (1002), invalid
        UTF-8 (1007) or a message over ``max_size`` (1009).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._recv_lock:
            while True:
                try:
                    message = self._on_frame(*self._read_frame(deadline))
                except _Failure as failure:
                    if failure.code != ABNORMAL_CLOSURE:
                        self._send_close(failure.code, failure.reason)
                    self._finish(ConnectionClosed(failure.code, failure.reason))
                    continue  # _read_frame raises the ConnectionClosed
                if message is not None:
                    return message

    def close(self, code: int = NORMAL_CLOSURE, reason: str = "") -> None:
        """Send a close frame, wait up to ``close_timeout`` for the server's, and release
        the socket. Safe from any thread, and more than once."""
        deadline = time.monotonic() + self.close_timeout
        self._send_close(code, reason)
        if self._recv_lock.acquire(timeout=self.close_timeout):
            try:  # no one else is reading: drop what comes until the server's close
                while self.closed is None:
                    fin, opcode, payload = self._read_frame(deadline)
                    if opcode == CLOSE:
                        self._on_frame(fin, opcode, payload)
            except (TimeoutError, ConnectionClosed):  # _Failure included
                pass
            finally:
                self._recv_lock.release()
        self._finish(self._closing or ConnectionClosed(code, reason))
        with self._recv_lock:  # a reader still waiting was woken by the shutdown
            if not self._released:
                self._released = True
                self._selector.close()
                self._sock.close()

    def _send_frame(self, opcode: int, payload: bytes | memoryview, fin: bool = True) -> None:
        frame = _frame(opcode, payload, fin)
        with self._write_lock:
            ended = self.closed or self._closing
            if ended is not None:
                if opcode == PONG:
                    return
                raise ended
            try:
                self._sock.sendall(frame)
            except OSError as err:
                self._finish(ConnectionClosed(ABNORMAL_CLOSURE, f"connection lost: {err}"))
                raise self.closed or ConnectionClosed(ABNORMAL_CLOSURE) from err

    def _send_close(self, code: int, reason: str, payload: bytes | None = None) -> None:
        """Send our close frame, once; failing to send it only ends the connection."""
        if payload is None:  # the reason, cut to fit 125 bytes on a UTF-8 boundary
            cut = reason.encode("utf-8")[:123].decode("utf-8", "ignore")
            payload = code.to_bytes(2, "big") + cut.encode("utf-8")
        frame = _frame(CLOSE, payload)
        with self._write_lock:
            if self._closing is not None or self.closed is not None:
                return
            self._closing = ConnectionClosed(code, reason)
            try:
                self._sock.sendall(frame)
            except OSError as err:
                self._finish(ConnectionClosed(ABNORMAL_CLOSURE, f"connection lost: {err}"))

    def _finish(self, closed: ConnectionClosed) -> None:
        """The connection is over: keep how it ended (the first word wins), stop the socket.

        The plain socket's ``shutdown`` wakes a reader blocked on it; it bypasses
        ``SSLSocket.shutdown``, which drops TLS first and so would let a racing sender
        write in the clear. Only :meth:`close` closes the descriptor.
        """
        with self._lock:
            if self.closed is None:
                self.closed = closed
        with contextlib.suppress(OSError):
            socket.socket.shutdown(self._sock, socket.SHUT_RDWR)

    def _read_frame(self, deadline: float | None) -> tuple[bool, int, bytes]:
        """The next frame ``(fin, opcode, payload)``, reading the socket as needed."""
        while True:
            if self.closed is not None:
                raise self.closed
            frame = self._parse()
            if frame is not None:
                return frame
            if not _tls_pending(self._sock):
                wait = None if deadline is None else max(0.0, deadline - time.monotonic())
                if not self._selector.select(wait):
                    raise TimeoutError("no message within the timeout")
            try:
                chunk = self._sock.recv(_READ_CHUNK)
            except OSError as err:
                raise _Failure(ABNORMAL_CLOSURE, f"connection lost: {err}") from None
            if not chunk:
                raise _Failure(ABNORMAL_CLOSURE, "connection lost: the socket was closed")
            self._buf += chunk

    def _parse(self) -> tuple[bool, int, bytes] | None:
        """Take one whole frame off the buffer; ``None`` until all of it has arrived."""
        buf = self._buf
        if len(buf) < 2:
            return None
        fin, opcode, size, offset = bool(buf[0] & 0x80), buf[0] & 0x0F, buf[1] & 0x7F, 2
        if buf[0] & 0x70:
            raise _Failure(PROTOCOL_ERROR, "reserved bits set but no extension was agreed")
        if buf[1] & 0x80:
            raise _Failure(PROTOCOL_ERROR, "the server masked a frame")
        if size >= 126:
            offset = 4 if size == 126 else 10
            if len(buf) < offset:
                return None
            size = int.from_bytes(buf[2:offset], "big")
        if opcode >= 8 and (size > 125 or not fin):
            raise _Failure(PROTOCOL_ERROR, "a control frame is fragmented or too long")
        if opcode < 8 and self._size + size > self.max_size:  # before it is all read
            raise _Failure(MESSAGE_TOO_BIG, f"a message is over {self.max_size} bytes")
        if len(buf) < offset + size:
            return None
        with memoryview(buf) as view:
            payload = bytes(view[offset : offset + size])
        del buf[: offset + size]
        return fin, opcode, payload

    def _on_frame(self, fin: bool, opcode: int, payload: bytes) -> str | bytes | None:
        """Handle one frame; the message once its last fragment is in."""
        if opcode == PING:
            self._send_frame(PONG, payload)
        elif opcode == PONG:
            with self._lock:
                if payload in self._pings:  # it answers this ping and every earlier one
                    for key in list(self._pings):
                        self._pings.pop(key).set()
                        if key == payload:
                            break
        elif opcode == CLOSE:
            self._on_close(payload)
        elif opcode not in (CONT, TEXT, BINARY):
            raise _Failure(PROTOCOL_ERROR, f"unknown opcode {opcode}")
        elif (opcode == CONT) != (self._opcode is not None):
            raise _Failure(PROTOCOL_ERROR, "a continuation frame out of place")
        else:
            self._opcode = opcode if self._opcode is None else self._opcode
            self._fragments.append(payload)
            self._size += len(payload)
            if fin:
                data, kind = b"".join(self._fragments), self._opcode
                self._opcode, self._fragments, self._size = None, [], 0
                if kind == BINARY:
                    return data
                try:
                    return data.decode("utf-8")
                except UnicodeDecodeError:
                    raise _Failure(INVALID_DATA, "a text message is not UTF-8") from None
        return None

    def _on_close(self, payload: bytes) -> None:
        """The server's close frame: echo its code unless ours went out first (§5.5.1)."""
        if len(payload) == 1:
            raise _Failure(PROTOCOL_ERROR, "a close frame with a one-byte body")
        code = int.from_bytes(payload[:2], "big") if payload else NO_STATUS
        try:
            reason = payload[2:].decode("utf-8")
        except UnicodeDecodeError:
            raise _Failure(INVALID_DATA, "a close reason is not UTF-8") from None
        valid = (1000 <= code <= 1014 and code not in (1004, 1005, 1006)) or 3000 <= code < 5000
        if payload and not valid:
            raise _Failure(PROTOCOL_ERROR, f"invalid close code {code}")
        self._send_close(code, reason, payload[:2])
        self._finish(ConnectionClosed(code, reason))
