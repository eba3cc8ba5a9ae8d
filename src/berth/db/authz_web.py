"""AuthzStore's part for the web UI's password hashes and login sessions.

A password hash is read by the ``authenticator`` system actor alone, to check a login:
not by its user, not by a site owner (:func:`berth.db.policy.is_allowed`), so no page
or API answer can ever carry one. A user sets their own password, a site owner anyone's.
Sessions are made, read and revoked by the authenticator (a login happens before there
is a user actor); a user may read and revoke their own.
"""

from __future__ import annotations

import datetime as dt
import uuid

from berth.db.authz_base import AuthzBase, not_found
from berth.db.policy import Action, Kind, Resource
from berth.errors import Forbidden
from berth.records import WebSession


def _password(user_id: uuid.UUID) -> Resource:
    return Resource(Kind.PASSWORD, owner_id=user_id)


def _session(user_id: uuid.UUID | None) -> Resource:
    return Resource(Kind.WEB_SESSION, owner_id=user_id)


class WebAuthz(AuthzBase):
    async def set_user_password(self, user_id: uuid.UUID, password_hash: str) -> None:
        if not self._can(Action.UPDATE, _password(user_id)):
            # A hash is never readable, so _require would call every refusal "not found";
            # one who may see the user is told they may not, as for other writes.
            if self._can(Action.READ, Resource(Kind.USER, owner_id=user_id)):
                raise Forbidden("only site owners set other users' passwords")
            raise not_found(Kind.USER)
        await self._inner.set_user_password(user_id, password_hash)

    async def get_user_password(self, user_id: uuid.UUID) -> str | None:
        if not self._can(Action.READ, _password(user_id)):
            return None
        return await self._inner.get_user_password(user_id)

    async def insert_web_session(
        self, *, id_hash: bytes, user_id: uuid.UUID, expires_at: dt.datetime
    ) -> WebSession:
        self._require(Action.CREATE, _session(user_id))
        return await self._inner.insert_web_session(
            id_hash=id_hash, user_id=user_id, expires_at=expires_at
        )

    async def get_web_session(self, id_hash: bytes) -> WebSession | None:
        found = await self._inner.get_web_session(id_hash)
        return self._visible(found, found and _session(found.user_id))

    async def revoke_web_session(self, id_hash: bytes) -> bool:
        found = await self._inner.get_web_session(id_hash)
        if found is None:
            return False
        self._require(Action.UPDATE, _session(found.user_id))
        return await self._inner.revoke_web_session(id_hash)

    async def revoke_web_sessions_by_user(self, user_id: uuid.UUID) -> int:
        self._require(Action.UPDATE, _session(user_id))
        return await self._inner.revoke_web_sessions_by_user(user_id)

    async def delete_web_sessions_expired_before(self, cutoff: dt.datetime) -> int:
        self._require(Action.DELETE, _session(None))
        return await self._inner.delete_web_sessions_expired_before(cutoff)
