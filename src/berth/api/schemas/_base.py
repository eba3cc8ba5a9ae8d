"""The two kinds of body: requests, which forbid unknown fields, and responses, which
are read from records (:mod:`berth.records`) by attribute name."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Self, cast

from pydantic import BaseModel, ConfigDict, field_validator

__all__ = ["Out", "RecordOut", "Request", "has_nul"]


def has_nul(value: object) -> bool:
    """Whether a string in ``value`` (or in its lists and mappings) holds a NUL character."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        items = cast("dict[object, object]", value).items()
        return any(has_nul(k) or has_nul(v) for k, v in items)
    if isinstance(value, list | tuple):
        return any(has_nul(item) for item in cast("list[object]", value))
    return False


class Request(BaseModel):
    """A request body: unknown fields and NUL characters are refused (422 naming the
    field). No text berth keeps may hold a NUL, and PostgreSQL cannot store one."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: object) -> object:
        if has_nul(value):
            raise ValueError("must not contain NUL characters")
        return value


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    @classmethod
    def read(cls, record: object, **computed: object) -> Self:
        """The body of ``record``: each field is the attribute of the same name, or the
        value ``computed`` gives it (a field the record holds under another name, or not
        at all)."""
        return cls.model_validate(_Overlay(record, computed) if computed else record)


class RecordOut(Out):
    @classmethod
    def of(cls, record: object) -> Self:
        """The body of a record whose attributes are the fields as they are."""
        return cls.model_validate(record)


class _Overlay:
    """A record with some attributes replaced or added, as pydantic's
    ``from_attributes`` reads it."""

    __slots__ = ("_computed", "_record")

    def __init__(self, record: object, computed: Mapping[str, object]) -> None:
        self._record = record
        self._computed = computed

    def __getattr__(self, name: str) -> object:
        if name in self._computed:
            return self._computed[name]
        return getattr(self._record, name)
