"""The agent's WebSocket client against real servers.

Most tests talk to uvicorn — the WebSocket stack berth's server runs on — serving a
small Starlette app of their own, with uvicorn's default settings (so its default
WebSocket implementation). The ones that need to see or make individual frames
(fragments, a server ping) use the sync server of the websockets library instead. Each
server runs in a thread on a socket bound before it starts, so a test connects at once;
every wait is bounded by :data:`WAIT` and nothing sleeps.
"""

from __future__ import annotations

import contextlib
import json
import queue
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket as ServerSocket
from websockets.sync.server import ServerConnection
from websockets.sync.server import serve as websockets_serve

from berth.agent.wsclient import ConnectionClosed, HandshakeError, WebSocket, connect

WAIT = 20.0
MiB = 1024 * 1024
Seen = tuple[Any, ...]


@dataclass
class Served:
    """A server's base URL and what its app saw, in order."""

    url: str
    seen: queue.Queue[Seen]

    def next_seen(self) -> Seen:
        return self.seen.get(timeout=WAIT)


def starlette_app(seen: queue.Queue[Seen]) -> Starlette:
    async def echo(ws: ServerSocket) -> None:
        await ws.accept()
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                seen.put(("disconnect", message.get("code"), message.get("reason", "")))
                return
            if message.get("text") is not None:
                await ws.send_text(message["text"])
            else:
                await ws.send_bytes(message["bytes"])

    async def headers(ws: ServerSocket) -> None:
        await ws.accept()
        await ws.send_json(dict(ws.headers.items()))
        await ws.receive()

    async def refuse(ws: ServerSocket) -> None:
        await ws.send_denial_response(PlainTextResponse("bad agent token", status_code=401))

    async def close_before_accept(ws: ServerSocket) -> None:
        await ws.close(code=4401, reason="invalid agent token")  # as berth's agent route

    async def close_after_accept(ws: ServerSocket) -> None:
        await ws.accept()
        await ws.receive_text()
        await ws.close(code=4401, reason="invalid agent token")

    return Starlette(
        routes=[
            WebSocketRoute("/echo", echo),
            WebSocketRoute("/headers", headers),
            WebSocketRoute("/refuse", refuse),
            WebSocketRoute("/close-before-accept", close_before_accept),
            WebSocketRoute("/close-after-accept", close_after_accept),
        ]
    )


def _listening() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    return sock


@contextlib.contextmanager
def uvicorn_serving(certfile: str | None = None, keyfile: str | None = None) -> Generator[Served]:
    """The Starlette app on uvicorn in a thread, over TLS if given a certificate."""
    seen: queue.Queue[Seen] = queue.Queue()
    sock = _listening()
    app = starlette_app(seen)
    config = uvicorn.Config(
        app, log_level="warning", lifespan="off", ssl_certfile=certfile, ssl_keyfile=keyfile
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    scheme = "wss" if certfile else "ws"
    try:
        yield Served(f"{scheme}://127.0.0.1:{sock.getsockname()[1]}", seen)
    finally:
        server.should_exit = True
        thread.join(WAIT)
        sock.close()
    assert not thread.is_alive(), "uvicorn did not stop"


@pytest.fixture
def served() -> Iterator[Served]:
    with uvicorn_serving() as running:
        yield running


@contextlib.contextmanager
def websockets_serving(handler: Callable[[ServerConnection], None]) -> Generator[str]:
    """``handler`` on the websockets library's sync server, in a thread; its URL."""
    with websockets_serve(handler, "127.0.0.1", 0, compression=None, max_size=None) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"ws://127.0.0.1:{server.socket.getsockname()[1]}"
        finally:
            server.shutdown()
            thread.join(WAIT)


@contextlib.contextmanager
def opened(url: str, **kwargs: Any) -> Generator[WebSocket]:
    ws = connect(url, open_timeout=WAIT, **kwargs)
    try:
        yield ws
    finally:
        ws.close()


def test_the_handshake_carries_the_token_and_the_user_agent(served: Served) -> None:
    headers = {"Authorization": "Bearer agent-token"}
    with opened(served.url + "/headers", headers=headers, user_agent="berth-agent/1") as ws:
        got = json.loads(ws.recv(timeout=WAIT))
        assert ws.closed is None
    assert got["authorization"] == "Bearer agent-token"
    assert got["user-agent"] == "berth-agent/1"
    assert got["host"] == served.url.removeprefix("ws://")
    assert got["sec-websocket-version"] == "13"
    assert "sec-websocket-extensions" not in got  # no compression offered
    assert ws.closed is not None
    assert ws.closed.code == 1000


def test_a_refused_handshake_keeps_its_http_status(served: Served) -> None:
    with pytest.raises(HandshakeError) as refused:
        connect(served.url + "/refuse", open_timeout=WAIT)
    assert refused.value.status == 401
    assert str(refused.value) == "server rejected WebSocket connection: HTTP 401 Unauthorized"
    # A close before the accept (what berth's route does, with 4401) reaches the
    # client as an HTTP 403: uvicorn answers the handshake itself.
    with pytest.raises(HandshakeError) as closed:
        connect(served.url + "/close-before-accept", open_timeout=WAIT)
    assert closed.value.status == 403


def test_the_server_closes_with_a_code_and_reason(served: Served) -> None:
    with opened(served.url + "/close-after-accept") as ws:
        ws.send("go")
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=WAIT)
        assert (closed.value.code, closed.value.reason) == (4401, "invalid agent token")
        assert ws.closed is closed.value
        with pytest.raises(ConnectionClosed):
            ws.send("after the close")
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=WAIT)


