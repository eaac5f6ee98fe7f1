"""The async client library shared by controllers, node agents and CLIs.

``load_kubeconfig`` -> ``ClientConfig`` -> ``async with ApiClient(config) as c`` for REST calls;
``watch``/``watch_forever`` for streams; ``Informer`` + ``WorkQueue`` for controllers;
``retry_on_conflict`` for read-modify-write loops.
"""

from apimachinery.client.informer import (
    NAMESPACE_INDEX,
    OWNER_UID_INDEX,
    Informer,
    index_by_namespace,
    index_by_owner_uid,
    strip_managed_fields,
)
from apimachinery.client.kubeconfig import (
    ClientConfig,
    KubeconfigError,
    edit_kubeconfig,
    kubeconfig_files,
    load_kubeconfig,
    merged_kubeconfig,
    write_kubeconfig,
)
from apimachinery.client.rest import TABLE_ACCEPT, ApiClient, ApiConnectionError, TypedList, TypedResource
from apimachinery.client.retry import Backoff, retry_on, retry_on_conflict
from apimachinery.client.watch import INITIAL_EVENTS_END, object_key, relist_events, watch, watch_forever
from apimachinery.client.workqueue import RateLimiter, ShutDown, WorkQueue

__all__ = [
    "INITIAL_EVENTS_END",
    "NAMESPACE_INDEX",
    "OWNER_UID_INDEX",
    "TABLE_ACCEPT",
    "ApiClient",
    "ApiConnectionError",
    "Backoff",
    "ClientConfig",
    "Informer",
    "KubeconfigError",
    "RateLimiter",
    "ShutDown",
    "TypedList",
    "TypedResource",
    "WorkQueue",
    "edit_kubeconfig",
    "index_by_namespace",
    "index_by_owner_uid",
    "kubeconfig_files",
    "load_kubeconfig",
    "merged_kubeconfig",
    "object_key",
    "relist_events",
    "retry_on",
    "retry_on_conflict",
    "strip_managed_fields",
    "watch",
    "watch_forever",
    "write_kubeconfig",
]
