"""``kubectl-lite rollout history|undo|pause|resume`` for Deployments.

A Deployment's history is its ReplicaSets: the ones its selector matches whose controller
ownerReference is the Deployment, each numbered by its ``deployment.kubernetes.io/revision``
annotation. ``undo`` sends the JSON patch kubectl sends (the revision's template without the
``pod-template-hash`` label, plus the annotations), so the deployment controller rolls forward to it.
"""

from __future__ import annotations

import copy
from typing import Any

from apimachinery.errors import ApiError
from apimachinery.scheme import ResourceType
from apimachinery.selectors.labels import selector_to_string
from kubectl_lite.apply import LAST_APPLIED
from kubectl_lite.context import Cli
from kubectl_lite.describe import Page, pod_template
from kubectl_lite.errors import format_api_error
from kubectl_lite.printers import resource_name, tabwrite
from kubectl_lite.resources import CliError

REVISION = "deployment.kubernetes.io/revision"
CHANGE_CAUSE = "kubernetes.io/change-cause"
POD_TEMPLATE_HASH = "pod-template-hash"
# Annotations a ReplicaSet carries that are about the ReplicaSet, not the template: undo leaves them
# out when it copies the revision's annotations onto the Deployment (kubectl's list).
_NOT_COPIED = frozenset({
    LAST_APPLIED,
    REVISION,
    "deployment.kubernetes.io/revision-history",
    "deployment.kubernetes.io/desired-replicas",
    "deployment.kubernetes.io/max-replicas",
    "deprecated.deployment.rollback.to",
})


def revision_of(obj: dict[str, Any]) -> int | None:
    value = ((obj.get("metadata") or {}).get("annotations") or {}).get(REVISION)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


async def owned_replicasets(cli: Cli, deployment: dict[str, Any]) -> list[dict[str, Any]]:
    """The ReplicaSets the Deployment controls (selector match and controller ownerReference)."""
    rs_type = cli.scheme.resolve("replicasets.apps")
    assert rs_type is not None
    md = deployment.get("metadata") or {}
    selector = selector_to_string((deployment.get("spec") or {}).get("selector"))
    items, _ = await cli.client.list_all(rs_type, md.get("namespace"), label_selector=selector or None)
    out = []
    for rs in items:
        refs = (rs.get("metadata") or {}).get("ownerReferences") or []
        if any(r.get("controller") and r.get("uid") == md.get("uid") for r in refs):
            out.append(rs)
    return out


def history_rows(replicasets: list[dict[str, Any]]) -> list[tuple[int, str]]:
    """(revision, change-cause) per revision, oldest first; ``<none>`` when there is no cause."""
    rows: dict[int, str] = {}
    for rs in replicasets:
        rev = revision_of(rs)
        if rev is None:
            continue
        cause = ((rs.get("metadata") or {}).get("annotations") or {}).get(CHANGE_CAUSE) or "<none>"
        rows[rev] = cause
    return sorted(rows.items())