def test_the_client_closes_with_a_code_and_reason(served: Served) -> None:
    ws = connect(served.url + "/echo", open_timeout=WAIT)
    ws.send("hello")
    assert ws.recv(timeout=WAIT) == "hello"
    ws.close(1001, "the agent is stopping")
    assert served.next_seen() == ("disconnect", 1001, "the agent is stopping")
    assert ws.closed is not None
    assert ws.closed.code == 1001  # the server's answer echoes the code
    ws.close()  # again: nothing happens
    with pytest.raises(ConnectionClosed):
        ws.send("after the close")


@pytest.mark.parametrize("kind", ["text", "binary"])
def test_large_messages_both_ways_through_uvicorn(served: Served, kind: str) -> None:
    """8 MiB goes out in 1 MiB fragments, and comes back as one 8 MiB frame."""
    text = "0123456789é" * (8 * MiB // 12)
    message: str | bytes = text if kind == "text" else text.encode()
    with opened(served.url + "/echo", fragment_size=MiB, max_size=16 * MiB) as ws:
        ws.send(message)
        assert ws.recv(timeout=WAIT) == message
        ws.send(message[:0])
        assert ws.recv(timeout=WAIT) == message[:0]


def test_fragmented_messages_both_ways() -> None:
    """Each frame the client sends is one fragment; fragments it receives are joined."""

    def handler(conn: ServerConnection) -> None:
        for _ in range(2):
            fragments = list(conn.recv_streaming())
            sizes = [len(f) for f in fragments]
            conn.send(json.dumps({"sizes": sizes, "type": type(fragments[0]).__name__}))
            conn.send(fragments)  # back as the same fragments

    text = "añ€😀" * (MiB // 4)  # fragment boundaries fall inside UTF-8 sequences
    binary = bytes(range(256)) * (3 * MiB // 256 + 1)
    with websockets_serving(handler) as url, opened(url, fragment_size=MiB + 1) as ws:
        ws.send(text)
        encoded = len(text.encode())
        report = json.loads(ws.recv(timeout=WAIT))
        assert report["type"] == "str"
        assert sum(report["sizes"]) == len(text)  # characters, decoded across fragments
        assert len(report["sizes"]) == -(-encoded // (MiB + 1))
        assert ws.recv(timeout=WAIT) == text
        ws.send(binary)
        report = json.loads(ws.recv(timeout=WAIT))
        assert report == {"sizes": [MiB + 1] * 3 + [len(binary) - 3 * (MiB + 1)], "type": "bytes"}
        assert ws.recv(timeout=WAIT) == binary


def test_a_ping_gets_its_pong(served: Served) -> None:
    with opened(served.url + "/echo") as ws:
        first, second = ws.ping(b"first"), ws.ping()
        with pytest.raises(ValueError, match="already waiting"):
            ws.ping(b"first")
        with pytest.raises(ValueError, match="at most 125 bytes"):
            ws.ping(b"x" * 126)
        ws.send("after the pings")
        # uvicorn answers a ping as it reads it, before the app sees the next message.
        assert ws.recv(timeout=WAIT) == "after the pings"
        assert first.is_set()
        assert second.is_set()


def test_the_reader_answers_the_servers_ping() -> None:
    def handler(conn: ServerConnection) -> None:
        pong = conn.ping(b"are you there")
        conn.send("pong" if pong.wait(WAIT) else "no pong")
        conn.recv()

    with websockets_serving(handler) as url, opened(url) as ws:
        assert ws.recv(timeout=WAIT) == "pong"


def test_concurrent_senders_keep_messages_whole_and_in_order(served: Served) -> None:
    """Many threads send multi-fragment messages and pings at once; one thread reads."""
    senders, count = 8, 40
    with opened(served.url + "/echo", fragment_size=1000) as ws:
        pings: list[threading.Event] = []

        def send_all(sender: int) -> None:
            for i in range(count):
                ws.send(f"{sender}:{i}:" + "x" * (i * 397 % 6000))
                if sender == 0:
                    pings.append(ws.ping())

        threads = [threading.Thread(target=send_all, args=(n,)) for n in range(senders)]
        for thread in threads:
            thread.start()
        received = [ws.recv(timeout=WAIT) for _ in range(senders * count)]
        for thread in threads:
            thread.join(WAIT)
        ws.send("done")  # after every ping, so their pongs come before its echo
        assert ws.recv(timeout=WAIT) == "done"
    by_sender: dict[int, list[int]] = {n: [] for n in range(senders)}
    for message in received:
        assert isinstance(message, str)
        sender, i, padding = message.split(":")
        assert padding == "x" * (int(i) * 397 % 6000)
        by_sender[int(sender)].append(int(i))
    assert by_sender == {n: list(range(count)) for n in range(senders)}
    assert len(pings) == count
    assert all(ping.is_set() for ping in pings)


def test_a_message_over_the_size_limit_closes_with_1009(served: Served) -> None:
    with opened(served.url + "/echo", max_size=MiB) as ws:
        ws.send("y" * MiB)
        assert ws.recv(timeout=WAIT) == "y" * MiB  # the limit itself is allowed
        ws.send("z" * (MiB + 1))
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=WAIT)
        assert closed.value.code == 1009
        assert served.next_seen() == ("disconnect", 1009, f"a message is over {MiB} bytes")


def test_recv_times_out_and_keeps_the_connection(served: Served) -> None:
    with opened(served.url + "/echo") as ws:
        with pytest.raises(TimeoutError):
            ws.recv(timeout=0.01)
        ws.send("still open")
        assert ws.recv(timeout=WAIT) == "still open"


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, and its key."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("no openssl to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            *(openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
        timeout=WAIT,
    )
    return cert, key


def test_wss(certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    with uvicorn_serving(certfile=str(cert), keyfile=str(key)) as running:
        url = running.url + "/echo"
        with pytest.raises(ssl.SSLCertVerificationError):
            connect(url, open_timeout=WAIT)  # the default context does not trust it
        context = ssl.create_default_context(cafile=str(cert))
        with opened(url, ssl_context=context, fragment_size=MiB) as ws:
            ws.send("ü" * MiB)
            assert ws.recv(timeout=WAIT) == "ü" * MiB
            pong = ws.ping()
            ws.send(b"\x00\xff")
            assert ws.recv(timeout=WAIT) == b"\x00\xff"
            assert pong.is_set()
        assert running.next_seen() == ("disconnect", 1000, "")


@contextlib.contextmanager
def raw_server(answer: bytes | None) -> Generator[str]:
    """A TCP server that reads one request and answers ``answer`` (``None``: never)."""
    sock = _listening()
    done = threading.Event()

    def serve() -> None:
        conn, _ = sock.accept()
        with conn:
            conn.recv(65536)
            if answer is not None:
                conn.sendall(answer)
            done.wait(WAIT)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"ws://127.0.0.1:{sock.getsockname()[1]}/"
    finally:
        done.set()
        thread.join(WAIT)
        sock.close()


def test_the_handshake_checks_the_accept_key() -> None:
    answer = (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: not-the-right-one\r\n\r\n"
    )
    with raw_server(answer) as url, pytest.raises(HandshakeError) as caught:
        connect(url, open_timeout=WAIT)
    assert "Sec-WebSocket-Accept does not match" in str(caught.value)
    with raw_server(b"SSH-2.0-OpenSSH\r\n\r\n") as url, pytest.raises(HandshakeError) as caught:
        connect(url, open_timeout=WAIT)
    assert caught.value.status is None
    assert "not an HTTP response" in str(caught.value)


def test_the_handshake_times_out() -> None:
    with raw_server(None) as url, pytest.raises(TimeoutError, match="timed out opening"):
        connect(url, open_timeout=0.2)


def test_bad_urls_and_headers() -> None:
    with pytest.raises(ValueError, match="not a ws:// or wss:// URL"):
        connect("http://127.0.0.1/")
    with pytest.raises(ValueError, match="line breaks"):
        connect("ws://127.0.0.1/", headers={"X": "a\r\nInjected: yes"})
