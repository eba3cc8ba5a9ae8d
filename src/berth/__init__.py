"""berth: self-hosted development workspaces for AI agents.

Importing :mod:`berth` pulls in nothing heavy; the server, CLI and client live in
their own subpackages.
"""

__version__ = "0.1.0"
