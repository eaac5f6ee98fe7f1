"""The cluster DNS server over real UDP and TCP sockets on a free loopback port.

The client below is written with the stdlib only and parses the replies independently of the
server's own encoder (no shared helpers), so a wire-format bug on either side shows.
"""

from __future__ import annotations

import asyncio
import random
import socket
import struct
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest_asyncio

from apimachinery.api.core_v1 import Namespace, Service
from apimachinery.api.discovery_v1 import EndpointSlice
from apimachinery.client.kubeconfig import load_kubeconfig
from apimachinery.client.rest import ApiClient
from nodeagent.dns.records import build_index
from nodeagent.dns.server import ClusterDNS, DnsServer
from tests.fixtures.wait import eventually

A, SOA, SRV = 1, 6, 33


@dataclass
class Reply:
    id: int
    rcode: int
    aa: bool
    tc: bool
    answers: list[tuple[str, int, Any]] = field(default_factory=list)  # (name, type, data)
    authority: list[tuple[str, int, Any]] = field(default_factory=list)


def _name(msg: bytes, off: int) -> tuple[str, int]:
    labels: list[str] = []
    end: int | None = None
    while True:
        n = msg[off]
        if n >= 0xC0:
            end = end if end is not None else off + 2
            off = ((n & 0x3F) << 8) | msg[off + 1]
            continue
        off += 1
        if n == 0:
            return ".".join(labels), end if end is not None else off
        labels.append(msg[off:off + n].decode())
        off += n


def make_query(name: str, qtype: int, *, edns: int | None = None) -> tuple[int, bytes]:
    qid = random.randrange(65536)
    q = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 1 if edns else 0)
    q += b"".join(bytes([len(p)]) + p.encode() for p in name.split(".") if p) + b"\0"
    q += struct.pack("!HH", qtype, 1)
    if edns:
        q += b"\0" + struct.pack("!HHIH", 41, edns, 0, 0)
    return qid, q


def parse_reply(msg: bytes) -> Reply:
    qid, flags, qd, an, ns, _ar = struct.unpack("!HHHHHH", msg[:12])
    off = 12
    for _ in range(qd):
        _, off = _name(msg, off)
        off += 4
    r = Reply(qid, flags & 0xF, bool(flags & 0x0400), bool(flags & 0x0200))
    for section, count in ((r.answers, an), (r.authority, ns)):
        for _ in range(count):
            owner, off = _name(msg, off)
            rtype, _cls, _ttl, rdlen = struct.unpack("!HHIH", msg[off:off + 10])
            off += 10
            rdata = msg[off:off + rdlen]
            data: Any = rdata
            if rtype == A:
                data = socket.inet_ntoa(rdata)
            elif rtype == SRV:
                prio, weight, port = struct.unpack("!HHH", rdata[:6])
                data = (prio, weight, port, _name(msg, off + 6)[0])
            elif rtype == SOA:
                data = _name(msg, off)[0]
            section.append((owner, rtype, data))
            off += rdlen
    return r


async def udp_query(port: int, name: str, qtype: int = A, *, edns: int | None = None) -> Reply:
    qid, q = make_query(name, qtype, edns=edns)
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setblocking(False)
    try:
        await loop.sock_connect(sock, ("127.0.0.1", port))
        await loop.sock_sendall(sock, q)
        data = await asyncio.wait_for(loop.sock_recv(sock, 65535), 10)
    finally:
        sock.close()
    r = parse_reply(data)
    assert r.id == qid
    return r


