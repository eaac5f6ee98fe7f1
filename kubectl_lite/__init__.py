"""kubectl-lite: a kubectl-compatible command line over the shared client library.

One module per concern: ``main`` (arguments, errors, exit codes), ``resources`` (manifests and
type names), ``printers`` and ``jsonpath`` (output), and one module per command family
(``apply``, ``get``, ``delete``, ``describe``, ``mutate``, ``wait``, ``rollout`` with ``history``,
``logs``, ``podexec``, ``config``, ``info``, ``edit``, ``events``, ``explain``, ``top``,
``completion``). Output and error wording follow kubectl's, so scripts and
habits carry over.
"""
