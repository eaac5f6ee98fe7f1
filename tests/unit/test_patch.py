"""The patch engines: JSON merge patch, JSON patch, strategic merge patch, and the patches kubectl
computes (two-way for edit, three-way for client-side apply), driven by the real API models."""

from __future__ import annotations

import copy
import json
import random
from typing import Any

import pytest

from apimachinery.api import Deployment, Pod, Service
from apimachinery.patch import (
    PatchError,
    apply_json_patch,
    apply_merge_patch,
    apply_strategic_merge_patch,
    create_three_way_merge_patch,
    two_way_merge_patch,
)
from apimachinery.patch.schema import UNKNOWN, schema_for

Obj = dict[str, Any]


def _directive_keys(value: Any) -> list[str]:
    """Every key starting with '$' anywhere in a document."""
    found: list[str] = []
    if isinstance(value, dict):
        for k, v in value.items():
            if k.startswith("$"):
                found.append(k)
            found.extend(_directive_keys(v))
    elif isinstance(value, list):
        for v in value:
            found.extend(_directive_keys(v))
    return found


def smp(original: Obj, patch: Obj, model: Any = Pod) -> Obj:
    """Apply a strategic merge patch, checking the invariants every application must keep."""
    before_o, before_p = copy.deepcopy(original), copy.deepcopy(patch)
    result = apply_strategic_merge_patch(original, patch, model)
    assert original == before_o and patch == before_p, "inputs were mutated"
    assert _directive_keys(result) == [], "a directive leaked into the result"
    return result


def names(items: list[Obj], key: str = "name") -> list[Any]:
    return [i[key] for i in items]


# ---------------------------------------------------------------------------------------------
# JSON merge patch (RFC 7386)


class TestMergePatch:
    def test_rfc7386_semantics(self) -> None:
        original = {"a": "b", "c": {"d": "e", "f": "g"}, "l": [1, 2], "keep": 1}
        patch = {"a": "z", "c": {"f": None, "new": {"x": 1}}, "l": [3], "gone": None}
        assert apply_merge_patch(original, patch) == {
            "a": "z",
            "c": {"d": "e", "new": {"x": 1}},
            "l": [3],
            "keep": 1,
        }

    def test_scale_patch(self) -> None:
        deploy = {"spec": {"replicas": 1, "template": {"metadata": {"labels": {"app": "web"}}}}}
        assert apply_merge_patch(deploy, {"spec": {"replicas": 3}})["spec"] == {
            "replicas": 3,
            "template": {"metadata": {"labels": {"app": "web"}}},
        }

    def test_object_replaces_scalar_and_nulls_inside_new_objects_vanish(self) -> None:
        assert apply_merge_patch({"a": 1}, {"a": {"b": 1, "c": None}}) == {"a": {"b": 1}}

    def test_inputs_not_mutated_and_result_independent(self) -> None:
        original = {"a": {"b": [1]}}
        patch = {"c": {"d": [2]}}
        result = apply_merge_patch(original, patch)
        result["a"]["b"].append(9)
        result["c"]["d"].append(9)
        assert original == {"a": {"b": [1]}} and patch == {"c": {"d": [2]}}

    @pytest.mark.parametrize("patch", [[{"op": "add"}], "x", 3, None])
    def test_non_object_patch_is_bad_request(self, patch: Any) -> None:
        with pytest.raises(PatchError) as e:
            apply_merge_patch({"a": 1}, patch)
        assert e.value.code == 400
        assert str(e.value) == "Invalid JSON Patch"


# ---------------------------------------------------------------------------------------------
# JSON patch (RFC 6902)