def template_without_hash(template: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(template)
    labels = (out.get("metadata") or {}).get("labels")
    if isinstance(labels, dict):
        labels.pop(POD_TEMPLATE_HASH, None)
    return out


def undo_patch(deployment: dict[str, Any], rs: dict[str, Any]) -> list[dict[str, Any]]:
    """kubectl's rollback patch: the revision's template, and the Deployment's annotations with
    the revision's own (change-cause and the like) copied over."""
    annotations = dict((deployment.get("metadata") or {}).get("annotations") or {})
    for k, v in ((rs.get("metadata") or {}).get("annotations") or {}).items():
        if k not in _NOT_COPIED:
            annotations[k] = v
    template = template_without_hash((rs.get("spec") or {}).get("template") or {})
    return [
        {"op": "replace", "path": "/spec/template", "value": template},
        {"op": "replace", "path": "/metadata/annotations", "value": annotations},
    ]


async def history(cli: Cli, rt: ResourceType, name: str, revision: int) -> None:
    dep = await cli.client.get(rt, name, cli.ns_for(rt))
    replicasets = await owned_replicasets(cli, dep)
    prefix = f"{resource_name(rt)}/{name}"
    if revision:
        match = [rs for rs in replicasets if revision_of(rs) == revision]
        if not match:
            raise CliError("unable to find the specified revision")
        page = Page()
        pod_template(page, (match[0].get("spec") or {}).get("template") or {})
        cli.print(f"{prefix} with revision #{revision}")
        # kubectl writes this block without aligning it: the tabs stay as they are.
        cli.print("\n".join(page.lines))
        cli.print()
        return
    rows = history_rows(replicasets)
    if not rows:
        cli.print("No rollout history found.")
        return
    cli.print(f"{prefix} ")
    lines = ["REVISION\tCHANGE-CAUSE"] + [f"{rev}\t{cause}" for rev, cause in rows]
    cli.print(tabwrite(lines, padding=2))
    cli.print()


async def _get_or_report(cli: Cli, rt: ResourceType, name: str, ns: str | None) -> dict[str, Any] | None:
    """The object; None once its error is reported (the command goes on with the next name)."""
    try:
        return await cli.client.get(rt, name, ns)
    except ApiError as exc:
        cli.fail(format_api_error(exc))
        return None


async def undo(cli: Cli, rt: ResourceType, name: str, to_revision: int, dry_run: bool) -> None:
    ns = cli.ns_for(rt)
    prefix = f"{resource_name(rt)}/{name}"
    dep = await _get_or_report(cli, rt, name, ns)
    if dep is None:
        return
    if LAST_APPLIED in ((dep.get("metadata") or {}).get("annotations") or {}):
        cli.warn(
            f"Warning: resource {rt.plural}/{name} was previously managed with 'kubectl apply'. Rolling back will "
            "not update the kubectl.kubernetes.io/last-applied-configuration annotation, which may cause "
            "unexpected behavior on future 'kubectl apply' operations. Consider using 'kubectl apply' with your "
            "previous configuration file instead."
        )
    if (dep.get("spec") or {}).get("paused"):
        raise CliError(
            "you cannot rollback a paused deployment; resume it first with 'kubectl rollout resume' and try again"
        )
    target = _rollback_target(await owned_replicasets(cli, dep), to_revision)
    current_template = (dep.get("spec") or {}).get("template") or {}
    rs_template = (target.get("spec") or {}).get("template") or {}
    if template_without_hash(current_template) == template_without_hash(rs_template):
        cli.print(f"{prefix} skipped rollback (current template already matches revision {revision_of(target)})")
        return
    patch = undo_patch(dep, target)
    await cli.client.patch(rt, name, patch, patch_type="json", namespace=ns, dry_run=dry_run)
    cli.print(f"{prefix} rolled back{' (server dry run)' if dry_run else ''}")


def _rollback_target(replicasets: list[dict[str, Any]], to_revision: int) -> dict[str, Any]:
    """The ReplicaSet of ``to_revision``, or (0) the one before the latest, as kubectl picks it."""
    by_rev = {rev: rs for rs in replicasets if (rev := revision_of(rs)) is not None}
    if to_revision:
        if to_revision not in by_rev:
            raise CliError(f"unable to find specified revision {to_revision} in history")
        return by_rev[to_revision]
    revisions = sorted(by_rev)
    if len(revisions) < 2:
        raise CliError("no rollout history found for deployment")
    return by_rev[revisions[-2]]


async def set_paused(cli: Cli, rt: ResourceType, name: str, paused: bool) -> None:
    ns = cli.ns_for(rt)
    prefix = f"{resource_name(rt)}/{name}"
    dep = await _get_or_report(cli, rt, name, ns)
    if dep is None:
        return
    if bool((dep.get("spec") or {}).get("paused")) == paused:
        raise CliError(f'{rt.group_resource} "{name}" is {"already paused" if paused else "not paused"}')
    # kubectl's patch is the two-way diff of the Go object, where paused=false is omitted: null.
    patch = {"spec": {"paused": True if paused else None}}
    await cli.client.patch(rt, name, patch, patch_type="strategic", namespace=ns)
    cli.print(f"{prefix} {'paused' if paused else 'resumed'}")
