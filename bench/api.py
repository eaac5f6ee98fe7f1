"""API write throughput and latency, next to raw etcd puts through the same etcd client library.

One etcd (Debian's, started here in a temp dir) serves both: first raw puts of the same bytes
the API would store, with the same client library the API server uses (aetcd), then the API
server (started as `controlplane --etcd-servers ...`) taking creates and updates over HTTPS from
concurrent clients. Both are measured twice: closed loop (as fast as C concurrent clients go:
throughput) and open loop at a fixed offered load (default 200 writes/s: latency p50/p99).

    python3 bench/api.py [--seconds 5] [--concurrency 16] [--processes 2] [--rate 200]

Prints a readable report, then one JSON line with every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import json
import multiprocessing
import os
import shutil
import ssl
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from controlplane.storage.embedded import EmbeddedEtcd
from controlplane.storage.etcd import EtcdStore
from tests.fixtures.apiserver import ControlPlaneProcess

Op = Callable[[int], Awaitable[None]]


def configmap(name: str, i: int) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "bench",
            "labels": {"app": "bench", "shard": str(i % 8)}},
            "data": {"index": str(i), "payload": "x" * 256}}


def cpu_seconds(pid: int) -> float:
    """User+system CPU a process has used so far (from /proc), to report CPU per write."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


async def closed_loop(op: Op, seconds: float, concurrency: int) -> tuple[float, list[float], int]:
    """C workers issue ops back to back; returns (ops/s, latencies ms, errors)."""
    lat: list[float] = []
    errors = 0
    counter = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal counter, errors
        while time.perf_counter() < deadline:
            counter += 1
            i = counter
            t0 = time.perf_counter()
            try:
                await op(i)
            except Exception:
                errors += 1
                continue
            lat.append((time.perf_counter() - t0) * 1000)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return len(lat) / (time.perf_counter() - t0), lat, errors


def _closed_worker(kind: str, target: dict[str, Any], seconds: float, concurrency: int, tag: str) -> tuple[int, int]:
    """One load-generator process: (ops done, errors). Several run at once so the client side
    is not what limits either peer (one Python client process tops out below the server)."""

    async def run() -> tuple[int, int]:
        if kind == "etcd":
            store = await EtcdStore.connect([target["url"]])
            value = json.dumps(configmap("x", 0), separators=(",", ":")).encode()

            async def op(i: int) -> None:
                await store.put(f"/bench-raw/{tag}/{i}", value)

            try:
                _, lat, err = await closed_loop(op, seconds, concurrency)
            finally:
                await store.close()
            return len(lat), err
        ctx = ssl.create_default_context(cafile=target["ca"])
        headers = {"Authorization": f"Bearer {target['token']}", "Content-Type": "application/json"}
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx, limit=concurrency * 2),
                                         headers=headers) as session:
            base = target["url"] + "/api/v1/namespaces/bench/configmaps"
            n_upd = target["n_upd"]

            async def op(i: int) -> None:
                if kind == "create":
                    method, url, body, ok = "POST", base, configmap(f"{tag}-{i}", i), 201
                else:
                    name = f"u-{(i * 7 + hash(tag)) % n_upd}"
                    method, url, body, ok = "PUT", f"{base}/{name}", configmap(name, i), 200
                async with session.request(method, url, data=json.dumps(body)) as r:
                    await r.read()
                    if r.status != ok:
                        raise RuntimeError(f"{method} {url}: {r.status}")

            _, lat, err = await closed_loop(op, seconds, concurrency)
            return len(lat), err

    return asyncio.run(run())


async def multi_process_throughput(
    kind: str, target: dict[str, Any], seconds: float, concurrency: int, processes: int
) -> tuple[float, int]:
    loop = asyncio.get_running_loop()
    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(processes, mp_context=ctx) as pool:
        futs = [loop.run_in_executor(pool, _closed_worker, kind, target, seconds, concurrency,
                                     f"{kind}{p}-{uuid.uuid4().hex[:6]}") for p in range(processes)]
        done = await asyncio.gather(*futs)
    ops = sum(d[0] for d in done)
    # Each worker counts only inside its own measured window (process start-up excluded).
    return ops / seconds, sum(d[1] for d in done)


