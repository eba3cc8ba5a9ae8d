"""Persistence: engine, tables, the Store and its authorization wrapper, migrations."""
