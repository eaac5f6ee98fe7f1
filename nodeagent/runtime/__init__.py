"""The node's container runtime: images (OCI pull/import/store), rootfs, namespaces, cgroups, spawner."""
