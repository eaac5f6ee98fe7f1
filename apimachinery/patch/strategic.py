"""Kubernetes' strategic merge patch: applying one, and computing the patches kubectl sends.

A strategic merge patch is a JSON merge patch that knows the API types: lists declared
``patchStrategy: merge`` merge element-wise (containers by name, ports by containerPort, finalizers
as a set) instead of being replaced, and a few directives reach what plain JSON cannot say:

* ``$patch: replace | delete | merge`` in a map (replace it / empty it / the default) and as a list
  element (``{"$patch": "replace"}`` replaces the whole list, ``{"name": "x", "$patch": "delete"}``
  deletes one element);
* ``$setElementOrder/<list>``: the order of the merged list, used by ``kubectl apply``;
* ``$retainKeys``: clear every key of the map not listed (union types such as a volume's source or
  a Deployment's strategy);
* ``$deleteFromPrimitiveList/<list>``: scalars to remove from a merged scalar list.

Fields the models do not know (and the values of ``dict[str, str]`` maps such as labels) merge as in
a plain JSON merge patch. Directive keys never end up in the result.

Ordering follows the API server, so objects come back in the order kubectl users see against real
clusters: elements named by the patch (or by ``$setElementOrder``) take the patch's order, the
elements only the server had keep their relative positions, and a new element the patch does not
place (no ``$setElementOrder``) goes *before* the server's elements, which is what Kubernetes does
with ``kubectl patch -p '{"spec":{"containers":[{"name":"new",...}]}}'``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable
from dataclasses import dataclass, replace
from typing import Any

from pydantic import BaseModel

from apimachinery.patch.mergepatch import PatchError, deep_copy, json_equal, json_type
from apimachinery.patch.schema import FieldMeta, Schema, schema_for

DIRECTIVE = "$patch"
RETAIN_KEYS = "$retainKeys"
SET_ELEMENT_ORDER = "$setElementOrder/"
DELETE_FROM_PRIMITIVE_LIST = "$deleteFromPrimitiveList/"

Obj = dict[str, Any]


def _is_directive(key: str) -> bool:
    return (
        key in (DIRECTIVE, RETAIN_KEYS)
        or key.startswith(SET_ELEMENT_ORDER)
        or key.startswith(DELETE_FROM_PRIMITIVE_LIST)
    )


def _show(value: Any) -> str:
    try:
        return json.dumps(value, separators=(",", ":"), sort_keys=True)
    except (TypeError, ValueError):
        return repr(value)


def _no_merge_key(element: Any, merge_key: str) -> PatchError:
    return PatchError(f"map: {_show(element)} does not contain declared merge key: {merge_key}", 400)


def _ident(value: Any) -> Hashable:
    """A hashable identity for a merge-key value or a scalar, with JSON equality (``1 == 1.0``)."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return (json_type(value), _show(value))


# ---------------------------------------------------------------------------------------------
# Applying


def apply_strategic_merge_patch(original: Obj, patch: Any, model: type[BaseModel]) -> Obj:
    """Apply a strategic merge patch to an object of type ``model``; neither input is modified."""
    if not isinstance(patch, dict):
        raise PatchError("invalid JSON document", 400)
    base = deep_copy(original) if isinstance(original, dict) else {}
    return _merge_map(base, patch, schema_for(model))


