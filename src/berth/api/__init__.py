"""The HTTP API (FastAPI) under ``/api/v1``: routes per resource, one error envelope."""