async def open_loop(op: Op, seconds: float, rate: float) -> tuple[float, list[float], int]:
    """Ops started on a fixed schedule (rate/s) whatever the server does; latency from schedule."""
    lat: list[float] = []
    errors = 0
    n = int(seconds * rate)
    start = time.perf_counter() + 0.05

    async def one(i: int) -> None:
        nonlocal errors
        scheduled = start + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        try:
            await op(i)
        except Exception:
            errors += 1
            return
        # Measured from when the op was due, so a backlog on our side counts against us.
        lat.append((time.perf_counter() - scheduled) * 1000)

    t0 = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    return len(lat) / (time.perf_counter() - t0), lat, errors


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="kl-bench-api-"))
    etcd = EmbeddedEtcd(tmp / "etcd")
    cp: ControlPlaneProcess | None = None
    results: dict[str, Any] = {}
    try:
        url = await etcd.start()
        store = await EtcdStore.connect([url])
        run = uuid.uuid4().hex[:6]
        value = json.dumps(configmap("x", 0), separators=(",", ":")).encode()

        async def raw_put(i: int) -> None:
            await store.put(f"/bench-raw/{run}/{i}", value)

        print(f"raw etcd puts (aetcd, same client library as the API server), {args.processes} client processes...",
              flush=True)
        assert etcd.pid is not None
        cpu0 = cpu_seconds(etcd.pid)
        tput, err = await multi_process_throughput("etcd", {"url": url}, args.seconds, args.concurrency, args.processes)
        results["etcd_put_per_s"] = round(tput, 1)
        results["etcd_cpu_ms_per_put"] = round((cpu_seconds(etcd.pid) - cpu0) * 1000 / max(1, tput * args.seconds), 3)
        _, lat, err2 = await open_loop(raw_put, args.seconds, args.rate)
        results["etcd_put_p50_ms"] = round(pct(lat, 50), 2)
        results["etcd_put_p99_ms"] = round(pct(lat, 99), 2)
        results["etcd_errors"] = err + err2
        await store.close()

        cp = ControlPlaneProcess(tmp / "cp", extra_args=["apiserver", "--etcd-servers", url])
        await asyncio.to_thread(cp.start)
        connector = aiohttp.TCPConnector(ssl=cp.ssl_context(), limit=args.concurrency * 2)
        headers = {"Authorization": f"Bearer {cp.token}", "Content-Type": "application/json"}
        async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
            async def call(method: str, path: str, body: dict[str, Any], ok: int) -> None:
                async with session.request(method, cp.url + path, data=json.dumps(body)) as r:
                    await r.read()
                    if r.status != ok:
                        raise RuntimeError(f"{method} {path}: {r.status}")

            await call("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                      "metadata": {"name": "bench"}}, 201)
            base = "/api/v1/namespaces/bench/configmaps"

            def create_op(tag: str) -> Op:
                async def op(i: int) -> None:
                    await call("POST", base, configmap(f"{tag}-{i}", i), 201)
                return op

            target = {"url": cp.url, "ca": str(cp.ca_file), "token": cp.token, "n_upd": 0}
            print("API creates (closed loop)...", flush=True)
            assert cp.proc is not None
            cpu0 = cpu_seconds(cp.proc.pid)
            tput, err = await multi_process_throughput("create", target, args.seconds, args.concurrency, args.processes)
            results["api_create_per_s"] = round(tput, 1)
            results["apiserver_cpu_ms_per_create"] = round(
                (cpu_seconds(cp.proc.pid) - cpu0) * 1000 / max(1, tput * args.seconds), 3)
            results["api_errors"] = err

            # Updates: unconditional PUTs over a fixed set of objects, spread so writers rarely collide.
            n_upd = max(args.concurrency * 4, 64)
            for i in range(n_upd):
                await call("POST", base, configmap(f"u-{i}", i), 201)

            async def update_op(i: int) -> None:
                body = configmap(f"u-{i % n_upd}", i)
                await call("PUT", f"{base}/u-{i % n_upd}", body, 200)

            print("API updates (closed loop)...", flush=True)
            target["n_upd"] = n_upd
            tput, err = await multi_process_throughput("update", target, args.seconds, args.concurrency, args.processes)
            results["api_update_per_s"] = round(tput, 1)
            results["api_errors"] += err

            print(f"API creates and updates at a fixed {args.rate:g} writes/s (open loop)...", flush=True)
            _, lat, err = await open_loop(create_op("o"), args.seconds, args.rate)
            results["api_create_p50_ms"] = round(pct(lat, 50), 2)
            results["api_create_p99_ms"] = round(pct(lat, 99), 2)
            _, lat_u, err2 = await open_loop(update_op, args.seconds, args.rate)
            results["api_update_p50_ms"] = round(pct(lat_u, 50), 2)
            results["api_update_p99_ms"] = round(pct(lat_u, 99), 2)
            results["api_errors"] += err + err2
            results["mutating_p99_ms"] = round(pct(lat + lat_u, 99), 2)
            results["mutating_mean_ms"] = round(statistics.fmean(lat + lat_u), 2) if lat + lat_u else None
    finally:
        if cp is not None:
            cp.stop()
        await etcd.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    results["create_vs_etcd_ratio"] = round(results["api_create_per_s"] / results["etcd_put_per_s"], 3)
    results["update_vs_etcd_ratio"] = round(results["api_update_per_s"] / results["etcd_put_per_s"], 3)
    results["offered_rate_per_s"] = args.rate
    results["concurrency"] = args.concurrency
    results["client_processes"] = args.processes
    return results


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--rate", type=float, default=200.0)
    p.add_argument("--processes", type=int, default=2, help="load-generator processes for the throughput runs")
    args = p.parse_args()
    r = asyncio.run(bench(args))
    print()
    print("kube-lite API write benchmark")
    print(f"  raw etcd puts       {r['etcd_put_per_s']:>9.1f} /s   p50 {r['etcd_put_p50_ms']:.2f} ms   "
          f"p99 {r['etcd_put_p99_ms']:.2f} ms at {args.rate:g}/s")
    print(f"  API creates         {r['api_create_per_s']:>9.1f} /s   ({r['create_vs_etcd_ratio']:.0%} of raw etcd)")
    print(f"  API updates         {r['api_update_per_s']:>9.1f} /s   ({r['update_vs_etcd_ratio']:.0%} of raw etcd)")
    print(f"  at {args.rate:g} writes/s:  create p50 {r['api_create_p50_ms']:.2f} ms  p99 {r['api_create_p99_ms']:.2f} ms; "
          f"update p50 {r['api_update_p50_ms']:.2f} ms  p99 {r['api_update_p99_ms']:.2f} ms")
    print(f"  CPU per write: API server {r['apiserver_cpu_ms_per_create']:.3f} ms/create, "
          f"etcd {r['etcd_cpu_ms_per_put']:.3f} ms/put (2 cores shared by etcd, server and load generators)")
    print(f"  goal: API >= 50% of raw etcd throughput, mutating p99 <= 50 ms at 200/s; errors: {r['api_errors']}")
    print(json.dumps(r))


if __name__ == "__main__":
    main()
