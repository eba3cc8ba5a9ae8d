"""``accounts.authenticate_chat``: the MCP endpoint's token check and chat lookup in one
read transaction, with the answers of the two it replaced (401 before 404; another
user's chat is the same 404 as a missing one)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import event

from berth.db.engine import Database
from berth.errors import NotFound, Unauthenticated
from berth.services import accounts, chats
from tests.support.workspaces import World, open_world

pytestmark = pytest.mark.anyio


@pytest.fixture
async def world(db: Database, tmp_path: Path) -> AsyncIterator[World]:
    async with open_world(db, tmp_path / "state") as w:
        yield w


@pytest.fixture
def begins(db: Database) -> Iterator[list[str]]:
    """The transactions opened meanwhile (their BEGIN statements)."""
    seen: list[str] = []

    def on_begin(*_: object) -> None:
        seen.append("begin")

    event.listen(db.engine.sync_engine, "begin", on_begin)
    yield seen
    event.remove(db.engine.sync_engine, "begin", on_begin)


async def test_the_owners_chat_in_one_transaction(
    world: World, db: Database, begins: list[str]
) -> None:
    chat = await chats.create_chat(world.admin, title="mine")
    token = (await accounts.create_token(world.admin, world.admin_user.id, "t", None)).token
    await accounts.authenticate(db, token)  # its first use is written once a minute
    begins.clear()
    found = await accounts.authenticate_chat(db, token, chat.id)
    assert found.id == chat.id
    assert begins == ["begin"]


async def test_a_bad_token_before_a_missing_chat_and_a_missing_one_like_a_hidden_one(
    world: World, db: Database
) -> None:
    admins = await chats.create_chat(world.admin, title="the admin's")
    alice, _ = await accounts.create_user(world.admin, username="alice")
    token = (await accounts.create_token(world.admin, alice.id, "t", None)).token
    with pytest.raises(Unauthenticated):
        await accounts.authenticate_chat(db, "berth_nope_nope", None)
    with pytest.raises(Unauthenticated):
        await accounts.authenticate_chat(db, token + "x", admins.id)
    for chat_id in (admins.id, uuid.uuid4(), None):
        with pytest.raises(NotFound) as refused:
            await accounts.authenticate_chat(db, token, chat_id)
        assert str(refused.value) == "chat not found"
