"""The one error envelope, ``{message, detail?, validations?: [{field, detail}]}``."""

from __future__ import annotations

from pydantic import BaseModel

__all__ = ["ErrorEnvelope", "ValidationOut"]


class ValidationOut(BaseModel):
    field: str
    """The input the problem is about (``body`` for the request body as a whole)."""
    detail: str


class ErrorEnvelope(BaseModel):
    """Every error the API answers with (DESIGN §11); absent fields are left out."""

    message: str
    detail: str | None = None
    validations: list[ValidationOut] | None = None
