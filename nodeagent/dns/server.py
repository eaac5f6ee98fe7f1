"""The cluster DNS server: asyncio, UDP and TCP, authoritative for the cluster domain.

Names outside the cluster domain are REFUSED: kube-lite nodes have no upstream resolver they
may use (no external network in the labs), and a silent forward would hide that. Pods that need
outside names use ``dnsPolicy: Default``.

UDP answers larger than 512 bytes (or than the client's EDNS0 buffer size) are truncated with TC
set, and clients retry over TCP (length-prefixed messages, several per connection).

The records come from a :class:`~nodeagent.dns.records.RecordIndex`; :class:`ClusterDNS` keeps
one up to date from Service and EndpointSlice informers (rebuilt, coalesced, on every change).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
from dataclasses import dataclass
from typing import cast

from apimachinery.api.core_v1 import Service
from apimachinery.api.discovery_v1 import EndpointSlice
from apimachinery.client.informer import Informer
from apimachinery.client.rest import ApiClient
from nodeagent.dns.records import (
    NOERROR,
    NXDOMAIN,
    RECORD_TTL,
    REFUSED,
    SOA_TTL,
    Answer,
    RecordIndex,
    build_index,
    normalize,
)

log = logging.getLogger(__name__)

TYPE_A, TYPE_NS, TYPE_CNAME, TYPE_SOA, TYPE_SRV, TYPE_OPT, TYPE_ANY = 1, 2, 5, 6, 33, 41, 255
CLASS_IN = 1
RCODE_FORMERR, RCODE_SERVFAIL, RCODE_NOTIMP = 1, 2, 4
UDP_LIMIT = 512
TCP_IDLE_TIMEOUT = 10.0


class FormatError(ValueError):
    """The message cannot be parsed."""


@dataclass(frozen=True)
class Question:
    name: str
    qtype: int
    qclass: int


@dataclass(frozen=True)
class Query:
    id: int
    flags: int
    question: Question | None
    edns_size: int | None  # the client's EDNS0 UDP buffer size when it sent an OPT record


# -- wire format -------------------------------------------------------------------------------


def read_name(msg: bytes, offset: int) -> tuple[str, int]:
    """A (possibly compressed) name at ``offset``; returns it and the offset after it."""
    labels: list[str] = []
    end: int | None = None
    jumps = 0
    while True:
        if offset >= len(msg):
            raise FormatError("name runs past the message")
        length = msg[offset]
        if length & 0xC0 == 0xC0:
            if offset + 1 >= len(msg):
                raise FormatError("truncated pointer")
            if end is None:
                end = offset + 2
            offset = ((length & 0x3F) << 8) | msg[offset + 1]
            jumps += 1
            if jumps > 32:
                raise FormatError("compression loop")
            continue
        if length & 0xC0:
            raise FormatError("bad label type")
        offset += 1
        if length == 0:
            break
        labels.append(msg[offset : offset + length].decode("ascii", errors="replace"))
        offset += length
    return ".".join(labels), end if end is not None else offset


def encode_name(name: str) -> bytes:
    out = bytearray()
    for label in normalize(name).split("."):
        if label:
            raw = label.encode("ascii")
            if len(raw) > 63:
                raise ValueError(f"label too long: {label!r}")
            out += bytes([len(raw)]) + raw
    return bytes(out) + b"\x00"


def parse_query(msg: bytes) -> Query:
    if len(msg) < 12:
        raise FormatError("short header")
    qid, flags, qd, an, ns, ar = struct.unpack("!HHHHHH", msg[:12])
    offset = 12
    question: Question | None = None
    for i in range(qd):
        name, offset = read_name(msg, offset)
        if offset + 4 > len(msg):
            raise FormatError("short question")
        qtype, qclass = struct.unpack("!HH", msg[offset : offset + 4])
        offset += 4
        if i == 0:
            question = Question(name, qtype, qclass)
    edns: int | None = None
    for _ in range(an + ns + ar):
        _, offset = read_name(msg, offset)
        if offset + 10 > len(msg):
            raise FormatError("short record")
        rtype, rclass, _ttl, rdlen = struct.unpack("!HHIH", msg[offset : offset + 10])
        offset += 10 + rdlen
        if rtype == TYPE_OPT:
            edns = rclass
    return Query(qid, flags, question, edns)


def _rr(name: bytes, rtype: int, ttl: int, rdata: bytes) -> bytes:
    return name + struct.pack("!HHIH", rtype, CLASS_IN, ttl, len(rdata)) + rdata


def _soa_rdata(zone: str) -> bytes:
    # mname ns.dns.<zone>, rname hostmaster.<zone>; serial, refresh, retry, expire, minimum.
    return encode_name(f"ns.dns.{zone}") + encode_name(f"hostmaster.{zone}") + struct.pack(
        "!IIIII", 1, 7200, 1800, 86400, SOA_TTL
    )


def build_response(query: Query, index: RecordIndex, limit: int | None) -> bytes:
    """The answer to ``query``; with ``limit`` (UDP) records that do not fit are dropped and TC set."""
    rd = query.flags & 0x0100
    opcode = (query.flags >> 11) & 0xF
    q = query.question

    def header(rcode: int, aa: bool, tc: bool, qd: int, an: int, ns: int, ar: int) -> bytes:
        flags = 0x8000 | (opcode << 11) | rd | rcode
        if aa:
            flags |= 0x0400
        if tc:
            flags |= 0x0200
        return struct.pack("!HHHHHH", query.id, flags, qd, an, ns, ar)

    opt = b""
    if query.edns_size is not None:
        opt = b"\x00" + struct.pack("!HHIH", TYPE_OPT, 4096, 0, 0)
    if q is None:
        return header(RCODE_FORMERR, False, False, 0, 0, 0, 1 if opt else 0) + opt
    question = encode_name(q.name) + struct.pack("!HH", q.qtype, q.qclass)
    if opcode != 0:
        return header(RCODE_NOTIMP, False, False, 1, 0, 0, 1 if opt else 0) + question + opt
    if q.qclass != CLASS_IN:
        return header(REFUSED, False, False, 1, 0, 0, 1 if opt else 0) + question + opt

    answer: Answer = index.lookup(q.name)
    if answer.rcode == REFUSED:
        return header(REFUSED, False, False, 1, 0, 0, 1 if opt else 0) + question + opt

    owner = b"\xc0\x0c"  # pointer to the question name
    records: list[bytes] = []
    name = normalize(q.name)
    if answer.cname is not None and q.qtype != TYPE_CNAME:
        records.append(_rr(owner, TYPE_CNAME, RECORD_TTL, encode_name(answer.cname)))
    else:
        if answer.cname is not None:
            records.append(_rr(owner, TYPE_CNAME, RECORD_TTL, encode_name(answer.cname)))
        if q.qtype in (TYPE_A, TYPE_ANY):
            records += [_rr(owner, TYPE_A, RECORD_TTL, socket.inet_aton(ip)) for ip in answer.a]
        if q.qtype in (TYPE_SRV, TYPE_ANY):
            records += [
                _rr(owner, TYPE_SRV, RECORD_TTL,
                    struct.pack("!HHH", s.priority, s.weight, s.port) + encode_name(s.target))
                for s in answer.srv
            ]
        if name == index.zone and q.qtype in (TYPE_SOA, TYPE_ANY):
            records.append(_rr(owner, TYPE_SOA, SOA_TTL, _soa_rdata(index.zone)))
    authority: list[bytes] = []
    if not records:
        # NXDOMAIN or NODATA: the SOA lets resolvers cache the negative answer.
        authority.append(_rr(encode_name(index.zone), TYPE_SOA, SOA_TTL, _soa_rdata(index.zone)))

    rcode = answer.rcode if answer.rcode in (NOERROR, NXDOMAIN) else RCODE_SERVFAIL
    tc = False
    if limit is not None:
        room = limit - 12 - len(question) - len(opt)
        kept: list[bytes] = []
        for r in records:
            if len(r) > room:
                tc = True
                break
            kept.append(r)
            room -= len(r)
        if tc:
            records, authority = kept, []
    body = b"".join(records) + b"".join(authority)
    return header(rcode, True, tc, 1, len(records), len(authority), 1 if opt else 0) + question + body + opt


# -- server ------------------------------------------------------------------------------------


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: DnsServer) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # The selector loop's UDP transport does not subclass DatagramTransport: trust the loop.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        reply = self.server.answer(data, udp=True)
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)


class DnsServer:
    """Serves one :class:`RecordIndex` (swap it with ``index = ...``) on UDP and TCP."""

    def __init__(self, index: RecordIndex, host: str = "127.0.0.1", port: int = 53) -> None:
        self.index = index
        self.host = host
        self.port = port
        self.queries = 0
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None

    def answer(self, data: bytes, *, udp: bool) -> bytes | None:
        """The reply to one message, or None to drop it (not a query / unparseable header)."""
        self.queries += 1
        try:
            query = parse_query(data)
        except FormatError:
            if len(data) < 12:
                return None
            qid, flags = struct.unpack("!HH", data[:4])
            if flags & 0x8000:
                return None
            return struct.pack("!HHHHHH", qid, 0x8000 | (flags & 0x7900) | RCODE_FORMERR, 0, 0, 0, 0)
        if query.flags & 0x8000:
            return None  # a response: never answer those
        limit = None
        if udp:
            limit = max(UDP_LIMIT, min(query.edns_size or UDP_LIMIT, 4096))
        return build_response(query, self.index, limit)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        # TCP first: with port 0 it picks the port, and UDP binds the same number.
        self._tcp = await asyncio.start_server(self._handle_tcp, self.host, self.port)
        self.port = self._tcp.sockets[0].getsockname()[1]
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _UdpProtocol(self), local_addr=(self.host, self.port)
        )
        self._udp = transport

    async def stop(self) -> None:
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        if self._tcp is not None:
            self._tcp.close()
            await self._tcp.wait_closed()
            self._tcp = None

    async def _handle_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    head = await asyncio.wait_for(reader.readexactly(2), TCP_IDLE_TIMEOUT)
                    (length,) = struct.unpack("!H", head)
                    data = await asyncio.wait_for(reader.readexactly(length), TCP_IDLE_TIMEOUT)
                except (asyncio.IncompleteReadError, TimeoutError, ConnectionError):
                    return
                reply = self.answer(data, udp=False)
                if reply is None:
                    return
                writer.write(struct.pack("!H", len(reply)) + reply)
                await writer.drain()
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


class ClusterDNS:
    """A :class:`DnsServer` fed by Service and EndpointSlice informers."""

    def __init__(
        self,
        client: ApiClient,
        *,
        host: str,
        port: int = 53,
        cluster_domain: str = "cluster.local",
        min_rebuild_interval: float = 0.05,
    ) -> None:
        self.cluster_domain = cluster_domain
        self.server = DnsServer(RecordIndex(cluster_domain), host, port)
        self.services: Informer[Service] = Informer(client, Service)
        self.slices: Informer[EndpointSlice] = Informer(client, EndpointSlice)
        self.min_rebuild_interval = min_rebuild_interval
        self._dirty = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.services.on_event(lambda _k: self._dirty.set())
        self.slices.on_event(lambda _k: self._dirty.set())

    async def start(self) -> None:
        """Bind the sockets, then keep the records current in a background task."""
        await self.server.start()
        self._task = asyncio.create_task(self._run(), name="cluster-dns")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.server.stop()

    def rebuild(self) -> None:
        self.server.index = build_index(self.services.list(), self.slices.list(), self.cluster_domain)

    async def _run(self) -> None:
        self.services.start()
        self.slices.start()
        try:
            await self.services.wait_synced()
            await self.slices.wait_synced()
            while True:
                self._dirty.clear()
                try:
                    self.rebuild()
                except Exception:
                    log.exception("cluster DNS: rebuilding records failed")
                await self._dirty.wait()
                await asyncio.sleep(self.min_rebuild_interval)  # coalesce bursts
        finally:
            await self.services.stop()
            await self.slices.stop()
