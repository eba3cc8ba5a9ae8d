"""Server settings from flags and ``BERTH_*`` environment variables (pydantic-settings)."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def default_data_dir() -> Path:
    """``$BERTH_DATA_DIR``, else ``$XDG_DATA_HOME/berth``, else ``~/.local/share/berth``."""
    if env := os.environ.get("BERTH_DATA_DIR"):
        return Path(env)
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "berth"


def async_database_url(url: str) -> str:
    """Give a plain ``postgresql://`` or ``sqlite://`` URL its async driver.

    Users write the URLs they know (``postgresql://postgres@127.0.0.1/berth``); the
    server runs on asyncpg and aiosqlite, so the driver is filled in when missing.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    match scheme:
        case "postgres" | "postgresql":
            return f"postgresql+asyncpg://{rest}"
        case "sqlite":
            return f"sqlite+aiosqlite://{rest}"
        case _:
            return url


class Settings(BaseSettings):
    """Everything ``berth server`` can be told. Flags override the environment."""

    model_config = SettingsConfigDict(env_prefix="BERTH_", extra="ignore")

    data_dir: Path = Field(default_factory=default_data_dir)
    address: str = "127.0.0.1:7080"
    database_url: str | None = None
    """SQLAlchemy URL; ``None`` means SQLite in the data dir."""
    access_url: str | None = None
    """The URL clients and agents use to reach this server; defaults to ``http://address``."""
    relay_url: str | None = None
    """Where the other replicas reach this one's relay endpoint (``BERTH_RELAY_URL``);
    defaults to ``http://address`` (with this machine's name for a wildcard address)."""
    install_examples: bool = True
    """Install the bundled example templates on first start."""
    provisioner_workers: int = Field(default=2, ge=0, le=64)
    """Built-in provisioner workers (0: builds run only in ``berth provisioner``)."""
    job_stale_after_seconds: float = Field(default=30.0, gt=0)
    """A running job whose worker has not heart-beaten for this long is failed."""
    prebuilds_max: int = Field(default=100, ge=0, le=10_000)
    """The most prebuilt workspaces of the whole site (``BERTH_PREBUILDS_MAX``); a push
    whose presets ask for more is refused."""
    prebuilds_interval: float = Field(default=15.0, gt=0, le=3600)
    """Seconds between the prebuild reconciler's cycles when no event wakes it
    (``BERTH_PREBUILDS_INTERVAL``)."""
    fake_backend: bool = False
    """Offer the ``fake`` backend, which starts nothing (tests only; ``BERTH_FAKE_BACKEND``)."""
    allowed_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list[str])
    """Names the MCP endpoints answer to besides the access URL and the address:
    ``HOST`` (any port), ``HOST:PORT``, ``[V6]:PORT``, a URL, or ``*`` (any host; no DNS
    rebinding protection). ``BERTH_ALLOWED_HOSTS`` takes them comma-separated."""

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    def resolved_database_url(self) -> str:
        """The database URL to connect to, with the async driver filled in."""
        if self.database_url:
            return async_database_url(self.database_url)
        return f"sqlite+aiosqlite:///{self.data_dir / 'berth.db'}"

    def resolved_access_url(self) -> str:
        """The externally reachable base URL of this server."""
        return (self.access_url or f"http://{self.address}").rstrip("/")

    def resolved_relay_url(self) -> str:
        """The base URL the other replicas relay agent calls to."""
        if self.relay_url:
            return self.relay_url.rstrip("/")
        host, _, port = self.address.rpartition(":")
        # Listening on every interface: name the machine, not the wildcard.
        if host.strip("[]") in ("", "0.0.0.0", "::"):  # noqa: S104
            host = socket.gethostname()
        return f"http://{host}:{port}"
