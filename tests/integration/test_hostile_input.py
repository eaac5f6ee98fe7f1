"""Hostile input: every limit answers a Kubernetes Status (or, below HTTP, a clean 400) with the
right code, the server stays up, and nothing is stored."""

from __future__ import annotations

import asyncio
import gzip
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from apimachinery import safeload
from controlplane.apiserver.body import HTTP_LIMITS, MAX_BODY_BYTES
from tests.fixtures.apiserver import RawApi, Reply

pytestmark = pytest.mark.integration


@pytest_asyncio.fixture(loop_scope="session")
async def api(api_bare: RawApi) -> RawApi:
    return api_bare


def cm(name: str, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


def laughs(levels: int = 9) -> str:
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]")
    return "\n".join(lines)


def name() -> str:
    return f"h-{uuid.uuid4().hex[:8]}"


def assert_status(r: Reply, code: int, reason: str, *message_parts: str) -> None:
    assert r.status == code, (r.status, r.body)
    assert isinstance(r.body, dict) and r.body["kind"] == "Status", r.body
    assert r.body["code"] == code and r.body["reason"] == reason, r.body
    for part in message_parts:
        assert part in r.body["message"], r.body["message"]


async def assert_absent(api: RawApi, namespace: str, obj_name: str) -> None:
    assert (await api.get(f"/api/v1/namespaces/{namespace}/configmaps/{obj_name}")).status == 404


