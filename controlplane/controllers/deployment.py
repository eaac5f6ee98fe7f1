"""The Deployment controller: roll a pod template out through ReplicaSets.

Each template gets its own ReplicaSet, ``<deployment>-<pod-template-hash>``, whose selector and
pods carry the ``pod-template-hash`` label so ReplicaSets of one Deployment never share pods.
One reconcile (Kubernetes' syncDeployment):

1. Claim ReplicaSets (adopt matching orphans, release owned ones that no longer match).
2. Paused, or only the replica count changed (a "scaling event": some active ReplicaSet's
   ``desired-replicas`` annotation differs from spec.replicas)? Then only scale, proportionally
   over the ReplicaSets of a rollout in progress, and update status.
3. Otherwise roll out: RollingUpdate grows the new ReplicaSet within ``maxSurge`` and shrinks old
   ones within ``maxUnavailable``; Recreate scales old ones to 0, waits until none of their pods
   exists, then creates the new one at full size.
4. Status: replica counts from the ReplicaSets, the Available condition, and the Progressing
   condition whose reasons ``kubectl rollout status`` reads (ProgressDeadlineExceeded after
   ``progressDeadlineSeconds`` without progress).

Revisions: a new template gets the highest revision + 1; going back to an older template (a
rollback) re-uses that template's ReplicaSet and gives it the highest revision + 1. Old, empty
ReplicaSets beyond ``revisionHistoryLimit`` are deleted.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from apimachinery.api.apps_v1 import (
    Deployment,
    DeploymentCondition,
    DeploymentStatus,
    ReplicaSet,
    ReplicaSetSpec,
)
from apimachinery.api.core_v1 import Pod
from apimachinery.client.informer import NAMESPACE_INDEX, OWNER_UID_INDEX, Informer
from apimachinery.controller.owners import controller_ref
from apimachinery.controller.runtime import DONE, Controller, Result, requeue_after
from apimachinery.errors import ApiError
from apimachinery.meta import KubeObject, ObjectMeta, OwnerReference
from apimachinery.meta import LabelSelector as LabelSelectorModel
from apimachinery.selectors.labels import LabelSelector, selector_from_model
from controlplane.controllers import deployment_util as du
from controlplane.controllers.context import ControllerContext
from controlplane.controllers.replicaset import adopt_patch, owner_reference, release_patch

log = logging.getLogger(__name__)

SCALING_REPLICA_SET = "ScalingReplicaSet"


@dataclass
class _Sync:
    """One reconcile's working state: the Deployment as last written by this reconcile, and the
    latest version of every ReplicaSet it wrote (so later steps never write from stale copies)."""

    d: Deployment
    written: dict[str, ReplicaSet] = field(default_factory=dict)

    def latest(self, rs: ReplicaSet | None) -> ReplicaSet | None:
        if rs is None:
            return None
        return self.written.get(rs.metadata.uid or "", rs)

    def all_latest(self, rss: list[ReplicaSet]) -> list[ReplicaSet]:
        return [self.written.get(rs.metadata.uid or "", rs) for rs in rss]


def _rv(obj: KubeObject) -> int:
    try:
        return int(obj.metadata.resource_version or 0)
    except ValueError:
        return 0


class _OwnWrites:
    """The resourceVersion of this controller's last write to each object (by uid).

    Until the cache shows an object at least that new, it shows the world from before our own
    write, and deciding from it would redo or undo that write (e.g. share replicas out again from
    a ReplicaSet size we already changed). The event of the write itself enqueues the Deployment,
    so a reconcile that finds its cache behind simply ends and runs again then.
    """

    def __init__(self) -> None:
        self._rv: dict[str, int] = {}

    def wrote(self, obj: KubeObject) -> None:
        if obj.metadata.uid:
            self._rv[obj.metadata.uid] = max(self._rv.get(obj.metadata.uid, 0), _rv(obj))

    def behind(self, obj: KubeObject) -> bool:
        uid = obj.metadata.uid or ""
        want = self._rv.get(uid)
        if want is None:
            return False
        if _rv(obj) >= want:
            del self._rv[uid]
            return False
        return True

    def forget(self, obj: KubeObject) -> None:
        self._rv.pop(obj.metadata.uid or "", None)


def _quote(name: str | None) -> str:
    """Go's %q for a plain name."""
    return f'"{name}"'


