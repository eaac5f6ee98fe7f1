"""Decoding untrusted JSON and YAML into plain JSON data, with limits.

Everything that reads documents from outside (the API server's request bodies, kubectl-lite's
manifests) goes through here, so one set of rules holds everywhere:

* **Depth**: at most ``MAX_DEPTH`` nested objects/arrays. Kubernetes allows 10,000 because Go's
  stacks grow; our patch engines, validation and copies recurse, and Python's recursion limit
  is 1,000 frames, so we refuse far earlier than the interpreter would (no real manifest comes
  near 100 levels).
* **YAML aliases** (the "billion laughs" bomb): anchors are shared while composing, so the bomb
  only explodes when the data is copied or serialised. We count the nodes the document would
  have with every alias expanded and refuse documents that grow more than ``ALIAS_RATIO`` times
  their own size (above a small floor), or past ``MAX_EXPANDED_NODES``. Recursive aliases are
  refused.
* **Strict JSON**: UTF-8 only, no NaN/Infinity, no lone surrogates, integers within int64
  (Kubernetes' widest integer type); duplicate keys are reported
  to the caller (the API refuses or warns about them depending on ``fieldValidation``).
* **YAML to JSON** as Kubernetes converts it: timestamps stay strings, non-string keys become
  strings, and anything without a JSON form (binary, NaN, sets of unhashable keys) is refused.

Every refusal is a ``DecodeError`` with a one-line message.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

import yaml

MAX_DEPTH = 100
ALIAS_RATIO = 10
ALIAS_FLOOR = 10_000
MAX_EXPANDED_NODES = 1_000_000
INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)


class DecodeError(ValueError):
    """A document that is not acceptable; the message is one line, fit to show a user."""


def depth_error() -> DecodeError:
    return DecodeError(f"the document is nested too deeply: the limit is {MAX_DEPTH} levels")


# ---------------------------------------------------------------------------------------------
# JSON


def _refuse_constant(name: str) -> Any:
    raise DecodeError(f"{name} is not valid JSON")


def loads_json(data: bytes | str, duplicates: list[str] | None = None) -> Any:
    """Strictly decode one JSON document. Duplicate keys are appended to ``duplicates`` (when
    given) as ``"key"``; the last value wins, as in Kubernetes."""
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise DecodeError(f"invalid UTF-8 at byte {e.start}") from None
    else:
        text = data

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in items:
            if k in out and duplicates is not None:
                duplicates.append(k)
            out[k] = v
        return out

    try:
        value = json.loads(text, object_pairs_hook=pairs, parse_constant=_refuse_constant)
    except RecursionError:
        raise depth_error() from None
    except DecodeError:
        raise
    except ValueError as e:
        raise DecodeError(str(e).splitlines()[0][:200]) from None
    to_json_data(value)
    return value


def to_json_data(value: Any) -> Any:
    """Check (and for YAML, convert) decoded data into JSON data within the depth limit.

    Dict keys become strings, as Kubernetes' YAML-to-JSON conversion makes them; values with no
    JSON form are refused. Returns the converted value (JSON input comes back unchanged).
    """
    return _convert(value, 1)


def _convert(value: Any, depth: int) -> Any:
    # Recursion is bounded: we refuse before MAX_DEPTH levels, far below Python's limit.
    t = type(value)
    if t is dict or t is list:
        if depth > MAX_DEPTH:
            raise depth_error()
        if t is list:
            return [_convert(v, depth + 1) for v in value]
        return {_key(k): _convert(v, depth + 1) for k, v in value.items()}
    if t is str:
        _check_text(value)
        return value
    if value is None or t is bool:
        return value
    if t is int:
        # Kubernetes decodes numbers into int64 (or narrower) fields; larger ones overflow
        # timestamps, etcd ranges and controllers' loops here, so they stop at the door.
        if not INT64_MIN <= value <= INT64_MAX:
            raise DecodeError(f"the number {_short_int(value)} is out of the range of a 64-bit integer")
        return value
    if t is float:
        if math.isnan(value) or math.isinf(value):
            raise DecodeError(f"{value} is not valid JSON")
        return value
    raise DecodeError(f"a value of type {_yaml_type(value)} has no JSON form")


def _short_int(value: int) -> str:
    text = str(value)
    return text if len(text) <= 30 else f"{text[:12]}...({len(text)} digits)"


def _key(key: Any) -> str:
    if isinstance(key, str):
        _check_text(key)
        return key
    if key is None:
        return "null"
    if isinstance(key, bool):
        return "true" if key else "false"
    if isinstance(key, int | float):
        return json.dumps(key)
    raise DecodeError(f"a map key of type {_yaml_type(key)} has no JSON form")


def _check_text(s: str) -> None:
    # A lone surrogate ("\ud800") decodes but cannot be stored or sent as UTF-8.
    if not s.isascii():
        try:
            s.encode("utf-8")
        except UnicodeEncodeError:
            raise DecodeError("strings must be valid Unicode (found a lone surrogate)") from None


_YAML_TYPE_NAMES: dict[type, str] = {bytes: "binary", set: "set", tuple: "pair list"}


def _yaml_type(value: Any) -> str:
    return _YAML_TYPE_NAMES.get(type(value), type(value).__name__)


# ---------------------------------------------------------------------------------------------
# YAML


class _Loader(yaml.SafeLoader):
    """SafeLoader that checks each composed document's node graph before constructing it, and
    notes keys that appear twice in one mapping (the last value wins, as in Kubernetes)."""

    duplicates: list[str] | None = None

    def compose_document(self) -> yaml.Node | None:  # type: ignore[override]
        node = super().compose_document()
        if node is not None:
            _check_nodes(node)
        return node

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        if self.duplicates is not None:
            seen: set[str] = set()
            for key_node, _ in node.value:
                # Merge keys ("<<") may repeat; keys they bring in are overridden, not duplicated.
                if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                    if key_node.value in seen:
                        self.duplicates.append(key_node.value)
                    seen.add(key_node.value)
        return super().construct_mapping(node, deep)


# Timestamps stay strings (Kubernetes' YAML reader does the same; datetimes have no JSON form).
_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def _check_nodes(root: yaml.Node) -> None:
    """Expanded size and depth of a node graph in which aliases share nodes; iterative and
    memoised per node, so a bomb costs only its real size to measure."""
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    unique = 0
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            on_path.discard(key)
            kids = _children(node)
            size[key] = 1 + sum(size[id(k)] for k in kids)
            own = 1 if isinstance(node, yaml.SequenceNode | yaml.MappingNode) else 0
            depth[key] = own + max((depth[id(k)] for k in kids), default=0)
            if size[key] > MAX_EXPANDED_NODES:
                raise _bomb_error()
            if depth[key] > MAX_DEPTH:
                raise depth_error()
            continue
        if key in size:
            continue
        if key in on_path:
            raise DecodeError("the document refers to itself through an alias")
        on_path.add(key)
        unique += 1
        stack.append((node, True))
        for kid in _children(node):
            if id(kid) in on_path:
                raise DecodeError("the document refers to itself through an alias")
            if id(kid) not in size:
                stack.append((kid, False))
    total = size[id(root)]
    if total > ALIAS_FLOOR and total > ALIAS_RATIO * unique:
        raise _bomb_error()


def _bomb_error() -> DecodeError:
    return DecodeError("the document expands too much through YAML aliases")


def _yaml_documents(data: bytes | str, duplicates: list[str] | None = None) -> Iterator[Any]:
    loader: _Loader | None = None
    try:
        loader = _Loader(data)  # reads (and may refuse) the first characters already
        loader.duplicates = duplicates
        while loader.check_data():
            yield to_json_data(loader.get_data())
    except RecursionError:
        raise depth_error() from None
    except yaml.YAMLError as e:
        raise DecodeError(" ".join(str(e).split())[:300]) from None
    except TypeError as e:
        # e.g. a complex (unhashable) mapping key: "? [a, b]: c"
        raise DecodeError(f"the document has a map key with no JSON form: {e}") from None
    except UnicodeDecodeError as e:
        raise DecodeError(f"invalid UTF-8 at byte {e.start}") from None
    finally:
        if loader is not None:
            loader.dispose()


def loads_yaml(data: bytes | str, duplicates: list[str] | None = None) -> Any:
    """One YAML document (an empty document is None); more than one is refused. Keys repeated
    in a mapping are appended to ``duplicates`` when given."""
    docs = list(_yaml_documents(data, duplicates))
    if len(docs) > 1:
        raise DecodeError("expected a single YAML document, found several")
    return docs[0] if docs else None


def loads_yaml_all(data: bytes | str) -> list[Any]:
    """Every document of a YAML stream (``---`` separated), empty ones as None."""
    return list(_yaml_documents(data))
