"""The node agent: registers its node, heartbeats, and runs the pods bound to it.

Reusable parts (shared by the fake "hollow" agent and the real one): :mod:`nodeagent.node`
(Node object, registration, Ready heartbeat), :mod:`nodeagent.lease` (node Lease renewal),
:mod:`nodeagent.status` (pod status as a kubelet reports it), :mod:`nodeagent.periodic`.
:mod:`nodeagent.hollow` is the fake runtime plus the loop that drives many nodes in one process.
"""
