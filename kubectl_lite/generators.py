"""``create namespace|deployment|configmap|secret|service|serviceaccount|role|clusterrole|
rolebinding|clusterrolebinding NAME``: objects built
from flags, shaped as kubectl's generators build them (so ``--dry-run=client -o yaml`` prints
what kubectl would, and the server stores the same thing).

Each generator turns the words after ``create`` and the parsed flags into one object, or raises
``CliError`` with kubectl's message for bad input before anything is sent.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import secrets
import string
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from apimachinery.scheme import default_scheme
from kubectl_lite.resources import CliError, resolve_type

Obj = dict[str, Any]

_ENV_NAME = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*")
_DOCKER_HUB = "https://index.docker.io/v1/"


def add_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("generators (create KIND NAME)")
    g.add_argument("--image", action="append", default=[], help="deployment: an image to run (repeatable)")
    g.add_argument("--replicas", type=int, default=1, help="deployment: number of replicas")
    g.add_argument("--port", type=int, default=None, help="deployment: the first container's port")
    g.add_argument("--from-literal", action="append", default=[], metavar="KEY=VALUE",
                   help="configmap/secret generic: a key and its value (repeatable)")
    g.add_argument("--from-file", action="append", default=[], metavar="[KEY=]PATH",
                   help="configmap/secret generic: a file (key: its name) or every file of a directory")
    g.add_argument("--from-env-file", action="append", default=[], metavar="PATH",
                   help="configmap/secret generic: KEY=VALUE lines")
    g.add_argument("--type", default=None, help="secret generic: the secret's type")
    g.add_argument("--cert", default=None, help="secret tls: the PEM certificate file")
    g.add_argument("--key", default=None, help="secret tls: the PEM private key file")
    g.add_argument("--docker-server", default=_DOCKER_HUB, help="secret docker-registry: the registry")
    g.add_argument("--docker-username", default=None)
    g.add_argument("--docker-password", default=None)
    g.add_argument("--docker-email", default=None)
    g.add_argument("--tcp", action="append", default=[], metavar="PORT[:TARGET]", help="service: a port (repeatable)")
    g.add_argument("--clusterip", default=None, help="service clusterip: the cluster IP, or None for a headless one")
    g.add_argument("--node-port", type=int, default=0, help="service nodeport: the node port of every port")
    g.add_argument("--external-name", default=None, help="service externalname: the DNS name")
    g.add_argument("--verb", action="append", default=[], help="role/clusterrole: verbs (comma-separated, repeatable)")
    g.add_argument("--resource", action="append", default=[],
                   help="role/clusterrole: resources, as RESOURCE[.GROUP][/SUBRESOURCE] (comma-separated, repeatable)")
    g.add_argument("--resource-name", action="append", default=[], help="role/clusterrole: object names")
    g.add_argument("--non-resource-url", action="append", default=[], help="clusterrole: URL paths such as /healthz")
    g.add_argument("--aggregation-rule", default=None, metavar="KEY=VALUE,...",
                   help="clusterrole: aggregate the ClusterRoles with these labels")
    g.add_argument("--role", default=None, help="rolebinding: the Role to bind")
    g.add_argument("--clusterrole", default=None, help="rolebinding/clusterrolebinding: the ClusterRole to bind")
    g.add_argument("--user", action="append", default=[], help="rolebinding/clusterrolebinding: a user (repeatable)")
    g.add_argument("--group", action="append", default=[], help="rolebinding/clusterrolebinding: a group (repeatable)")
    g.add_argument("--serviceaccount", action="append", default=[], metavar="NAMESPACE:NAME",
                   help="rolebinding/clusterrolebinding: a service account (repeatable)")


def _one_name(words: list[str], usage: str) -> str:
    if len(words) != 1:
        raise CliError(f"exactly one NAME is required, got {len(words)}\nSee 'kubectl-lite create {usage} -h' for help")
    return words[0]


def _container_name(image: str) -> str:
    """kubectl's rule: the image's last path part without tag or digest; ``_`` and ``.`` are not
    allowed in a container name, so they become ``-`` and a random suffix keeps names apart."""
    name = image.rsplit("/", 1)[-1].split(":", 1)[0].split("@", 1)[0]
    if "_" in name or "." in name:
        suffix = "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(5))
        name = f"{name.replace('_', '-').replace('.', '-')}-{suffix}"
    return name


def deployment(words: list[str], args: argparse.Namespace) -> Obj:
    name = _one_name(words, "deployment")
    if not args.image:
        raise CliError('required flag(s) "image" not set')
    containers: list[Obj] = []
    for image in args.image:
        c: Obj = {"name": _container_name(image), "image": image}
        if args.after_dashes:
            c["command"] = list(args.after_dashes)
        c["resources"] = {}
        containers.append(c)
    if args.port is not None:
        containers[0]["ports"] = [{"containerPort": args.port}]
        # kubectl puts ports before resources; keep its order so -o yaml reads the same.
        containers[0]["resources"] = containers[0].pop("resources")
    labels = {"app": name}
    return {
        "kind": "Deployment", "apiVersion": "apps/v1", "metadata": {"name": name, "labels": labels},
        "spec": {"replicas": args.replicas, "selector": {"matchLabels": dict(labels)},
                 "template": {"metadata": {"labels": dict(labels)}, "spec": {"containers": containers}},
                 "strategy": {}},
        "status": {},
    }


def namespace(words: list[str], args: argparse.Namespace) -> Obj:
    return {"kind": "Namespace", "apiVersion": "v1", "metadata": {"name": _one_name(words, "namespace")},
            "spec": {}, "status": {}}


def serviceaccount(words: list[str], args: argparse.Namespace) -> Obj:
    return {"kind": "ServiceAccount", "apiVersion": "v1", "metadata": {"name": _one_name(words, "serviceaccount")}}


def _sources(args: argparse.Namespace) -> dict[str, bytes]:
    """Keys and raw values from --from-literal, --from-file and --from-env-file, in kubectl's
    order; a key given twice is an error, as in kubectl."""
    if args.from_env_file and (args.from_file or args.from_literal):
        raise CliError("from-env-file cannot be combined with from-file or from-literal")
    out: dict[str, bytes] = {}

    def add(key: str, value: bytes) -> None:
        if key in out:
            raise CliError(f"cannot add key {key}, another key by that name already exists")
        out[key] = value

    for path_spec in args.from_file:
        key, _, path = path_spec.rpartition("=") if "=" in path_spec else ("", "", path_spec)
        p = Path(path)
        if p.is_dir():
            if key:
                raise CliError("cannot give a key name for a directory path")
            for f in sorted(p.iterdir()):
                if f.is_file():
                    add(f.name, f.read_bytes())
            continue
        try:
            add(key or p.name, p.read_bytes())
        except OSError as e:
            raise CliError(f"error reading {path}: {e.strerror}") from None
    for literal in args.from_literal:
        key, eq, value = literal.partition("=")
        if not eq or not key:
            raise CliError(f"invalid literal source {literal}, expected key=value")
        add(key, value.encode())
    for path in args.from_env_file:
        try:
            lines = Path(path).read_text().splitlines()
        except OSError as e:
            raise CliError(f"error reading {path}: {e.strerror}") from None
        for line in lines:
            line = line.lstrip()
            if not line or line.startswith("#"):
                continue
            key, eq, value = line.partition("=")
            if not _ENV_NAME.fullmatch(key):
                raise CliError(f'"{key}" is not a valid key name: a valid environment variable name must consist '
                               "of alphabetic characters, digits, '_', '-', or '.', and must not start with a digit")
            # A bare KEY takes its value from this environment, as kubectl does.
            add(key, value.encode() if eq else os.environ.get(key, "").encode())
    return out


def configmap(words: list[str], args: argparse.Namespace) -> Obj:
    obj: Obj = {"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": _one_name(words, "configmap")}}
    for key, raw in _sources(args).items():
        try:
            obj.setdefault("data", {})[key] = raw.decode("utf-8")
        except UnicodeDecodeError:
            obj.setdefault("binaryData", {})[key] = base64.b64encode(raw).decode()
    return obj


def _secret(name: str, data: dict[str, bytes], type_: str | None) -> Obj:
    obj: Obj = {"kind": "Secret", "apiVersion": "v1", "metadata": {"name": name}}
    if data:
        obj["data"] = {k: base64.b64encode(v).decode() for k, v in data.items()}
    if type_:
        obj["type"] = type_
    return obj


def _read(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise CliError(f"error reading {path}: {e.strerror}") from None


def _check_key_pair(cert_pem: bytes, key_pem: bytes) -> None:
    """A TLS secret nobody can serve with is refused before it is sent, as kubectl does."""
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
    except ValueError as e:
        raise CliError(f"the certificate is not a PEM X.509 certificate: {e}") from None
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as e:
        raise CliError(f"the key is not an unencrypted PEM private key: {e}") from None
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    if cert.public_key().public_bytes(serialization.Encoding.DER, spki) != \
            key.public_key().public_bytes(serialization.Encoding.DER, spki):
        raise CliError("the private key does not match the certificate's public key")


def secret(words: list[str], args: argparse.Namespace) -> Obj:
    kind, rest = (words[0], words[1:]) if words else ("", [])
    if kind == "generic":
        return _secret(_one_name(rest, "secret generic"), _sources(args), args.type)
    if kind == "tls":
        name = _one_name(rest, "secret tls")
        if not args.cert or not args.key:
            raise CliError("key and cert must be specified")
        cert, key = _read(args.cert), _read(args.key)
        _check_key_pair(cert, key)
        return _secret(name, {"tls.crt": cert, "tls.key": key}, "kubernetes.io/tls")
    if kind == "docker-registry":
        name = _one_name(rest, "secret docker-registry")
        if not args.docker_username or not args.docker_password:
            raise CliError("missing --docker-username and --docker-password")
        auth: Obj = {"username": args.docker_username, "password": args.docker_password}
        if args.docker_email:
            auth["email"] = args.docker_email
        auth["auth"] = base64.b64encode(f"{args.docker_username}:{args.docker_password}".encode()).decode()
        config = json.dumps({"auths": {args.docker_server: auth}}, separators=(",", ":"))
        return _secret(name, {".dockerconfigjson": config.encode()}, "kubernetes.io/dockerconfigjson")
    raise CliError("create secret needs one of: generic, tls, docker-registry (e.g. create secret generic NAME)")


def _service_port(spec: str) -> Obj:
    port_text, _, target_text = spec.partition(":")
    try:
        port = int(port_text)
    except ValueError:
        raise CliError(f"invalid port {spec!r}: expected PORT or PORT:TARGET_PORT") from None
    target: int | str = port
    if target_text:
        target = int(target_text) if target_text.isdigit() else target_text
    return {"name": spec.replace(":", "-"), "protocol": "TCP", "port": port, "targetPort": target}


def service(words: list[str], args: argparse.Namespace) -> Obj:
    kinds = {"clusterip": "ClusterIP", "nodeport": "NodePort", "loadbalancer": "LoadBalancer",
             "externalname": "ExternalName"}
    kind, rest = (words[0], words[1:]) if words else ("", [])
    if kind not in kinds:
        raise CliError("create service needs one of: clusterip, nodeport, loadbalancer, externalname "
                       "(e.g. create service clusterip NAME --tcp=80:8080)")
    name = _one_name(rest, f"service {kind}")
    if kind == "externalname" and not args.external_name:
        raise CliError('required flag(s) "external-name" not set')
    headless = kind == "clusterip" and args.clusterip == "None"
    if kind in ("clusterip", "nodeport", "loadbalancer") and not args.tcp and not headless:
        raise CliError("at least one tcp port specifier must be provided")
    ports = [_service_port(t) for t in args.tcp]
    if kind == "nodeport" and args.node_port:
        for p in ports:
            p["nodePort"] = args.node_port
    spec: Obj = {}
    if ports:
        spec["ports"] = ports
    spec["selector"] = {"app": name}
    if kind == "clusterip" and args.clusterip:
        spec["clusterIP"] = args.clusterip
    spec["type"] = kinds[kind]
    if kind == "externalname":
        spec["externalName"] = args.external_name
    return {"kind": "Service", "apiVersion": "v1", "metadata": {"name": name, "labels": {"app": name}},
            "spec": spec, "status": {"loadBalancer": {}}}


_RBAC = "rbac.authorization.k8s.io"
_STANDARD_VERBS = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection", "use",
                   "bind", "impersonate", "escalate", "approve", "sign", "*")
_NON_RESOURCE_VERBS = ("get", "post", "put", "patch", "delete", "head", "options", "*")


def _split(values: list[str]) -> list[str]:
    """Comma-separated, repeatable flag values, in order, each once."""
    return list(dict.fromkeys(v for value in values for v in value.split(",") if v))


def _rules(args: argparse.Namespace, cluster: bool) -> list[Obj]:
    verbs = _split(args.verb)
    if not verbs:
        raise CliError("at least one verb must be specified")
    urls = _split(args.non_resource_url) if cluster else []
    if not args.resource and not urls:
        raise CliError("at least one resource must be specified")
    if urls:
        bad = [v for v in verbs if v not in _NON_RESOURCE_VERBS]
        if bad:
            raise CliError(f"invalid verb: '{bad[0]}' for nonResourceURL")
    for v in verbs:
        if v not in _STANDARD_VERBS and not urls:
            print(f"Warning: '{v}' is not a standard resource verb", file=sys.stderr)
    # One rule per API group, the groups in order, as kubectl writes them; the group of a
    # resource comes from the API's types (``deployments`` -> apps).
    by_group: dict[str, list[str]] = {}
    scheme = default_scheme()
    for spec in _split(args.resource):
        name, _, sub = spec.partition("/")
        rt = resolve_type(scheme, name)
        resources = by_group.setdefault(rt.group, [])
        resource = f"{rt.plural}/{sub}" if sub else rt.plural
        if resource not in resources:
            resources.append(resource)
    rules: list[Obj] = []
    for group in sorted(by_group):
        rule: Obj = {"verbs": verbs, "apiGroups": [group], "resources": by_group[group]}
        if args.resource_name:
            rule["resourceNames"] = _split(args.resource_name)
        rules.append(rule)
    if urls:
        rules.append({"verbs": verbs, "nonResourceURLs": urls})
    return rules


def role(words: list[str], args: argparse.Namespace) -> Obj:
    name = _one_name(words, "role")
    return {"kind": "Role", "apiVersion": f"{_RBAC}/v1", "metadata": {"name": name}, "rules": _rules(args, False)}


def clusterrole(words: list[str], args: argparse.Namespace) -> Obj:
    name = _one_name(words, "clusterrole")
    obj: Obj = {"kind": "ClusterRole", "apiVersion": f"{_RBAC}/v1", "metadata": {"name": name}}
    if args.aggregation_rule is None:
        obj["rules"] = _rules(args, True)
        return obj
    if args.verb or args.resource or args.non_resource_url:
        raise CliError("exactly one of --aggregation-rule or --verb/--resource/--non-resource-url must be specified")
    labels: dict[str, str] = {}
    for pair in _split([args.aggregation_rule]):
        key, eq, value = pair.partition("=")
        if not eq or not key:
            raise CliError(f"invalid aggregation rule {args.aggregation_rule!r}: expected KEY=VALUE[,KEY=VALUE]")
        labels[key] = value
    # The controller that would fill the rules in from the selected ClusterRoles; until then none.
    obj["rules"] = None
    obj["aggregationRule"] = {"clusterRoleSelectors": [{"matchLabels": labels}]}
    return obj


def _subjects(args: argparse.Namespace) -> list[Obj]:
    subjects: list[Obj] = [{"kind": "User", "apiGroup": _RBAC, "name": u} for u in args.user]
    subjects += [{"kind": "Group", "apiGroup": _RBAC, "name": g} for g in args.group]
    for sa in args.serviceaccount:
        ns, colon, name = sa.partition(":")
        if not colon or not ns or not name:
            raise CliError(f"serviceaccount must be <namespace>:<name>, got {sa!r}")
        subjects.append({"kind": "ServiceAccount", "name": name, "namespace": ns})
    return subjects


def rolebinding(words: list[str], args: argparse.Namespace) -> Obj:
    name = _one_name(words, "rolebinding")
    if bool(args.role) == bool(args.clusterrole):
        raise CliError("exactly one of clusterrole or role must be specified")
    ref = {"apiGroup": _RBAC, "kind": "Role" if args.role else "ClusterRole", "name": args.role or args.clusterrole}
    return {"kind": "RoleBinding", "apiVersion": f"{_RBAC}/v1", "metadata": {"name": name},
            "subjects": _subjects(args), "roleRef": ref}


def clusterrolebinding(words: list[str], args: argparse.Namespace) -> Obj:
    name = _one_name(words, "clusterrolebinding")
    if not args.clusterrole or args.role:
        raise CliError('required flag(s) "clusterrole" not set')
    return {"kind": "ClusterRoleBinding", "apiVersion": f"{_RBAC}/v1", "metadata": {"name": name},
            "subjects": _subjects(args), "roleRef": {"apiGroup": _RBAC, "kind": "ClusterRole", "name": args.clusterrole}}


GENERATORS: dict[str, Callable[[list[str], argparse.Namespace], Obj]] = {
    "namespace": namespace, "ns": namespace,
    "deployment": deployment, "deploy": deployment,
    "configmap": configmap, "cm": configmap,
    "secret": secret,
    "service": service, "svc": service,
    "serviceaccount": serviceaccount, "sa": serviceaccount,
    "role": role, "clusterrole": clusterrole,
    "rolebinding": rolebinding, "clusterrolebinding": clusterrolebinding,
}
