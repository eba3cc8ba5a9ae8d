"""Helpers shared by the test packages, imported as ``tests.support.<module>``.

- :mod:`tests.support.waiting`: the one way to wait for a condition that has no event.
- :mod:`tests.support.rows`: rows read back as the ``system`` actor, for assertions.
- :mod:`tests.support.workspaces`: a bootstrapped database with the job pipeline;
  :mod:`tests.support.workspace_steps`: the steps its tests share.
- :mod:`tests.support.tools`: the chat tools' world (provisioner loops); its parts:
  :mod:`~tests.support.standins` (stand-in agents), :mod:`~tests.support.timings`
  (bounds and intervals), :mod:`~tests.support.tool_results` (reading a tool's result),
  :mod:`~tests.support.tool_steps` (steps several modules share).
- :mod:`tests.support.chats`: a small organization for the tools that need no builds.
- :mod:`tests.support.live_agents`: a real server and a real agent process, per module.
- :mod:`tests.support.processes`: real ``berth server`` processes.
- :mod:`tests.support.agents`: the agent's RPC handlers in-process, system Pythons.
- :mod:`tests.support.backends`: build specs and stand-in agents for the backends.
- :mod:`tests.support.api`: HTTP clients and users for the API tests.
"""
