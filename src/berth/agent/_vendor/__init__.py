"""Third-party code shipped inside the agent zipapp, because a workspace has only ``python3``.

``websockets/`` is websockets 13.1 (BSD-3-Clause, see ``websockets/LICENSE``), the last
release that supports Python 3.8+, copied unmodified from its wheel except that the
optional C speedups were dropped (it falls back to pure Python). It is excluded from
ruff, pyright and pytest collection. To update: download the wheel, copy the package,
drop ``speedups.*``, keep the LICENSE, and re-run the agent tests.
"""
