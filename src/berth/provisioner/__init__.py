"""Provisioner workers and sandbox backends (DESIGN §6)."""
