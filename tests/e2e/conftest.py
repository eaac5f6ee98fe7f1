"""End-to-end tests: real node agents with the native runtime (root: namespaces, mounts, cgroups)."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: needs root; runs real node agents and containers")