async def test_oversized_body_with_and_without_content_length(api: RawApi, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    n = name()
    big = json.dumps(cm(n, blob="x" * MAX_BODY_BYTES)).encode()
    assert_status(await api.request("POST", path, data=big, content_type="application/json"),
                  413, "RequestEntityTooLarge", "limit is 3145728 bytes")

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(0, len(big), 256 * 1024):
            yield big[i:i + 256 * 1024]

    # An async generator body goes out chunked: no Content-Length to refuse up front.
    r = await api.request("POST", path, data=chunks(), content_type="application/json")  # type: ignore[arg-type]
    assert_status(r, 413, "RequestEntityTooLarge")
    await assert_absent(api, namespace, n)


async def test_compressed_bodies_are_refused(api: RawApi, namespace: str) -> None:
    n = name()
    r = await api.request("POST", f"/api/v1/namespaces/{namespace}/configmaps",
                          data=gzip.compress(json.dumps(cm(n)).encode()), content_type="application/json",
                          headers={"Content-Encoding": "gzip"})
    assert_status(r, 415, "UnsupportedMediaType", 'Content-Encoding "gzip"')
    await assert_absent(api, namespace, n)


async def test_oversized_header_and_request_line_answer_400(api: RawApi, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    r = await api.get(path, headers={"X-Padding": "x" * (HTTP_LIMITS["max_field_size"] + 1)})
    assert r.status == 400
    r = await api.get(path, params={"labelSelector": "a=" + "b" * HTTP_LIMITS["max_line_size"]})
    assert r.status == 400
    many = {f"X-H{i}": "v" for i in range(HTTP_LIMITS["max_headers"] + 1)}
    assert (await api.get(path, headers=many)).status == 400
    # Just under the limits is fine, and the server is still serving.
    r = await api.get(path, headers={"X-Padding": "x" * 8000})
    assert r.status == 200 and r.body["kind"] == "ConfigMapList"


async def test_deep_nesting_is_refused(api: RawApi, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    for depth in (safeload.MAX_DEPTH + 1, 100_000):
        n = name()
        body = json.dumps(cm(n))[:-1] + ', "x": ' + "[" * depth + "]" * depth + "}"
        r = await api.request("POST", path, data=body, content_type="application/json")
        assert_status(r, 400, "BadRequest", "nested too deeply: the limit is 100 levels")
        await assert_absent(api, namespace, n)


async def test_yaml_bombs_are_refused_in_bodies_and_apply_patches(api: RawApi, namespace: str) -> None:
    n = name()
    doc = f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {n}\nbomb:\n" + "\n".join(
        "  " + line for line in laughs().splitlines())
    r = await api.request("POST", f"/api/v1/namespaces/{namespace}/configmaps", data=doc,
                          content_type="application/yaml")
    assert_status(r, 400, "BadRequest", "could not be decoded as YAML", "expands too much through YAML aliases")
    r = await api.request("PATCH", f"/api/v1/namespaces/{namespace}/configmaps/{n}", data=doc,
                          content_type="application/apply-patch+yaml", params={"fieldManager": "fuzz"})
    assert_status(r, 400, "BadRequest", "aliases")
    r = await api.request("POST", f"/api/v1/namespaces/{namespace}/configmaps", data="a: &a [*a]",
                          content_type="application/yaml")
    assert_status(r, 400, "BadRequest", "refers to itself")
    await assert_absent(api, namespace, n)


async def test_duplicate_fields_by_field_validation(api: RawApi, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    n = name()

    def body(value: str) -> str:
        meta = json.dumps({"name": n})
        return f'{{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {meta}, "data": {{"k": "1", "k": "{value}"}}}}'

    r = await api.request("POST", path, data=body("2"), content_type="application/json",
                          params={"fieldValidation": "Strict"})
    assert_status(r, 400, "BadRequest", 'strict decoding error: duplicate field "k"')
    await assert_absent(api, namespace, n)

    r = await api.request("POST", path, data=body("2"), content_type="application/json")  # Warn is the default
    assert r.status == 201 and r.body["data"] == {"k": "2"}  # the last value wins, as in Kubernetes
    assert '299 - "duplicate field \\"k\\""' in r.headers.getall("Warning", [])

    r = await api.request("PUT", f"{path}/{n}", data=body("3"), content_type="application/json",
                          params={"fieldValidation": "Ignore"})
    assert r.status == 200 and r.body["data"] == {"k": "3"} and "Warning" not in r.headers

    yaml_body = f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {n}\ndata:\n  k: '1'\n  k: '4'\n"
    r = await api.request("PUT", f"{path}/{n}", data=yaml_body, content_type="application/yaml",
                          params={"fieldValidation": "Strict"})
    assert_status(r, 400, "BadRequest", 'strict decoding error: duplicate field "k"')
    assert (await api.get(f"{path}/{n}")).body["data"] == {"k": "3"}


async def test_non_json_values_and_bad_encodings_are_refused(api: RawApi, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    n = name()
    head = '{"apiVersion": "v1", "kind": "ConfigMap", "metadata": ' + json.dumps({"name": n}) + ", "
    for tail, message in [
        ('"x": NaN}', "NaN is not valid JSON"),
        ('"x": Infinity}', "Infinity is not valid JSON"),
        ('"data": {"k": "\\ud800"}}', "lone surrogate"),
    ]:
        r = await api.request("POST", path, data=head + tail, content_type="application/json")
        assert_status(r, 400, "BadRequest", message)
    r = await api.request("POST", path, data=head.encode() + b'"data": {"k": "\xff"}}',
                          content_type="application/json")
    assert_status(r, 400, "BadRequest", "invalid UTF-8")
    r = await api.request("POST", path, data=f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {n}}}\nx: !!binary aGk=",
                          content_type="application/yaml")
    assert_status(r, 400, "BadRequest", "binary has no JSON form")
    await assert_absent(api, namespace, n)


async def test_json_patch_cannot_grow_an_object_without_bound(api: RawApi, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    n = name()
    assert (await api.post(path, cm(n, seed="x" * 1000))).status == 201
    # Each copy of /x into itself doubles it: 25 doublings of 1 kB would be 32 GB.
    doubling: list[dict[str, Any]] = [{"op": "add", "path": "/x", "value": {"seed": "y" * 1000}}]
    doubling += [{"op": "copy", "from": "/x", "path": f"/x/c{i}"} for i in range(25)]
    r = await api.patch(f"{path}/{n}", doubling, "application/json-patch+json")
    assert_status(r, 422, "Invalid", "copy operations of this patch would add more than 3145728 bytes")
    # Small operations can still nest a value past the depth any body may have.
    chain: list[dict[str, Any]] = [{"op": "add", "path": "/x", "value": {}}]
    pointer = "/x"
    for _ in range(safeload.MAX_DEPTH + 5):
        chain.append({"op": "add", "path": pointer + "/a", "value": {}})
        pointer += "/a"
    r = await api.patch(f"{path}/{n}", chain, "application/json-patch+json")
    assert_status(r, 422, "Invalid", "nested too deeply")
    r = await api.get(f"{path}/{n}")
    assert r.body["data"] == {"seed": "x" * 1000} and "x" not in r.body


async def raw_request(api: RawApi, method: str, target: str) -> tuple[int, Any]:
    """One request written by hand: HTTP clients normalise "/a/../b" and "%2E%2E" away before
    sending, hostile ones do not."""
    reader, writer = await asyncio.open_connection(api.cp.host, api.cp.port, ssl=api.cp.ssl_context(),
                                                   server_hostname=api.cp.host)
    try:
        writer.write((f"{method} {target} HTTP/1.1\r\nHost: {api.cp.host}\r\n"
                      f"Authorization: Bearer {api.token}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").encode())
        await writer.drain()
        raw = await reader.read()
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body) if body.startswith(b"{") else body


@pytest.mark.parametrize(
    ("suffix", "message"),
    [("a%2Fb", "name may not contain '/'"), ("..%2F..%2Fsecrets", "name may not contain '/'"),
     ("%2E%2E", "name may not be '..'"), ("..", "name may not be '..'"), ("50%25", "name may not contain '%'")],
)
async def test_traversing_names_in_paths(api: RawApi, namespace: str, suffix: str, message: str) -> None:
    for method in ("GET", "PUT", "PATCH", "DELETE"):
        status, body = await raw_request(api, method, f"/api/v1/namespaces/{namespace}/configmaps/{suffix}")
        assert status == 400 and body["reason"] == "BadRequest" and body["message"] == message, body
    status, body = await raw_request(api, "GET", f"/api/v1/namespaces/..%2F{namespace}/configmaps")
    assert status == 400 and body["message"] == "namespace may not contain '/'"
    status, body = await raw_request(api, "GET", "/api/v1/namespaces/../configmaps/x")
    assert status == 400 and body["message"] == "namespace may not be '..'"


@pytest.mark.parametrize("bad", ["a/b", "..", ".", "50%"])
async def test_traversing_names_in_bodies(api: RawApi, namespace: str, bad: str) -> None:
    r = await api.post(f"/api/v1/namespaces/{namespace}/configmaps", cm(bad))
    assert_status(r, 422, "Invalid")
    assert any(c["field"] == "metadata.name" for c in r.body["details"]["causes"])
    r = await api.post("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": bad}})
    assert_status(r, 422, "Invalid")
    listed = await api.get(f"/api/v1/namespaces/{namespace}/configmaps")
    assert all(i["metadata"]["name"] != bad for i in listed.body["items"])