def _merge_map(original: Obj, patch: Obj, schema: Schema) -> Obj:
    """Merge ``patch`` into ``original``, which this call owns (a copy); ``patch`` is only read."""
    if DIRECTIVE in patch:
        directive = patch[DIRECTIVE]
        if directive == "replace":
            return _merge_map({}, {k: v for k, v in patch.items() if k != DIRECTIVE}, schema)
        if directive == "delete":
            return {}
        if directive != "merge":
            raise PatchError(f"unknown patch type: {_show(directive)} in map: {_show(patch)}", 400)
    if RETAIN_KEYS in patch:
        original = _retain_keys(original, patch)

    orders: dict[str, list[Any]] = {}
    doomed: dict[str, list[Any]] = {}
    for key, value in patch.items():
        if key.startswith(SET_ELEMENT_ORDER):
            name = key[len(SET_ELEMENT_ORDER) :]
            if not name or not isinstance(value, list):
                raise PatchError("invalid patch format of setElementOrder list", 400)
            orders[name] = value
        elif key.startswith(DELETE_FROM_PRIMITIVE_LIST):
            name = key[len(DELETE_FROM_PRIMITIVE_LIST) :]
            if not name or not isinstance(value, list):
                raise PatchError("invalid patch format of primitive list", 400)
            doomed[name] = value

    for key, value in patch.items():
        if _is_directive(key):
            continue
        if value is None:
            original.pop(key, None)
            continue
        meta = schema.field(key)
        current = original.get(key)
        if isinstance(value, dict):
            base = current if isinstance(current, dict) and not meta.replace else {}
            original[key] = _merge_map(base, value, meta.schema)
        elif isinstance(value, list) and meta.merge:
            base_list = current if isinstance(current, list) else []
            original[key] = _merge_list(key, base_list, value, meta, orders.get(key))
        else:
            original[key] = deep_copy(value)

    # An order for a list the patch does not otherwise touch only reorders what is there.
    for key, order in orders.items():
        current = original.get(key)
        meta = schema.field(key)
        if key not in patch and isinstance(current, list) and meta.merge:
            original[key] = _merge_list(key, current, [], meta, order)

    for key, values in doomed.items():
        current = original.get(key)
        if isinstance(current, list):
            original[key] = [x for x in current if not any(json_equal(x, d) for d in values)]
    return original


def _retain_keys(original: Obj, patch: Obj) -> Obj:
    keys = patch[RETAIN_KEYS]
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise PatchError("invalid patch format of retainKeys", 400)
    keep = set(keys)
    for key, value in patch.items():
        if value is not None and not _is_directive(key) and key not in keep:
            raise PatchError("patch content doesn't match retainKeys list", 422)
    return {k: v for k, v in original.items() if k in keep}


def _merge_list(
    name: str, original: list[Any], patch: list[Any], meta: FieldMeta, order: list[Any] | None
) -> list[Any]:
    kinds = {json_type(x) for x in [*original, *patch]}
    if not kinds:
        return []
    if "array" in kinds:
        raise PatchError("lists of lists are not supported", 400)
    if kinds == {"object"}:
        return _merge_object_list(name, original, patch, meta, order)
    if "object" in kinds:
        raise PatchError(f"list element types are not identical in {name}: {_show([*original, *patch])}", 400)
    return _merge_scalar_list(original, patch, order)


def _merge_object_list(
    name: str, original: list[Obj], patch: list[Obj], meta: FieldMeta, order: list[Any] | None
) -> list[Obj]:
    key = meta.merge_key
    if not key:
        raise PatchError(f"cannot merge lists without merge key for {name}", 400)

    base = list(original)
    plain: list[Obj] = []
    replace_all = False
    for element in patch:
        if DIRECTIVE not in element:
            plain.append(element)
            continue
        directive = element[DIRECTIVE]
        if directive == "delete":
            if key not in element:
                raise _no_merge_key(element, key)
            base = [o for o in base if not (key in o and json_equal(o[key], element[key]))]
        elif directive == "replace":
            replace_all = True
        elif directive == "merge":  # the default; an element carrying it is an ordinary element
            rest = {k: v for k, v in element.items() if k != DIRECTIVE}
            if rest:
                plain.append(rest)
        else:
            raise PatchError(f"unknown patch type: {_show(directive)} in map: {_show(element)}", 400)
    if replace_all:
        base = []
    server_order = list(base)

    merged = base
    for element in plain:
        if key not in element:
            raise _no_merge_key(element, key)
        index = next(
            (i for i, o in enumerate(merged) if key in o and json_equal(o[key], element[key])),
            None,
        )
        if index is None:
            merged.append(_merge_map({}, element, meta.schema))
        else:
            merged[index] = _merge_map(merged[index], element, meta.schema)

    def ident(item: Any) -> Hashable:
        if isinstance(item, dict) and key in item:
            return _ident(item[key])
        return ("element-without-merge-key", id(item))

    if order is not None:
        for item in order:
            if not isinstance(item, dict) or key not in item:
                raise _no_merge_key(item, key)
        _check_order(plain, order, ident)
    return _arrange(merged, order if order is not None else plain, server_order, ident)


