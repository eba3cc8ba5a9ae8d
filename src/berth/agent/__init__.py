"""The in-workspace agent (DESIGN §7). Imports nothing else from berth.

It runs inside each workspace with only the workspace's ``python3`` (≥ 3.9), shipped as
the single-file zipapp that :mod:`berth.agent.build` makes (sources plus bytecode for
the server's Python), so every module here is 3.9-compatible and uses nothing but the
standard library — its WebSocket client included. The wire contract with the server is
:mod:`berth.agent.protocol`.

Modules: ``main`` (flags, env, signals) → ``connection`` (dial, heartbeats, reconnect)
over ``wsclient`` (RFC 6455, client side) → ``lifecycle`` (scripts and states) and
``logs`` (batched script output) → ``rpc`` (dispatch) → ``processes`` (exec and
background processes), ``files`` (read, write, stat), ``edits`` (edit_files);
``context`` and ``params`` are shared plumbing. ``build`` makes the zipapp and is not in
it.
"""
