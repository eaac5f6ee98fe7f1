"""Zero-downtime rollouts through a ClusterIP Service, and how fast endpoint changes reach nftables.

A 2-node lab (``labctl up``: the control plane on the host, each node a network namespace with
its own native node agent, host-gw pod network, service proxy and DNS) runs a Deployment of 5
busybox ``httpd`` replicas with a readiness probe, behind a ClusterIP Service. The Deployment
rolls with ``maxSurge: 1, maxUnavailable: 0`` and each pod has a ``preStop`` sleep, as
Kubernetes users do so that endpoint removal reaches every proxy before the server gets SIGTERM.

A client inside the cluster (a process in the first node's network namespace: its connections
go through that node's proxy rules, like a pod's) sends requests through the ClusterIP from a
few threads, a new TCP connection per request (the hard case: each connection is a fresh DNAT
decision), while the Deployment's template is changed twice, each time waiting until the
rollout is complete and the old pods are gone. Every request that does not return
``200 OK`` with the expected body counts as failed. Goal: 0 failed of >= 5,000.

Endpoint propagation: the bench watches the namespace's EndpointSlices itself and records, for
every change, the slice's resourceVersion and the wall-clock time its watch delivered it. Each
node agent's proxier logs, for every slice change it applied, the same (key, resourceVersion)
and the time ``nft -f`` returned (the rule is in the kernel then). Matching the two gives
watch-to-rule latency per node (p50/p99, goal p99 <= 100 ms); the proxier's own
seen-to-applied time is reported next to it. At the end the bench lists each node's table and
checks it routes exactly the ready endpoints.

Run as root:  python3 bench/rollout.py [--threads 4] [--min-requests 5000] [--keep]
Prints a readable report; the last line is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from apimachinery.api.apps_v1 import Deployment
from apimachinery.api.core_v1 import Namespace, Pod, Service
from apimachinery.api.discovery_v1 import EndpointSlice
from apimachinery.client import ApiClient, Informer, load_kubeconfig
from deploy.labctl.lab import Lab
from deploy.labctl.main import main as labctl
from nodeagent.agent.podnet import table_suffix
from nodeagent.proxy.rules import table_name

APP = "rollout-web"
PRESTOP_SECONDS = 2
LATENCY_LINE = re.compile(r"endpointslice (\S+) rv=(\S+) seen=([\d.]+) applied=([\d.]+) changed=([01])")


# ------------------------------------------------------------------ the client (in a node netns)


@dataclass
class ClientResult:
    ok: int = 0
    failed: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    first_failures: list[str] = field(default_factory=list)
    versions: Counter[str] = field(default_factory=Counter)


class RequestFailed(Exception):
    """A request failed; the message says in which phase, from which local port, after how long."""


def one_request(host: str, port: int, timeout: float) -> str:
    """One HTTP/1.0 GET on a new connection; the version the page names. Raises on failure."""
    started, phase, local = time.monotonic(), "connect", "?"
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            local = str(s.getsockname()[1])
            phase = "send"
            s.sendall(b"GET / HTTP/1.0\r\nHost: web\r\n\r\n")
            phase = "read"
            chunks = []
            while True:
                data = s.recv(4096)
                if not data:
                    break
                chunks.append(data)
    except OSError as exc:
        raise RequestFailed(f"{type(exc).__name__} in {phase} (local port {local}) after "
                            f"{time.monotonic() - started:.2f}s: {exc}") from exc
    body = b"".join(chunks).decode(errors="replace")
    if not body.startswith("HTTP/1.") or " 200 " not in body.split("\r\n", 1)[0]:
        raise ValueError(f"bad response: {body[:80]!r}")
    match = re.search(r"version (\S+)", body)
    if match is None:
        raise ValueError(f"unexpected body: {body[-80:]!r}")
    return match.group(1)


def run_client(host: str, port: int, threads: int, rate: float, timeout: float) -> None:
    """Request at ``rate``/s in all (each thread on its own schedule, catching up when late)
    until stdin closes; then print one JSON summary. Runs in the node's netns."""
    stop = threading.Event()
    results = [ClientResult() for _ in range(threads)]
    period = threads / rate

    def loop(r: ClientResult) -> None:
        next_at = time.monotonic()
        while not stop.is_set():
            delay = next_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            next_at += period
            at = time.time()
            try:
                r.versions[one_request(host, port, timeout)] += 1
                r.ok += 1
            except Exception as exc:  # every kind of failure is a data point
                r.failed += 1
                kind = type(exc.__cause__ or exc).__name__
                r.errors[kind] += 1
                if len(r.first_failures) < 10:
                    r.first_failures.append(f"{at:.3f} {kind}: {exc}")

    workers = [threading.Thread(target=loop, args=(r,), daemon=True) for r in results]
    for w in workers:
        w.start()
    print("started", flush=True)
    sys.stdin.read()  # the bench closes stdin to stop us
    stop.set()
    for w in workers:
        w.join()
    total = ClientResult()
    for r in results:
        total.ok += r.ok
        total.failed += r.failed
        total.errors.update(r.errors)
        total.first_failures += r.first_failures
        total.versions.update(r.versions)
    print(json.dumps({"ok": total.ok, "failed": total.failed, "errors": dict(total.errors),
                      "first_failures": sorted(total.first_failures)[:20], "versions": dict(total.versions)}))


