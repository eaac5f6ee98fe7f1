"""The runtime service: a CRI-shaped gRPC API (``runtime.proto``) between the node agent and
its container runtime. :mod:`.server` serves the native runtime on a unix socket, :mod:`.fake`
an in-memory one (hollow nodes), :mod:`.client` is the agent's side."""
