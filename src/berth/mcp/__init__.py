"""The MCP adapter over :mod:`berth.tools` (DESIGN §8, §11)."""
