"""Field ownership (``metadata.managedFields``) and server-side apply conflicts.

Every write records which *field manager* set which fields, in Kubernetes' FieldsV1 form::

    {"f:spec": {"f:replicas": {}, "f:template": {"f:spec": {"f:containers": {
        'k:{"name":"web"}': {".": {}, "f:image": {}, "f:name": {}}}}}}}

``f:<name>`` is a field of an object, ``k:<json>`` an element of a list merged by key (containers by
name), ``v:<json>`` an element of a list of scalars merged as a set (finalizers); ``.`` marks a node
that is owned itself and also has owned children. Everything else (scalars, atomic lists, empty
maps) is a leaf.

Two kinds of operation are recorded, as in Kubernetes:

* ``Update`` (create, PUT, the non-apply patches): the writer takes over every field it changed,
  other managers lose those fields, and fields that disappeared leave every manager. Updates never
  conflict: they are explicit about the whole object.
* ``Apply`` (``application/apply-patch+yaml``): the manager's set becomes exactly the fields of its
  applied configuration. Changing a field that another manager owns is a conflict (409) unless the
  request forces it, which moves the field to the applier. Fields the manager applied before and
  leaves out now are removed from the object, unless another manager still owns them.

Sets are computed with the models' strategic-merge metadata (merge keys), which is what Kubernetes'
list-type/list-map-keys markers say for the types kube-lite serves. The identity and server-owned
metadata (name, uid, resourceVersion, ...) are never owned by anyone, and a write through the main
resource never owns status (status has its own subresource), mirroring Kubernetes' reset fields.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from apimachinery import errors
from apimachinery.jsonutil import deep_copy
from apimachinery.meta import StatusCause, StatusDetails, now
from apimachinery.patch.schema import FieldMeta, Schema, schema_for
from apimachinery.scheme import ResourceType

Obj = dict[str, Any]
Path = tuple[str, ...]

APPLY = "Apply"
UPDATE = "Update"
FIELDS_V1 = "FieldsV1"
# Kubernetes refuses longer manager names.
MAX_MANAGER_LENGTH = 128


class _Node:
    """The value recorded for an owned node that is not a leaf (a list element, a free-form map)."""

    def __repr__(self) -> str:
        return "<node>"


NODE = _Node()

# Nobody owns identity or server-owned metadata (Kubernetes strips these before comparing).
_NEVER_OWNED: frozenset[Path] = frozenset(
    {("f:apiVersion",), ("f:kind",)}
    | {("f:metadata", "f:" + k) for k in (
        "name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp",
        "deletionTimestamp", "deletionGracePeriodSeconds", "managedFields", "selfLink",
    )}
)


@dataclass(frozen=True)
class FieldManager:
    """Who writes, and how: ``operation`` is Update or Apply, ``subresource`` "", "status" or "scale".

    For Apply, ``applied`` is the field set of the applied configuration and ``force`` says whether
    conflicts move fields to this manager instead of failing the request.
    """

    name: str
    operation: str = UPDATE
    subresource: str = ""
    applied: frozenset[Path] | None = None
    force: bool = False

    def same_entry(self, entry: Obj) -> bool:
        return (
            entry.get("manager") == self.name
            and entry.get("operation") == self.operation
            and (entry.get("subresource") or "") == self.subresource
        )


def manager_from_request(field_manager: str | None, user_agent: str | None) -> str:
    """The ``fieldManager`` query parameter, or the User-Agent's product name (as Kubernetes)."""
    if field_manager:
        if len(field_manager) > MAX_MANAGER_LENGTH:
            raise errors.invalid("PatchOptions", "meta.k8s.io", "", [errors.FieldError.too_long(
                "fieldManager", field_manager, MAX_MANAGER_LENGTH)])
        if any(not ch.isprintable() for ch in field_manager):
            raise errors.invalid("PatchOptions", "meta.k8s.io", "", [errors.FieldError.invalid(
                "fieldManager", field_manager, "must only contain printable characters")])
        return field_manager
    agent = (user_agent or "").split("/", 1)[0].strip()
    return "".join(ch for ch in agent if ch.isprintable())[:MAX_MANAGER_LENGTH] or "unknown"


# ---------------------------------------------------------------------------------------------
# field sets of objects


