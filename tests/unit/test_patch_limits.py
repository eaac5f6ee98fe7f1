"""Limits on what a patch or a quantity can make of an object: JSON patch copies cannot grow
a document without bound, and quantities too large to print are refused."""

from __future__ import annotations

import json

import pytest

from apimachinery import quantity
from apimachinery.patch import PatchError, apply_json_patch
from apimachinery.patch.jsonpatch import MAX_COPIED_BYTES, json_size


def test_copy_doubling_is_refused_before_it_allocates() -> None:
    ops = [{"op": "add", "path": "/x", "value": {"seed": "y" * 1000}}]
    ops += [{"op": "copy", "from": "/x", "path": f"/x/c{i}"} for i in range(40)]  # 2**40 kB if allowed
    with pytest.raises(PatchError) as info:
        apply_json_patch({}, ops)
    assert info.value.code == 422 and f"more than {MAX_COPIED_BYTES} bytes" in str(info.value)


def test_ordinary_copies_still_work() -> None:
    out = apply_json_patch({"a": {"b": [1, 2]}}, [{"op": "copy", "from": "/a", "path": "/c"}])
    assert out == {"a": {"b": [1, 2]}, "c": {"b": [1, 2]}}


def test_json_size_is_close_to_the_serialised_size_and_handles_depth() -> None:
    doc = {"name": "web", "ports": [80, 443], "labels": {"app": "x" * 50}, "on": True, "none": None}
    assert abs(json_size(doc) - len(json.dumps(doc))) < 30
    deep: dict[str, object] = {}
    cur = deep
    for _ in range(50_000):  # far deeper than recursion could walk
        nxt: dict[str, object] = {}
        cur["a"] = nxt
        cur = nxt
    assert json_size(deep) > 50_000


@pytest.mark.parametrize("text", ["1e1001", "1E9999", "2e4400", "1" * 1002, "9" * 1001 + "Ki"])
def test_quantities_too_large_to_print_are_refused(text: str) -> None:
    with pytest.raises(quantity.QuantityError, match="may not be larger than 1e1000"):
        quantity.parse(text)


def test_large_quantities_below_the_limit_print() -> None:
    assert quantity.format_quantity("1e1000") == "1" + "0" * 982 + "E"  # exa is the largest prefix
    assert str(quantity.parse("1Ei")) == "1Ei"