class TestJsonPatch:
    doc: Obj = {
        "metadata": {"name": "web", "annotations": {"a/b": "1", "m~n": "2"}},
        "spec": {"l": [1, 2, 3]},
    }

    def apply(self, *ops: Obj) -> Obj:
        before = copy.deepcopy(self.doc)
        result = apply_json_patch(self.doc, list(ops))
        assert self.doc == before
        return result

    def error(self, *ops: Any) -> PatchError:
        with pytest.raises(PatchError) as e:
            apply_json_patch(self.doc, list(ops))
        return e.value

    def test_add(self) -> None:
        r = self.apply(
            {"op": "add", "path": "/spec/x", "value": {"y": 1}},
            {"op": "add", "path": "/spec/l/0", "value": 0},
            {"op": "add", "path": "/spec/l/-", "value": 4},
            {"op": "add", "path": "/spec/l/5", "value": 5},
            {"op": "add", "path": "/metadata/name", "value": "other"},
        )
        assert r["spec"] == {"l": [0, 1, 2, 3, 4, 5], "x": {"y": 1}}
        assert r["metadata"]["name"] == "other"

    def test_add_value_is_copied(self) -> None:
        value = {"y": [1]}
        r = apply_json_patch({}, [{"op": "add", "path": "/x", "value": value}])
        r["x"]["y"].append(2)
        assert value == {"y": [1]}

    def test_escapes(self) -> None:
        r = self.apply(
            {"op": "replace", "path": "/metadata/annotations/a~1b", "value": "x"},
            {"op": "remove", "path": "/metadata/annotations/m~0n"},
            {"op": "add", "path": "/metadata/annotations/~01", "value": "y"},
        )
        assert r["metadata"]["annotations"] == {"a/b": "x", "~1": "y"}

    def test_remove_replace(self) -> None:
        r = self.apply(
            {"op": "remove", "path": "/spec/l/1"},
            {"op": "replace", "path": "/spec/l/0", "value": 10},
            {"op": "replace", "path": "/metadata", "value": {"name": "n"}},
        )
        assert r == {"metadata": {"name": "n"}, "spec": {"l": [10, 3]}}

    def test_replace_keeps_key_order(self) -> None:
        r = apply_json_patch({"a": 1, "b": 2, "c": 3}, [{"op": "replace", "path": "/a", "value": 9}])
        assert list(r) == ["a", "b", "c"]

    def test_replace_whole_document(self) -> None:
        assert self.apply({"op": "replace", "path": "", "value": {"x": 1}}) == {"x": 1}

    def test_move_and_copy(self) -> None:
        r = self.apply(
            {"op": "copy", "from": "/spec/l", "path": "/spec/m"},
            {"op": "move", "from": "/metadata/name", "path": "/spec/name"},
            {"op": "move", "from": "/spec/l/0", "path": "/spec/l/-"},
        )
        assert r["spec"] == {"l": [2, 3, 1], "m": [1, 2, 3], "name": "web"}
        assert "name" not in r["metadata"]

    def test_copy_is_deep(self) -> None:
        r = self.apply(
            {"op": "copy", "from": "/spec", "path": "/copy"}, {"op": "add", "path": "/copy/l/-", "value": 9}
        )
        assert r["spec"]["l"] == [1, 2, 3] and r["copy"]["l"] == [1, 2, 3, 9]

    def test_move_to_itself_is_a_no_op(self) -> None:
        assert self.apply({"op": "move", "from": "/spec", "path": "/spec"}) == self.doc

    def test_test_op(self) -> None:
        assert self.apply({"op": "test", "path": "/spec/l", "value": [1, 2, 3.0]}) == self.doc
        err = self.error({"op": "test", "path": "/metadata/name", "value": "db"})
        assert err.code == 422
        assert str(err) == "testing value /metadata/name failed: test failed"
        # JSON equality: true is not 1
        assert apply_json_patch({"a": 1}, [{"op": "test", "path": "/a", "value": 1.0}]) == {"a": 1}
        with pytest.raises(PatchError):
            apply_json_patch({"a": 1}, [{"op": "test", "path": "/a", "value": True}])

    def test_rollout_undo_shape(self) -> None:
        deploy = {
            "metadata": {"annotations": {"deployment.kubernetes.io/revision": "2"}},
            "spec": {"template": {"a": 1}},
        }
        ops = [
            {"op": "replace", "path": "/spec/template", "value": {"b": 2}},
            {
                "op": "replace",
                "path": "/metadata/annotations",
                "value": {"deployment.kubernetes.io/revision": "3"},
            },
        ]
        assert apply_json_patch(deploy, ops) == {
            "metadata": {"annotations": {"deployment.kubernetes.io/revision": "3"}},
            "spec": {"template": {"b": 2}},
        }

    def test_all_or_nothing(self) -> None:
        err = self.error({"op": "add", "path": "/x", "value": 1}, {"op": "remove", "path": "/nope"})
        assert err.code == 422
        assert "x" not in self.doc

    @pytest.mark.parametrize(
        ("op", "fragment"),
        [
            (
                {"op": "remove", "path": "/spec/missing"},
                'remove operation does not apply: doc is missing path: "/spec/missing"',
            ),
            ({"op": "replace", "path": "/spec/missing", "value": 1}, "replace operation does not apply"),
            (
                {"op": "add", "path": "/nope/x", "value": 1},
                'add operation does not apply: doc is missing path: "/nope/x"',
            ),
            ({"op": "add", "path": "/spec/l/9", "value": 1}, "invalid index 9"),
            ({"op": "remove", "path": "/spec/l/3"}, "invalid index 3"),
            ({"op": "remove", "path": "/spec/l/-"}, 'invalid array index "-"'),
            ({"op": "add", "path": "/spec/l/01", "value": 1}, 'invalid array index "01"'),
            ({"op": "add", "path": "/metadata/name/x", "value": 1}, "doc is missing path"),
            ({"op": "move", "from": "/spec", "path": "/spec/l/x"}, "is a prefix of"),
            ({"op": "copy", "from": "/nope", "path": "/x"}, "copy operation does not apply"),
            ({"op": "test", "path": "/nope", "value": 1}, "test operation does not apply"),
            ({"op": "remove", "path": ""}, "cannot remove the whole document"),
            ({"op": "replace", "path": "", "value": [1]}, "not a JSON object"),
        ],
    )
    def test_unapplyable_operations_are_422(self, op: Obj, fragment: str) -> None:
        err = self.error(op)
        assert err.code == 422
        assert fragment in str(err)

    @pytest.mark.parametrize(
        ("ops", "fragment"),
        [
            ({"op": "add", "path": "/a", "value": 1}, "JSON array"),
            ([["add"]], "JSON object"),
            ([{"op": "frobnicate", "path": "/a"}], 'unknown operation "frobnicate"'),
            ([{"path": "/a"}], 'unknown operation "None"'),
            ([{"op": "add", "path": "/a"}], 'missing "value"'),
            ([{"op": "remove"}], 'missing "path"'),
            ([{"op": "move", "path": "/a"}], 'missing "from"'),
            ([{"op": "remove", "path": "a"}], 'must be empty or start with "/"'),
            ([{"op": "remove", "path": "/a~2b"}], "bad escape sequence"),
            ([{"op": "remove", "path": 3}], "must be a string"),
        ],
    )
    def test_malformed_patches_are_400(self, ops: Any, fragment: str) -> None:
        with pytest.raises(PatchError) as e:
            apply_json_patch(self.doc, ops)
        assert e.value.code == 400
        assert fragment in str(e.value)

    def test_too_many_operations(self) -> None:
        ops = [{"op": "test", "path": "/spec", "value": self.doc["spec"]}] * 10001
        with pytest.raises(PatchError) as e:
            apply_json_patch(self.doc, ops)
        assert e.value.code == 413
        assert str(e.value) == "The allowed maximum operations in a JSON patch is 10000, got 10001"


