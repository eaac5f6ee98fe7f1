"""Property tests on the patch engines: JSON merge, JSON patch, strategic merge and three-way.

Arbitrary documents and patches either apply or fail with ``PatchError`` (which the API server
turns into a 400/422 Status); and the patches the engines compute do what they claim.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from apimachinery.api.apps_v1 import Deployment
from apimachinery.api.core_v1 import ConfigMap, Pod
from apimachinery.patch import (
    PatchError,
    apply_json_patch,
    apply_merge_patch,
    apply_strategic_merge_patch,
    create_three_way_merge_patch,
    two_way_merge_patch,
)
from tests.fuzz.strategies import FUZZ, count, json_objects, json_values, keys

MODELS = st.sampled_from([Pod, ConfigMap, Deployment])

# JSON pointers over the keys the generated documents use, plus array indexes and "-".
_TOKENS = st.one_of(keys, st.sampled_from(["0", "1", "-", "00", "~0", "~1", "", "99"]))
pointers = st.lists(_TOKENS, max_size=4).map(lambda ts: "".join("/" + t for t in ts))
operations = st.fixed_dictionaries(
    {"op": st.sampled_from(["add", "remove", "replace", "move", "copy", "test", "bogus"]), "path": pointers},
    optional={"value": json_values(10), "from": pointers},
)
json_patches = st.one_of(st.lists(operations, max_size=8), json_values(10))

# Documents without nulls: in merge patches null means "delete", so a document holding null
# values cannot be reached by a patch (as in Kubernetes).
_plain_scalars = st.one_of(st.booleans(), st.integers(-1000, 1000), st.text(max_size=6))
_plain_keys = st.one_of(st.sampled_from(["a", "b", "c", "data", "labels", "spec"]), st.text(
    st.characters(codec="ascii", categories=["L", "N"]), min_size=1, max_size=5))
plain_values = st.recursive(
    _plain_scalars,
    lambda ch: st.one_of(st.lists(ch, max_size=3), st.dictionaries(_plain_keys, ch, max_size=4)),
    max_leaves=20,
)
plain_objects = st.dictionaries(_plain_keys, plain_values, max_size=5)


def _containers(names: list[str]) -> list[dict[str, Any]]:
    return [{"name": n, "image": f"img-{n}"} for n in names]


_container_names = st.lists(st.sampled_from(["a", "b", "c", "d"]), unique=True, max_size=4)
pods = st.builds(
    lambda labels, names, extra: {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "labels": labels},
        "spec": {"containers": _containers(names), **extra},
    },
    st.dictionaries(_plain_keys, st.text(max_size=4), max_size=3),
    _container_names,
    st.dictionaries(st.sampled_from(["nodeName", "hostname", "restartPolicy"]), st.text(min_size=1, max_size=4),
                    max_size=2),
)


@FUZZ
@given(json_objects, json_values(30))
def test_merge_patch_applies_or_refuses(doc: dict[str, Any], patch: Any) -> None:
    count("patch.merge-arbitrary")
    before = json.dumps(doc, sort_keys=True)
    try:
        out = apply_merge_patch(doc, patch)
    except PatchError:
        return
    assert isinstance(out, dict)
    assert json.dumps(doc, sort_keys=True) == before  # inputs are never modified


@FUZZ
@given(plain_objects, plain_objects)
def test_merge_patch_from_two_way_diff_reaches_target(a: dict[str, Any], b: dict[str, Any]) -> None:
    """apply(diff(a, b), a) == b, with the strategic engine's diff on a kind without list
    metadata (so it is a plain JSON merge patch), applied by the RFC 7386 engine."""
    count("patch.merge-roundtrip")
    patch = two_way_merge_patch(a, b, ConfigMap)
    assert apply_merge_patch(a, patch) == b
    assert apply_strategic_merge_patch(a, patch, ConfigMap) == b


@FUZZ
@given(json_objects, json_patches)
def test_json_patch_applies_or_refuses(doc: dict[str, Any], ops: Any) -> None:
    count("patch.json-arbitrary")
    before = json.dumps(doc, sort_keys=True)
    try:
        out = apply_json_patch(doc, ops)
    except PatchError as e:
        assert e.code in (400, 413, 422)
        return
    assert isinstance(out, dict)
    assert json.dumps(doc, sort_keys=True) == before


@FUZZ
@given(json_objects, json_objects, MODELS)
def test_strategic_patch_applies_or_refuses(doc: dict[str, Any], patch: dict[str, Any], model: Any) -> None:
    count("patch.strategic-arbitrary")
    before = json.dumps(doc, sort_keys=True)
    try:
        out = apply_strategic_merge_patch(doc, patch, model)
    except PatchError as e:
        assert e.code in (400, 422)
        return
    assert isinstance(out, dict)
    assert json.dumps(doc, sort_keys=True) == before


@FUZZ
@given(pods, pods)
def test_strategic_two_way_patch_reaches_target(a: dict[str, Any], b: dict[str, Any]) -> None:
    count("patch.strategic-roundtrip")
    patch = two_way_merge_patch(a, b, Pod)
    assert apply_strategic_merge_patch(a, patch, Pod) == b


@FUZZ
@given(st.one_of(st.none(), json_objects), json_objects, json_objects, MODELS)
def test_three_way_patch_computes_or_refuses(original: Any, modified: Any, current: Any, model: Any) -> None:
    count("patch.three-way-arbitrary")
    try:
        patch = create_three_way_merge_patch(original, modified, current, model)
        apply_strategic_merge_patch(current, patch, model)
    except PatchError:
        return


@FUZZ
@given(pods, pods, pods)
def test_three_way_patch_applies_the_new_configuration(original: Any, modified: Any, current: Any) -> None:
    """After kubectl apply's patch, every field of the new configuration is live, and fields
    only the live object has (set by others) stay unless the last configuration had them."""
    count("patch.three-way-roundtrip")
    patch = create_three_way_merge_patch(original, modified, current, Pod)
    out = apply_strategic_merge_patch(current, patch, Pod)
    assert out["metadata"]["labels"] | modified["metadata"]["labels"] == out["metadata"]["labels"]
    for key, value in modified["spec"].items():
        if key != "containers":
            assert out["spec"][key] == value
    live = {c["name"] for c in out["spec"]["containers"]}
    assert {c["name"] for c in modified["spec"]["containers"]} <= live
    for key in current["spec"]:
        if key not in modified["spec"] and key not in original["spec"] and key != "containers":
            assert out["spec"][key] == current["spec"][key]