class ClientProcess:
    """``python3 bench/rollout.py --client`` inside a node's network namespace."""

    def __init__(self, netns: str, host: str, port: int, threads: int, rate: float) -> None:
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", netns, sys.executable, __file__, "--client", host, str(port), str(threads),
             str(rate)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        if self.proc.stdout.readline().strip() != "started":
            raise RuntimeError("the client did not start")
        self.started = time.time()

    def finish(self) -> dict[str, Any]:
        out, _ = self.proc.communicate(timeout=60)
        result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
        result["seconds"] = time.time() - self.started
        return result

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


# ------------------------------------------------------------------ the cluster side


def deployment(version: int, replicas: int) -> dict[str, Any]:
    script = ("mkdir -p /www && echo \"version $VERSION from $(hostname)\" > /www/index.html"
              " && exec httpd -f -p 8080 -h /www")
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": APP},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": APP}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {
                "metadata": {"labels": {"app": APP}},
                "spec": {
                    "terminationGracePeriodSeconds": PRESTOP_SECONDS + 5,
                    "containers": [{
                        "name": "web", "image": "busybox:latest", "imagePullPolicy": "IfNotPresent",
                        "command": ["sh", "-c", script],
                        "env": [{"name": "VERSION", "value": str(version)}],
                        "readinessProbe": {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 1},
                        # Kubernetes' advice: keep serving until every proxy dropped the endpoint.
                        "lifecycle": {"preStop": {"sleep": {"seconds": PRESTOP_SECONDS}}},
                    }],
                },
            },
        },
    }


def service() -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": APP},
            "spec": {"selector": {"app": APP}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}}


