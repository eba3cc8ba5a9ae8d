"""The ``berth`` command line: a typer app over the public client (:mod:`berth.client`).

:mod:`berth.cli.app` assembles the command groups, one module each; see its docstring
for how to add one.
"""
