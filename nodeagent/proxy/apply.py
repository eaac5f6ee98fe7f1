"""Apply a rendered :class:`~nodeagent.proxy.rules.Ruleset` with one ``nft -f -`` transaction.

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
backend. The ``conntrack`` tool (Debian package ``conntrack``) is used when present; otherwise a
small pyroute2 netlink script does the same. Each is one subprocess per sync, in the target
network namespace (``ip netns exec``) when one is given.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shlex
import shutil
import sys
from collections.abc import Iterable, Sequence

from nodeagent.proxy.rules import TABLE_PREFIX, Ruleset

log = logging.getLogger(__name__)

Route = tuple[str, str, str, int]


class NftError(RuntimeError):
    """``nft`` refused a transaction; carries its stderr."""


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
    ) -> None:
        """``conntrack``: path of the tool, ``"auto"`` to look it up on PATH, None for netlink."""
        self.netns = netns
        self.nft = nft
        self.conntrack = shutil.which("conntrack") if conntrack == "auto" else conntrack
        self.applied: Ruleset | None = None
        self.syncs = 0  # transactions actually sent to nft
        self.flushed_routes: list[Route] = []  # the last conntrack flush (for tests/metrics)

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

    async def _nft(self, text: str) -> None:
        rc, _, err = await self._run([self.nft, "-f", "-"], text)
        if rc != 0:
            raise NftError(err.strip() or f"nft exited with {rc}")

    async def apply(self, ruleset: Ruleset, *, force: bool = False) -> bool:
        """Make the kernel table match ``ruleset``; False when skipped as unchanged."""
        old = self.applied
        if old is not None and not force and old.table == ruleset.table and old.text == ruleset.text:
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
        if old is not None:
            removed = old.routes - ruleset.routes
            if removed:
                await self.flush_conntrack(removed)
        return True

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
        rc, out, err = await self._run([self.nft, "list", "table", "ip", self.applied.table], "")
        if rc != 0:
            raise NftError(err.strip())
        return out