class DeploymentReconciler:
    def __init__(self, ctx: ControllerContext, *, deployments: Informer[Deployment] | None = None,
                 replicasets: Informer[ReplicaSet] | None = None, pods: Informer[Pod] | None = None) -> None:
        self.client = ctx.client
        self.recorder = ctx.recorder
        self.deployments = deployments if deployments is not None else ctx.informers.for_model(Deployment)
        self.replicasets = replicasets if replicasets is not None else ctx.informers.for_model(ReplicaSet)
        self.pods = pods if pods is not None else ctx.informers.for_model(Pod)
        self.d_rt = self.client.resource(Deployment)
        self.rs_rt = self.client.resource(ReplicaSet)
        self.own_writes = _OwnWrites()
        self.replicasets.add_handler(on_delete=self.own_writes.forget)
        self.deployments.add_handler(on_delete=self.own_writes.forget)

    # -- mapping events to Deployment keys ----------------------------------------------------------

    def keys_for_replicaset(self, rs: ReplicaSet) -> list[str]:
        """A ReplicaSet event concerns its Deployment, or, for an orphan, each Deployment of its
        namespace that selects it (one may adopt it)."""
        ns = rs.metadata.namespace or ""
        ref = controller_ref(rs)
        if ref is not None:
            return [f"{ns}/{ref.name}"] if ref.kind == "Deployment" else []
        if rs.metadata.deletion_timestamp is not None:
            return []
        labels = rs.metadata.labels or {}
        return [d.key for d in self.deployments.by_index(NAMESPACE_INDEX, ns)
                if labels and selector_from_model(d.spec.selector).matches(labels)]

    def keys_for_pod(self, pod: Pod) -> list[str]:
        """A deleted pod concerns the Deployment of its ReplicaSet (Recreate waits for old pods
        to be gone; nothing else would tell it)."""
        ref = controller_ref(pod)
        if ref is None or ref.kind != "ReplicaSet":
            return []
        rs = self.replicasets.get_by_name(ref.name, pod.metadata.namespace)
        if rs is None or rs.metadata.uid != ref.uid:
            return []
        return self.keys_for_replicaset(rs)

    # -- reconcile -----------------------------------------------------------------------------------

    async def reconcile(self, key: str) -> Result:
        cached = self.deployments.get(key)
        if cached is None:
            return DONE
        if self.own_writes.behind(cached):
            return DONE
        s = _Sync(cached.copy_deep())
        d = s.d
        selector = selector_from_model(d.spec.selector)
        if selector.empty:
            self.recorder.event(d, "Warning", "SelectingAll",
                                "This deployment is selecting all pods. A non-empty selector is required.")
            if (d.status.observed_generation or 0) < (d.metadata.generation or 0):
                status = d.status.copy_deep()
                status.observed_generation = d.metadata.generation
                await self._write_status(s, status)
            return DONE
        rss = await self._claim_replicasets(d, selector)
        if any(self.own_writes.behind(rs) for rs in rss):
            return DONE
        if d.metadata.deletion_timestamp is not None:
            new_rs, old_rss = await self._new_and_old(s, rss, create=False)
            await self._sync_status(s, [*old_rss, new_rs], new_rs)
            return DONE
        await self._check_paused_conditions(s)
        if d.spec.paused or self._is_scaling_event(d, rss):
            return await self._sync(s, rss)
        if d.spec.strategy is not None and d.spec.strategy.type == "Recreate":
            return await self._rollout_recreate(s, rss)
        return await self._rollout_rolling(s, rss)

    # -- claiming ReplicaSets -------------------------------------------------------------------------

    async def _claim_replicasets(self, d: Deployment, selector: LabelSelector) -> list[ReplicaSet]:
        owned: list[ReplicaSet] = []
        can_adopt: bool | None = None
        for rs in self.replicasets.by_index(NAMESPACE_INDEX, d.metadata.namespace or ""):
            labels = rs.metadata.labels or {}
            ref = controller_ref(rs)
            if ref is not None:
                if ref.uid != d.metadata.uid:
                    continue
                if selector.matches(labels):
                    owned.append(rs)
                elif d.metadata.deletion_timestamp is None:
                    await self._patch_rs(rs, release_patch(d.metadata.uid or "", rs))
                continue
            if d.metadata.deletion_timestamp is not None or rs.metadata.deletion_timestamp is not None:
                continue
            if not selector.matches(labels):
                continue
            if can_adopt is None:
                can_adopt = await self._can_adopt(d)
            if can_adopt:
                adopted = await self._patch_rs(rs, adopt_patch(d, rs))
                if adopted is not None:
                    owned.append(adopted)
        return owned

    async def _can_adopt(self, d: Deployment) -> bool:
        try:
            fresh = await self.client.get(self.d_rt, d.metadata.name or "", d.metadata.namespace)
        except ApiError as e:
            if e.code == 404:
                return False
            raise
        md = fresh.get("metadata") or {}
        return md.get("uid") == d.metadata.uid and not md.get("deletionTimestamp")

    async def _patch_rs(self, rs: ReplicaSet, patch: dict[str, Any]) -> ReplicaSet | None:
        try:
            data = await self.client.patch(self.rs_rt, rs.metadata.name or "", patch, patch_type="strategic",
                                           namespace=rs.metadata.namespace)
        except ApiError as e:
            if e.code in (404, 409, 422):
                return None
            raise
        return ReplicaSet.model_validate(data)

    # -- new and old ReplicaSets, revisions -----------------------------------------------------------

    async def _new_and_old(self, s: _Sync, rss: list[ReplicaSet], *,
                           create: bool) -> tuple[ReplicaSet | None, list[ReplicaSet]]:
        """The new ReplicaSet (created when ``create`` and missing; its revision and the
        Deployment's synced) and all the others."""
        found = du.find_new_replica_set(s.d, rss)
        old = [rs for rs in rss if found is None or rs.metadata.uid != found.metadata.uid]
        new_rs = await self._new_replica_set(s, found, old, create)
        return new_rs, old

    async def _new_replica_set(self, s: _Sync, existing: ReplicaSet | None, old: list[ReplicaSet],
                               create: bool) -> ReplicaSet | None:
        d = s.d
        new_revision = du.max_revision(old) + 1
        if existing is not None:
            rs = existing.copy_deep()
            changed = du.set_new_replica_set_annotations(d, rs, new_revision, exists=True)
            if changed or (rs.spec.min_ready_seconds or 0) != (d.spec.min_ready_seconds or 0):
                rs.spec.min_ready_seconds = d.spec.min_ready_seconds
                return await self._replace_rs(s, rs)
            await self._set_revision(s, (rs.metadata.annotations or {}).get(du.REVISION, ""))
            if du.has_progress_deadline(s.d) and du.get_condition(s.d.status, du.PROGRESSING) is None:
                status = s.d.status.copy_deep()
                du.set_condition(status, du.new_condition(du.PROGRESSING, "True", du.FOUND_NEW_RS,
                                                          f"Found new replica set {_quote(rs.metadata.name)}"))
                await self._write_status(s, status)
            return rs
        if not create:
            return None
        return await self._create_new_replica_set(s, old, new_revision)

    async def _create_new_replica_set(self, s: _Sync, old: list[ReplicaSet], new_revision: int) -> ReplicaSet:
        d = s.d
        hash_ = du.compute_hash(d.spec.template, d.status.collision_count)
        template = du.template_with_hash(d.spec.template, hash_)
        selector = (d.spec.selector or LabelSelectorModel()).copy_deep()
        selector.match_labels = {**(selector.match_labels or {}), du.POD_TEMPLATE_HASH: hash_}
        name = f"{d.metadata.name}-{hash_}"
        rs = ReplicaSet(
            metadata=ObjectMeta(name=name, namespace=d.metadata.namespace, labels=dict(template.metadata.labels or {}),
                                owner_references=[OwnerReference.model_validate(owner_reference(d))]),
            spec=ReplicaSetSpec(replicas=0, min_ready_seconds=d.spec.min_ready_seconds, selector=selector,
                                template=template),
        )
        rs.spec.replicas = du.new_rs_new_replicas(d, [*old, rs], rs)
        du.set_new_replica_set_annotations(d, rs, new_revision, exists=False)
        already_exists = False
        try:
            created = ReplicaSet.model_validate(
                await self.client.create(self.rs_rt, rs.to_dict(), d.metadata.namespace))
        except ApiError as e:
            if e.code == 409 and e.reason == "AlreadyExists":
                found = await self._existing_rs(name, d.metadata.namespace or "")
                ref = controller_ref(found) if found is not None else None
                if found is not None and ref is not None and ref.uid == d.metadata.uid and \
                        du.equal_ignore_hash(found.spec.template, d.spec.template):
                    created, already_exists = found, True
                else:
                    # A different template hashed to the same name: bump collisionCount, which
                    # changes the hash on the next attempt.
                    status = d.status.copy_deep()
                    status.collision_count = (status.collision_count or 0) + 1
                    await self._write_status(s, status)
                    raise
            elif e.code == 403 and "being terminated" in str(e):
                raise
            else:
                msg = f"Failed to create new replica set {_quote(name)}: {e}"
                if du.has_progress_deadline(d):
                    status = d.status.copy_deep()
                    du.set_condition(status, du.new_condition(du.PROGRESSING, "False", du.FAILED_RS_CREATE, msg))
                    await self._write_status(s, status)
                self.recorder.event(d, "Warning", du.FAILED_RS_CREATE, msg)
                raise
        if not already_exists and du.rs_replicas(created) > 0:
            self.recorder.event(d, "Normal", SCALING_REPLICA_SET,
                                f"Scaled up replica set {name} from 0 to {du.rs_replicas(created)}")
        await self._set_revision(s, str(new_revision))
        if not already_exists and du.has_progress_deadline(s.d):
            status = s.d.status.copy_deep()
            du.set_condition(status, du.new_condition(du.PROGRESSING, "True", du.NEW_RS_CREATED,
                                                      f"Created new replica set {_quote(name)}"))
            await self._write_status(s, status)
        return created

    async def _existing_rs(self, name: str, namespace: str) -> ReplicaSet | None:
        cached = self.replicasets.get_by_name(name, namespace)
        if cached is not None:
            return cached
        try:
            return ReplicaSet.model_validate(await self.client.get(self.rs_rt, name, namespace))
        except ApiError as e:
            if e.code == 404:
                return None
            raise

    async def _set_revision(self, s: _Sync, revision: str) -> None:
        """The Deployment carries its newest revision in an annotation (metadata, not status,
        so it is written with a patch that does not touch the spec or the generation)."""
        if not revision or (s.d.metadata.annotations or {}).get(du.REVISION) == revision:
            return
        data = await self.client.patch(self.d_rt, s.d.metadata.name or "",
                                       {"metadata": {"annotations": {du.REVISION: revision}}},
                                       namespace=s.d.metadata.namespace)
        s.d = Deployment.model_validate(data)
        self.own_writes.wrote(s.d)

    # -- scaling ---------------------------------------------------------------------------------------

    def _is_scaling_event(self, d: Deployment, rss: list[ReplicaSet]) -> bool:
        want = du.replicas_of(d)
        for rs in du.active(rss):
            desired = du.annotation_int(rs, du.DESIRED_REPLICAS)
            if desired is not None and desired != want:
                return True
        return False

    async def _sync(self, s: _Sync, rss: list[ReplicaSet]) -> Result:
        """Scale (paused, or a scaling event), clean up when paused, update status."""
        new_rs, old_rss = await self._new_and_old(s, rss, create=False)
        await self._scale(s, new_rs, old_rss)
        if s.d.spec.paused:
            await self._cleanup(s, s.all_latest(old_rss))
        await self._sync_status(s, [*s.all_latest(old_rss), s.latest(new_rs)], s.latest(new_rs))
        return DONE

    async def _scale(self, s: _Sync, new_rs: ReplicaSet | None, old_rss: list[ReplicaSet]) -> None:
        d = s.d
        want = du.replicas_of(d)
        single = du.find_active_or_latest(new_rs, old_rss)
        if single is not None:
            if du.rs_replicas(single) != want:
                await self._scale_rs(s, single, want)
            return
        if du.is_saturated(d, new_rs):
            for rs in du.active(old_rss):
                await self._scale_rs(s, rs, 0)
            return
        if not du.is_rolling_update(d):
            return
        all_rss = du.active([*old_rss, new_rs])
        allowed = want + du.max_surge(d) if want > 0 else 0
        to_add = allowed - du.spec_total(all_rss)
        if to_add != 0:
            # Largest first (it takes the rounding leftovers); among equals the newest first when
            # growing, the oldest first when shrinking. (Two stable sorts.)
            all_rss.sort(key=du.created_key, reverse=to_add > 0)
            all_rss.sort(key=lambda r: -du.rs_replicas(r))
        sizes: dict[str, int] = {}
        added = 0
        for rs in all_rss:
            if to_add != 0:
                p = du.proportion(rs, d, to_add, added)
                sizes[rs.metadata.uid or ""] = du.rs_replicas(rs) + p
                added += p
            else:
                sizes[rs.metadata.uid or ""] = du.rs_replicas(rs)
        if to_add != 0 and all_rss:
            first = all_rss[0].metadata.uid or ""
            sizes[first] = max(sizes[first] + to_add - added, 0)
        for rs in all_rss:
            await self._scale_rs(s, rs, sizes[rs.metadata.uid or ""])

    async def _scale_rs(self, s: _Sync, rs: ReplicaSet, replicas: int) -> tuple[bool, ReplicaSet]:
        """Set a ReplicaSet's size and replica annotations; (size changed, latest RS)."""
        rs = s.latest(rs) or rs
        d = s.d
        want, most = du.replicas_of(d), du.replicas_of(d) + du.max_surge(d)
        old_size = du.rs_replicas(rs)
        size_changed = old_size != replicas
        if not size_changed and not du.replicas_annotations_need_update(rs, want, most):
            return False, rs
        updated = rs.copy_deep()
        updated.spec.replicas = replicas
        du.set_replicas_annotations(updated, want, most)
        updated = await self._replace_rs(s, updated)
        if size_changed:
            direction = "up" if replicas > old_size else "down"
            self.recorder.event(d, "Normal", SCALING_REPLICA_SET,
                                f"Scaled {direction} replica set {rs.metadata.name} from {old_size} to {replicas}")
        return size_changed, updated

    async def _replace_rs(self, s: _Sync, rs: ReplicaSet) -> ReplicaSet:
        # A PUT carrying the cached resourceVersion: if the cache was behind, 409 and retry.
        data = await self.client.replace(self.rs_rt, rs.to_dict(), rs.metadata.namespace)
        updated = ReplicaSet.model_validate(data)
        s.written[updated.metadata.uid or ""] = updated
        self.own_writes.wrote(updated)
        return updated

    # -- RollingUpdate ---------------------------------------------------------------------------------

    async def _rollout_rolling(self, s: _Sync, rss: list[ReplicaSet]) -> Result:
        new_rs, old_rss = await self._new_and_old(s, rss, create=True)
        assert new_rs is not None
        if await self._reconcile_new(s, [*old_rss, new_rs], new_rs):
            return await self._sync_rollout_status(s, old_rss, new_rs)
        if await self._reconcile_old(s, s.all_latest(old_rss), s.latest(new_rs) or new_rs):
            return await self._sync_rollout_status(s, old_rss, new_rs)
        if du.deployment_complete(s.d, s.d.status):
            await self._cleanup(s, s.all_latest(old_rss))
        return await self._sync_rollout_status(s, old_rss, new_rs)

    async def _reconcile_new(self, s: _Sync, all_rss: list[ReplicaSet], new_rs: ReplicaSet) -> bool:
        want = du.replicas_of(s.d)
        size = du.rs_replicas(new_rs)
        if size == want:
            return False
        if size > want:
            return (await self._scale_rs(s, new_rs, want))[0]
        return (await self._scale_rs(s, new_rs, du.new_rs_new_replicas(s.d, all_rss, new_rs)))[0]

    async def _reconcile_old(self, s: _Sync, old_rss: list[ReplicaSet], new_rs: ReplicaSet) -> bool:
        d = s.d
        old_active = du.active(old_rss)
        if du.spec_total(old_active) == 0:
            return False
        all_pods = du.spec_total([*old_active, new_rs])
        min_available = du.replicas_of(d) - du.max_unavailable(d)
        new_unavailable = du.rs_replicas(new_rs) - du.available_of(new_rs)
        max_scaled_down = all_pods - min_available - new_unavailable
        if max_scaled_down <= 0:
            return False
        # Unhealthy old pods first: they cost no availability and could otherwise block the rollout.
        old_active, cleaned = await self._cleanup_unhealthy(s, old_active, max_scaled_down)
        scaled = await self._scale_down_old(s, [*old_active, new_rs], old_active)
        return cleaned + scaled > 0

    async def _cleanup_unhealthy(self, s: _Sync, old_rss: list[ReplicaSet],
                                 max_cleanup: int) -> tuple[list[ReplicaSet], int]:
        out: list[ReplicaSet] = []
        total = 0
        for rs in sorted(old_rss, key=du.created_key):
            size, available = du.rs_replicas(rs), du.available_of(rs)
            if total >= max_cleanup or size == 0 or size == available:
                out.append(rs)
                continue
            count = min(max_cleanup - total, size - available)
            _, rs = await self._scale_rs(s, rs, size - count)
            total += count
            out.append(rs)
        return out, total

    async def _scale_down_old(self, s: _Sync, all_rss: list[ReplicaSet], old_rss: list[ReplicaSet]) -> int:
        d = s.d
        min_available = du.replicas_of(d) - du.max_unavailable(d)
        available = du.available_total(all_rss)
        if available <= min_available:
            return 0
        budget = available - min_available
        done = 0
        for rs in sorted(old_rss, key=du.created_key):
            if done >= budget:
                break
            size = du.rs_replicas(rs)
            if size == 0:
                continue
            count = min(size, budget - done)
            await self._scale_rs(s, rs, size - count)
            done += count
        return done

    # -- Recreate --------------------------------------------------------------------------------------

    async def _rollout_recreate(self, s: _Sync, rss: list[ReplicaSet]) -> Result:
        new_rs, old_rss = await self._new_and_old(s, rss, create=False)
        scaled = False
        for rs in du.active(old_rss):
            changed, _ = await self._scale_rs(s, rs, 0)
            scaled = scaled or changed
        if scaled or self._old_pods_exist(new_rs, s.all_latest(old_rss)):
            return await self._sync_rollout_status(s, old_rss, new_rs)
        if new_rs is None:
            new_rs, old_rss = await self._new_and_old(s, rss, create=True)
            assert new_rs is not None
        if du.rs_replicas(s.latest(new_rs) or new_rs) != du.replicas_of(s.d):
            await self._scale_rs(s, new_rs, du.replicas_of(s.d))
        if du.deployment_complete(s.d, s.d.status):
            await self._cleanup(s, s.all_latest(old_rss))
        return await self._sync_rollout_status(s, old_rss, new_rs)

    def _old_pods_exist(self, new_rs: ReplicaSet | None, old_rss: list[ReplicaSet]) -> bool:
        """Any pod of an old ReplicaSet that has not finished, terminating ones included:
        Recreate promises old and new pods never run side by side."""
        if du.actual_total(old_rss) > 0:
            return True
        for rs in old_rss:
            if new_rs is not None and rs.metadata.uid == new_rs.metadata.uid:
                continue
            for pod in self.pods.by_index(OWNER_UID_INDEX, rs.metadata.uid or ""):
                ref = controller_ref(pod)
                if ref is None or ref.uid != rs.metadata.uid:
                    continue
                if pod.status.phase not in ("Succeeded", "Failed"):
                    return True
        return False

    # -- history ---------------------------------------------------------------------------------------

    async def _cleanup(self, s: _Sync, old_rss: list[ReplicaSet]) -> None:
        """Delete the oldest empty ReplicaSets beyond revisionHistoryLimit."""
        limit = s.d.spec.revision_history_limit
        if limit is None or limit == 2**31 - 1:
            return
        alive = [rs for rs in old_rss if rs.metadata.deletion_timestamp is None]
        excess = len(alive) - limit
        if excess <= 0:
            return
        alive.sort(key=lambda r: (du.revision_of(r), du.created_key(r)))
        for rs in alive[:excess]:
            if (rs.status.replicas or 0) != 0 or du.rs_replicas(rs) != 0 \
                    or (rs.metadata.generation or 0) > (rs.status.observed_generation or 0):
                continue
            try:
                await self.client.delete(self.rs_rt, rs.metadata.name or "", rs.metadata.namespace,
                                         preconditions={"uid": rs.metadata.uid or ""})
            except ApiError as e:
                if e.code not in (404, 409):
                    raise

    # -- status ----------------------------------------------------------------------------------------

    async def _check_paused_conditions(self, s: _Sync) -> None:
        d = s.d
        if not du.has_progress_deadline(d):
            return
        cond = du.get_condition(d.status, du.PROGRESSING)
        if cond is not None and cond.reason == du.TIMED_OUT:
            return  # a reported lack of progress is not overwritten by pausing
        paused_reported = cond is not None and cond.reason == du.PAUSED
        status = d.status.copy_deep()
        if d.spec.paused and not paused_reported:
            du.set_condition(status, du.new_condition(du.PROGRESSING, "Unknown", du.PAUSED, "Deployment is paused"))
        elif not d.spec.paused and paused_reported:
            du.set_condition(status, du.new_condition(du.PROGRESSING, "Unknown", du.RESUMED, "Deployment is resumed"))
        else:
            return
        await self._write_status(s, status)

    async def _sync_status(self, s: _Sync, all_rss: list[ReplicaSet | None], new_rs: ReplicaSet | None) -> None:
        rss = [rs for rs in all_rss if rs is not None]
        status = du.calculate_status(rss, new_rs, s.d)
        if du.status_changed(s.d.status, status):
            await self._write_status(s, status)

    async def _sync_rollout_status(self, s: _Sync, old_rss: list[ReplicaSet], new_rs: ReplicaSet | None) -> Result:
        d = s.d
        new_rs = s.latest(new_rs)
        all_rss = [*s.all_latest(old_rss), *([new_rs] if new_rs is not None else [])]
        status = du.calculate_status(all_rss, new_rs, d)
        if not du.has_progress_deadline(d):
            du.remove_condition(status, du.PROGRESSING)
        current = du.get_condition(d.status, du.PROGRESSING)
        complete = (status.replicas or 0) == (status.updated_replicas or 0) and current is not None \
            and current.reason == du.NEW_RS_AVAILABLE
        subject = f"ReplicaSet {_quote(new_rs.metadata.name)}" if new_rs is not None \
            else f"Deployment {_quote(d.metadata.name)}"
        if du.has_progress_deadline(d) and not complete:
            if du.deployment_complete(d, status):
                du.set_condition(status, du.new_condition(du.PROGRESSING, "True", du.NEW_RS_AVAILABLE,
                                                          f"{subject} has successfully progressed."))
            elif du.deployment_progressing(d, status):
                cond = du.new_condition(du.PROGRESSING, "True", du.RS_UPDATED, f"{subject} is progressing.")
                if current is not None:
                    if current.status == "True":
                        cond.last_transition_time = current.last_transition_time
                    du.remove_condition(status, du.PROGRESSING)
                du.set_condition(status, cond)
            elif du.deployment_timed_out(d, status):
                du.set_condition(status, du.new_condition(du.PROGRESSING, "False", du.TIMED_OUT,
                                                          f"{subject} has timed out progressing."))
        failure = _replica_failure(all_rss, new_rs)
        if failure is not None:
            du.set_condition(status, failure)
        else:
            du.remove_condition(status, du.REPLICA_FAILURE)
        if du.status_changed(d.status, status):
            await self._write_status(s, status)
        # Nothing else wakes a stuck rollout when its deadline passes: look again then.
        progressing = du.get_condition(s.d.status, du.PROGRESSING)
        if progressing is not None and progressing.status == "True" and not du.deployment_complete(s.d, s.d.status):
            left = du.seconds_to_deadline(s.d, s.d.status)
            if left is not None:
                return requeue_after(max(left, 0.0) + 1.0)
        return DONE

    async def _write_status(self, s: _Sync, status: DeploymentStatus) -> None:
        body = s.d.copy_deep()
        body.status = status
        data = await self.client.replace_status(self.d_rt, body.to_dict(), s.d.metadata.namespace)
        s.d = Deployment.model_validate(data)
        self.own_writes.wrote(s.d)


