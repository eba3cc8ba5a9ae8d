"""A stopping server ends the requests that would otherwise never end — live pages and
watches — instead of waiting for their clients to leave (uvicorn waits for every open
request), and they end cleanly: the client sees the stream finish, not a reset."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx

from berth.api.server import running_server
from berth.settings import Settings

BOUND = 20.0
"""Seconds within which the stream must have ended (the server waits 30 for its thread)."""


def test_stopping_ends_an_open_watch_cleanly(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path / "data", address="127.0.0.1:0", fake_backend=True, install_examples=False
    )
    opened, ended = threading.Event(), threading.Event()
    seen: list[str] = []
    failures: list[BaseException] = []

    def read(url: str, token: str, chat_id: str) -> None:
        headers = {"Authorization": f"Bearer {token}"}
        try:
            with httpx.stream(
                "GET", f"{url}/api/v1/chats/{chat_id}/watch", headers=headers, timeout=BOUND
            ) as response:
                for line in response.iter_lines():
                    seen.append(line)
                    opened.set()
            ended.set()  # the stream finished: not an error, not a timeout
        except BaseException as exc:  # reported by the test below
            failures.append(exc)
            opened.set()

    with running_server(settings) as server:
        assert server.runtime.bootstrapped is not None
        token = server.runtime.bootstrapped.token
        chat = httpx.post(
            f"{server.url}/api/v1/chats",
            json={"title": "watched"},
            headers={"Authorization": f"Bearer {token}"},
        ).json()
        reader = threading.Thread(target=read, args=(server.url, token, chat["id"]), daemon=True)
        reader.start()
        assert opened.wait(BOUND)
        assert server.runtime.followers  # the watch follows the chat
    assert ended.wait(BOUND), failures
    assert failures == []
    assert "event: chat" in seen
    assert not server.runtime.followers