# ---------------------------------------------------------------------------------------------
# Schema lookups


class TestSchema:
    def test_metadata_read_from_models(self) -> None:
        pod_spec = schema_for(Deployment).field("spec").schema.field("template").schema.field("spec").schema
        containers = pod_spec.field("containers")
        assert containers.merge and containers.merge_key == "name"
        assert containers.schema.field("ports").merge_key == "containerPort"
        assert containers.schema.field("volumeMounts").merge_key == "mountPath"
        assert containers.schema.field("args").merge is False
        volumes = pod_spec.field("volumes")
        assert volumes.merge and volumes.retain_keys and volumes.merge_key == "name"
        assert schema_for(Deployment).field("spec").schema.field("strategy").retain_keys
        finalizers = schema_for(Pod).field("metadata").schema.field("finalizers")
        assert finalizers.merge and finalizers.merge_key is None
        # camelCase aliases with Kubernetes' own spellings
        assert schema_for(Pod).field("status").schema.field("podIPs").merge_key == "ip"
        assert schema_for(Service).field("spec").schema.field("ports").merge_key == "port"

    def test_unknown_and_free_form_fields(self) -> None:
        meta = schema_for(Pod).field("metadata").schema
        assert meta.field("labels").schema == UNKNOWN
        assert meta.field("noSuchField").schema == UNKNOWN
        assert UNKNOWN.field("anything").merge is False
        assert meta.field("pod_ip").schema == UNKNOWN  # python names are not JSON names


# ---------------------------------------------------------------------------------------------
# Strategic merge patch: applying


def pod(*containers: Obj, **spec: Any) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {"containers": list(containers), **spec},
    }