def _merge_scalar_list(original: list[Any], patch: list[Any], order: list[Any] | None) -> list[Any]:
    merged: list[Any] = []
    seen: set[Hashable] = set()
    for value in [*original, *patch]:
        ident = _ident(value)
        if ident not in seen:
            seen.add(ident)
            merged.append(value)
    if order is not None:
        _check_order(patch, order, _ident)
    return _arrange(deep_copy(merged), order if order is not None else patch, original, _ident)


def _check_order(patch: list[Any], order: list[Any], ident: Callable[[Any], Hashable]) -> None:
    """The patch list must name its elements in the order ``$setElementOrder`` gives."""
    i = 0
    for item in order:
        if i < len(patch) and ident(patch[i]) == ident(item):
            i += 1
    if i < len(patch):
        raise PatchError(
            f"The order in patch list: {_show(patch)} doesn't match $setElementOrder list: {_show(order)}",
            400,
        )


def _arrange(
    merged: list[Any], patch_order: list[Any], server_order: list[Any], ident: Callable[[Any], Hashable]
) -> list[Any]:
    """Order a merged list the way the API server does.

    Elements the patch names are sorted by the patch's order; the others keep the order they had.
    The two runs are then interleaved: a server-only element goes before a patch element when
    both were in the original list and it came first there; otherwise the patch element goes
    first.
    """
    patch_pos: dict[Hashable, int] = {}
    for i, item in enumerate(patch_order):
        patch_pos.setdefault(ident(item), i)
    server_pos: dict[Hashable, int] = {}
    for i, item in enumerate(server_order):
        server_pos.setdefault(ident(item), i)

    named = sorted((x for x in merged if ident(x) in patch_pos), key=lambda x: patch_pos[ident(x)])
    server_only = [x for x in merged if ident(x) not in patch_pos]

    result: list[Any] = []
    i = j = 0
    while i < len(server_only) or j < len(named):
        if j >= len(named):
            result.append(server_only[i])
            i += 1
        elif i >= len(server_only):
            result.append(named[j])
            j += 1
        else:
            left = server_pos.get(ident(server_only[i]))
            right = server_pos.get(ident(named[j]))
            if left is not None and right is not None and left < right:
                result.append(server_only[i])
                i += 1
            else:
                result.append(named[j])
                j += 1
    return result


# ---------------------------------------------------------------------------------------------
# Computing patches


@dataclass(frozen=True)
class _DiffOptions:
    set_element_order: bool = True
    ignore_changes: bool = False  # leave additions and changes out (the deletions half of apply)
    ignore_deletions: bool = False  # leave deletions out (the live-object half of apply)
    retain_keys: bool = False  # emit $retainKeys for this map


def two_way_merge_patch(original: Obj, modified: Obj, model: type[BaseModel]) -> Obj:
    """The patch that turns ``original`` into ``modified`` (what ``kubectl edit`` sends)."""
    return _diff_maps(original or {}, modified, schema_for(model), _DiffOptions())


