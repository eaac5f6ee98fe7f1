"""Hypothesis strategies and settings shared by the fuzz tests.

``KL_FUZZ_EXAMPLES`` sets how many examples each property runs (default 100, so the whole
suite stays fast); the big run sets it to thousands. Every property test counts its
examples in ``COUNTS`` so a run can report how many inputs it generated.
"""

from __future__ import annotations

import os
from collections import Counter
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

EXAMPLES = int(os.environ.get("KL_FUZZ_EXAMPLES", "100"))

# Deadlines are wall-clock limits: the machine is shared, so none.
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    database=None,
)

COUNTS: Counter[str] = Counter()

# Keys and strings that look like what Kubernetes objects hold, mixed with arbitrary text, so
# the engines meet both their structured paths (metadata, containers, name) and garbage.
_KEYS = st.sampled_from([
    "apiVersion", "kind", "metadata", "name", "namespace", "labels", "annotations", "spec", "status",
    "containers", "image", "ports", "containerPort", "env", "value", "volumes", "items", "data",
    "$patch", "$retainKeys", "$setElementOrder/containers", "$deleteFromPrimitiveList/finalizers",
    "finalizers", "replicas", "selector", "matchLabels", "template", "resourceVersion", "uid", "a", "b",
])
keys = st.one_of(_KEYS, st.text(max_size=8))
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=12),
    st.sampled_from(["v1", "Pod", "ConfigMap", "default", "c1", "busybox", "replace", "delete", "merge"]),
)


def json_values(max_leaves: int = 30) -> st.SearchStrategy[Any]:
    return st.recursive(
        scalars,
        lambda children: st.one_of(
            st.lists(children, max_size=4),
            st.dictionaries(keys, children, max_size=5),
        ),
        max_leaves=max_leaves,
    )


json_objects = st.dictionaries(keys, json_values(), max_size=6)


def count(name: str) -> None:
    COUNTS[name] += 1