class TestStrategicApply:
    def test_maps_merge_and_null_deletes(self) -> None:
        original = {"metadata": {"name": "p", "labels": {"a": "1", "b": "2"}, "annotations": {"x": "y"}}}
        patch = {"metadata": {"labels": {"a": None, "c": "3"}, "annotations": None}}
        assert smp(original, patch) == {"metadata": {"name": "p", "labels": {"b": "2", "c": "3"}}}

    def test_unknown_fields_are_plain_json_merge(self) -> None:
        original = {"spec": {"containers": []}, "x-extra": {"list": [{"name": "a", "v": 1}], "m": {"k": 1}}}
        patch = {"x-extra": {"list": [{"name": "b"}], "m": {"j": 2}}}
        assert smp(original, patch)["x-extra"] == {"list": [{"name": "b"}], "m": {"k": 1, "j": 2}}

    def test_containers_merge_by_name(self) -> None:
        original = pod({"name": "a", "image": "x:1", "args": ["--v"]}, {"name": "b", "image": "y:1"})
        result = smp(original, {"spec": {"containers": [{"name": "b", "image": "y:2"}]}})
        assert result["spec"]["containers"] == [
            {"name": "a", "image": "x:1", "args": ["--v"]},
            {"name": "b", "image": "y:2"},
        ]

    def test_new_element_goes_first_like_the_api_server(self) -> None:
        # kubectl patch -p '{"spec":{"containers":[{"name":"new",...}]}}' puts the container first.
        original = pod({"name": "a"}, {"name": "b"})
        result = smp(original, {"spec": {"containers": [{"name": "new", "image": "z"}]}})
        assert names(result["spec"]["containers"]) == ["new", "a", "b"]

    def test_patch_order_wins_for_named_elements(self) -> None:
        original = pod({"name": "a"}, {"name": "b"}, {"name": "c"})
        result = smp(original, {"spec": {"containers": [{"name": "x"}, {"name": "b", "image": "i"}]}})
        assert names(result["spec"]["containers"]) == ["x", "a", "b", "c"]

    def test_atomic_lists_are_replaced(self) -> None:
        original = pod({"name": "a", "args": ["1", "2"], "command": ["sh"]}, tolerations=[{"key": "k"}])
        patch = {"spec": {"containers": [{"name": "a", "args": ["3"]}], "tolerations": [{"key": "j"}]}}
        result = smp(original, patch)
        assert result["spec"]["containers"] == [{"name": "a", "args": ["3"], "command": ["sh"]}]
        assert result["spec"]["tolerations"] == [{"key": "j"}]

    def test_nested_merge_lists(self) -> None:
        original = pod(
            {
                "name": "a",
                "ports": [{"containerPort": 80, "protocol": "TCP"}, {"containerPort": 443}],
                "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                "volumeMounts": [{"name": "data", "mountPath": "/data"}],
            }
        )
        patch = {
            "spec": {
                "containers": [
                    {
                        "name": "a",
                        "ports": [{"containerPort": 80.0, "name": "http"}],
                        "env": [{"name": "B", "value": "3"}, {"name": "A", "$patch": "delete"}],
                        "volumeMounts": [{"mountPath": "/data", "readOnly": True}],
                    }
                ]
            }
        }
        c = smp(original, patch)["spec"]["containers"][0]
        # merge keys compare as JSON values: 80.0 is the port 80
        assert c["ports"] == [
            {"containerPort": 80, "protocol": "TCP", "name": "http"},
            {"containerPort": 443},
        ]
        assert c["env"] == [{"name": "B", "value": "3"}]
        assert c["volumeMounts"] == [{"name": "data", "mountPath": "/data", "readOnly": True}]

    def test_delete_directive_for_missing_element_and_missing_list(self) -> None:
        original = pod({"name": "a"})
        patch = {
            "spec": {
                "containers": [{"name": "zz", "$patch": "delete"}],
                "volumes": [{"name": "v", "$patch": "delete"}],
            }
        }
        result = smp(original, patch)
        assert result["spec"] == {"containers": [{"name": "a"}], "volumes": []}

    def test_replace_directive_in_list(self) -> None:
        original = pod({"name": "a", "image": "x"}, {"name": "b"})
        result = smp(original, {"spec": {"containers": [{"name": "c", "image": "z"}, {"$patch": "replace"}]}})
        assert result["spec"]["containers"] == [{"name": "c", "image": "z"}]
        empty = smp(original, {"spec": {"containers": [{"$patch": "replace"}]}})
        assert empty["spec"]["containers"] == []

    def test_merge_directive_is_the_default(self) -> None:
        original = pod({"name": "a", "image": "x"})
        result = smp(
            original,
            {
                "spec": {
                    "$patch": "merge",
                    "containers": [{"name": "a", "image": "y", "$patch": "merge"}, {"$patch": "merge"}],
                }
            },
        )
        assert result["spec"]["containers"] == [{"name": "a", "image": "y"}]

    def test_replace_and_delete_directives_on_maps(self) -> None:
        original = pod(
            {"name": "a"}, nodeSelector={"a": "1", "b": "2"}, securityContext={"runAsUser": 1, "fsGroup": 2}
        )
        patch = {
            "spec": {"nodeSelector": {"c": "3", "$patch": "replace"}, "securityContext": {"$patch": "delete"}}
        }
        result = smp(original, patch)
        assert result["spec"]["nodeSelector"] == {"c": "3"}
        assert result["spec"]["securityContext"] == {}
        assert smp(original, {"$patch": "delete"}) == {}
        assert smp(original, {"$patch": "replace", "kind": "Pod"}) == {"kind": "Pod"}

    @pytest.mark.parametrize(
        "patch",
        [
            {"spec": {"$patch": "explode"}},
            {"spec": {"containers": [{"name": "a", "$patch": "explode"}]}},
        ],
    )
    def test_unknown_directive(self, patch: Obj) -> None:
        with pytest.raises(PatchError) as e:
            smp(pod({"name": "a"}), patch)
        assert e.value.code == 400
        assert 'unknown patch type: "explode"' in str(e.value)

    def test_missing_merge_key(self) -> None:
        with pytest.raises(PatchError) as e:
            smp(pod({"name": "a"}), {"spec": {"containers": [{"image": "x"}]}})
        assert e.value.code == 400
        assert str(e.value) == 'map: {"image":"x"} does not contain declared merge key: name'
        with pytest.raises(PatchError):
            smp(pod({"name": "a"}), {"spec": {"containers": [{"$patch": "delete"}]}})

    def test_set_element_order_reorders(self) -> None:
        original = pod({"name": "a"}, {"name": "b"}, {"name": "c"})
        patch = {"spec": {"$setElementOrder/containers": [{"name": "c"}, {"name": "a"}, {"name": "b"}]}}
        assert names(smp(original, patch)["spec"]["containers"]) == ["c", "a", "b"]

    def test_set_element_order_keeps_server_only_elements_in_place(self) -> None:
        # An injected sidecar "s" that apply's patch does not name stays where it was.
        original = pod({"name": "a"}, {"name": "s"}, {"name": "b"})
        patch = {
            "spec": {
                "$setElementOrder/containers": [{"name": "a"}, {"name": "b"}, {"name": "c"}],
                "containers": [{"name": "c", "image": "z"}],
            }
        }
        assert names(smp(original, patch)["spec"]["containers"]) == ["a", "s", "b", "c"]

    def test_set_element_order_must_agree_with_patch_list(self) -> None:
        patch = {
            "spec": {
                "$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
                "containers": [{"name": "b"}, {"name": "a"}],
            }
        }
        with pytest.raises(PatchError) as e:
            smp(pod({"name": "a"}, {"name": "b"}), patch)
        assert "doesn't match $setElementOrder list" in str(e.value)
        for bad in ({"spec": {"$setElementOrder/containers": "x"}}, {"spec": {"$setElementOrder/": []}}):
            with pytest.raises(PatchError, match="invalid patch format of setElementOrder list"):
                smp(pod({"name": "a"}), bad)

    def test_retain_keys_on_deployment_strategy(self) -> None:
        deploy = {
            "spec": {
                "strategy": {
                    "type": "RollingUpdate",
                    "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
                }
            }
        }
        patch = {"spec": {"strategy": {"type": "Recreate", "$retainKeys": ["type"]}}}
        assert smp(deploy, patch, Deployment)["spec"]["strategy"] == {"type": "Recreate"}

    def test_retain_keys_on_volume_elements(self) -> None:
        original = pod(
            {"name": "a"},
            volumes=[{"name": "v", "emptyDir": {}}, {"name": "w", "secret": {"secretName": "s"}}],
        )
        patch = {
            "spec": {
                "volumes": [{"name": "v", "configMap": {"name": "cm"}, "$retainKeys": ["configMap", "name"]}]
            }
        }
        assert smp(original, patch)["spec"]["volumes"] == [
            {"name": "v", "configMap": {"name": "cm"}},
            {"name": "w", "secret": {"secretName": "s"}},
        ]

    def test_retain_keys_errors(self) -> None:
        original = {"spec": {"strategy": {"type": "Recreate"}}}
        with pytest.raises(PatchError) as e:
            smp(
                original,
                {
                    "spec": {
                        "strategy": {"type": "RollingUpdate", "rollingUpdate": {}, "$retainKeys": ["type"]}
                    }
                },
                Deployment,
            )
        assert e.value.code == 422
        assert str(e.value) == "patch content doesn't match retainKeys list"
        with pytest.raises(PatchError) as e:
            smp(original, {"spec": {"strategy": {"$retainKeys": "type"}}}, Deployment)
        assert e.value.code == 400
        assert str(e.value) == "invalid patch format of retainKeys"
        # null values (deletions) need not be listed
        ok = smp(
            original, {"spec": {"strategy": {"rollingUpdate": None, "$retainKeys": ["type"]}}}, Deployment
        )
        assert ok["spec"]["strategy"] == {"type": "Recreate"}

    def test_finalizers_merge_as_an_ordered_set(self) -> None:
        original = {"metadata": {"finalizers": ["a", "b"]}}
        result = smp(original, {"metadata": {"finalizers": ["b", "c"]}})
        assert result["metadata"]["finalizers"] == ["a", "b", "c"]
        result = smp(
            original, {"metadata": {"finalizers": ["c"], "$setElementOrder/finalizers": ["a", "b", "c"]}}
        )
        assert result["metadata"]["finalizers"] == ["a", "b", "c"]

    def test_delete_from_primitive_list(self) -> None:
        original = {"metadata": {"finalizers": ["a", "b", "c"]}}
        patch = {"metadata": {"$deleteFromPrimitiveList/finalizers": ["b", "zz"]}}
        assert smp(original, patch)["metadata"]["finalizers"] == ["a", "c"]
        assert smp({"metadata": {}}, patch) == {"metadata": {}}
        with pytest.raises(PatchError, match="invalid patch format of primitive list"):
            smp(original, {"metadata": {"$deleteFromPrimitiveList/finalizers": "b"}})

    def test_list_type_errors(self) -> None:
        with pytest.raises(PatchError, match="lists of lists are not supported"):
            smp({"metadata": {"finalizers": ["a"]}}, {"metadata": {"finalizers": [["b"]]}})
        with pytest.raises(PatchError, match="list element types are not identical"):
            smp({"metadata": {"finalizers": ["a"]}}, {"metadata": {"finalizers": [{"x": 1}]}})

    def test_non_object_patch(self) -> None:
        with pytest.raises(PatchError) as e:
            apply_strategic_merge_patch({}, [{"op": "add"}], Pod)
        assert e.value.code == 400 and str(e.value) == "invalid JSON document"

    def test_new_values_are_cleaned_of_directives_and_nulls(self) -> None:
        patch = {
            "spec": {
                "containers": [
                    {
                        "name": "a",
                        "env": [{"name": "X", "$patch": "delete"}, {"name": "Y", "value": "1"}],
                        "resources": {"limits": {"cpu": "1", "memory": None}},
                    }
                ],
                "strategyLike": {"$retainKeys": ["k"], "k": 1},
            }
        }
        result = smp({"spec": {}}, patch)
        assert result["spec"]["containers"] == [
            {"name": "a", "env": [{"name": "Y", "value": "1"}], "resources": {"limits": {"cpu": "1"}}}
        ]
        assert result["spec"]["strategyLike"] == {"k": 1}

    def test_conditions_merge_by_type(self) -> None:
        original = {
            "status": {
                "conditions": [
                    {"type": "Ready", "status": "False", "reason": "ContainersNotReady"},
                    {"type": "PodScheduled", "status": "True"},
                ]
            }
        }
        patch = {"status": {"conditions": [{"type": "Ready", "status": "True", "reason": None}]}}
        assert smp(original, patch)["status"]["conditions"] == [
            {"type": "Ready", "status": "True"},
            {"type": "PodScheduled", "status": "True"},
        ]

    def test_rollout_restart_and_scale(self) -> None:
        deploy = _live_deployment()
        restarted = smp(
            deploy,
            {
                "spec": {
                    "template": {
                        "metadata": {
                            "annotations": {"kubectl.kubernetes.io/restartedAt": "2024-01-01T00:00:00Z"}
                        }
                    }
                }
            },
            Deployment,
        )
        template = restarted["spec"]["template"]
        assert template["metadata"]["annotations"] == {
            "kubectl.kubernetes.io/restartedAt": "2024-01-01T00:00:00Z"
        }
        assert template["metadata"]["labels"] == {"app": "web"}
        assert template["spec"] == deploy["spec"]["template"]["spec"]
        scaled = smp(deploy, {"spec": {"replicas": 5}}, Deployment)
        assert scaled["spec"]["replicas"] == 5
        assert {k: v for k, v in scaled["spec"].items() if k != "replicas"} == {
            k: v for k, v in deploy["spec"].items() if k != "replicas"
        }
        Deployment.model_validate(restarted)


