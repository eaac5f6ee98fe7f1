"""Shared fixtures come from plugins, so each suite imports only what it uses."""

pytest_plugins = ["tests.fixtures.etcd", "tests.fixtures.apiserver", "tests.fixtures.kubectl"]
