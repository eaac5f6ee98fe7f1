"""Run code inside a network namespace, from a thread that ``setns``-es into it.

A thread's network namespace is its own (``setns(CLONE_NEWNET)`` changes only the calling
thread), so the agent never moves its main thread: it starts a short-lived thread, joins the
namespace pinned at a file (a sandbox's ``ns/net`` bind mount, ``/run/netns/<name>``, or
``/proc/<pid>/ns/net``), runs the function there and hands back its result. Sockets, including
netlink sockets, belong to the namespace of the thread that created them, so netlink work for
a pod is done on such a thread. pyroute2's own ``NetNS`` would fork a helper process per
namespace instead (about 35 ms a pod on these machines).

pyroute2 0.9 binds an ``IPRoute``'s socket to the thread that first uses it (and refuses use
from another thread), so :func:`iproute` keeps one per (thread, namespace).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

from pyroute2 import IPRoute

from nodeagent.runtime import linux

T = TypeVar("T")
P = ParamSpec("P")

_local = threading.local()


def enter_netns(path: str) -> None:
    """Move the *calling thread* into the network namespace pinned at ``path``."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        linux.setns(fd, linux.CLONE_NEWNET)
    finally:
        os.close(fd)


def run_in_netns(path: str | None, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``fn(*args, **kwargs)`` on a new thread inside the namespace at ``path`` (None: the
    caller's own); blocks until it returns and returns its result or re-raises its exception.

    The thread exits afterwards, so no thread lingers in a pod's namespace (a namespace whose
    file is unmounted is freed only when no thread is left in it).
    """
    result: list[T] = []
    error: list[BaseException] = []

    def body() -> None:
        try:
            if path is not None:
                enter_netns(path)
            result.append(fn(*args, **kwargs))
        except BaseException as exc:
            error.append(exc)
        finally:
            close_thread_iproutes()

    thread = threading.Thread(target=body, name="netns", daemon=True)
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]


def netns_executor(path: str, name: str = "netns") -> ThreadPoolExecutor:
    """A one-thread executor whose thread lives in the namespace at ``path`` (for a namespace
    used over and over, e.g. a lab node's: the thread and its netlink socket are reused).
    The caller shuts it down."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix=name, initializer=enter_netns, initargs=(path,))


def shutdown_executor(executor: ThreadPoolExecutor) -> None:
    """Close the executor thread's netlink sockets (a socket keeps its namespace alive), then
    stop the thread."""
    try:
        executor.submit(close_thread_iproutes).result()
    finally:
        executor.shutdown(wait=True)


def current_netns_id() -> tuple[int, int]:
    """(device, inode) of the calling thread's network namespace."""
    st = os.stat("/proc/thread-self/ns/net")
    return st.st_dev, st.st_ino


def iproute() -> IPRoute:
    """The calling thread's ``IPRoute`` for its current network namespace (created on first use,
    about 1 ms; reused afterwards since pool threads call in again and again)."""
    cache: dict[tuple[int, int], IPRoute] | None = getattr(_local, "iproutes", None)
    if cache is None:
        cache = _local.iproutes = {}
    key = current_netns_id()
    ipr = cache.get(key)
    if ipr is None:
        ipr = cache[key] = IPRoute()
    return ipr


@contextmanager
def fresh_iproute() -> Iterator[IPRoute]:
    """An ``IPRoute`` for the calling thread's namespace, closed afterwards."""
    ipr = IPRoute()
    try:
        yield ipr
    finally:
        ipr.close()


def close_thread_iproutes() -> None:
    """Close the calling thread's cached ``IPRoute`` sockets (before a pool thread goes away)."""
    cache: dict[tuple[int, int], IPRoute] = getattr(_local, "iproutes", None) or {}
    for ipr in cache.values():
        ipr.close()
    cache.clear()