def create_three_way_merge_patch(
    original: Obj | None, modified: Obj, current: Obj, model: type[BaseModel]
) -> Obj:
    """What client-side ``kubectl apply`` sends.

    ``original`` is the last-applied configuration (None when there is none), ``modified`` the new
    manifest and ``current`` the live object. Additions and changes come from comparing
    ``modified`` with ``current``; deletions only from fields the user applied before
    (``original``) and dropped now, so fields set by the server or by other writers stay.
    """
    schema = schema_for(model)
    delta = _diff_maps(current or {}, modified, schema, _DiffOptions(ignore_deletions=True))
    deletions = _diff_maps(original or {}, modified, schema, _DiffOptions(ignore_changes=True))
    return _merge_patches(deletions, delta, schema)


def _diff_maps(original: Obj, modified: Obj, schema: Schema, opts: _DiffOptions) -> Obj:
    patch: Obj = {}
    retained: list[str] = []
    for key, new in modified.items():
        if opts.retain_keys and new is not None:
            retained.append(key)
        if key not in original:
            if not opts.ignore_changes:
                patch[key] = deep_copy(new)
            continue
        old = original[key]
        if json_type(old) != json_type(new):
            if not opts.ignore_changes:
                patch[key] = deep_copy(new)
            continue
        meta = schema.field(key)
        if isinstance(new, dict) and not meta.replace:
            sub = _diff_maps(old, new, meta.schema, replace(opts, retain_keys=meta.retain_keys))
            if sub:
                patch[key] = sub
        elif isinstance(new, list) and meta.merge:
            _diff_lists(key, old, new, meta, opts, patch)
        elif not opts.ignore_changes and not json_equal(old, new):
            patch[key] = deep_copy(new)
    if not opts.ignore_deletions:
        for key in original:
            if key not in modified:
                patch[key] = None
    cleared = any(v is not None and k not in modified for k, v in original.items())
    if retained and (patch or cleared):
        patch[RETAIN_KEYS] = sorted(retained)
    return patch


def _diff_lists(
    key: str, old: list[Any], new: list[Any], meta: FieldMeta, opts: _DiffOptions, patch: Obj
) -> None:
    """Diff a merge list into ``patch``: changed elements, deletions and the element order."""
    if not old:
        if new and not opts.ignore_changes:
            patch[key] = deep_copy(new)
        return
    kinds = {json_type(x) for x in [*old, *new]}
    if "array" in kinds:
        raise PatchError("lists of lists are not supported", 400)
    if "object" in kinds:
        if kinds != {"object"} or not meta.merge_key:
            # Not a list this schema can merge: fall back to replacing it.
            if not opts.ignore_changes and not json_equal(old, new):
                patch[key] = deep_copy(new)
            return
        _diff_object_lists(key, old, new, meta, opts, patch)
    else:
        _diff_scalar_lists(key, old, new, opts, patch)


def _diff_object_lists(
    key: str, old: list[Obj], new: list[Obj], meta: FieldMeta, opts: _DiffOptions, patch: Obj
) -> None:
    mk = meta.merge_key
    assert mk is not None
    by_key: dict[Hashable, Obj] = {}
    for element in old:
        if mk not in element:
            raise _no_merge_key(element, mk)
        by_key.setdefault(_ident(element[mk]), element)
    for element in new:
        if mk not in element:
            raise _no_merge_key(element, mk)

    element_opts = replace(opts, retain_keys=meta.retain_keys)
    changes: list[Obj] = []
    for element in new:
        previous = by_key.get(_ident(element[mk]))
        if previous is None:
            if not opts.ignore_changes:
                changes.append(deep_copy(element))
            continue
        sub = _diff_maps(previous, element, meta.schema, element_opts)
        if sub:
            changes.append({mk: element[mk], **sub})

    deletions: list[Obj] = []
    if not opts.ignore_deletions:
        kept = {_ident(e[mk]) for e in new}
        seen: set[Hashable] = set()
        for element in old:
            ident = _ident(element[mk])
            if ident not in kept and ident not in seen:
                seen.add(ident)
                deletions.append({mk: element[mk], DIRECTIVE: "delete"})

    entries = changes + deletions
    same_order = [_ident(e[mk]) for e in old] == [_ident(e[mk]) for e in new]
    if entries:
        patch[key] = entries
    wants_order = (not opts.ignore_changes and (bool(entries) or not same_order)) or (
        not opts.ignore_deletions and bool(entries)
    )
    if opts.set_element_order and wants_order and new:
        patch[SET_ELEMENT_ORDER + key] = [{mk: e[mk]} for e in new]


