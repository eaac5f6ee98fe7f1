"""The limited decoders: YAML alias bombs, nesting depth, strict JSON, YAML-to-JSON conversion."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from apimachinery import safeload
from apimachinery.safeload import DecodeError, loads_json, loads_yaml, loads_yaml_all
from kubectl_lite.resources import CliError, _parse


def laughs(width: int, levels: int) -> str:
    """The "billion laughs" document: each level refers ``width`` times to the one below."""
    lines = ["l0: &l0 [" + ", ".join(['"lol"'] * width) + "]"]
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * width) + "]")
    return "\n".join(lines)


def nested(depth: int, open_: str = "[", close: str = "]") -> str:
    return open_ * depth + close * depth


def test_billion_laughs_is_refused() -> None:
    with pytest.raises(DecodeError, match="expands too much through YAML aliases"):
        loads_yaml(laughs(10, 9))


def test_small_alias_use_still_loads() -> None:
    doc = loads_yaml("base: &b {image: busybox, ports: [80]}\na: *b\nc:\n  <<: *b\n  name: c\n")
    assert doc["a"] == {"image": "busybox", "ports": [80]}
    assert doc["c"] == {"image": "busybox", "ports": [80], "name": "c"}


def test_growth_below_the_floor_loads_and_above_the_ratio_is_refused() -> None:
    assert len(json.dumps(loads_yaml(laughs(10, 3)))) > 0  # 1,110 nodes expanded
    with pytest.raises(DecodeError, match="aliases"):
        loads_yaml(laughs(10, 5))  # 111,110 nodes from 45


def test_recursive_alias_is_refused() -> None:
    with pytest.raises(DecodeError, match="refers to itself"):
        loads_yaml("a: &a [1, *a]")


@pytest.mark.parametrize("load", [loads_yaml, lambda t: loads_json(t.encode())])
def test_nesting_depth_limit(load: Callable[[str], Any]) -> None:
    assert load(nested(safeload.MAX_DEPTH)) is not None
    with pytest.raises(DecodeError, match=f"nested too deeply: the limit is {safeload.MAX_DEPTH} levels"):
        load(nested(safeload.MAX_DEPTH + 1))
    with pytest.raises(DecodeError, match="nested too deeply"):
        load(nested(100_000))  # far past Python's recursion limit: still a DecodeError


def test_deep_yaml_mappings_are_refused() -> None:
    with pytest.raises(DecodeError, match="nested too deeply"):
        loads_yaml(nested(5000, "{a: ", "}"))


def test_strict_json() -> None:
    dups: list[str] = []
    assert loads_json(b'{"a": 1, "b": {"c": 1, "c": 2}, "a": 3}', dups) == {"a": 3, "b": {"c": 2}}
    assert dups == ["c", "a"]
    for bad, message in [
        (b"[NaN]", "NaN is not valid JSON"),
        (b'{"x": -Infinity}', "-Infinity is not valid JSON"),
        (b'"caf\xe9"', "invalid UTF-8 at byte 4"),
        (b'"\\ud800"', "lone surrogate"),
        (b"", "Expecting value"),
        (b"1" * 5000, "digits"),
        (b'{"replicas": 9223372036854775808}', "out of the range of a 64-bit integer"),
        (b"[-9223372036854775809]", "out of the range of a 64-bit integer"),
    ]:
        with pytest.raises(DecodeError, match=message):
            loads_json(bad)


def test_yaml_converts_like_kubernetes() -> None:
    doc = loads_yaml("t: 2024-01-01T10:00:00Z\n1: one\nnull: nothing\nd: 2024-01-01\n")
    assert doc == {"t": "2024-01-01T10:00:00Z", "1": "one", "null": "nothing", "d": "2024-01-01"}
    cases: list[tuple[str | bytes, str]] = [
        ("x: !!binary aGVsbG8=", "binary has no JSON form"),
        ("x: .nan", "nan is not valid JSON"),
        ("x: !!python/object/apply:os.system [ls]", "could not determine a constructor"),
        ("? [a, b]\n: c", "unhashable"),
        ("a: [1", "expected ',' or ']'"),
        (b"a: \xff", "invalid"),
    ]
    for bad, message in cases:
        with pytest.raises(DecodeError, match=message) as info:
            loads_yaml(bad)
        assert "\n" not in str(info.value)


def test_several_documents() -> None:
    assert loads_yaml_all("a: 1\n---\n---\nb: 2\n") == [{"a": 1}, None, {"b": 2}]
    with pytest.raises(DecodeError, match="single YAML document"):
        loads_yaml("a: 1\n---\nb: 2\n")


def test_kubectl_lite_refuses_a_bomb_in_one_line() -> None:
    with pytest.raises(CliError) as info:
        _parse("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata:\n" + "\n".join(
            "  " + line for line in laughs(10, 9).splitlines()), "bomb.yaml")
    assert str(info.value) == "error parsing bomb.yaml: the document expands too much through YAML aliases"


def test_kubectl_lite_refuses_deep_json_in_one_line() -> None:
    with pytest.raises(CliError, match=r"^error parsing deep\.json: the document is nested too deeply"):
        _parse('{"apiVersion": "v1", "kind": "ConfigMap", "x": ' + nested(3000) + "}", "deep.json")


def test_yaml_duplicate_keys_are_reported() -> None:
    dups: list[str] = []
    doc = loads_yaml("a: 1\nb: {c: 1, c: 2}\na: 3\nx: &x {k: 1}\ny:\n  <<: *x\n  k: 2\n", dups)
    assert doc["a"] == 3 and doc["b"] == {"c": 2} and doc["y"] == {"k": 2}
    assert sorted(dups) == ["a", "c"]  # a merged key overridden is not a duplicate
