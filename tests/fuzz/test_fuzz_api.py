"""Schemathesis against a real control plane, driven by the OpenAPI v3 documents it serves.

The server's per-group documents (``/openapi/v3/api/v1``, ``/openapi/v3/apis/apps/v1``, ...) are
merged into one, and every operation in it gets generated requests, valid and invalid (positive
and negative generation), sent with the admin token over HTTPS with the cluster's CA. The
property: no response is a 5xx. The control plane is this module's own, because generated
requests delete whatever they hit; at the end its log must hold no internal error either.

Examples per operation: ``KL_FUZZ_API_EXAMPLES``, else ``KL_FUZZ_EXAMPLES / 40`` (the suite's
default gives a few hundred requests in all; schemathesis adds its explicit examples).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode

from tests.fixtures.apiserver import ControlPlaneProcess
from tests.fixtures.protobuf import envelope
from tests.fuzz.strategies import COUNTS, EXAMPLES, FUZZ

# A file to log every request to (status, duration, method, URL), for looking into a run.
TRACE = os.environ.get("KL_FUZZ_TRACE")
# Schemathesis' coverage phase sends its own boundary and wrong-type cases for every parameter
# (many per operation, whatever max_examples says): on for the big run, off for the suite.
COVERAGE = os.environ.get("KL_FUZZ_COVERAGE", "0") == "1"
API_EXAMPLES = int(os.environ.get("KL_FUZZ_API_EXAMPLES", str(max(1, EXAMPLES // 40))))


@pytest.fixture(scope="module")
def fuzz_control_plane() -> Iterator[ControlPlaneProcess]:
    tmp = Path(tempfile.mkdtemp(prefix="kl-fuzz-"))
    cp = ControlPlaneProcess(tmp)
    try:
        cp.start()
        yield cp
    finally:
        cp.stop()
        shutil.rmtree(tmp, ignore_errors=True)


class CountingSession(requests.Session):
    """Counts every request schemathesis sends, for the run's report."""

    def request(self, method: str, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        COUNTS["api.requests"] += 1
        kwargs.setdefault("timeout", 60)
        started = time.monotonic()
        response = super().request(method, url, *args, **kwargs)
        COUNTS[f"api.status.{response.status_code}"] += 1
        if TRACE:
            with open(TRACE, "a") as f:
                f.write(f"{response.status_code} {time.monotonic() - started:.3f}s {method!s} {str(url)[:200]}\n")
        return response


@pytest.fixture(scope="module")
def http(fuzz_control_plane: ControlPlaneProcess) -> Iterator[requests.Session]:
    with CountingSession() as s:
        s.trust_env = False  # our CA, not a bundle from the environment; no proxies
        s.verify = str(fuzz_control_plane.ca_file)
        s.headers["Authorization"] = f"Bearer {fuzz_control_plane.token}"
        yield s


def merged_document(http: requests.Session, base_url: str) -> dict[str, Any]:
    """One OpenAPI document from the server's per-group-version documents."""
    index = http.get(f"{base_url}/openapi/v3").json()
    merged: dict[str, Any] = {"openapi": "3.0.0", "info": {"title": "kube-lite", "version": "v1"},
                              "paths": {}, "components": {"schemas": {}}}
    for entry in index["paths"].values():
        doc = http.get(base_url + entry["serverRelativeURL"]).json()
        merged["paths"].update(doc["paths"])
        merged["components"]["schemas"].update(doc.get("components", {}).get("schemas", {}))
    return merged


@pytest.fixture(scope="module")
def api_schema(fuzz_control_plane: ControlPlaneProcess, http: requests.Session) -> Any:
    schema = schemathesis.openapi.from_dict(merged_document(http, fuzz_control_plane.url))
    schema.config.update(base_url=fuzz_control_plane.url, tls_verify=str(fuzz_control_plane.ca_file))
    schema.config.generation.update(
        modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], max_examples=API_EXAMPLES,
    )
    schema.config.phases.coverage.enabled = COVERAGE
    return schema


pytestmark = pytest.mark.integration


@schemathesis.check
def no_server_error(ctx: Any, response: Any, case: Any) -> bool | None:
    """``not_a_server_error``, but for the one 5xx Kubernetes answers by design: 504 Timeout
    "Too large resource version" for a list from a resourceVersion etcd has not reached yet
    (clients wait and retry). Anything else at 500 or above fails."""
    if response.status_code == 504 and "Too large resource version" in response.text:
        COUNTS["api.of-which.expected-504"] += 1
        return None
    return not_a_server_error(ctx, response, case)

schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(FUZZ, max_examples=API_EXAMPLES)
def test_no_server_errors(case: Any, http: requests.Session) -> None:
    # A watch would stream until its timeout: keep generated watches short.
    if case.query and "watch" in case.query:
        case.query["timeoutSeconds"] = 1
    # Random namespaces and names stop most requests at the path (400/404). For about half of
    # the cases (chosen from the generated data, so hypothesis can replay them) the request goes
    # to an existing namespace and a name a POST may have created, to reach the handlers behind.
    params = case.path_parameters or {}
    if "namespace" in params and len(str(params["namespace"])) % 2 == 0:
        params["namespace"] = "default"
    if "name" in params and len(str(params["name"])) % 2 == 0:
        params["name"] = "fuzz"
    case.call_and_validate(session=http, checks=[no_server_error], excluded_checks=[])


_BODY_PATHS = st.sampled_from([
    ("POST", "/api/v1/namespaces/default/configmaps"),
    ("PUT", "/api/v1/namespaces/default/configmaps/fuzz"),
    ("PATCH", "/api/v1/namespaces/default/configmaps/fuzz"),
    ("POST", "/apis/apps/v1/namespaces/default/deployments"),
    ("PATCH", "/apis/apps/v1/namespaces/default/deployments/fuzz"),
    ("DELETE", "/api/v1/namespaces/default/configmaps/fuzz"),
    ("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"),
    ("POST", "/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings"),
])
_CONTENT_TYPES = st.sampled_from([
    "application/json", "application/yaml", "application/merge-patch+json", "application/json-patch+json",
    "application/strategic-merge-patch+json", "application/apply-patch+yaml", "text/plain", "",
    "application/vnd.kubernetes.protobuf",
])
_SEED_BODIES = st.sampled_from([
    b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"fuzz"},"data":{"a":"b"}}',
    b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: fuzz\ndata: {a: b}\n",
    b'[{"op":"add","path":"/data/x","value":"y"}]', b'{"data":{"a":null}}', b"{}", b"[]", b"null",
])


@st.composite
def protobuf_envelopes(draw: st.DrawFn) -> bytes:
    """k8s magic + runtime.Unknown with a real kind and random bytes for the object."""
    api_version, kind = draw(st.sampled_from([
        ("rbac.authorization.k8s.io/v1", "RoleBinding"),
        ("authorization.k8s.io/v1", "SelfSubjectAccessReview"),
        ("authentication.k8s.io/v1", "TokenRequest"), ("v1", "Pod"), ("apps/v1", "Deployment"),
        ("v1", "ConfigMap"), ("v1", "Service"), ("v1", "Secret"), ("v1", "Namespace"),
    ]))
    raw = draw(st.binary(max_size=100))
    return envelope(api_version, kind, raw)


@st.composite
def raw_bodies(draw: st.DrawFn) -> bytes:
    """A seed body with random bytes spliced in, or random bytes alone (sometimes behind the
    protobuf magic, so the protobuf decoder gets past its first check)."""
    if draw(st.booleans()):
        return draw(st.sampled_from([b"", b"k8s\x00"])) + draw(st.binary(max_size=200))
    seed = draw(_SEED_BODIES)
    at = draw(st.integers(0, len(seed)))
    return seed[:at] + draw(st.binary(max_size=8)) + seed[at + draw(st.integers(0, 4)):]


@FUZZ
@given(_BODY_PATHS, _CONTENT_TYPES, st.one_of(raw_bodies(), protobuf_envelopes()), st.sampled_from(["", "Strict", "Warn", "Ignore", "bogus"]))
def test_arbitrary_bodies_get_a_status(http: requests.Session, fuzz_control_plane: ControlPlaneProcess,
                                       target: tuple[str, str], content_type: str, body: bytes,
                                       field_validation: str) -> None:
    """The body decoder behind every write: arbitrary bytes in any media type get a Status < 500."""
    method, path = target
    COUNTS["api.of-which.raw-bodies"] += 1
    r = http.request(method, fuzz_control_plane.url + path, data=body,
                     headers={"Content-Type": content_type} if content_type else {},
                     params={"fieldValidation": field_validation, "fieldManager": "fuzz"})
    assert r.status_code < 500, r.text
    if r.status_code >= 400:
        assert r.json()["kind"] == "Status"


# Last in the module: after every request above.
def test_control_plane_logged_no_internal_error(fuzz_control_plane: ControlPlaneProcess) -> None:
    log = (fuzz_control_plane.data_dir / "controlplane.log").read_text(errors="replace")
    assert "internal error serving" not in log, fuzz_control_plane.log_tail(80)
    assert fuzz_control_plane.proc is not None and fuzz_control_plane.proc.poll() is None