def field_values(obj: Obj | None, rt: ResourceType, *, map_nodes: bool = True,
                 roots: frozenset[str] | None = None) -> dict[Path, Any]:
    """Every owned-able path of ``obj`` with its value (``NODE`` for owned non-leaves).

    ``map_nodes`` also records free-form maps (labels, annotations, data) as nodes, which is how
    Update operations record them; applied configurations list only their entries. ``roots``
    limits the walk to those top-level fields (a status write never needs to look at spec).
    """
    out: dict[Path, Any] = {}
    if obj:
        schema = schema_for(rt.model)
        for key, child in obj.items():
            if roots is not None and key not in roots:
                continue
            path = ("f:" + str(key),)
            if path in _NEVER_OWNED:
                continue
            if key == "metadata" and isinstance(child, dict):
                meta = schema.field("metadata")
                for mkey, mchild in child.items():
                    mpath = (*path, "f:" + str(mkey))
                    if mpath not in _NEVER_OWNED:
                        _walk_value(mchild, meta.schema.field(str(mkey)), mpath, out, map_nodes)
                continue
            _walk_value(child, schema.field(str(key)), path, out, map_nodes)
    return out


def _walk_object(value: Obj, schema: Schema, path: Path, out: dict[Path, Any], map_nodes: bool) -> None:
    for key, child in value.items():
        _walk_value(child, schema.field(str(key)), (*path, "f:" + str(key)), out, map_nodes)


def _walk_value(value: Any, meta: FieldMeta, path: Path, out: dict[Path, Any], map_nodes: bool) -> None:
    if isinstance(value, dict) and value:
        if map_nodes and meta.schema.model is None:
            out[path] = NODE
        _walk_object(value, meta.schema, path, out, map_nodes)
        return
    if isinstance(value, list) and value and meta.merge:
        key = meta.merge_key
        if key is None and all(not isinstance(v, (dict, list)) for v in value):
            for v in value:
                out[(*path, "v:" + _json(v))] = NODE
            return
        if key is not None and all(isinstance(v, dict) and key in v for v in value):
            for v in value:
                item = (*path, "k:" + _json({key: v[key]}))
                out[item] = NODE
                _walk_object(v, meta.schema, item, out, map_nodes)
            return
    out[path] = value


def _json(value: Any) -> str:
    # default=str: applied configurations are YAML, where a bare date decodes to a datetime.
    return json.dumps(value, separators=(",", ":"), sort_keys=True, default=str)


def in_scope(path: Path, subresource: str, status_separate: bool) -> bool:
    """Whether a write through ``subresource`` can own ``path`` (Kubernetes' reset fields)."""
    if subresource == "status":
        return path[:1] == ("f:status",)
    if subresource == "scale":
        return path[:2] == ("f:spec", "f:replicas")
    return not (status_separate and path[:1] == ("f:status",))


def _roots(subresource: str, objs: list[Obj], status_separate: bool) -> frozenset[str]:
    """The top-level fields a write through ``subresource`` can own (to skip walking the rest)."""
    if subresource == "status":
        return frozenset({"status"})
    if subresource == "scale":
        return frozenset({"spec"})
    return frozenset(k for obj in objs for k in obj if not (status_separate and k == "status"))


# ---------------------------------------------------------------------------------------------
# FieldsV1


def to_fields_v1(paths: Iterable[Path]) -> Obj:
    tree: Obj = {}
    members = list(paths)
    for path in members:
        node = tree
        for el in path:
            node = node.setdefault(el, {})
    for path in members:
        node = tree
        for el in path:
            node = node[el]
        if node and "." not in node:
            node["."] = {}
    return _sorted_tree(tree)


def _sorted_tree(tree: Obj) -> Obj:
    # "." first, then the rest in order, as Kubernetes serializes sets.
    return {k: _sorted_tree(tree[k]) for k in sorted(tree, key=lambda k: (k != ".", k))}


def from_fields_v1(tree: Any) -> set[Path]:
    out: set[Path] = set()

    def walk(node: Any, path: Path) -> None:
        if not isinstance(node, dict):
            raise ValueError("a FieldsV1 node must be an object")
        for key, child in node.items():
            if key == ".":
                continue
            if not isinstance(key, str) or key[:2] not in ("f:", "k:", "v:", "i:"):
                raise ValueError(f"invalid FieldsV1 key {key!r}")
            if key[:2] in ("k:", "v:"):
                json.loads(key[2:])  # raises ValueError for a malformed key
                if key[:2] == "k:" and not isinstance(json.loads(key[2:]), dict):
                    raise ValueError(f"invalid FieldsV1 key {key!r}")
            p = (*path, key)
            if not isinstance(child, dict):
                raise ValueError("a FieldsV1 node must be an object")
            if not child or "." in child:
                out.add(p)
            walk(child, p)

    walk(tree, ())
    return out


