"""HTTP handlers for resource paths: one dispatcher that turns requests into store calls.

Handlers only translate: query parameters and bodies into store arguments, results into
responses (objects, Lists or Tables). Every refusal is raised as an ApiError and rendered as a
Status by the error middleware.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from apimachinery import errors, jsonutil, safeload
from apimachinery.api.autoscaling_v1 import Scale
from apimachinery.api.core_v1 import Binding
from apimachinery.decode import decode
from apimachinery.meta import now
from apimachinery.patch import PatchError, apply_json_patch, apply_merge_patch, apply_strategic_merge_patch
from apimachinery.scheme import ResourceType, Scheme
from apimachinery.selectors import (
    SelectorError,
    check_supported,
    object_fields,
    parse_field_selector,
    parse_label_selector,
    selector_from_model,
    selector_to_string,
)
from controlplane.apiserver import body as bodies
from controlplane.apiserver import tables
from controlplane.apiserver.nodeproxy import NODE_PROXY_KEY
from controlplane.apiserver.reqinfo import RequestInfo, parse_bool, parse_path
from controlplane.apiserver.watch import serve_watch
from controlplane.registry import managedfields
from controlplane.registry.admission import check_field_validation
from controlplane.registry.managedfields import FieldManager
from controlplane.registry.store import DeleteOptions, Obj, Store, WriteResult

# Subresources that need a node agent to stream from; until one serves them they answer 503.
# log and exec go to the pod's agent through the app's node proxy (controlplane.apiserver.nodeproxy).
_NODE_STREAMS = ("log", "exec", "attach", "portforward")
_PROXIED = ("log", "exec")


def json_response(data: Any, status: int = 200, warnings: list[str] | None = None) -> web.Response:
    resp = web.Response(
        body=jsonutil.dumps(data),
        status=status,
        content_type="application/json",
    )
    for w in warnings or []:
        resp.headers.add("Warning", f'299 - "{_escape(w)}"')
    return resp


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def make_predicate(rt: ResourceType, query: Any, name: str | None = None) -> Callable[[Obj], bool] | None:
    """A filter for lists and watches from labelSelector/fieldSelector (and a watched name)."""
    try:
        labels = parse_label_selector(query.get("labelSelector", "")) if query.get("labelSelector") else None
        fields = parse_field_selector(query.get("fieldSelector", "")) if query.get("fieldSelector") else None
        if fields is not None:
            check_supported(rt.kind, fields)
    except SelectorError as e:
        raise errors.bad_request(str(e)) from None
    if labels is None and fields is None and name is None:
        return None

    def predicate(obj: Obj) -> bool:
        md = obj.get("metadata") or {}
        if name is not None and md.get("name") != name:
            return False
        if labels is not None and not labels.matches(md.get("labels") or {}):
            return False
        return fields is None or fields.matches(object_fields(rt.kind, obj))

    return predicate


def update_manager(request: web.Request, subresource: str | None = None) -> FieldManager:
    """The field manager of a create/update/patch (an Update operation)."""
    name = managedfields.manager_from_request(request.query.get("fieldManager"), request.headers.get("User-Agent"))
    return FieldManager(name, managedfields.UPDATE, subresource or "")


INT64_MAX = 2**63 - 1


def _int_param(query: Any, key: str) -> int | None:
    raw = query.get(key)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise errors.bad_request(f'invalid value for {key}: "{raw}" is not an integer') from None
    # Kubernetes parses these as int64; beyond that etcd and the clock overflow.
    if not -INT64_MAX - 1 <= value <= INT64_MAX:
        raise errors.bad_request(f'invalid value for {key}: "{raw}" is out of range')
    return value


class ResourceHandler:
    def __init__(self, store: Store, scheme: Scheme) -> None:
        self.store = store
        self.scheme = scheme

    async def handle(self, request: web.Request) -> web.StreamResponse:
        info = parse_path(self.scheme, request.raw_path)
        q = request.query
        method = request.method
        sub = info.subresource
        if sub in _PROXIED and info.rt.kind == "Pod" and info.name is not None and NODE_PROXY_KEY in request.config_dict:
            return await request.config_dict[NODE_PROXY_KEY].serve(request, self.store, self.scheme, info)
        if sub in _NODE_STREAMS:
            raise errors.service_unavailable(
                f'no node agent serves {info.rt.plural}/{sub} for {info.rt.kind.lower()} "{info.name}" yet'
            )
        if sub is None or sub == "status":
            if method == "GET":
                if info.legacy_watch or parse_bool(q.get("watch"), "watch"):
                    return await serve_watch(request, self.store, info, make_predicate(info.rt, q, info.name))
                if info.name is None:
                    return await self._list(request, info)
                return self._render(request, info, await self.store.get(
                    info.rt, info.namespace, info.name, resource_version=q.get("resourceVersion", "")))
            if method == "POST" and info.name is None and sub is None:
                return await self._create(request, info)
            if method == "PUT" and info.name is not None:
                return await self._update(request, info)
            if method == "PATCH" and info.name is not None:
                return await self._patch(request, info)
            if method == "DELETE" and sub is None:
                if info.name is None:
                    return await self._delete_collection(request, info)
                return await self._delete(request, info)
        elif sub == "scale":
            return await self._scale(request, info)
        elif sub == "binding" and method == "POST":
            return await self._bind(request, info)
        elif sub in ("finalize", "approval") and method == "PUT":
            return await self._update(request, info)
        raise errors.method_not_allowed(f"the server does not allow this method on the requested resource ({method})")

    # ---------------------------------------------------------------------------------------

    def _render(self, request: web.Request, info: RequestInfo, obj: Obj, status: int = 200,
                warnings: list[str] | None = None) -> web.Response:
        if request.method == "GET" and tables.wants_table(request.headers.get("Accept", "")):
            # The Table carries the object's resourceVersion: `kubectl get NAME -w` watches from it.
            rv = (obj.get("metadata") or {}).get("resourceVersion")
            table = tables.build_table(info.rt, [obj], include_object=request.query.get("includeObject", "Metadata"),
                                       list_meta={"resourceVersion": rv} if rv else None)
            return json_response(table, status, warnings)
        return json_response(obj, status, warnings)

    async def _list(self, request: web.Request, info: RequestInfo) -> web.Response:
        q = request.query
        result = await self.store.list(
            info.rt,
            info.namespace,
            make_predicate(info.rt, q),
            limit=_int_param(q, "limit") or 0,
            continue_=q.get("continue", ""),
            resource_version=q.get("resourceVersion", ""),
            resource_version_match=q.get("resourceVersionMatch", ""),
        )
        list_meta: dict[str, Any] = {"resourceVersion": result.resource_version}
        if result.continue_:
            list_meta["continue"] = result.continue_
        if result.remaining is not None and result.continue_:
            list_meta["remainingItemCount"] = result.remaining
        if tables.wants_table(request.headers.get("Accept", "")):
            return json_response(tables.build_table(
                info.rt, result.items, include_object=q.get("includeObject", "Metadata"), list_meta=list_meta))
        return json_response({
            "kind": info.rt.list_kind,
            "apiVersion": info.rt.api_version,
            "metadata": list_meta,
            "items": result.items,
        })

    async def _create(self, request: web.Request, info: RequestInfo) -> web.Response:
        obj = await bodies.read_object(request)
        res = await self.store.create(
            info.rt, info.namespace, obj,
            dry_run=bodies.dry_run(request.query.getall("dryRun", [])),
            field_validation=check_field_validation(request.query.get("fieldValidation")),
            manager=update_manager(request),
        )
        return json_response(res.obj, 201, res.warnings + bodies.warnings(request))

    async def _update(self, request: web.Request, info: RequestInfo) -> web.Response:
        assert info.name is not None
        obj = await bodies.read_object(request)
        res = await self.store.update(
            info.rt, info.namespace, info.name, obj,
            subresource=info.subresource,
            dry_run=bodies.dry_run(request.query.getall("dryRun", [])),
            field_validation=check_field_validation(request.query.get("fieldValidation")),
            manager=update_manager(request, info.subresource),
        )
        return json_response(res.obj, 200, res.warnings + bodies.warnings(request))

    async def _patch(self, request: web.Request, info: RequestInfo) -> web.Response:
        assert info.name is not None
        patch_type, patch = await bodies.read_patch(request)
        q = request.query
        dry = bodies.dry_run(q.getall("dryRun", []))
        fv = check_field_validation(q.get("fieldValidation"))
        if patch_type == bodies.APPLY_PATCH:
            return await self._apply(request, info, patch, dry, fv)
        model = info.rt.model

        def mutate(old: Obj) -> Obj:
            return _check_patched_rv(info, old, apply_patch(patch_type, old, patch, model))

        res = await self.store.guaranteed_update(
            info.rt, info.namespace, info.name, mutate, subresource=info.subresource, dry_run=dry, field_validation=fv,
            manager=update_manager(request, info.subresource),
        )
        return json_response(res.obj, 200, res.warnings + bodies.warnings(request))

    async def _apply(self, request: web.Request, info: RequestInfo, patch: Obj, dry: bool, fv: str) -> web.Response:
        """Server-side apply: create if missing, else merge the configuration with field ownership.

        Fields this manager applied before and leaves out now are removed (unless another manager
        owns them); changing fields that other managers own is a 409 Conflict unless ``force``.
        """
        assert info.name is not None
        q = request.query
        if not q.get("fieldManager"):
            raise errors.bad_request("PATCH requests with apply content type must specify fieldManager")
        force = parse_bool(q.get("force"), "force")
        md = patch.get("metadata") if isinstance(patch.get("metadata"), dict) else None
        if md is None or md.get("name") != info.name:
            raise errors.bad_request(
                f"the name of the object ({(md or {}).get('name')}) does not match the name on the URL ({info.name})")
        rt = info.rt
        if patch.get("apiVersion") != rt.api_version or patch.get("kind") != rt.kind:
            raise errors.bad_request(
                f"the apiVersion/kind of the applied configuration ({patch.get('apiVersion')}, {patch.get('kind')})"
                f" does not match the resource ({rt.api_version}, {rt.kind})")
        md.pop("managedFields", None)
        name = managedfields.manager_from_request(q.get("fieldManager"), None)
        fm = FieldManager(name, managedfields.APPLY, info.subresource or "",
                          applied=managedfields.applied_fields(patch, rt), force=force)
        model = rt.model

        def mutate(old: Obj) -> Obj:
            base = managedfields.remove_unapplied(old, fm)
            return _check_patched_rv(info, old, apply_patch(bodies.STRATEGIC_PATCH, base, patch, model))

        try:
            res = await self.store.guaranteed_update(
                rt, info.namespace, info.name, mutate, subresource=info.subresource, dry_run=dry,
                field_validation=fv, manager=fm,
            )
        except errors.ApiError as e:
            if e.code != 404 or info.subresource:
                raise
            # Nothing to apply onto: the applied configuration creates the object.
            created = await self.store.create(rt, info.namespace, patch, dry_run=dry, field_validation=fv, manager=fm)
            return json_response(created.obj, 201, created.warnings + bodies.warnings(request))
        return json_response(res.obj, 200, res.warnings + bodies.warnings(request))

    async def _delete(self, request: web.Request, info: RequestInfo) -> web.Response:
        assert info.name is not None
        opts = await _delete_options(request)
        obj, removed = await self.store.delete(info.rt, info.namespace, info.name, opts)
        return json_response(obj, 200 if removed else 202)

    async def _delete_collection(self, request: web.Request, info: RequestInfo) -> web.Response:
        if "deletecollection" not in info.rt.verbs:
            raise errors.method_not_allowed("the server does not allow this method on the requested resource")
        opts = await _delete_options(request)
        listed = await self.store.list(info.rt, info.namespace, make_predicate(info.rt, request.query))
        deleted: list[Obj] = []
        for item in listed.items:
            md = item["metadata"]
            try:
                obj, _ = await self.store.delete(info.rt, md.get("namespace"), md["name"], opts)
            except errors.ApiError as e:
                if e.code == 404:
                    continue
                raise
            deleted.append(obj)
        return json_response({
            "kind": info.rt.list_kind, "apiVersion": info.rt.api_version,
            "metadata": {"resourceVersion": listed.resource_version}, "items": deleted,
        })

    # ---------------------------------------------------------------------------------------
    # subresources

    async def _scale(self, request: web.Request, info: RequestInfo) -> web.Response:
        assert info.name is not None
        rt = info.rt
        if request.method == "GET":
            return json_response(scale_of(rt, await self.store.get(rt, info.namespace, info.name)))
        if request.method == "PUT":
            new_scale = await bodies.read_object(request)

            def scaled(old: Obj) -> Obj:
                return new_scale
        elif request.method == "PATCH":
            patch_type, patch = await bodies.read_patch(request)
            if patch_type == bodies.APPLY_PATCH:
                patch_type = bodies.STRATEGIC_PATCH

            def scaled(old: Obj) -> Obj:
                return apply_patch(patch_type, scale_of(rt, old), patch, Scale)
        else:
            raise errors.method_not_allowed(f"the server does not allow this method on the requested resource ({request.method})")

        def mutate(old: Obj) -> Obj:
            scale = scaled(old)
            typed, errs = decode(Scale, scale)
            if typed is None:
                raise errors.invalid("Scale", "autoscaling", info.name or "", errs)
            rv = typed.metadata.resource_version
            if rv and rv != old["metadata"]["resourceVersion"]:
                raise errors.conflict(rt.plural, rt.group, info.name or "")
            replicas = typed.spec.replicas
            if replicas is None or replicas < 0:
                raise errors.invalid("Scale", "autoscaling", info.name or "", [
                    errors.FieldError.invalid("spec.replicas", replicas, "must be greater than or equal to 0")
                    if replicas is not None else errors.FieldError.required("spec.replicas")])
            old.setdefault("spec", {})["replicas"] = replicas
            return old

        res: WriteResult = await self.store.guaranteed_update(
            rt, info.namespace, info.name, mutate, dry_run=bodies.dry_run(request.query.getall("dryRun", [])),
            manager=update_manager(request, "scale"),
        )
        return json_response(scale_of(rt, res.obj))

    async def _bind(self, request: web.Request, info: RequestInfo) -> web.Response:
        assert info.name is not None
        data = await bodies.read_object(request)
        binding, errs = decode(Binding, data)
        if binding is None:
            raise errors.bad_request(f"Binding cannot be handled: {errs[0]}")
        target = binding.target.name
        if not target:
            raise errors.invalid("Binding", "", info.name, [errors.FieldError.required("target.name")])
        if binding.metadata.name and binding.metadata.name != info.name:
            raise errors.bad_request(
                f"the name of the object ({binding.metadata.name}) does not match the name on the URL ({info.name})")

        def mutate(stored: Obj) -> Obj:
            # The stored pod itself (no deep copy): build the bound pod around it, sharing every
            # part the binding does not change (binding is the scheduler's hot path).
            md = stored["metadata"]
            if md.get("deletionTimestamp"):
                raise errors.conflict("pods/binding", "", info.name or "", f"pod {info.name} is being deleted, cannot be assigned to a host")
            uid = binding.metadata.uid
            if uid and uid != md.get("uid"):
                raise errors.conflict("pods/binding", "", info.name or "", "Precondition failed: UID in precondition does not match")
            spec = stored.get("spec") or {}
            if spec.get("nodeName"):
                raise errors.conflict(
                    "pods/binding", "", info.name or "",
                    f'pod {info.name} is already assigned to node "{spec["nodeName"]}"')
            status = stored.get("status") or {}
            conditions = [c for c in status.get("conditions") or [] if c.get("type") != "PodScheduled"]
            conditions.append({"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                               "lastTransitionTime": now()})
            return {**stored, "metadata": dict(md), "spec": {**spec, "nodeName": target},
                    "status": {**status, "conditions": conditions}}

        await self.store.guaranteed_update(
            info.rt, info.namespace, info.name, mutate, subresource="binding",
            dry_run=bodies.dry_run(request.query.getall("dryRun", [])), copy_current=False,
        )
        return json_response({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}, 201)


def apply_patch(patch_type: str, original: Obj, patch: Any, model: Any) -> Obj:
    try:
        if patch_type == bodies.JSON_PATCH:
            patched = apply_json_patch(original, patch)
        elif patch_type == bodies.MERGE_PATCH:
            patched = apply_merge_patch(original, patch)
        else:
            patched = apply_strategic_merge_patch(original, patch, model)
        # JSON patch operations can nest values into each other past what any body may hold.
        safeload.to_json_data(patched)
        return patched
    except (safeload.DecodeError, RecursionError) as e:
        why = e if isinstance(e, safeload.DecodeError) else safeload.depth_error()
        raise errors.ApiError.make(422, "Invalid", f"the patched object is not acceptable: {why}") from None
    except PatchError as e:
        code = getattr(e, "code", 422)
        if code == 400:
            raise errors.bad_request(str(e)) from None
        if code == 413:
            raise errors.too_large(str(e)) from None
        raise errors.ApiError.make(422, "Invalid", str(e)) from None


def _check_patched_rv(info: RequestInfo, old: Obj, patched: Obj) -> Obj:
    """A patch that names a resourceVersion is a precondition on it (as in Kubernetes)."""
    if not isinstance(patched, dict):
        raise errors.bad_request("the patched object is not a JSON object")
    md = patched.get("metadata")
    if not isinstance(md, dict):
        raise errors.bad_request("the patched object has no metadata")
    rv = md.get("resourceVersion")
    if rv and rv != old["metadata"]["resourceVersion"]:
        raise errors.conflict(info.rt.plural, info.rt.group, info.name or "")
    return patched


def scale_of(rt: ResourceType, obj: Obj) -> Obj:
    md = obj["metadata"]
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {k: md[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp") if k in md},
        "spec": {"replicas": spec.get("replicas", 0)},
        "status": {
            "replicas": status.get("replicas", 0),
            "selector": selector_to_string(selector_from_model(spec.get("selector"))),
        },
    }


async def _delete_options(request: web.Request) -> DeleteOptions:
    q = request.query
    data = await bodies.read_optional_object(request) or {}
    pre = data.get("preconditions") or {}
    grace = data.get("gracePeriodSeconds")
    if grace is None:
        grace = _int_param(q, "gracePeriodSeconds")
    policy = data.get("propagationPolicy") or q.get("propagationPolicy")
    if data.get("orphanDependents") is True or parse_bool(q.get("orphanDependents"), "orphanDependents"):
        policy = policy or "Orphan"
    if policy not in (None, "Orphan", "Background", "Foreground"):
        raise errors.invalid("DeleteOptions", "", "", [errors.FieldError.not_supported(
            "propagationPolicy", policy, ["Foreground", "Background", "Orphan"])])
    if grace is not None and (not isinstance(grace, int) or isinstance(grace, bool) or abs(grace) > INT64_MAX):
        raise errors.bad_request("gracePeriodSeconds must be an integer")
    raw_dry: Any = data.get("dryRun") or q.getall("dryRun", [])
    dry = [str(v) for v in raw_dry]
    return DeleteOptions(
        propagation_policy=policy,
        grace_period_seconds=grace,
        precondition_uid=pre.get("uid"),
        precondition_rv=pre.get("resourceVersion"),
        dry_run=bodies.dry_run(dry),
    )
