"""Apply a rendered :class:`~nodeagent.proxy.rules.Ruleset` as one nftables transaction.

The text is what ``nft -f`` reads; it is committed in-process through libnftables
(:mod:`nodeagent.network.libnft`), which saves the fork and exec of ``nft`` on every sync.

Why not simply "delete table; create table" every time: the ClientIP affinity sets are filled by
the kernel while traffic flows, and recreating them would forget every client on each sync. So
after the first sync the transaction is incremental, and still atomic (``nft -f`` commits all or
nothing):

1. declare every set/map of the new ruleset (a no-op for those that exist),
2. ``flush table`` (drops every rule, keeps set elements), ``flush`` the maps whose elements the
   ruleset rewrites, ``delete`` the chains and sets the previous ruleset had and the new one
   does not,
3. the new ruleset text (chains with their rules, static elements).

The first sync of an applier (it has no memory of what is in the kernel), and any sync whose
incremental transaction fails (someone deleted the table), recreates the table from scratch.

Unchanged rulesets (byte-identical text) are skipped unless forced.

After a successful apply, conntrack entries of connections DNATed to endpoints that are no longer
routed are deleted, so established UDP flows (and TCP flows) do not keep going to a removed
backend. Not so for an endpoint that is terminating but still serving (a pod in its preStop /
graceful shutdown): new connections stop going there, but its flows are kept until it stops
serving or leaves the slice, and flushed then. Flushing at once would cut requests in flight on
a pod that is shutting down gracefully: the next packet of such a TCP connection would be
tracked as new, DNATed to another endpoint and answered with a reset.

The ``conntrack`` tool (Debian package ``conntrack``) is used when present; otherwise a small
pyroute2 netlink script does the same. Each is one subprocess per flush, in the target network
namespace (``ip netns exec``) when one is given; the proxier runs it in the background, so the
next endpoint change does not wait for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shlex
import shutil
import sys
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor

from nodeagent.network import libnft, netns
from nodeagent.network.libnft import NftError
from nodeagent.proxy.rules import TABLE_PREFIX, Ruleset

log = logging.getLogger(__name__)

Route = tuple[str, str, str, int]




def full_transaction(new: Ruleset) -> str:
    """Recreate the table from nothing (``add`` first so ``delete`` cannot fail)."""
    return f"add table ip {new.table}\ndelete table ip {new.table}\n{new.text}"


def incremental_transaction(old: Ruleset, new: Ruleset) -> str:
    """Move the kernel from ``old`` to ``new`` keeping the elements of dynamic (affinity) sets."""
    if old.table != new.table:
        raise ValueError("incremental transaction across tables")
    t = new.table
    lines = [new.set_declarations.rstrip("\n"), f"flush table ip {t}"]
    for name in sorted(new.static_sets | (old.static_sets & set(new.sets))):
        lines.append(f"flush {new.sets[name]} ip {t} {name}")
    # Sets and maps first: a stale map's elements may still jump to a stale chain.
    for name in sorted(set(old.sets) - set(new.sets)):
        lines.append(f"delete {old.sets[name]} ip {t} {name}")
    for name in sorted(old.chains - new.chains):
        lines.append(f"delete chain ip {t} {name}")
    return "\n".join(lines) + "\n" + new.text


def conntrack_commands(removed: Iterable[Route], tool: str = "conntrack") -> list[list[str]]:
    """``conntrack -D`` invocations deleting flows DNATed to each removed endpoint."""
    cmds: list[list[str]] = []
    for vip, proto, ip, port in sorted(removed):
        cmd = [tool, "-D", "-p", proto]
        if vip != "nodeport":
            cmd += ["--orig-dst", vip]
        cmd += ["--reply-src", ip, "--reply-port-src", str(port)]
        cmds.append(cmd)
    return cmds


# Run with ``python -c`` in the target namespace when the conntrack tool is missing: reads
# [[vip|"nodeport", proto, ip, port], ...] as JSON on stdin and prints how many flows it deleted.
_NETLINK_FLUSH = r"""
import json, socket, sys
from pyroute2 import Conntrack
from pyroute2.netlink.nfnetlink.nfctsocket import NFCTAttrTuple
protos = {"tcp": socket.IPPROTO_TCP, "udp": socket.IPPROTO_UDP, "sctp": socket.IPPROTO_SCTP}
deleted = 0
with Conntrack() as ct:
    for vip, proto, ip, port in json.load(sys.stdin):
        reply = NFCTAttrTuple(saddr=ip, sport=int(port), proto=protos[proto])
        orig = None if vip == "nodeport" else NFCTAttrTuple(daddr=vip, proto=protos[proto])
        for entry in list(ct.dump_entries(tuple_orig=orig, tuple_reply=reply)):
            try:
                ct.delete(entry)
                deleted += 1
            except Exception:
                pass
