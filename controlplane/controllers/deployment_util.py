"""The arithmetic of Deployments, free of I/O: template hashes, surge/unavailable fenceposts,
revisions, the replica annotations, proportional scaling and the status conditions.

Each function is named after (and behaves like) its counterpart in Kubernetes'
pkg/controller/deployment/util, so the behaviour can be checked against that description.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from apimachinery.api.apps_v1 import Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet
from apimachinery.api.core_v1 import PodTemplateSpec
from apimachinery.meta import now, parse_time

POD_TEMPLATE_HASH = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
ROLLBACK_TO = "deprecated.deployment.rollback.to"

# Deployment annotations that are not copied to its ReplicaSets.
_NOT_COPIED = {LAST_APPLIED, REVISION, REVISION_HISTORY, DESIRED_REPLICAS, MAX_REPLICAS, ROLLBACK_TO}

# Condition types and reasons (Kubernetes' wording; `kubectl rollout status` reads them).
AVAILABLE = "Available"
PROGRESSING = "Progressing"
REPLICA_FAILURE = "ReplicaFailure"
NEW_RS_CREATED = "NewReplicaSetCreated"
FOUND_NEW_RS = "FoundNewReplicaSet"
RS_UPDATED = "ReplicaSetUpdated"
NEW_RS_AVAILABLE = "NewReplicaSetAvailable"
TIMED_OUT = "ProgressDeadlineExceeded"
FAILED_RS_CREATE = "ReplicaSetCreateError"
PAUSED = "DeploymentPaused"
RESUMED = "DeploymentResumed"
MIN_AVAILABLE = "MinimumReplicasAvailable"
MIN_UNAVAILABLE = "MinimumReplicasUnavailable"

# progressDeadlineSeconds of MaxInt32 means "no deadline".
_NO_DEADLINE = 2**31 - 1

# The alphabet of Kubernetes' SafeEncodeString: no vowels (no words), no look-alikes (0/o, 1/l).
_SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


# ---------------------------------------------------------------------------------------------
# Template hash


def _canonical(value: Any) -> Any:
    """Drop empty lists/maps and nulls, so semantically equal templates compare (and hash) equal
    the way Kubernetes' semantic equality treats nil and empty alike."""
    if isinstance(value, dict):
        out = {k: _canonical(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v not in (None, {}, [])}
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    return value


def _template_json(template: PodTemplateSpec) -> dict[str, Any]:
    return dict(_canonical(template.to_dict()))


def fnv1a_32(data: bytes) -> int:
    h = 0x811C9DC5
    for b in data:
        h ^= b
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


def safe_encode(text: str) -> str:
    return "".join(_SAFE_ALPHABET[ord(c) % len(_SAFE_ALPHABET)] for c in text)


def compute_hash(template: PodTemplateSpec, collision_count: int | None = None) -> str:
    """The pod-template-hash: FNV-1a (32 bit) over the template's canonical JSON, plus the
    collision count as 4 little-endian bytes when set, rendered as safe-encoded decimal."""
    data = json.dumps(_template_json(template), sort_keys=True, separators=(",", ":")).encode()
    if collision_count is not None:
        data += int(collision_count & 0xFFFFFFFF).to_bytes(4, "little")
    return safe_encode(str(fnv1a_32(data)))


def equal_ignore_hash(a: PodTemplateSpec | None, b: PodTemplateSpec | None) -> bool:
    """Templates equal apart from the pod-template-hash label."""
    if a is None or b is None:
        return a is b
    da, db = _template_json(a), _template_json(b)
    for d in (da, db):
        labels = (d.get("metadata") or {}).get("labels")
        if labels is not None:
            labels.pop(POD_TEMPLATE_HASH, None)
            if not labels:
                d["metadata"].pop("labels")
            if not d["metadata"]:
                d.pop("metadata")
    return da == db


# ---------------------------------------------------------------------------------------------
# Surge and unavailability


def scaled_value(value: int | str | None, total: int, round_up: bool) -> int:
    """An IntOrString of replicas: an int as is, "25%" of ``total`` rounded up or down."""
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    text = str(value).strip()
    if text.endswith("%"):
        pct = int(text[:-1])
        scaled = pct * total / 100
        return math.ceil(scaled) if round_up else math.floor(scaled)
    return int(text)


def is_rolling_update(d: Deployment) -> bool:
    return d.spec.strategy is None or (d.spec.strategy.type or "RollingUpdate") == "RollingUpdate"


def replicas_of(d: Deployment) -> int:
    return d.spec.replicas if d.spec.replicas is not None else 1


def resolve_fenceposts(d: Deployment) -> tuple[int, int]:
    """(maxSurge, maxUnavailable): surge rounds up, unavailable down, never both 0."""
    ru = d.spec.strategy.rolling_update if d.spec.strategy else None
    desired = replicas_of(d)
    surge = scaled_value(ru.max_surge if ru else "25%", desired, True)
    unavailable = scaled_value(ru.max_unavailable if ru else "25%", desired, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def max_surge(d: Deployment) -> int:
    return resolve_fenceposts(d)[0] if is_rolling_update(d) else 0


def max_unavailable(d: Deployment) -> int:
    if not is_rolling_update(d) or replicas_of(d) == 0:
        return 0
    return min(resolve_fenceposts(d)[1], replicas_of(d))


# ---------------------------------------------------------------------------------------------
# ReplicaSet arithmetic


def rs_replicas(rs: ReplicaSet) -> int:
    return rs.spec.replicas if rs.spec.replicas is not None else 1


def active(rss: Iterable[ReplicaSet | None]) -> list[ReplicaSet]:
    return [rs for rs in rss if rs is not None and rs_replicas(rs) > 0]


def spec_total(rss: Iterable[ReplicaSet | None]) -> int:
    return sum(rs_replicas(rs) for rs in rss if rs is not None)


def pods_total(rss: Iterable[ReplicaSet | None]) -> int:
    """Pods that may exist: the larger of what each ReplicaSet wants and what it reports.

    Kubernetes sums spec.replicas here; while a ReplicaSet controller has not yet deleted the
    pods of a scale-down its status still counts them, and taking the larger keeps the rollout
    from surging past maxSurge in that window.
    """
    return sum(max(rs_replicas(rs), rs.status.replicas or 0) for rs in rss if rs is not None)


def actual_total(rss: Iterable[ReplicaSet | None]) -> int:
    return sum(rs.status.replicas or 0 for rs in rss if rs is not None)


def ready_total(rss: Iterable[ReplicaSet | None]) -> int:
    return sum(rs.status.ready_replicas or 0 for rs in rss if rs is not None)


def available_of(rs: ReplicaSet) -> int:
    """Available pods, never more than the ReplicaSet wants: after a scale-down its status still
    counts the pods being deleted until its controller catches up (Kubernetes counts them)."""
    return min(rs.status.available_replicas or 0, rs_replicas(rs))


def available_total(rss: Iterable[ReplicaSet | None]) -> int:
    return sum(available_of(rs) for rs in rss if rs is not None)


def revision_of(obj: ReplicaSet | Deployment) -> int:
    try:
        return int((obj.metadata.annotations or {}).get(REVISION, "0") or 0)
    except ValueError:
        return 0


def max_revision(rss: Iterable[ReplicaSet]) -> int:
    return max((revision_of(rs) for rs in rss), default=0)


def created_key(rs: ReplicaSet) -> tuple[str, str]:
    return (rs.metadata.creation_timestamp or "", rs.metadata.name or "")


def find_new_replica_set(d: Deployment, rss: list[ReplicaSet]) -> ReplicaSet | None:
    """The oldest ReplicaSet whose template equals the Deployment's (ignoring the hash label)."""
    for rs in sorted(rss, key=created_key):
        if equal_ignore_hash(rs.spec.template, d.spec.template):
            return rs
    return None


def find_active_or_latest(new_rs: ReplicaSet | None, old: list[ReplicaSet]) -> ReplicaSet | None:
    if new_rs is None and not old:
        return None
    newest_first = sorted(old, key=created_key, reverse=True)
    alive = active([*newest_first, new_rs])
    if not alive:
        return new_rs if new_rs is not None else newest_first[0]
    if len(alive) == 1:
        return alive[0]
    return None


def annotation_int(rs: ReplicaSet, name: str) -> int | None:
    value = (rs.metadata.annotations or {}).get(name)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def is_saturated(d: Deployment, rs: ReplicaSet | None) -> bool:
    if rs is None:
        return False
    want = replicas_of(d)
    return (annotation_int(rs, DESIRED_REPLICAS) == want and rs_replicas(rs) == want
            and (rs.status.available_replicas or 0) == want)


def replica_set_fraction(rs: ReplicaSet, d: Deployment) -> int:
    """How much ``rs`` grows (or shrinks) when the Deployment is resized mid-rollout."""
    if replicas_of(d) == 0:
        return -rs_replicas(rs)
    deployment_replicas = replicas_of(d) + max_surge(d)
    annotated = annotation_int(rs, MAX_REPLICAS)
    if annotated is None or annotated == 0:
        annotated = d.status.replicas or 0
    if annotated == 0:
        return 0
    size = rs_replicas(rs) * deployment_replicas / annotated
    # Go's math.Round: halves away from zero.
    rounded = math.floor(size + 0.5) if size >= 0 else -math.floor(-size + 0.5)
    return rounded - rs_replicas(rs)


def proportion(rs: ReplicaSet, d: Deployment, to_add: int, added: int) -> int:
    if rs_replicas(rs) == 0 or to_add == 0 or to_add == added:
        return 0
    fraction = replica_set_fraction(rs, d)
    allowed = to_add - added
    return min(fraction, allowed) if to_add > 0 else max(fraction, allowed)


def new_rs_new_replicas(d: Deployment, all_rss: list[ReplicaSet], new_rs: ReplicaSet) -> int:
    """How big the new ReplicaSet may be now (Kubernetes' NewRSNewReplicas)."""
    if not is_rolling_update(d):
        return replicas_of(d)
    surge = scaled_value(
        d.spec.strategy.rolling_update.max_surge if d.spec.strategy and d.spec.strategy.rolling_update else "25%",
        replicas_of(d), True)
    current = pods_total(all_rss)
    max_total = replicas_of(d) + surge
    if current >= max_total:
        return rs_replicas(new_rs)
    scale_up = min(max_total - current, replicas_of(d) - rs_replicas(new_rs))
    return rs_replicas(new_rs) + max(scale_up, 0)


def replicas_annotations_need_update(rs: ReplicaSet, desired: int, max_replicas: int) -> bool:
    ann = rs.metadata.annotations or {}
    return ann.get(DESIRED_REPLICAS) != str(desired) or ann.get(MAX_REPLICAS) != str(max_replicas)


def set_replicas_annotations(rs: ReplicaSet, desired: int, max_replicas: int) -> bool:
    ann = dict(rs.metadata.annotations or {})
    changed = ann.get(DESIRED_REPLICAS) != str(desired) or ann.get(MAX_REPLICAS) != str(max_replicas)
    ann[DESIRED_REPLICAS] = str(desired)
    ann[MAX_REPLICAS] = str(max_replicas)
    rs.metadata.annotations = ann
    return changed


def copy_deployment_annotations(d: Deployment, rs: ReplicaSet) -> bool:
    ann = dict(rs.metadata.annotations or {})
    changed = False
    for k, v in (d.metadata.annotations or {}).items():
        if k in _NOT_COPIED or ann.get(k) == v:
            continue
        ann[k] = v
        changed = True
    rs.metadata.annotations = ann
    return changed


def set_new_replica_set_annotations(d: Deployment, rs: ReplicaSet, new_revision: int, exists: bool) -> bool:
    """Copy the Deployment's annotations and move the revision up to ``new_revision``
    (a rollback to this template gives it the newest revision). Mutates ``rs``."""
    changed = copy_deployment_annotations(d, rs)
    ann = dict(rs.metadata.annotations or {})
    old_text = ann.get(REVISION)
    old = revision_of(rs)
    if old < new_revision:
        ann[REVISION] = str(new_revision)
        changed = True
        if old_text:
            history = [h for h in ann.get(REVISION_HISTORY, "").split(",") if h]
            history.append(old_text)
            ann[REVISION_HISTORY] = ",".join(history)
    rs.metadata.annotations = ann
    if not exists and set_replicas_annotations(rs, replicas_of(d), replicas_of(d) + max_surge(d)):
        changed = True
    return changed


# ---------------------------------------------------------------------------------------------
# Conditions and status


def has_progress_deadline(d: Deployment) -> bool:
    return d.spec.progress_deadline_seconds is not None and d.spec.progress_deadline_seconds != _NO_DEADLINE


def get_condition(status: DeploymentStatus, type_: str) -> DeploymentCondition | None:
    for c in status.conditions or []:
        if c.type == type_:
            return c
    return None


def new_condition(type_: str, status: str, reason: str, message: str) -> DeploymentCondition:
    stamp = now()
    return DeploymentCondition(type=type_, status=status, reason=reason, message=message,
                               last_update_time=stamp, last_transition_time=stamp)


def set_condition(status: DeploymentStatus, cond: DeploymentCondition) -> None:
    """Add or replace a condition; the same status and reason keep the current one untouched,
    the same status keeps its lastTransitionTime."""
    current = get_condition(status, cond.type)
    if current is not None and current.status == cond.status and current.reason == cond.reason:
        return
    if current is not None and current.status == cond.status:
        cond.last_transition_time = current.last_transition_time
    status.conditions = [*(c for c in status.conditions or [] if c.type != cond.type), cond]


def remove_condition(status: DeploymentStatus, type_: str) -> None:
    kept = [c for c in status.conditions or [] if c.type != type_]
    status.conditions = kept or None


def deployment_complete(d: Deployment, status: DeploymentStatus) -> bool:
    want = replicas_of(d)
    return ((status.updated_replicas or 0) == want and (status.replicas or 0) == want
            and (status.available_replicas or 0) == want
            and (status.observed_generation or 0) >= (d.metadata.generation or 0))


def deployment_progressing(d: Deployment, status: DeploymentStatus) -> bool:
    old = d.status
    old_old = (old.replicas or 0) - (old.updated_replicas or 0)
    new_old = (status.replicas or 0) - (status.updated_replicas or 0)
    return ((status.updated_replicas or 0) > (old.updated_replicas or 0) or new_old < old_old
            or (status.ready_replicas or 0) > (old.ready_replicas or 0)
            or (status.available_replicas or 0) > (old.available_replicas or 0))


def seconds_to_deadline(d: Deployment, status: DeploymentStatus, at: float | None = None) -> float | None:
    """Seconds until the Progressing condition's deadline (<= 0: passed); None without one."""
    if not has_progress_deadline(d):
        return None
    cond = get_condition(status, PROGRESSING)
    if cond is None or cond.reason in (NEW_RS_AVAILABLE, TIMED_OUT) or not cond.last_update_time:
        return None
    start = parse_time(cond.last_update_time).timestamp()
    moment = at if at is not None else datetime.now(UTC).timestamp()
    return start + (d.spec.progress_deadline_seconds or 0) - moment


def deployment_timed_out(d: Deployment, status: DeploymentStatus) -> bool:
    cond = get_condition(status, PROGRESSING)
    if not has_progress_deadline(d) or cond is None or cond.reason == NEW_RS_AVAILABLE:
        return False
    if cond.reason == TIMED_OUT:
        return True
    left = seconds_to_deadline(d, status)
    return left is not None and left < 0


def calculate_status(all_rss: list[ReplicaSet], new_rs: ReplicaSet | None, d: Deployment) -> DeploymentStatus:
    available = available_total(all_rss)
    total = spec_total(all_rss)
    status = DeploymentStatus(
        # Zero counts are left out, as Go's omitempty does on the wire.
        observed_generation=d.metadata.generation,
        replicas=actual_total(all_rss) or None,
        updated_replicas=actual_total([new_rs]) or None,
        ready_replicas=ready_total(all_rss) or None,
        available_replicas=available or None,
        unavailable_replicas=max(total - available, 0) or None,
        collision_count=d.status.collision_count,
        conditions=[c.copy_deep() for c in d.status.conditions or []] or None,
    )
    if available >= replicas_of(d) - max_unavailable(d):
        set_condition(status, new_condition(AVAILABLE, "True", MIN_AVAILABLE, "Deployment has minimum availability."))
    else:
        set_condition(status, new_condition(AVAILABLE, "False", MIN_UNAVAILABLE,
                                            "Deployment does not have minimum availability."))
    return status


def _zero_as_none(status: DeploymentStatus) -> dict[str, Any]:
    """Status JSON with 0 counts dropped (Go's omitempty), for change detection."""
    data = status.to_dict()
    return {k: v for k, v in data.items() if v not in (0, None)}


def status_changed(old: DeploymentStatus, new: DeploymentStatus) -> bool:
    return _zero_as_none(old) != _zero_as_none(new)


def template_with_hash(template: PodTemplateSpec, hash_: str) -> PodTemplateSpec:
    out = template.copy_deep()
    out.metadata.labels = {**(out.metadata.labels or {}), POD_TEMPLATE_HASH: hash_}
    return out
