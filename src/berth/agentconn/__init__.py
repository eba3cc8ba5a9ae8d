"""The server side of agent connections: live sessions, their RPCs, and the relay.

- :mod:`~berth.agentconn.gateway`: :class:`AgentGateway`, this replica's agent sessions
  and the RPCs over them; a call for an agent another replica holds goes to its relay.
- :mod:`~berth.agentconn.relay`: :class:`Relay`, which carries such a call to the
  replica that holds the agent, and :func:`answer_relayed`, that replica's end of it.
- :mod:`~berth.agentconn.signing`: the mesh signature every relayed request carries.

No database access here: where an agent is connected comes from a :class:`Locator`
the services provide, and what a connection reports goes to a :class:`Reports`.
"""

from berth.agentconn.gateway import AgentGateway, Reports, Socket
from berth.agentconn.relay import Locator, Peer, Relay, answer_relayed
from berth.agentconn.signing import RELAY_HEADER, RELAY_PATH, Verifier
from berth.errors import AgentCallError, AgentUnavailable

__all__ = [
    "RELAY_HEADER",
    "RELAY_PATH",
    "AgentCallError",
    "AgentGateway",
    "AgentUnavailable",
    "Locator",
    "Peer",
    "Relay",
    "Reports",
    "Socket",
    "Verifier",
    "answer_relayed",
]
