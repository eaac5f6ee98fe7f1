"""Authorization: who may do what, decided for every request after authentication.

The chain (:mod:`.chain`) asks, in order: ``system:masters`` (always allowed), the Node
authorizer (:mod:`.node`, node credentials and what their pods need), then RBAC (:mod:`.rbac`,
Roles and bindings read from the watch cache). The first definite answer wins; with no answer
the request is forbidden.
"""
