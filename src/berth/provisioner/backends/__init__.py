"""Workspace backends behind the :class:`~berth.provisioner.spec.Backend` protocol."""