async def test_numbers_past_int64_are_refused_and_huge_grace_periods_do_not_overflow(api: RawApi, namespace: str) -> None:
    int64_max = 2**63 - 1
    r = await api.get(f"/api/v1/namespaces/{namespace}/configmaps", params={"limit": str(int64_max + 1)})
    assert_status(r, 400, "BadRequest", 'invalid value for limit: "9223372036854775808" is out of range')
    assert (await api.get(f"/api/v1/namespaces/{namespace}/configmaps", params={"limit": str(int64_max)})).status == 200
    pods = f"/api/v1/namespaces/{namespace}/pods"
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
           "spec": {"nodeName": "nowhere", "containers": [{"name": "c", "image": "busybox"}]}}
    r = await api.request("POST", pods, data=json.dumps(pod)[:-2] + ', "activeDeadlineSeconds": 1' + "0" * 30 + "}}",
                          content_type="application/json")
    assert_status(r, 400, "BadRequest", "out of the range of a 64-bit integer")
    assert (await api.post(pods, pod)).status == 201
    # A grace period past the year 9999: the pod waits for its node "forever", no overflow.
    r = await api.delete(f"{pods}/p", params={"gracePeriodSeconds": str(int64_max)})
    assert r.status == 202 and r.body["metadata"]["deletionTimestamp"] == "9999-12-31T23:59:59Z"
    r = await api.delete(f"{pods}/p", params={"gracePeriodSeconds": "0"})
    assert r.status == 200


async def test_int32_fields_refuse_larger_numbers(api: RawApi, namespace: str) -> None:
    """replicas is an int32: 2**40 replicas must be refused, not stored for a controller to chase."""
    path = f"/apis/apps/v1/namespaces/{namespace}/deployments"
    labels = {"app": "huge"}
    body = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "huge"},
            "spec": {"replicas": 2**40, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}
    r = await api.post(path, body)
    assert_status(r, 400, "BadRequest", "less than or equal to 2147483647")
    assert (await api.get(f"{path}/huge")).status == 404
    body["spec"]["replicas"] = 0
    assert (await api.post(path, body)).status == 201
    r = await api.patch(f"{path}/huge/scale", {"spec": {"replicas": 2**31}}, "application/merge-patch+json")
    assert r.status in (400, 422), r.body
    assert (await api.get(f"{path}/huge")).body["spec"]["replicas"] == 0
    assert (await api.delete(f"{path}/huge")).status == 200
