"""Field ownership: FieldsV1 sets, Update and Apply recording, conflicts, and removal of unapplied fields."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from apimachinery import errors
from apimachinery.scheme import ResourceType, default_scheme
from controlplane.registry import managedfields as mf

Obj = dict[str, Any]


def rt(api_version: str, kind: str) -> ResourceType:
    found = default_scheme().by_kind(api_version, kind)
    assert found is not None
    return found


DEPLOY = rt("apps/v1", "Deployment")
CM = rt("v1", "ConfigMap")


_RV = iter(range(100, 10_000))


def deployment(image: str = "nginx", replicas: int = 2, containers: list[Obj] | None = None) -> Obj:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "uid": "u", "resourceVersion": str(next(_RV)), "labels": {"app": "web"}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
                "containers": containers if containers is not None else [{"name": "web", "image": image}]}},
        },
        "status": {"replicas": 1},
    }


def stored(obj: Obj) -> Obj:
    """``obj`` as the store would keep it: a fresh resourceVersion for every new state."""
    obj["metadata"]["resourceVersion"] = str(next(_RV))
    return obj


def owners(obj: Obj) -> dict[str, set[mf.Path]]:
    return {e["manager"]: mf.from_fields_v1(e["fieldsV1"]) for e in obj["metadata"].get("managedFields", [])}


def test_fields_v1_round_trip_and_shape() -> None:
    paths = set(mf.field_values(deployment(), DEPLOY))
    tree = mf.to_fields_v1(paths)
    assert mf.from_fields_v1(tree) == paths
    containers = tree["f:spec"]["f:template"]["f:spec"]["f:containers"]
    assert containers == {'k:{"name":"web"}': {".": {}, "f:image": {}, "f:name": {}}}
    # Free-form maps are members themselves when recorded for an Update ("." next to their keys).
    assert tree["f:metadata"]["f:labels"] == {".": {}, "f:app": {}}
    # Identity and server-owned metadata are nobody's.
    assert "f:name" not in tree["f:metadata"] and "f:uid" not in tree["f:metadata"]
    assert "f:apiVersion" not in tree and "f:kind" not in tree
    with pytest.raises(ValueError):
        mf.from_fields_v1({"x:bad": {}})


def test_set_lists_and_path_strings() -> None:
    obj = {"metadata": {"name": "x", "finalizers": ["a/b", "c"]}}
    paths = set(mf.field_values(obj, CM))
    assert ("f:metadata", "f:finalizers", 'v:"a/b"') in paths
    assert mf.path_string(("f:metadata", "f:finalizers", 'v:"a/b"')) == '.metadata.finalizers[="a/b"]'
    assert mf.path_string(("f:spec", "f:template", "f:spec", "f:containers", 'k:{"name":"web"}', "f:image")) == \
        '.spec.template.spec.containers[name="web"].image'


def test_update_takes_changed_fields_from_others() -> None:
    live = deployment()
    mf.record(DEPLOY, None, live, mf.FieldManager("creator"))
    assert set(owners(live)) == {"creator"}
    assert ("f:status", "f:replicas") not in owners(live)["creator"]  # main resource never owns status

    new = deployment(replicas=3)
    new["metadata"]["managedFields"] = copy.deepcopy(live["metadata"]["managedFields"])
    mf.record(DEPLOY, live, new, mf.FieldManager("scaler", subresource="scale"))
    stored(new)
    got = owners(new)
    assert got["scaler"] == {("f:spec", "f:replicas")}
    assert ("f:spec", "f:replicas") not in got["creator"]
    scale_entry = next(e for e in new["metadata"]["managedFields"] if e["manager"] == "scaler")
    assert scale_entry["subresource"] == "scale" and scale_entry["operation"] == "Update"

    # Nothing changed: the entries stay exactly as they were (no write needed).
    again = copy.deepcopy(new)
    mf.record(DEPLOY, new, again, mf.FieldManager("scaler", subresource="scale"))
    assert again["metadata"]["managedFields"] == new["metadata"]["managedFields"]

    # An explicit empty list strips managedFields.
    stripped = copy.deepcopy(new)
    stripped["metadata"]["managedFields"] = []
    mf.record(DEPLOY, new, stripped, mf.FieldManager("x"))
    assert "managedFields" not in stripped["metadata"]


def test_status_writes_own_only_status() -> None:
    live = deployment()
    mf.record(DEPLOY, None, live, mf.FieldManager("creator"))
    new = copy.deepcopy(live)
    new["status"] = {"replicas": 2, "readyReplicas": 2}
    mf.record(DEPLOY, live, new, mf.FieldManager("controller", subresource="status"))
    assert owners(new)["controller"] == {("f:status", "f:replicas"), ("f:status", "f:readyReplicas")}


def _apply(live: Obj | None, config: Obj, manager: str, force: bool = False) -> Obj:
    fm = mf.FieldManager(manager, mf.APPLY, applied=mf.applied_fields(config, DEPLOY), force=force)
    if live is None:
        new = copy.deepcopy(config)
        mf.record(DEPLOY, None, new, fm)
        return stored(new)
    base = mf.remove_unapplied(live, fm)
    from apimachinery.patch import apply_strategic_merge_patch

    new = apply_strategic_merge_patch(base, config, DEPLOY.model)
    mf.record(DEPLOY, live, new, fm)
    return stored(new)


def test_apply_conflicts_force_and_shared_ownership() -> None:
    config = deployment()
    del config["status"]
    live = _apply(None, config, "a")
    entry = live["metadata"]["managedFields"][0]
    assert entry["operation"] == "Apply" and entry["manager"] == "a"

    # Same values from another applier: co-owned, no conflict.
    live = _apply(live, copy.deepcopy(config), "b")
    assert ("f:spec", "f:replicas") in owners(live)["a"] and ("f:spec", "f:replicas") in owners(live)["b"]

    changed = copy.deepcopy(config)
    changed["spec"]["replicas"] = 5
    with pytest.raises(errors.ApiError) as err:
        _apply(live, changed, "c")
    assert err.value.code == 409
    assert err.value.message.startswith("Apply failed with 2 conflicts: ")
    assert 'conflicts with "a":\n- .spec.replicas' in err.value.message
    causes = err.value.status.details.causes  # type: ignore[union-attr]
    assert {(c.reason, c.field) for c in causes} == {("FieldManagerConflict", ".spec.replicas")}

    forced = _apply(live, changed, "c", force=True)
    got = owners(forced)
    assert ("f:spec", "f:replicas") in got["c"]
    assert ("f:spec", "f:replicas") not in got["a"] and ("f:spec", "f:replicas") not in got["b"]


def test_update_owner_conflict_names_api_version() -> None:
    live = deployment()
    mf.record(DEPLOY, None, live, mf.FieldManager("kubectl-edit"))
    changed = deployment(replicas=9)
    del changed["status"]
    with pytest.raises(errors.ApiError) as err:
        _apply(live, changed, "applier")
    assert err.value.message == (
        'Apply failed with 1 conflict: conflict with "kubectl-edit" using apps/v1: .spec.replicas')


def test_apply_removes_what_it_stopped_applying_unless_others_own_it() -> None:
    two = [{"name": "web", "image": "nginx"}, {"name": "side", "image": "busybox"}]
    config = deployment(containers=copy.deepcopy(two))
    del config["status"]
    live = _apply(None, config, "a")

    one = deployment(containers=[{"name": "web", "image": "nginx"}])
    del one["status"]
    after = _apply(live, one, "a")
    assert [c["name"] for c in after["spec"]["template"]["spec"]["containers"]] == ["web"]
    assert not any("side" in el for p in owners(after)["a"] for el in p)

    # With a co-owner, the element stays (only its last owner's leaving removes it).
    shared = _apply(live, copy.deepcopy(config), "b")
    kept = _apply(shared, one, "a")
    assert [c["name"] for c in kept["spec"]["template"]["spec"]["containers"]] == ["web", "side"]


def test_manager_names() -> None:
    assert mf.manager_from_request("kubectl-edit", "x") == "kubectl-edit"
    assert mf.manager_from_request(None, "kubectl/v1.37.1 (linux/amd64) kubernetes/abc") == "kubectl"
    assert mf.manager_from_request(None, None) == "unknown"
    with pytest.raises(errors.ApiError) as err:
        mf.manager_from_request("m" * 129, None)
    assert err.value.code == 422


def test_malformed_input_never_breaks_recording() -> None:
    import datetime

    # YAML decodes a bare date to a datetime: it still names a set element.
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "finalizers": [datetime.date(2026, 1, 2)]}}
    assert ("f:metadata", "f:finalizers", 'v:"2026-01-02"') in mf.applied_fields(cm, CM)

    # Client-sent managedFields that do not parse are ignored in favour of the stored ones.
    live = deployment()
    mf.record(DEPLOY, None, live, mf.FieldManager("creator"))
    stored(live)
    new = deployment(replicas=4)
    new["metadata"]["managedFields"] = [{"manager": "evil", "operation": "Update", "fieldsType": "FieldsV1",
                                         "fieldsV1": {'k:{"unterminated': {}}}]
    mf.record(DEPLOY, live, new, mf.FieldManager("scaler"))
    assert set(owners(new)) == {"creator", "scaler"}
