"""What berth leaves running for each workspace: the keeper, the supervisor, their relays.

A small package of standard-library-only modules (Python >= 3.9), because it runs
under the workspace's own ``python3`` too. It never runs from the server's import
path: :mod:`berth.provisioner.backends._supervisor_zip` packs it into a zipapp (the
package named ``berth_supervisor`` inside, content-addressed on disk) that the server
runs on the host and binds into each sandbox, and that the Docker backend copies into
its containers. Its modes (``python3 -I berth-supervisor.pyz MODE``, see
:mod:`.main`):

``keeper`` (host, :mod:`.keeper`)
    the detached process that runs one workspace's sandbox (or, with ``isolation:
    none``, its agents) and outlives the server;
``oneshot`` and ``join`` (host, :mod:`.keeper`)
    the template's ``prepare``, in a sandbox of its own or in the workspace's cgroups;
``inner`` (inside a sandbox as its PID 1, or a Docker container, :mod:`.inner`)
    the supervisor of the agents.

The modules, by what they hold: :mod:`.supervision` (the loop that keeps the agents
up) and :mod:`.agents` (one agent: its control socket, its watchdog, the processes it
hands over), :mod:`.control` (that socket's messages), :mod:`.relay` (how agents reach
the server), :mod:`.network` and :mod:`.firewall` (``network: true``: slirp4netns and
the packet filter), :mod:`.sandbox` (starting bwrap), :mod:`.process` (``/proc`` and
``prctl``). Modules import each other relatively, so the package works both as
``berth.provisioner.backends._supervisor`` (type checks, tests) and as
``berth_supervisor`` in the zipapp.
"""

from __future__ import annotations

__all__ = [
    "CGROUP_FDS_ENV",
    "CONFIG_ENV",
    "CONFIG_FD_ENV",
    "CONTROL_FD_ENV",
    "SLIRP_DNS",
    "SLIRP_NET",
    "WATCHDOG_SECONDS",
]

CONFIG_ENV = "BERTH_SANDBOX_CONFIG"
"""Where a Docker container's supervisor finds its config (removed before any agent starts)."""
CONFIG_FD_ENV = "BERTH_SANDBOX_CONFIG_FD"
"""The pipe a bwrap sandbox's supervisor reads its config from."""
CONTROL_FD_ENV = "BERTH_AGENT_CONTROL_FD"
"""An agent's control socket (kept in step with ``berth.agent.connection``)."""
CGROUP_FDS_ENV = "BERTH_AGENT_CGROUP_FDS"
"""The workload ``cgroup.procs`` descriptors an agent confines its children with."""
WATCHDOG_SECONDS = 30.0
"""An agent that has said nothing on its control socket for this long is stuck."""
SLIRP_NET = "10.0.2.0/24"
SLIRP_DNS = "10.0.2.3"
"""slirp4netns's network and DNS forwarder (kept in step with ``_bwrap.SLIRP_DNS``)."""
