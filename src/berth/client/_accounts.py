"""Users, their API tokens, and organizations."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from berth.client._core import ClientCore, given, segment
from berth.client._durations import go_duration
from berth.client.errors import InvalidArgument
from berth.client.models import NewToken, Organization, Token, User

__all__ = ["AccountsApi"]


class AccountsApi(ClientCore):
    # --- users and tokens ---------------------------------------------------

    def me(self) -> User:
        """The user the token belongs to."""
        return self._get(User, "/users/me")

    def list_users(self) -> list[User]:
        return self._get_list(User, "/users")

    def create_user(
        self,
        username: str,
        *,
        email: str | None = None,
        name: str | None = None,
        roles: Sequence[str] | None = None,
        organization: str | None = None,
        password: str | None = None,
    ) -> User:
        """Create a user; ``roles`` from ``owner``, ``template-admin``, ``member``;
        ``organization`` is a name or id (the default organization when omitted);
        ``password`` lets them log in to the web UI with it too."""
        body = {
            "username": username,
            **given(
                email=email,
                name=name,
                roles=None if roles is None else list(roles),
                organization=organization,
                password=password,
            ),
        }
        return self._parse(User, self._request("POST", "/users", json=body))

    def set_password(self, user: str, password: str) -> None:
        """Set a user's web UI password (``me``, a username or an id); it ends the web
        sessions they have. Site owners set anyone's, users their own."""
        self._request("PUT", f"/users/{segment(user)}/password", json={"password": password})

    def suspend_user(self, user: str) -> User:
        """Suspend a user (``me``, a username or an id; site owners): their API tokens
        stop working and their web sessions end, their workspaces are left as they are.
        A site owner cannot suspend themselves (422)."""
        return self._set_user_status(user, "suspend")

    def activate_user(self, user: str) -> User:
        """Make a suspended user active again (site owners); their tokens work again,
        while the web sessions the suspension ended stay ended."""
        return self._set_user_status(user, "activate")

    def _set_user_status(self, user: str, action: str) -> User:
        response = self._request("PUT", f"/users/{segment(user)}/status/{action}")
        return self._parse(User, response)

    def set_user_roles(self, user: str, roles: Sequence[str]) -> User:
        """Replace a user's site roles (site owners) with ``roles``, from ``owner`` and
        ``template-admin`` (``member`` is implied, so ``[]`` leaves only it). A site owner
        cannot remove their own ``owner`` role (422)."""
        if isinstance(roles, str):  # a str is a Sequence[str]: "owner" would be 5 roles
            raise InvalidArgument(f"roles must be a list of role names, not the string {roles!r}")
        body = {"roles": list(roles)}
        return self._parse(User, self._request("PUT", f"/users/{segment(user)}/roles", json=body))

    def list_tokens(self, user: str = "me") -> list[Token]:
        """A user's tokens (``me``, a username or an id); secrets are never listed."""
        return self._get_list(Token, f"/users/{segment(user)}/tokens")

    def create_token(
        self, name: str, lifetime: str | dt.timedelta | None = None, user: str = "me"
    ) -> NewToken:
        """A new token; ``lifetime`` is a Go duration (``"720h"``) or a timedelta, and
        None means it never expires. The secret is in ``.token``, and only here."""
        body = {"name": name, **given(lifetime=None if lifetime is None else go_duration(lifetime))}
        response = self._request("POST", f"/users/{segment(user)}/tokens", json=body)
        return self._parse(NewToken, response)

    def delete_token(self, token: str, user: str = "me") -> None:
        """Revoke a token by id or name."""
        self._request("DELETE", f"/users/{segment(user)}/tokens/{segment(token)}")

    # --- organizations ------------------------------------------------------

    def list_organizations(self) -> list[Organization]:
        return self._get_list(Organization, "/organizations")