def path_string(path: Path) -> str:
    """``.spec.template.spec.containers[name="web"].image``: how conflicts name a field."""
    parts: list[str] = []
    for el in path:
        kind, text = el[:2], el[2:]
        if kind == "f:":
            parts.append("." + text)
        elif kind == "k:":
            keys = json.loads(text)
            parts.append("[" + ",".join(f"{k}={_json(v)}" for k, v in keys.items()) + "]")
        elif kind == "v:":
            parts.append("[=" + text + "]")
        else:
            parts.append("[" + text + "]")
    return "".join(parts)


# ---------------------------------------------------------------------------------------------
# recording a write


def _entries(data: Any) -> list[tuple[Obj, set[Path]]] | None:
    """Decoded managedFields, or None when they are malformed (then the stored ones are used)."""
    if not isinstance(data, list):
        return None
    out: list[tuple[Obj, set[Path]]] = []
    for entry in data:
        if not isinstance(entry, dict) or entry.get("operation") not in (APPLY, UPDATE):
            return None
        if entry.get("fieldsType", FIELDS_V1) != FIELDS_V1 or not entry.get("manager"):
            return None
        try:
            out.append((entry, from_fields_v1(entry.get("fieldsV1") or {})))
        except ValueError:
            return None
    return out


def record(rt: ResourceType, old: Obj | None, new: Obj, fm: FieldManager) -> None:
    """Set ``new``'s managedFields for a write by ``fm`` that turns ``old`` into ``new``.

    Raises 409 Conflict for an unforced apply that changes fields other managers own.
    """
    md = new.setdefault("metadata", {})
    old_data = ((old or {}).get("metadata") or {}).get("managedFields") or []
    requested = md.get("managedFields")
    if requested == [] and old_data:
        # An explicit empty list is how clients strip managedFields (Kubernetes' reset).
        md.pop("managedFields", None)
        return
    base = _entries(requested) if requested and requested != old_data else None
    if base is None:
        base = _entries(old_data) or []

    roots = _roots(fm.subresource, [old or {}, new], rt.has_status)

    def scoped(values: dict[Path, Any]) -> dict[Path, Any]:
        # The roots already separate spec from status; only scale narrows further.
        if fm.subresource != "scale":
            return values
        return {p: v for p, v in values.items() if in_scope(p, fm.subresource, rt.has_status)}

    before = scoped(_stored_field_values(old, rt, roots))
    after = scoped(field_values(new, rt, roots=roots))
    changed = {p for p, v in after.items() if p not in before or not _same(before[p], v)}
    removed = set(before) - set(after)

    mine: set[Path] = set()
    for entry, owned in base:
        if fm.same_entry(entry):
            mine = set(owned)
    if fm.operation == APPLY:
        applied = set(fm.applied or ())
        taken = applied & changed
        if not fm.force:
            _raise_conflicts(rt, base, fm, taken)
        mine = applied & set(after)
    else:
        taken = changed
        mine = (mine | changed) - removed

    now_ = now()
    entries: list[Obj] = []
    recorded = False
    for entry, owned in base:
        if fm.same_entry(entry):
            recorded = True
            entries.extend(_entry(fm, rt, mine, entry, now_, touched=bool(mine & changed)))
            continue
        kept = owned - taken - removed
        if kept == owned:
            entries.append(entry)
        elif kept:
            entries.append({**entry, "fieldsV1": to_fields_v1(kept)})
    if not recorded:
        entries.extend(_entry(fm, rt, mine, None, now_, touched=True))
    if entries:
        md["managedFields"] = entries
    else:
        md.pop("managedFields", None)


# The stored object's field values by (uid, resourceVersion, roots): the watch cache hands the
# same stored state to every write until it changes, and a state never changes under one version.
_STORED_CACHE: OrderedDict[tuple[str, str, frozenset[str]], dict[Path, Any]] = OrderedDict()
_STORED_CACHE_SIZE = 512


def _stored_field_values(old: Obj | None, rt: ResourceType, roots: frozenset[str]) -> dict[Path, Any]:
    md = (old or {}).get("metadata") or {}
    uid, rv = md.get("uid"), md.get("resourceVersion")
    if not uid or not rv:
        return field_values(old, rt, roots=roots)
    key = (f"{rt.api_version}/{rt.kind}/{uid}", str(rv), roots)
    found = _STORED_CACHE.get(key)
    if found is None:
        found = field_values(old, rt, roots=roots)
        _STORED_CACHE[key] = found
        if len(_STORED_CACHE) > _STORED_CACHE_SIZE:
            _STORED_CACHE.popitem(last=False)
    else:
        _STORED_CACHE.move_to_end(key)
    return found


