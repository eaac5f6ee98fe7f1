"""Property tests on decoding, defaulting and validating arbitrary objects of every kind, and on
the selector and quantity parsers the API runs on query strings and specs.

Seeds are the repository's example manifests (so the engines get past the first field) with
random values planted at random places; whatever comes out is either refused with field errors
or decoded, defaulted and validated without any exception.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from apimachinery import quantity
from apimachinery.decode import decode, drop_unknown_fields
from apimachinery.defaults import apply_defaults
from apimachinery.jsonutil import deep_copy
from apimachinery.safeload import loads_yaml_all
from apimachinery.scheme import ResourceType, default_scheme
from apimachinery.selectors import SelectorError, parse_field_selector, parse_label_selector
from apimachinery.validation import validate, validate_update
from tests.fuzz.strategies import FUZZ, count, json_values

SCHEME = default_scheme()
TYPES = [rt for rt in SCHEME]
MANIFESTS = Path(__file__).resolve().parents[2] / "manifests"
SEEDS: list[dict[str, Any]] = [
    doc for f in sorted(MANIFESTS.glob("*.yaml")) for doc in loads_yaml_all(f.read_text()) if isinstance(doc, dict)
]


def _containers(value: Any) -> list[tuple[Any, Any]]:
    """(container, key) pairs of every place in a document, containers first."""
    out: list[tuple[Any, Any]] = []
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, dict):
            out.extend((v, k) for k in v)
            stack.extend(v.values())
        elif isinstance(v, list):
            out.extend((v, i) for i in range(len(v)))
            stack.extend(v)
    return out


@st.composite
def mutated_objects(draw: st.DrawFn) -> tuple[ResourceType, dict[str, Any]]:
    seed = draw(st.sampled_from(SEEDS))
    doc = deep_copy(seed)
    for _ in range(draw(st.integers(0, 4))):
        places = _containers(doc)
        if not places:
            break
        parent, key = draw(st.sampled_from(places))
        parent[key] = draw(json_values(8))
    rt = SCHEME.by_kind(str(seed.get("apiVersion")), str(seed.get("kind")))
    if rt is None or (draw(st.booleans()) and draw(st.booleans())):
        rt = draw(st.sampled_from(TYPES))  # a document of one kind sent to another
    return rt, doc


def _check(rt: ResourceType, data: dict[str, Any]) -> Any:
    obj, errs = decode(rt.model, data)
    if obj is None:
        assert errs and all(str(e) for e in errs)
        return None
    drop_unknown_fields(obj)
    apply_defaults(obj)
    for e in validate(obj, namespaced=rt.namespaced):
        assert str(e)
        e.cause()
    json.dumps(obj.model_dump(mode="json", by_alias=True, exclude_none=True), allow_nan=False)
    return obj


@FUZZ
@given(mutated_objects())
def test_decode_default_validate_never_crash(item: tuple[ResourceType, dict[str, Any]]) -> None:
    count("validation.object")
    rt, data = item
    _check(rt, data)


@FUZZ
@given(mutated_objects(), mutated_objects())
def test_validate_update_never_crashes(a: tuple[ResourceType, dict[str, Any]], b: tuple[ResourceType, dict[str, Any]]) -> None:
    count("validation.update")
    rt = a[0]
    old, new = _check(rt, a[1]), _check(rt, b[1])
    if old is not None and new is not None:
        for e in validate_update(new, old, namespaced=rt.namespaced):
            assert str(e)


_SELECTOR_BITS = st.sampled_from(["a", "b", "=", "==", "!=", ",", " in ", " notin ", "(", ")", "!", "x/y",
                                  "metadata.name", "spec.nodeName", "status.phase", " ", "-", ".", "é"])
selector_texts = st.one_of(st.text(max_size=30), st.lists(_SELECTOR_BITS, max_size=12).map("".join))


@FUZZ
@given(selector_texts)
def test_selectors_parse_or_refuse(text: str) -> None:
    count("validation.selector")
    for parse in (parse_label_selector, parse_field_selector):
        try:
            parse(text)
        except SelectorError as e:
            assert str(e)


_QUANTITY_BITS = st.sampled_from(["1", "0", ".", "5", "e", "E", "+", "-", "m", "Ki", "Mi", "G", "Ei", "k", "n",
                                  "u", "9999999999999999999", "1e308"])


@FUZZ
@given(st.one_of(st.text(max_size=12), st.lists(_QUANTITY_BITS, max_size=8).map("".join)))
def test_quantities_parse_or_refuse(text: str) -> None:
    count("validation.quantity")
    try:
        quantity.parse(text)
    except quantity.QuantityError:
        return
    quantity.format_quantity(text)
    quantity.milli_value(text)
    quantity.value(text)
