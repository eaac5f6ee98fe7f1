"""The scheduler: assigns unbound pods to nodes through pods/binding.

``run_scheduler(client, name=..., stop=...)`` is the entry point the control plane calls;
:class:`Scheduler` is the same thing with its knobs and counters exposed (tests, benchmarks).
"""

from controlplane.scheduler.scheduler import DEFAULT_SCHEDULER_NAME, Scheduler, SchedulerStats, run_scheduler

__all__ = ["DEFAULT_SCHEDULER_NAME", "Scheduler", "SchedulerStats", "run_scheduler"]