def _same(a: Any, b: Any) -> bool:
    return a is b if isinstance(a, _Node) or isinstance(b, _Node) else bool(a == b)


def _entry(fm: FieldManager, rt: ResourceType, paths: set[Path], previous: Obj | None, time: str,
           touched: bool) -> list[Obj]:
    if not paths:
        return []
    fields = to_fields_v1(paths)
    if previous is not None and previous.get("fieldsV1") == fields and not touched:
        return [previous]
    entry: Obj = {
        "manager": fm.name,
        "operation": fm.operation,
        "apiVersion": rt.api_version,
        "time": time,
        "fieldsType": FIELDS_V1,
        "fieldsV1": fields,
    }
    if fm.subresource:
        entry["subresource"] = fm.subresource
    return [entry]


def _describe_manager(entry: Obj) -> str:
    text = json.dumps(entry.get("manager") or "")
    if entry.get("subresource"):
        text += f' with subresource {json.dumps(entry["subresource"])}'
    if entry.get("operation") == UPDATE:
        text += f" using {entry.get('apiVersion')}"
    return text


def _raise_conflicts(rt: ResourceType, base: list[tuple[Obj, set[Path]]], fm: FieldManager, taken: set[Path]) -> None:
    conflicts: list[tuple[str, Path]] = []
    for entry, owned in base:
        if fm.same_entry(entry):
            continue
        for path in sorted(owned & taken, key=path_string):
            conflicts.append((_describe_manager(entry), path))
    if not conflicts:
        return
    causes = [StatusCause(reason="FieldManagerConflict", message=f"conflict with {who}", field=path_string(path))
              for who, path in conflicts]
    if len(conflicts) == 1:
        who, path = conflicts[0]
        message = f"Apply failed with 1 conflict: conflict with {who}: {path_string(path)}"
    else:
        lines: list[str] = []
        by_manager: dict[str, list[Path]] = {}
        for who, path in conflicts:
            by_manager.setdefault(who, []).append(path)
        for who in sorted(by_manager):
            lines.append(f"conflicts with {who}:")
            lines.extend(f"- {path_string(p)}" for p in by_manager[who])
        message = f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(lines)
    raise errors.ApiError.make(409, "Conflict", message, details=StatusDetails(causes=causes))


# ---------------------------------------------------------------------------------------------
# applying a configuration


def applied_fields(config: Obj, rt: ResourceType) -> frozenset[Path]:
    return frozenset(field_values(config, rt, map_nodes=False))


def others_owned(live: Obj, fm: FieldManager) -> set[Path]:
    """Every path other managers own, with all of its ancestors."""
    out: set[Path] = set()
    for entry, owned in _entries(((live.get("metadata") or {}).get("managedFields")) or []) or []:
        if fm.same_entry(entry):
            continue
        for path in owned:
            out.update(path[:i] for i in range(1, len(path) + 1))
    return out


def previously_applied(live: Obj, fm: FieldManager) -> set[Path]:
    for entry, owned in _entries(((live.get("metadata") or {}).get("managedFields")) or []) or []:
        if fm.same_entry(entry):
            return owned
    return set()


def remove_unapplied(live: Obj, fm: FieldManager) -> Obj:
    """``live`` without the fields ``fm`` applied before, leaves out now, and nobody else owns."""
    assert fm.applied is not None
    out = deep_copy(live)
    stale = previously_applied(live, fm) - set(fm.applied) - others_owned(live, fm)
    # Parents before children: removing a list element takes its fields with it.
    for path in sorted(stale, key=len):
        _remove_path(out, path)
    return out


def _remove_path(obj: Any, path: Path) -> None:
    node = obj
    for i, el in enumerate(path):
        last = i == len(path) - 1
        kind, text = el[:2], el[2:]
        if kind == "f:":
            if not isinstance(node, dict) or text not in node:
                return
            if last:
                del node[text]
                return
            node = node[text]
        elif kind in ("k:", "v:"):
            if not isinstance(node, list):
                return
            wanted = json.loads(text)
            if kind == "k:":
                index = next((n for n, item in enumerate(node) if isinstance(item, dict)
                              and all(item.get(k) == v for k, v in wanted.items())), None)
            else:
                index = next((n for n, item in enumerate(node) if item == wanted), None)
            if index is None:
                return
            if last:
                del node[index]
                return
            node = node[index]
        else:
            return
