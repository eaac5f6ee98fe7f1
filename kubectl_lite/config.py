"""``kubectl-lite config view|current-context|get-contexts|use-context|set-context``.

These work on kubeconfig files only (no server), with kubectl's file choice and messages.
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path
from typing import Any

from apimachinery.client.kubeconfig import (
    KubeconfigError,
    edit_kubeconfig,
    file_defining_context,
    merged_kubeconfig,
)
from kubectl_lite.printers import render_table, to_json, to_yaml

_SECRET_USER_KEYS = ("token", "client-key-data", "password")
_DATA_KEYS = ("certificate-authority-data", "client-certificate-data")


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser], parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("config", parents=parents, help="Show or change kubeconfig files")
    csub = p.add_subparsers(dest="config_command", metavar="SUBCOMMAND", required=True)
    v = csub.add_parser("view", parents=parents, help="Show the merged kubeconfig")
    v.add_argument("--minify", action="store_true", help="only what the current context uses")
    v.add_argument("--raw", action="store_true", help="show secrets and certificate data")
    v.add_argument("-o", "--output", choices=["yaml", "json"], default="yaml")
    v.set_defaults(offline=view)
    c = csub.add_parser("current-context", parents=parents, help="Print the current context")
    c.set_defaults(offline=current_context)
    g = csub.add_parser("get-contexts", parents=parents, help="List the contexts")
    g.add_argument("name", nargs="?")
    g.add_argument("-o", "--output", choices=["name"], default=None)
    g.set_defaults(offline=get_contexts)
    u = csub.add_parser("use-context", parents=parents, help="Set the current context")
    u.add_argument("name")
    u.set_defaults(offline=use_context)
    # Its --namespace is the context's, so it cannot take the global -n/--namespace.
    s = csub.add_parser("set-context", help="Change a context's namespace, cluster or user")
    s.add_argument("--kubeconfig", default=argparse.SUPPRESS)
    s.add_argument("name", nargs="?")
    s.add_argument("--current", action="store_true")
    s.add_argument("--cluster", default=None)
    s.add_argument("--user", default=None)
    s.add_argument("--namespace", dest="ctx_namespace", default=None)
    s.set_defaults(offline=set_context)


def _redact(doc: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    for c in out.get("clusters") or []:
        for k in _DATA_KEYS:
            if (c.get("cluster") or {}).get(k):
                c["cluster"][k] = "DATA+OMITTED"
    for u in out.get("users") or []:
        body = u.get("user") or {}
        for k in _DATA_KEYS:
            if body.get(k):
                body[k] = "DATA+OMITTED"
        for k in _SECRET_USER_KEYS:
            if body.get(k):
                body[k] = "REDACTED"
    return out


def _minify(doc: dict[str, Any]) -> dict[str, Any]:
    current = doc.get("current-context") or ""
    ctx = next((c for c in doc.get("contexts") or [] if c.get("name") == current), None)
    if ctx is None:
        raise KubeconfigError("current-context must exist in order to minify")
    body = ctx.get("context") or {}
    return {
        **doc,
        "contexts": [ctx],
        "clusters": [c for c in doc.get("clusters") or [] if c.get("name") == body.get("cluster")],
        "users": [u for u in doc.get("users") or [] if u.get("name") == body.get("user")],
    }


def view(args: argparse.Namespace) -> int:
    doc = merged_kubeconfig(args.kubeconfig)
    if args.minify:
        doc = _minify(doc)
    if not args.raw:
        doc = _redact(doc)
    sys.stdout.write(to_json(doc) + "\n" if args.output == "json" else to_yaml(doc))
    return 0


def current_context(args: argparse.Namespace) -> int:
    current = merged_kubeconfig(args.kubeconfig).get("current-context")
    if not current:
        raise KubeconfigError("current-context is not set")
    print(current)
    return 0


def get_contexts(args: argparse.Namespace) -> int:
    doc = merged_kubeconfig(args.kubeconfig)
    contexts = doc.get("contexts") or []
    if args.name:
        contexts = [c for c in contexts if c.get("name") == args.name]
        if not contexts:
            raise KubeconfigError(f'context {args.name} not found')
    if args.output == "name":
        for c in contexts:
            print(c.get("name"))
        return 0
    rows = []
    for c in contexts:
        body = c.get("context") or {}
        mark = "*" if c.get("name") == doc.get("current-context") else ""
        rows.append([mark, str(c.get("name")), str(body.get("cluster", "")), str(body.get("user", "")),
                     str(body.get("namespace", ""))])
    print(render_table(["CURRENT", "NAME", "CLUSTER", "AUTHINFO", "NAMESPACE"], rows))
    return 0


def use_context(args: argparse.Namespace) -> int:
    names = [c.get("name") for c in merged_kubeconfig(args.kubeconfig).get("contexts") or []]
    if args.name not in names:
        raise KubeconfigError(f'no context exists with the name: "{args.name}"')
    target = file_defining_context(args.kubeconfig, None)
    edit_kubeconfig(target, lambda d: d.__setitem__("current-context", args.name))
    print(f'Switched to context "{args.name}".')
    return 0


def set_context(args: argparse.Namespace) -> int:
    if args.current == bool(args.name):
        raise KubeconfigError("you must specify exactly one of a context name or --current")
    name = args.name or merged_kubeconfig(args.kubeconfig).get("current-context")
    if not name:
        raise KubeconfigError("no current context is set")
    target: Path = file_defining_context(args.kubeconfig, name)
    existed = name in [c.get("name") for c in merged_kubeconfig(args.kubeconfig).get("contexts") or []]

    def change(doc: dict[str, Any]) -> None:
        contexts = doc.setdefault("contexts", []) or []
        doc["contexts"] = contexts
        entry = next((c for c in contexts if c.get("name") == name), None)
        if entry is None:
            entry = {"name": name, "context": {}}
            contexts.append(entry)
        body = entry.setdefault("context", {}) or {}
        entry["context"] = body
        for key, value in (("cluster", args.cluster), ("user", args.user), ("namespace", args.ctx_namespace)):
            if value is not None:
                body[key] = value

    edit_kubeconfig(target, change)
    print(f'Context "{name}" {"modified" if existed else "created"}.')
    return 0
