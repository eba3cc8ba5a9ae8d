"""The in-workspace agent (DESIGN §7). Imports nothing else from berth.

It runs inside each workspace with only the workspace's ``python3`` (≥ 3.9), shipped as
the single-file zipapp that :mod:`berth.agent.build` makes, so every module here is
3.9-compatible and uses the standard library plus ``_vendor/websockets``. The wire
contract with the server is :mod:`berth.agent.protocol`.

Modules: ``main`` (flags, env, signals) → ``connection`` (dial, heartbeats, reconnect)
→ ``lifecycle`` (scripts and states) and ``logs`` (batched script output) → ``rpc``
(dispatch) → ``processes`` (exec and background processes), ``files`` (read, write,
stat), ``edits`` (edit_files); ``context`` and ``params`` are shared plumbing.
"""