def _replica_failure(all_rss: list[ReplicaSet], new_rs: ReplicaSet | None) -> DeploymentCondition | None:
    """A ReplicaFailure of the new ReplicaSet (else of any old one), as a Deployment condition."""
    ordered = ([new_rs] if new_rs is not None else []) + [r for r in all_rss if r is not new_rs]
    for rs in ordered:
        for c in rs.status.conditions or []:
            if c.type == du.REPLICA_FAILURE:
                return DeploymentCondition(type=du.REPLICA_FAILURE, status=c.status, reason=c.reason,
                                           message=c.message, last_update_time=c.last_transition_time,
                                           last_transition_time=c.last_transition_time)
    return None


def new_controller(ctx: ControllerContext) -> Controller:
    reconciler = DeploymentReconciler(ctx)
    controller = Controller("deployment", reconciler, workers=ctx.config.workers)
    controller.watch(reconciler.deployments)
    controller.watch(reconciler.replicasets, map_keys=reconciler.keys_for_replicaset)

    def pod_deleted(pod: Pod) -> None:
        for key in reconciler.keys_for_pod(pod):
            controller.enqueue(key)

    reconciler.pods.add_handler(on_delete=pod_deleted)
    return controller


__all__ = ["DeploymentReconciler", "new_controller"]
