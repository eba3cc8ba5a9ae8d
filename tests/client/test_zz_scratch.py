from __future__ import annotations
import time
from typing import Any
from berth.client import Client

TPL = """name: loc
backend: {type: local, isolation: none}
agents:
  - name: main
    chat: true
    connection_timeout: 30s
    scripts:
      - display_name: setup
        run_on: start
        blocks_login: true
        script: echo setting up
"""

def test_scratch(live_server: Any) -> None:
    with Client(live_server.url, live_server.admin_token) as c:
        c.push_template({"template.yaml": TPL})
        ws = c.create_workspace("w1", "loc")
        t = time.monotonic()
        for ev in c.watch_workspace("w1"):
            w = ev.workspace
            print(round(time.monotonic() - t, 2), ev.type, ev.log and ev.log.output, w and (w.status, [(a.status, a.lifecycle_state) for a in w.agents]))
        r = c.exec("w1", "echo out; echo err >&2; exit 3")
        print(r)
        r = c.exec("w1", "sleep 5", timeout="1s")
        print(r)
        c.delete_workspace("w1")
        for ev in c.watch_workspace(ws.id):
            print(ev.type)