async def tcp_query(port: int, names: list[tuple[str, int]]) -> list[Reply]:
    """Several queries over one TCP connection (length-prefixed)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    out = []
    try:
        for name, qtype in names:
            qid, q = make_query(name, qtype)
            writer.write(struct.pack("!H", len(q)) + q)
            await writer.drain()
            (length,) = struct.unpack("!H", await asyncio.wait_for(reader.readexactly(2), 10))
            r = parse_reply(await reader.readexactly(length))
            assert r.id == qid
            out.append(r)
    finally:
        writer.close()
        await writer.wait_closed()
    return out


def objects() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    services: list[dict[str, Any]] = [
        {"metadata": {"name": "web", "namespace": "default"},
         "spec": {"clusterIP": "10.96.0.10", "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}},
        {"metadata": {"name": "db", "namespace": "default"},
         "spec": {"clusterIP": "None", "ports": [{"name": "pg", "port": 5432}]}},
        {"metadata": {"name": "big", "namespace": "default"}, "spec": {"clusterIP": "None"}},
    ]
    slices: list[dict[str, Any]] = [
        {"metadata": {"name": "db-1", "namespace": "default", "labels": {"kubernetes.io/service-name": "db"}},
         "addressType": "IPv4",
         "endpoints": [{"addresses": ["10.1.0.2"]}, {"addresses": ["10.1.0.3"], "hostname": "db-0"}],
         "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}]},
        {"metadata": {"name": "big-1", "namespace": "default", "labels": {"kubernetes.io/service-name": "big"}},
         "addressType": "IPv4",
         "endpoints": [{"addresses": [f"10.2.{i // 250}.{i % 250 + 1}"]} for i in range(60)],
         "ports": []},
    ]
    return services, slices


@pytest_asyncio.fixture(loop_scope="session")
async def dns() -> AsyncIterator[DnsServer]:
    services, slices = objects()
    server = DnsServer(build_index(services, slices), "127.0.0.1", 0)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def test_a_records(dns: DnsServer) -> None:
    r = await udp_query(dns.port, "web.default.svc.cluster.local")
    assert (r.rcode, r.aa) == (0, True)
    assert r.answers == [("web.default.svc.cluster.local", A, "10.96.0.10")]


async def test_headless_multi_a_and_srv(dns: DnsServer) -> None:
    r = await udp_query(dns.port, "db.default.svc.cluster.local")
    assert sorted(d for _, t, d in r.answers if t == A) == ["10.1.0.2", "10.1.0.3"]
    r = await udp_query(dns.port, "_pg._tcp.db.default.svc.cluster.local", SRV)
    assert sorted(d for _, t, d in r.answers) == [
        (0, 100, 5432, "10-1-0-2.db.default.svc.cluster.local"),
        (0, 100, 5432, "db-0.db.default.svc.cluster.local"),
    ]
    r = await udp_query(dns.port, "_http._tcp.web.default.svc.cluster.local", SRV)
    assert [d for _, _, d in r.answers] == [(0, 100, 80, "web.default.svc.cluster.local")]
    r = await udp_query(dns.port, "db-0.db.default.svc.cluster.local")
    assert [d for _, _, d in r.answers] == ["10.1.0.3"]


async def test_nxdomain_nodata_soa_and_refused(dns: DnsServer) -> None:
    r = await udp_query(dns.port, "missing.default.svc.cluster.local")
    assert r.rcode == 3 and not r.answers
    assert [(n, t) for n, t, _ in r.authority] == [("cluster.local", SOA)]
    # A name that exists without A records (SRV only): NOERROR, no answers, SOA in authority.
    r = await udp_query(dns.port, "_http._tcp.web.default.svc.cluster.local", A)
    assert r.rcode == 0 and not r.answers and r.authority[0][1] == SOA
    r = await udp_query(dns.port, "cluster.local", SOA)
    assert r.rcode == 0 and r.answers[0][:2] == ("cluster.local", SOA)
    assert r.answers[0][2] == "ns.dns.cluster.local"
    # Outside the cluster domain: refused, not forwarded (no external network here).
    r = await udp_query(dns.port, "example.com")
    assert r.rcode == 5 and not r.answers and not r.aa


async def test_udp_truncation_then_tcp(dns: DnsServer) -> None:
    r = await udp_query(dns.port, "big.default.svc.cluster.local")
    assert r.tc and len(r.answers) < 60
    (full,) = await tcp_query(dns.port, [("big.default.svc.cluster.local", A)])
    assert not full.tc and len(full.answers) == 60
    # A client announcing a large EDNS0 buffer gets everything over UDP.
    r = await udp_query(dns.port, "big.default.svc.cluster.local", edns=4096)
    assert not r.tc and len(r.answers) == 60
    # Several queries on one TCP connection.
    replies = await tcp_query(dns.port, [("web.default.svc.cluster.local", A), ("nope.cluster.local", A)])
    assert [x.rcode for x in replies] == [0, 3]


async def test_garbage_is_formerr_not_a_crash(dns: DnsServer) -> None:
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setblocking(False)
    try:
        await loop.sock_connect(sock, ("127.0.0.1", dns.port))
        await loop.sock_sendall(sock, struct.pack("!HHHHHH", 7, 0x0100, 1, 0, 0, 0) + b"\x05ab")
        data = await asyncio.wait_for(loop.sock_recv(sock, 512), 10)
    finally:
        sock.close()
    assert struct.unpack("!H", data[:2])[0] == 7 and data[3] & 0xF == 1
    r = await udp_query(dns.port, "web.default.svc.cluster.local")
    assert r.answers


async def test_cluster_dns_follows_the_api(apiserver: Any) -> None:
    ns = f"dns-{uuid.uuid4().hex[:6]}"
    async with ApiClient(load_kubeconfig(apiserver.kubeconfig)) as client:
        await client.create_object(Namespace.model_validate({"metadata": {"name": ns}}))
        cdns = ClusterDNS(client, host="127.0.0.1", port=0)
        await cdns.start()
        try:
            name = f"api.{ns}.svc.cluster.local"
            await client.create_object(Service.model_validate(
                {"metadata": {"name": "api", "namespace": ns},
                 "spec": {"clusterIP": "None", "ports": [{"name": "h", "port": 80}]}}))
            await client.create_object(EndpointSlice.model_validate(
                {"metadata": {"name": "api-1", "namespace": ns, "labels": {"kubernetes.io/service-name": "api"}},
                 "addressType": "IPv4", "endpoints": [{"addresses": ["10.3.0.5"]}],
                 "ports": [{"name": "h", "port": 8080, "protocol": "TCP"}]}))

            async def answers() -> list[str]:
                r = await udp_query(cdns.server.port, name)
                return [d for _, _, d in r.answers]

            assert await eventually(answers, "headless record published") == ["10.3.0.5"]
        finally:
            await cdns.stop()
            await client.delete(client.scheme.for_model(Namespace), ns)
