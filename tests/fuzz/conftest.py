"""Report how many inputs the fuzz tests generated (the count goes into the issue's closing note)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.fuzz.strategies import COUNTS


@pytest.fixture(scope="session", autouse=True)
def _report_counts() -> object:
    yield
    # "api.status.*" and "api.of-which.*" break the API requests down; they are not inputs of their own.
    total = sum(n for key, n in COUNTS.items() if not key.startswith(("api.status.", "api.of-which.")))
    if not total:
        return
    report = {"total": total, **dict(sorted(COUNTS.items()))}
    out = os.environ.get("KL_FUZZ_REPORT")
    if out:
        Path(out).write_text(json.dumps(report, indent=1) + "\n")
    print(f"\nfuzz: generated inputs {json.dumps(report)}")