def _diff_scalar_lists(key: str, old: list[Any], new: list[Any], opts: _DiffOptions, patch: Obj) -> None:
    old_ids = {_ident(x) for x in old}
    new_ids = {_ident(x) for x in new}
    additions: list[Any] = []
    deletions: list[Any] = []
    if not opts.ignore_changes:
        seen: set[Hashable] = set()
        for x in new:
            if _ident(x) not in old_ids and _ident(x) not in seen:
                seen.add(_ident(x))
                additions.append(deep_copy(x))
    if not opts.ignore_deletions:
        seen = set()
        for x in old:
            if _ident(x) not in new_ids and _ident(x) not in seen:
                seen.add(_ident(x))
                deletions.append(deep_copy(x))
    if additions:
        patch[key] = additions
    if deletions:
        patch[DELETE_FROM_PRIMITIVE_LIST + key] = deletions
    wants_order = (not opts.ignore_deletions and bool(deletions)) or (
        not opts.ignore_changes and not json_equal(old, new)
    )
    if opts.set_element_order and wants_order and new:
        patch[SET_ELEMENT_ORDER + key] = deep_copy(new)


def _merge_patches(first: Obj, second: Obj, schema: Schema) -> Obj:
    """Combine two patches into one that does both (the deletions and the delta of apply).

    They never disagree on a field: deletions name what ``modified`` lacks, the delta only what it
    has. Shared maps and merge lists are combined element by element; directives (identical in
    both when present in both, since both come from ``modified``) are taken from ``second``.
    """
    out = dict(first)
    for key, value in second.items():
        if key not in out or _is_directive(key):
            out[key] = value
            continue
        existing = out[key]
        meta = schema.field(key)
        if isinstance(existing, dict) and isinstance(value, dict):
            out[key] = _merge_patches(existing, value, meta.schema)
        elif isinstance(existing, list) and isinstance(value, list) and meta.merge:
            order = second.get(SET_ELEMENT_ORDER + key, first.get(SET_ELEMENT_ORDER + key))
            out[key] = _merge_patch_lists(existing, value, meta, order if isinstance(order, list) else None)
        else:
            out[key] = value
    return out


def _merge_patch_lists(
    first: list[Any], second: list[Any], meta: FieldMeta, order: list[Any] | None
) -> list[Any]:
    """Combine two patch lists; entries follow ``order`` (the patch list must agree with its
    ``$setElementOrder``), deletion directives go last."""
    mk = meta.merge_key
    if mk and all(isinstance(x, dict) and mk in x for x in [*first, *second]):
        earlier = {_ident(x[mk]): x for x in first}
        used: set[Hashable] = set()
        result: list[Any] = []
        for element in second:
            ident = _ident(element[mk])
            if ident in earlier:
                used.add(ident)
                result.append(_merge_patches(earlier[ident], element, meta.schema))
            else:
                result.append(element)
        result.extend(x for x in first if _ident(x[mk]) not in used)
        if order is not None:
            pos = {_ident(o[mk]): i for i, o in enumerate(order) if isinstance(o, dict) and mk in o}
            result.sort(key=lambda x: (x.get(DIRECTIVE) == "delete", pos.get(_ident(x[mk]), len(pos))))
        return result
    seen = {_ident(x) for x in second}
    return [*second, *(x for x in first if _ident(x) not in seen)]
