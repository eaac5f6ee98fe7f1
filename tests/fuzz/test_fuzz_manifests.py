"""Property tests on manifest parsing: the limited JSON/YAML decoders, kubectl-lite's loader and
the API server's protobuf reader.

Whatever the bytes, decoding ends in data that serialises as strict JSON, or in the one typed
error (``DecodeError`` for the library, ``CliError`` for kubectl-lite, a 400/415 ``ApiError`` for
protobuf); never anything else.
"""

from __future__ import annotations

import json
from typing import Any

import yaml
from hypothesis import given
from hypothesis import strategies as st

from apimachinery import safeload
from apimachinery.errors import ApiError
from controlplane.apiserver.protobuf import KINDS, decode_object
from kubectl_lite.resources import CliError, _parse
from tests.fixtures.protobuf import envelope, msg
from tests.fuzz.strategies import FUZZ, count, json_objects, json_values

# Fragments that steer random text into YAML's interesting corners: anchors, aliases, merge
# keys, tags, flow collections, document markers, block scalars.
_YAML_BITS = st.sampled_from([
    "a: ", "- ", "&x ", "*x", "<<: *x\n", "!!binary ", "!!set ", "!!python/object:os.system ", "? ",
    "[", "]", "{", "}", ", ", "\n", "  ", "---\n", "...\n", "|\n  ", ">-\n  ", "'", '"', "#", ":",
    ".nan", ".inf", "2024-01-01", "0x1F", "~", "null", "yes", "1e999", "\t", "%YAML 1.1\n", "\ufeff",
])
yaml_texts = st.lists(st.one_of(_YAML_BITS, st.text(max_size=6)), max_size=40).map("".join)


def _strict_json(value: Any) -> None:
    json.dumps(value, allow_nan=False).encode("utf-8")


@FUZZ
@given(st.binary(max_size=300))
def test_json_bytes_decode_or_refuse(data: bytes) -> None:
    count("manifest.json-bytes")
    try:
        value = safeload.loads_json(data, [])
    except safeload.DecodeError as e:
        assert "\n" not in str(e)
        return
    _strict_json(value)


@FUZZ
@given(json_values(60))
def test_json_round_trips(value: Any) -> None:
    count("manifest.json-roundtrip")
    text = json.dumps(value)
    assert safeload.loads_json(text.encode()) == value


@FUZZ
@given(st.one_of(yaml_texts, st.binary(max_size=200)))
def test_yaml_decode_or_refuse(data: str | bytes) -> None:
    count("manifest.yaml-text")
    try:
        docs = safeload.loads_yaml_all(data)
    except safeload.DecodeError as e:
        assert "\n" not in str(e)
        return
    _strict_json(docs)


@FUZZ
@given(json_objects)
def test_yaml_round_trips(value: dict[str, Any]) -> None:
    count("manifest.yaml-roundtrip")
    assert safeload.loads_yaml(yaml.safe_dump(value)) == value


@FUZZ
@given(st.integers(1, 12), st.integers(1, 12))
def test_alias_growth_is_bounded(width: int, levels: int) -> None:
    """Billion-laughs shapes of any width and height load only if small once expanded."""
    count("manifest.yaml-bomb")
    lines = ["l0: &l0 [" + ", ".join(["x"] * width) + "]"]
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * width) + "]")
    expanded = sum(width**i for i in range(1, levels + 1))
    try:
        value = safeload.loads_yaml("\n".join(lines))
    except safeload.DecodeError as e:
        assert "alias" in str(e) or "nested" in str(e)
        return
    assert expanded <= safeload.MAX_EXPANDED_NODES
    _strict_json(value)


@FUZZ
@given(st.one_of(yaml_texts, json_values(40).map(json.dumps), st.text(max_size=200)))
def test_kubectl_manifest_loader(text: str) -> None:
    count("manifest.kubectl-loader")
    try:
        objs = _parse(text, "fuzz.yaml")
    except CliError as e:
        assert str(e)
        return
    for obj in objs:
        assert isinstance(obj, dict) and obj.get("kind") and obj.get("apiVersion")
        _strict_json(obj)


# Nested fields steer random bytes into the readers of messages, maps and lists.
_PB_PIECES = st.recursive(
    st.one_of(st.binary(max_size=12), st.tuples(st.integers(1, 25), st.integers(0, 2**64 - 1)).map(
        lambda t: bytes([t[0] << 3]) + t[1].to_bytes(10, "little")[:1])),
    lambda inner: st.tuples(st.integers(1, 25), st.lists(inner, max_size=4).map(b"".join)).map(
        lambda t: msg(t[0], t[1])),
    max_leaves=20,
)


@FUZZ
@given(st.sampled_from(sorted(KINDS)), st.lists(_PB_PIECES, max_size=6).map(b"".join))
def test_protobuf_bodies_decode_or_refuse(kind: str, raw: bytes) -> None:
    count("manifest.protobuf")
    body = envelope("v1", kind, raw)
    try:
        value = decode_object(body)
    except ApiError as e:
        assert e.code in (400, 415), e
        return
    assert value["kind"] == kind
    _strict_json(value)
