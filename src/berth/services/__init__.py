"""Use cases: the only code that opens transactions (DESIGN §2).

Each function takes a :class:`Ctx` (the database, the actor, the event bus) and ids or
records, opens its transactions through the actor's authorized store, and publishes
on the bus after they commit. The layers above — ``tools``, ``api``, ``mcp`` — hold a
:class:`Database` only to hand it to these functions; they never import ``berth.db``.
"""

from berth.db.engine import Database
from berth.services.base import Ctx

__all__ = ["Ctx", "Database"]
