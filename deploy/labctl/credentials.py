"""Which credentials each lab process gets: the one place that decides it.

labctl calls these once the control plane answers (its PKI exists then), before it starts the
process that uses them, so they may issue certificates and write kubeconfigs.
"""

from __future__ import annotations

from pathlib import Path

from deploy.labctl.lab import Lab, NodeState


def agent_kubeconfig(lab: Lab, node: NodeState) -> Path:
    """The kubeconfig the node's agent connects with: its own node credential
    (CN=system:node:<name>, which the Node authorizer confines to that node), never the admin's."""
    from controlplane.credentials import write_node_kubeconfig

    return write_node_kubeconfig(lab.cp_dir, node.name)


def prepare() -> None:
    """Import what issuing credentials needs (a second or more on a busy machine) while the
    control plane starts, instead of after it answers with every agent waiting."""
    import controlplane.credentials  # noqa: F401