print(deleted)
"""


class NftApplier:
    """Applies rulesets to one table, in one network namespace (or the current one)."""

    def __init__(
        self,
        *,
        netns: str | None = None,
        nft: str = "nft",
        conntrack: str | None = "auto",
        background_flush: bool = False,
    ) -> None:
        """``conntrack``: path of the tool, ``"auto"`` to look it up on PATH, None for netlink.
        ``background_flush``: :meth:`apply` returns once the rules are committed and flushes
        conntrack in a task of its own (one at a time, in order), so a proxy loop is not held up
        by the flush's subprocess; :meth:`wait_flushed` waits for it."""
        self.netns = netns
        self.nft = nft
        self.conntrack = shutil.which("conntrack") if conntrack == "auto" else conntrack
        self.applied: Ruleset | None = None
        self.syncs = 0  # transactions actually sent to nft
        self.flushed_routes: list[Route] = []  # the last conntrack flush (for tests/metrics)
        self.deferred_routes: set[Route] = set()  # unrouted, but the endpoint still drains
        # When the last transaction was committed (nft returned), and how long nft took.
        self.committed_at: tuple[float, float] | None = None  # (time.monotonic(), time.time())
        self.last_nft_seconds = 0.0  # from the call to the commit
        self.last_nft_inside_seconds = 0.0  # libnftables alone (the rest: waiting for a thread, the GIL)
        self.background_flush = background_flush
        self._flush_task: asyncio.Task[None] | None = None
        # A thread of its own: the event loop's default executor is shared with everything
        # else the agent does on threads (pod syncs, probes, netlink), and a sync queued behind
        # those waited hundreds of ms under load.
        self._executor: ThreadPoolExecutor | None = None

    def _prefix(self) -> list[str]:
        return ["ip", "netns", "exec", self.netns] if self.netns else []

    async def _run(self, argv: Sequence[str], stdin: str) -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(
            *self._prefix(), *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await proc.communicate(stdin.encode())
        return proc.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace")

    async def _nft(self, text: str) -> str:
        """One transaction (or listing) in the applier's namespace; its output."""
        started = time.monotonic()
        if self.nft != "nft":  # a given program: run it as ``nft -f`` would be
            rc, out, err = await self._run([self.nft, "-f", "-"], text)
            if rc != 0:
                raise NftError(err.strip() or f"nft exited with {rc}")
        else:
            # In-process (no fork/exec per sync), on a worker thread in the right namespace.
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nft")
            path = f"/run/netns/{self.netns}" if self.netns else None

            def timed() -> tuple[str, float, float, float]:
                began = time.monotonic()
                result = netns.run_in_netns(path, libnft.run, text) if path else libnft.run(text)
                # The commit time as the kernel saw it, not when the event loop got round to it.
                return result, began, time.monotonic(), time.time()

            out, began, done, done_wall = await asyncio.get_running_loop().run_in_executor(self._executor, timed)
            self.committed_at = (done, done_wall)
            self.last_nft_seconds = done - started
            self.last_nft_inside_seconds = done - began
            return out
        self.committed_at = (time.monotonic(), time.time())
        self.last_nft_seconds = self.last_nft_inside_seconds = self.committed_at[0] - started
        return out

    async def apply(self, ruleset: Ruleset, *, force: bool = False) -> bool:
        """Make the kernel table match ``ruleset``; False when skipped as unchanged."""
        old = self.applied
        if old is not None and not force and old.table == ruleset.table and old.text == ruleset.text:
            await self._flush_stale(set(), ruleset)  # a draining endpoint may have stopped serving
            return False
        if old is not None and old.table == ruleset.table:
            try:
                await self._nft(incremental_transaction(old, ruleset))
            except NftError as exc:
                log.warning("incremental nft sync failed (%s); recreating table %s", exc, ruleset.table)
                await self._nft(full_transaction(ruleset))
        else:
            await self._nft(full_transaction(ruleset))
        self.applied = ruleset
        self.syncs += 1
        await self._flush_stale(set(old.routes) if old is not None else set(), ruleset)
        return True

    async def _flush_stale(self, previous: set[Route], ruleset: Ruleset) -> None:
        """Flush flows to endpoints ``ruleset`` no longer routes, except draining ones (kept in
        :attr:`deferred_routes` until they stop serving)."""
        unrouted = (previous | self.deferred_routes) - ruleset.routes
        self.deferred_routes = {r for r in unrouted if (r[2], r[3]) in ruleset.draining}
        stale = unrouted - self.deferred_routes
        if not stale:
            return
        if not self.background_flush:
            await self.flush_conntrack(stale)
            return
        earlier = self._flush_task

        async def flush_in_order() -> None:
            if earlier is not None:
                with contextlib.suppress(Exception):
                    await earlier
            await self.flush_conntrack(stale)

        self._flush_task = asyncio.create_task(flush_in_order(), name="conntrack-flush")

    def close(self) -> None:
        """Let the applier's thread go (a later call starts a new one)."""
        if self._executor is not None:
            self._executor.shutdown(wait=False)
            self._executor = None

    async def wait_flushed(self) -> None:
        """Wait for a background conntrack flush to finish (none: return at once)."""
        if self._flush_task is not None:
            with contextlib.suppress(Exception):
                await self._flush_task

    async def flush_conntrack(self, removed: Iterable[Route]) -> None:
        """Delete conntrack flows to the given endpoints; failures are logged, not raised."""
        routes = sorted(removed)
        self.flushed_routes = routes
        if not routes:
            return
        try:
            if self.conntrack:
                # conntrack -D exits 1 when nothing matched: run them all in one shell, ignore status.
                script = "; ".join(shlex.join(c) for c in conntrack_commands(routes, self.conntrack))
                rc, _, err = await self._run(["sh", "-c", script + " 2>/dev/null; true"], "")
            else:
                rc, _, err = await self._run([sys.executable, "-c", _NETLINK_FLUSH], json.dumps(routes))
            if rc != 0:
                log.warning("conntrack flush failed: %s", err.strip())
        except OSError as exc:
            log.warning("conntrack flush failed: %s", exc)

    async def delete(self, table: str | None = None) -> None:
        """Remove the table (ours only); a missing table is fine."""
        name = table or (self.applied.table if self.applied else None)
        if name is None:
            return
        if not name.startswith(TABLE_PREFIX):
            raise ValueError(f"refusing to delete a table kube-lite does not own: {name}")
        await self._nft(f"add table ip {name}\ndelete table ip {name}\n")
        if self.applied is not None and self.applied.table == name:
            self.applied = None

    async def list_table(self) -> str:
        """``nft list table`` output (for tests and debugging)."""
        if self.applied is None:
            return ""
        return await self._nft(f"list table ip {self.applied.table}\n")
