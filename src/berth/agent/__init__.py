"""The in-workspace agent (DESIGN §7). Imports nothing else from berth."""
