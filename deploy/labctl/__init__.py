"""``labctl``: a multi-node kube-lite cluster on one machine, for learning and fault injection.

Each lab "VM" is a network namespace with its own hostname, IP on a lab bridge, data directory
and cgroup parent, running a real ``nodeagent --runtime native``. The control plane runs on the
host, bound to the bridge address. Everything a lab creates is recorded in its state file so
``labctl down`` removes exactly that.
"""
