"""The real node agent: turns pods bound to this node into containers of the native runtime.

Modules: :mod:`.agent` (start-up, node registration, leases, informer, work queue),
:mod:`.podsync` (the level-triggered per-pod sync and the pod status it reports),
:mod:`.probes` (liveness/readiness/startup), :mod:`.volumes`, :mod:`.env`, :mod:`.sources`
(ConfigMaps and Secrets read for one sync).
"""