# ---------------------------------------------------------------------------------------------
# Computing patches: two-way (kubectl edit) and three-way (kubectl apply)


def _live_deployment() -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [{"name": "web", "image": "nginx:1.25", "ports": [{"containerPort": 80}]}]
                },
            },
        },
    }


class TestTwoWay:
    def test_patch_shapes(self) -> None:
        original = {
            "metadata": {"labels": {"a": "1", "b": "2"}, "finalizers": ["x", "y"]},
            "spec": {"containers": [{"name": "a", "image": "1"}, {"name": "b", "image": "2"}]},
        }
        modified = {
            "metadata": {"labels": {"a": "1", "c": "3"}, "finalizers": ["y", "z"]},
            "spec": {"containers": [{"name": "b", "image": "3"}, {"name": "c", "image": "4"}]},
        }
        patch = two_way_merge_patch(original, modified, Pod)
        assert patch == {
            "metadata": {
                "labels": {"b": None, "c": "3"},
                "finalizers": ["z"],
                "$deleteFromPrimitiveList/finalizers": ["x"],
                "$setElementOrder/finalizers": ["y", "z"],
            },
            "spec": {
                "containers": [
                    {"name": "b", "image": "3"},
                    {"name": "c", "image": "4"},
                    {"name": "a", "$patch": "delete"},
                ],
                "$setElementOrder/containers": [{"name": "b"}, {"name": "c"}],
            },
        }
        assert smp(original, patch) == modified

    def test_identical_gives_empty_patch(self) -> None:
        deploy = _live_deployment()
        assert two_way_merge_patch(deploy, copy.deepcopy(deploy), Deployment) == {}

    def test_order_only_change(self) -> None:
        original = {"spec": {"containers": [{"name": "a"}, {"name": "b"}]}}
        modified = {"spec": {"containers": [{"name": "b"}, {"name": "a"}]}}
        patch = two_way_merge_patch(original, modified, Pod)
        assert patch == {"spec": {"$setElementOrder/containers": [{"name": "b"}, {"name": "a"}]}}
        assert smp(original, patch) == modified

    def test_retain_keys_emitted_for_union_types(self) -> None:
        original = {"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}}
        modified = {"spec": {"strategy": {"type": "Recreate"}}}
        patch = two_way_merge_patch(original, modified, Deployment)
        assert patch == {
            "spec": {"strategy": {"type": "Recreate", "rollingUpdate": None, "$retainKeys": ["type"]}}
        }
        assert smp(original, patch, Deployment) == modified

    @pytest.mark.parametrize("seed", range(300))
    def test_round_trip_property(self, seed: int) -> None:
        rng = random.Random(seed)
        original, modified = _random_deployment(rng), _random_deployment(rng)
        patch = two_way_merge_patch(original, modified, Deployment)
        assert smp(original, patch, Deployment) == modified, json.dumps(patch)
        assert two_way_merge_patch(original, copy.deepcopy(original), Deployment) == {}


def _random_volume(rng: random.Random, name: str) -> Obj:
    source = rng.choice(
        [{"emptyDir": {}}, {"configMap": {"name": "cm"}}, {"secret": {"secretName": rng.choice(["s", "t"])}}]
    )
    return {"name": name, **copy.deepcopy(source)}


def _random_container(rng: random.Random, name: str) -> Obj:
    c: Obj = {"name": name, "image": rng.choice(["nginx:1.25", "nginx:1.26", "busybox"])}
    if rng.random() < 0.5:
        c["ports"] = [{"containerPort": p} for p in rng.sample([80, 443, 8080, 9090], rng.randint(1, 3))]
        if rng.random() < 0.5:
            c["ports"][0]["name"] = rng.choice(["http", "web"])
    if rng.random() < 0.6:
        c["env"] = [
            {"name": n, "value": rng.choice(["1", "2"])}
            for n in rng.sample(["A", "B", "C", "D"], rng.randint(0, 4))
        ]
    if rng.random() < 0.4:
        c["args"] = rng.sample(["--a", "--b", "--c"], rng.randint(1, 3))
    if rng.random() < 0.5:
        c["volumeMounts"] = [
            {"name": v, "mountPath": f"/mnt/{v}"}
            for v in rng.sample(["data", "cache", "cfg"], rng.randint(1, 3))
        ]
    if rng.random() < 0.3:
        c["resources"] = {"limits": {"cpu": rng.choice(["100m", "200m"])}}
        if rng.random() < 0.5:
            c["resources"]["requests"] = {"memory": "64Mi"}
    return c


def _random_deployment(rng: random.Random) -> Obj:
    """A manifest a user might apply; the pools are small so that two draws overlap a lot."""
    labels = {k: rng.choice(["a", "b"]) for k in rng.sample(["app", "tier", "team"], rng.randint(1, 3))}
    annotations = {"kubectl.kubernetes.io/last-applied-configuration": "{}"}
    if rng.random() < 0.5:
        annotations[rng.choice(["note", "owner"])] = rng.choice(["x", "y"])
    metadata: Obj = {"name": "web", "labels": labels, "annotations": annotations}
    if rng.random() < 0.4:
        metadata["finalizers"] = rng.sample(["a.io/x", "b.io/y", "c.io/z"], rng.randint(1, 3))
    pod_spec: Obj = {
        "containers": [
            _random_container(rng, n)
            for n in rng.sample(["web", "sidecar", "proxy", "log"], rng.randint(1, 3))
        ]
    }
    if rng.random() < 0.6:
        pod_spec["volumes"] = [
            _random_volume(rng, n) for n in rng.sample(["data", "cache", "cfg"], rng.randint(0, 3))
        ]
    if rng.random() < 0.3:
        pod_spec["tolerations"] = [{"key": rng.choice(["k1", "k2"]), "operator": "Exists"}]
    if rng.random() < 0.3:
        pod_spec["nodeSelector"] = {"disk": rng.choice(["ssd", "hdd"])}
    spec: Obj = {
        "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}}, "spec": pod_spec},
    }
    if rng.random() < 0.7:
        spec["replicas"] = rng.randint(1, 4)
    if rng.random() < 0.4:
        spec["strategy"] = rng.choice(
            [
                {"type": "Recreate"},
                {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": rng.choice([1, "25%"])}},
            ]
        )
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": metadata, "spec": spec}


def _with_server_fields(manifest: Obj, existing: Obj | None = None) -> Obj:
    """The live object for a manifest: what the API server and controllers fill in.

    Per-element defaults (container and port fields) only go to elements that already existed in
    ``existing`` (default: the manifest itself): a patch that adds an element carries none, and the
    server would only default them after the patch is applied.
    """
    live = copy.deepcopy(manifest)
    md = live["metadata"]
    md.update(
        {
            "namespace": "default",
            "uid": "u-1",
            "resourceVersion": "42",
            "generation": 3,
            "creationTimestamp": "2024-01-01T00:00:00Z",
        }
    )
    md.setdefault("annotations", {})["deployment.kubernetes.io/revision"] = "3"
    spec = live["spec"]
    spec.update({"revisionHistoryLimit": 10, "progressDeadlineSeconds": 600})
    pod_spec = spec["template"]["spec"]
    pod_spec.update(
        {
            "restartPolicy": "Always",
            "dnsPolicy": "ClusterFirst",
            "schedulerName": "default-scheduler",
            "securityContext": {},
        }
    )
    before = {c["name"]: c for c in (existing or manifest)["spec"]["template"]["spec"]["containers"]}
    for c in pod_spec["containers"]:
        if c["name"] not in before:
            continue
        c.update(
            {
                "imagePullPolicy": "IfNotPresent",
                "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "File",
            }
        )
        old_ports = {p["containerPort"] for p in before[c["name"]].get("ports", [])}
        for p in c.get("ports", []):
            if p["containerPort"] in old_ports:
                p.setdefault("protocol", "TCP")
    live["status"] = {
        "observedGeneration": 3,
        "replicas": 2,
        "conditions": [{"type": "Available", "status": "True"}, {"type": "Progressing", "status": "True"}],
    }
    return live


class TestThreeWay:
    def test_deployment_apply_round_trip(self) -> None:
        last_applied = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"app": "web", "tier": "fe"}},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {
                        "containers": [
                            {
                                "name": "web",
                                "image": "nginx:1.25",
                                "ports": [{"containerPort": 80}, {"containerPort": 443}],
                                "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                                "volumeMounts": [{"name": "cache", "mountPath": "/cache"}],
                            },
                            {"name": "logger", "image": "busybox", "args": ["tail", "-f"]},
                        ],
                        "volumes": [{"name": "cache", "emptyDir": {}}],
                    },
                },
            },
        }
        live = _with_server_fields(last_applied)
        # Another writer (kubectl scale, a mutating webhook) touched the live object too.
        live["spec"]["replicas"] = 7
        live["metadata"]["labels"]["added-by"] = "someone-else"
        live["spec"]["template"]["spec"]["containers"].insert(1, {"name": "injected", "image": "proxy"})
        live["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] = "25%"
        live["spec"]["template"]["metadata"]["annotations"] = {"kubectl.kubernetes.io/restartedAt": "t"}

        new = copy.deepcopy(last_applied)
        new["metadata"]["labels"].pop("tier")
        new["spec"].pop("replicas")  # hand replicas over to an autoscaler
        new["spec"]["strategy"] = {"type": "Recreate"}
        web = new["spec"]["template"]["spec"]["containers"][0]
        web["image"] = "nginx:1.26"
        web["ports"] = [{"containerPort": 8080}, {"containerPort": 80, "name": "http"}]
        web["env"] = [{"name": "B", "value": "3"}, {"name": "C", "value": "4"}]
        web["volumeMounts"] = [{"name": "cache", "mountPath": "/cache", "readOnly": True}]
        new["spec"]["template"]["spec"]["containers"] = [{"name": "metrics", "image": "exporter"}, web]
        new["spec"]["template"]["spec"]["volumes"] = [{"name": "cache", "configMap": {"name": "cm"}}]

        before = copy.deepcopy((last_applied, new, live))
        patch = create_three_way_merge_patch(last_applied, new, live, Deployment)
        assert (last_applied, new, live) == before
        pod_patch = patch["spec"]["template"]["spec"]
        assert patch["metadata"] == {"labels": {"tier": None}}
        assert patch["spec"]["replicas"] is None
        assert patch["spec"]["strategy"] == {
            "type": "Recreate",
            "rollingUpdate": None,
            "$retainKeys": ["type"],
        }
        assert pod_patch["$setElementOrder/containers"] == [{"name": "metrics"}, {"name": "web"}]
        assert {"name": "logger", "$patch": "delete"} in pod_patch["containers"]
        assert "injected" not in json.dumps(patch)
        assert pod_patch["volumes"] == [
            {
                "name": "cache",
                "configMap": {"name": "cm"},
                "emptyDir": None,
                "$retainKeys": ["configMap", "name"],
            }
        ]

        result = smp(live, patch, Deployment)
        assert result["metadata"]["labels"] == {"app": "web", "added-by": "someone-else"}
        assert "replicas" not in result["spec"]
        assert result["spec"]["strategy"] == {"type": "Recreate"}
        assert result["spec"]["revisionHistoryLimit"] == 10
        assert result["spec"]["template"]["metadata"]["annotations"] == {
            "kubectl.kubernetes.io/restartedAt": "t"
        }
        assert result["status"] == live["status"]
        assert result["metadata"]["uid"] == "u-1"
        pod_spec = result["spec"]["template"]["spec"]
        # the injected container keeps its place after "web", as on a real cluster
        assert names(pod_spec["containers"]) == ["metrics", "web", "injected"]
        web_live = pod_spec["containers"][1]
        assert web_live["image"] == "nginx:1.26"
        assert web_live["imagePullPolicy"] == "IfNotPresent"  # server default kept
        assert web_live["ports"] == [
            {"containerPort": 8080},
            {"containerPort": 80, "protocol": "TCP", "name": "http"},
        ]
        assert web_live["env"] == [{"name": "B", "value": "3"}, {"name": "C", "value": "4"}]
        assert web_live["volumeMounts"] == [{"name": "cache", "mountPath": "/cache", "readOnly": True}]
        assert pod_spec["volumes"] == [{"name": "cache", "configMap": {"name": "cm"}}]
        assert pod_spec["dnsPolicy"] == "ClusterFirst"
        Deployment.model_validate(result)

        # Applying the same manifest again changes nothing. As in Kubernetes, the extra live
        # container still makes the lists differ in length, so only an order directive is sent.
        again = create_three_way_merge_patch(new, new, result, Deployment)
        assert again == {
            "spec": {
                "template": {"spec": {"$setElementOrder/containers": [{"name": "metrics"}, {"name": "web"}]}}
            }
        }
        assert smp(result, again, Deployment) == result

    def test_first_apply_without_last_applied_deletes_nothing(self) -> None:
        live = _with_server_fields(_live_deployment())
        manifest = _live_deployment()
        manifest["metadata"]["labels"] = {"app": "web", "new": "x"}
        patch = create_three_way_merge_patch(None, manifest, live, Deployment)
        assert patch == {"metadata": {"labels": {"new": "x"}}}

    def test_finalizers_and_primitive_deletions(self) -> None:
        original = {"metadata": {"finalizers": ["a", "b"]}}
        modified = {"metadata": {"finalizers": ["b", "c"]}}
        current = {"metadata": {"finalizers": ["a", "server", "b"]}}
        patch = create_three_way_merge_patch(original, modified, current, Pod)
        assert patch["metadata"]["$deleteFromPrimitiveList/finalizers"] == ["a"]
        assert patch["metadata"]["finalizers"] == ["c"]
        assert smp(current, patch)["metadata"]["finalizers"] == ["server", "b", "c"]

    def test_field_removed_from_live_by_someone_else(self) -> None:
        original = {
            "spec": {
                "containers": [
                    {"name": "a", "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}]}
                ]
            }
        }
        modified = {"spec": {"containers": [{"name": "a", "env": [{"name": "Y", "value": "2"}]}]}}
        current = {"spec": {"containers": []}}
        patch = create_three_way_merge_patch(original, modified, current, Pod)
        assert smp(current, patch) == modified

    @pytest.mark.parametrize("seed", range(300))
    def test_apply_property(self, seed: int) -> None:
        """Applying a new manifest over the live object of an old one yields the new manifest plus
        everything only the server set."""
        rng = random.Random(1000 + seed)
        old, new = _random_deployment(rng), _random_deployment(rng)
        live = _with_server_fields(old)
        patch = create_three_way_merge_patch(old, new, live, Deployment)
        result = smp(live, patch, Deployment)
        expected = _with_server_fields(new, existing=old)
        assert result == expected, json.dumps(patch, indent=1)
        # and the second apply is a no-op
        assert create_three_way_merge_patch(new, new, result, Deployment) == {}