async def wait_for(cond: Any, what: str, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = await cond()
        if got:
            return got
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        await asyncio.sleep(0.25)


async def rollout_done(client: ApiClient, ns: str, version: int, replicas: int) -> bool:
    """Every pod of the Deployment runs ``version``, is Ready, and no other pod is left."""
    d = await client.get(client.resource(Deployment), APP, ns)
    st = d.get("status") or {}
    if st.get("observedGeneration", 0) < d["metadata"].get("generation", 0):
        return False
    if st.get("updatedReplicas") != replicas or st.get("availableReplicas") != replicas:
        return False
    pods = (await client.list(client.resource(Pod), ns, label_selector=f"app={APP}"))["items"]
    if len(pods) != replicas:
        return False
    for p in pods:
        env = p["spec"]["containers"][0].get("env") or []
        ready = any(c["type"] == "Ready" and c["status"] == "True" for c in (p.get("status") or {}).get("conditions") or [])
        if env != [{"name": "VERSION", "value": str(version)}] or not ready:
            return False
    return True


def ready_endpoint_ips(slices: list[EndpointSlice]) -> set[str]:
    return {a for es in slices for ep in es.endpoints if ep.conditions.ready is not False for a in ep.addresses}


def nft_table(netns: str, node: str) -> str:
    return subprocess.run(["ip", "netns", "exec", netns, "nft", "list", "table", "ip", table_name(table_suffix(node))],
                          capture_output=True, text=True, check=False).stdout


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[int(rank) - 1]


def ms(v: float | None) -> float | None:
    return None if v is None else round(v * 1000, 1)


@dataclass
class SliceSeen:
    events: dict[tuple[str, str], float] = field(default_factory=dict)  # (key, rv) -> wall time


def propagation(lab: Lab, nodes: list[str], ns: str, seen: SliceSeen, since: float) -> dict[str, Any]:
    """Per node: watch-to-rule (bench's watch time -> nft applied) and the proxier's own time."""
    out: dict[str, Any] = {}
    for node in nodes:
        watch_to_rule: list[float] = []
        inside: list[float] = []
        log = (lab.log_dir / f"{node}.log").read_text(errors="replace")
        unchanged = 0
        for m in LATENCY_LINE.finditer(log):
            key, rv, agent_seen, applied = m.group(1), m.group(2), float(m.group(3)), float(m.group(4))
            if not key.startswith(f"{ns}/") or agent_seen < since:
                continue
            if m.group(5) == "0":  # the rules came out the same: nothing to wait for
                unchanged += 1
                continue
            inside.append(applied - agent_seen)
            bench_seen = seen.events.get((key, rv))
            if bench_seen is not None:
                watch_to_rule.append(applied - bench_seen)
        out[node] = {"changes": len(inside), "matched": len(watch_to_rule), "no_rule_change": unchanged,
                     "watch_to_rule_p50_ms": ms(percentile(watch_to_rule, 50)),
                     "watch_to_rule_p99_ms": ms(percentile(watch_to_rule, 99)),
                     "watch_to_rule_max_ms": ms(max(watch_to_rule, default=None)),
                     "proxier_p50_ms": ms(percentile(inside, 50)), "proxier_p99_ms": ms(percentile(inside, 99)),
                     "samples": watch_to_rule}
    return out


async def diagnose(client: ApiClient, ns: str, lab: Lab, nodes: list[str]) -> None:
    """What the pods look like and what the agents said last, after something timed out."""
    with contextlib.suppress(Exception):
        for p in (await client.list(client.resource(Pod), ns))["items"]:
            st = p.get("status") or {}
            conds = {c["type"]: c["status"] for c in st.get("conditions") or []}
            say(f"  pod {p['metadata']['name']} on {p['spec'].get('nodeName')}: {st.get('phase')} "
                f"ready={conds.get('Ready')} ip={st.get('podIP')} deleting={bool(p['metadata'].get('deletionTimestamp'))}")
    for node in nodes:
        with contextlib.suppress(OSError):
            tail = (lab.log_dir / f"{node}.log").read_text(errors="replace").splitlines()[-15:]
            say(f"  last lines of {node}'s log:\n    " + "\n    ".join(tail))


async def bench(lab: Lab, args: argparse.Namespace) -> dict[str, Any]:
    state = lab.load()
    nodes = sorted(state.nodes.values(), key=lambda n: n.index)
    async with ApiClient(load_kubeconfig(lab.kubeconfig)) as client:
        ns = f"rollout-{uuid.uuid4().hex[:6]}"
        await client.create(client.resource(Namespace), {"apiVersion": "v1", "kind": "Namespace",
                                                         "metadata": {"name": ns}})
        seen = SliceSeen()
        slices: Informer[EndpointSlice] = Informer(client, EndpointSlice, namespace=ns)

        def record(key: str) -> None:
            # The informer records the event's resourceVersion before calling handlers.
            seen.events.setdefault((key, slices.last_resource_version), time.time())

        slices.on_event(record)
        slices.start()
        try:
            svc = await client.create(client.resource(Service), service(), ns)
            cluster_ip = svc["spec"]["clusterIP"]
            await client.create(client.resource(Deployment), deployment(1, args.replicas), ns)
            t0 = time.monotonic()
            await wait_for(lambda: rollout_done(client, ns, 1, args.replicas), "5 ready replicas", 180)
            say(f"{args.replicas} replicas ready in {time.monotonic() - t0:.1f}s; "
                f"Service {APP} at {cluster_ip}:80; client in {nodes[0].netns}, {args.threads} threads, "
                f"{args.rate:.0f} requests/s, a new connection each")
            async def all_endpoints() -> bool:
                return len(ready_endpoint_ips(slices.list())) == args.replicas

            await wait_for(all_endpoints, "5 ready endpoints", 60)
            load_before = os.getloadavg()[0]
            client_proc = ClientProcess(nodes[0].netns, cluster_ip, 80, args.threads, args.rate)
            try:
                since = time.time()
                await asyncio.sleep(2)  # a baseline before the first roll
                rolls = []
                for version in range(2, 2 + args.rolls):
                    t = time.monotonic()
                    await client.patch(client.resource(Deployment), APP, {"spec": {"template": {"spec": {
                        "containers": [{"name": "web", "env": [{"name": "VERSION", "value": str(version)}]}]}}}},
                        patch_type="strategic", namespace=ns)
                    await wait_for(lambda v=version: rollout_done(client, ns, v, args.replicas),  # type: ignore[misc]
                                   f"rollout to version {version}", 300)
                    rolls.append(time.monotonic() - t)
                    say(f"rollout to version {version} complete in {rolls[-1]:.1f}s")
                    await asyncio.sleep(1)
                result = await asyncio.to_thread(client_proc.finish)
                load_after = os.getloadavg()[0]
            finally:
                client_proc.kill()
            await asyncio.sleep(0.5)
            ready = ready_endpoint_ips(slices.list())
            tables_ok = {}
            for n in nodes:
                text = await asyncio.to_thread(nft_table, n.netns, n.name)
                routed = set(re.findall(r"dnat to (\d+\.\d+\.\d+\.\d+):8080", text))
                tables_ok[n.name] = routed == ready
            prop = propagation(lab, [n.name for n in nodes], ns, seen, since)
        except TimeoutError:
            await diagnose(client, ns, lab, [n.name for n in nodes])
            raise
        finally:
            await slices.stop()
            with contextlib.suppress(Exception):
                await client.delete(client.resource(Namespace), ns)
    return {"client": result, "rolls_s": rolls, "tables_route_ready_endpoints": tables_ok, "propagation": prop,
            "load": (load_before, load_after)}


def say(msg: str) -> None:
    print(msg, flush=True)


def report(r: dict[str, Any], min_requests: int) -> dict[str, Any]:
    c = r["client"]
    total = c["ok"] + c["failed"]
    say("")
    say(f"requests through the ClusterIP: {total} in {c['seconds']:.1f}s ({total / c['seconds']:.0f}/s), "
        f"failed: {c['failed']}  (goal: 0 of >= {min_requests})")
    say(f"responses by version: {c['versions']}")
    if c["failed"]:
        say(f"errors: {c['errors']}")
        for line in c["first_failures"]:
            say(f"  {line}")
    say(f"rollouts took: {', '.join(f'{s:.1f}s' for s in r['rolls_s'])}; machine load average "
        f"{r['load'][0]:.1f} before, {r['load'][1]:.1f} after ({os.cpu_count()} CPUs, shared)")
    all_samples: list[float] = []
    for node, p in r["propagation"].items():
        all_samples += p.pop("samples")
        say(f"{node}: {p['changes']} slice changes that changed the rules ({p['no_rule_change']} more did not), "
            f"{p['matched']} matched to the bench's watch; "
            f"watch->nft p50 {p['watch_to_rule_p50_ms']} ms, p99 {p['watch_to_rule_p99_ms']} ms, "
            f"max {p['watch_to_rule_max_ms']} ms; inside the proxier p50 {p['proxier_p50_ms']} ms, "
            f"p99 {p['proxier_p99_ms']} ms")
    p50, p99 = ms(percentile(all_samples, 50)), ms(percentile(all_samples, 99))
    say(f"endpoint change -> rule in nftables, all nodes: p50 {p50} ms, p99 {p99} ms (goal p99 <= 100 ms)")
    say(f"final tables route exactly the ready endpoints: {r['tables_route_ready_endpoints']}")
    return {
        "requests": total, "failed": c["failed"], "requests_per_s": round(total / c["seconds"], 1),
        "errors": c["errors"], "rolls": len(r["rolls_s"]), "roll_seconds": [round(s, 1) for s in r["rolls_s"]],
        "endpoint_to_nft_p50_ms": p50, "endpoint_to_nft_p99_ms": p99, "endpoint_changes": len(all_samples),
        "per_node": r["propagation"], "tables_ok": all(r["tables_route_ready_endpoints"].values()),
        "load_average": [round(x, 1) for x in r["load"]],
        "goal_zero_failures": c["failed"] == 0 and total >= min_requests,
        "goal_p99_100ms": p99 is not None and p99 <= 100,
    }


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--client":
        run_client(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]), timeout=5.0)
        return
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--replicas", type=int, default=5)
    p.add_argument("--rolls", type=int, default=2)
    p.add_argument("--threads", type=int, default=4, help="client threads (one connection per request each)")
    p.add_argument("--rate", type=float, default=400.0,
                   help="requests/s in all (paced: a saturating client would starve the agents on 2 cores)")
    p.add_argument("--min-requests", type=int, default=5000)
    p.add_argument("--keep", action="store_true", help="leave the lab up (labctl down --name ... removes it)")
    args = p.parse_args()
    name = f"ro{uuid.uuid4().hex[:6]}"
    state_dir = Path(tempfile.mkdtemp(prefix="kl-bench-rollout-"))
    lab = Lab(name, state_dir)
    common = ["--name", name, "--state-dir", str(state_dir)]
    try:
        labctl(["up", *common, "--nodes", "2"])
        result = asyncio.run(bench(lab, args))
    except SystemExit as exc:
        raise SystemExit(f"rollout bench: labctl failed ({exc.code}); logs in {state_dir}") from None
    finally:
        if not args.keep:
            with contextlib.suppress(SystemExit):
                labctl(["down", *common])
            with contextlib.suppress(OSError):
                state_dir.rmdir()
    figures = report(result, args.min_requests)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
