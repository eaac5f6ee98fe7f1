"""The control plane process: PKI, tokens, etcd (embedded or external), watch cache, API server.

Start order matters: etcd first (the API is useless without it), then the watch cache (lists
and watches are served from it), then the HTTPS listener, and only then the admin kubeconfig
is written, so a kubeconfig on disk always points at a server that answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from apimachinery import errors
from apimachinery.client.kubeconfig import write_kubeconfig
from apimachinery.scheme import default_scheme
from controlplane.apiserver.app import ApiServerState, build_app
from controlplane.apiserver.authn import TokenAuthenticator, ensure_token_file
from controlplane.apiserver.authz.bootstrap import ensure_bootstrap_policy
from controlplane.apiserver.authz.chain import Authorizer
from controlplane.apiserver.authz.escalation import RbacEscalation
from controlplane.apiserver.body import HTTP_LIMITS
from controlplane.apiserver.bootstraptoken import BootstrapTokenAuthenticator
from controlplane.apiserver.certs import default_sans, ensure_agent_client_cert, ensure_pki
from controlplane.apiserver.nodeproxy import NODE_PROXY_KEY, NodeProxy
from controlplane.apiserver.satoken import (
    ServiceAccountTokenAuthenticator,
    TokenSigner,
    cache_lookup,
    ensure_signing_key,
)
from controlplane.apiserver.tokenrequest import TOKEN_REQUESTS_KEY, TokenRequestHandler
from controlplane.credentials import ensure_component_kubeconfigs
from controlplane.registry.admission import AdmissionConfig
from controlplane.registry.clusterinfo import ensure_cluster_info
from controlplane.registry.kubernetes_service import ensure_kubernetes_service
from controlplane.registry.servicealloc import ServiceAllocator
from controlplane.registry.store import Store
from controlplane.registry.watchcache import WatchCache
from controlplane.storage.compactor import run_compactor
from controlplane.storage.embedded import EmbeddedEtcd
from controlplane.storage.etcd import EtcdStore

log = logging.getLogger(__name__)

# Namespaces every Kubernetes cluster has from the start.
SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


@dataclass
class Options:
    data_dir: Path
    bind_address: str = "127.0.0.1"
    port: int = 6443
    advertise_address: str | None = None
    etcd_servers: list[str] | None = None
    tls_sans: list[str] | None = None
    compaction_interval: float = 300.0
    default_toleration_seconds: int = 300
    service_cidr: str = "10.96.0.0/12"
    service_node_port_range: str = "30000-32767"
    # PodSecurity level of namespaces without pod-security.kubernetes.io labels.
    pod_security_default: str = "privileged"
    # Seconds between rebuilds of the allocation bitmaps from the stored Services.
    service_repair_interval: float = 60.0


class ControlPlane:
    def __init__(self, opts: Options) -> None:
        self.opts = opts
        self.embedded: EmbeddedEtcd | None = None
        self.etcd: EtcdStore | None = None
        self.cache: WatchCache | None = None
        self.runner: web.AppRunner | None = None
        self.tasks: list[asyncio.Task[None]] = []
        self.failed = asyncio.Event()
        # controllers.kubeconfig / scheduler.kubeconfig: each component's own credentials.
        self.component_kubeconfigs: dict[str, Path] = {}

    @property
    def advertise_address(self) -> str:
        a = self.opts.advertise_address or self.opts.bind_address
        return "127.0.0.1" if a in ("0.0.0.0", "::", "") else a

    @property
    def url(self) -> str:
        host = self.advertise_address
        return f"https://[{host}]:{self.opts.port}" if ":" in host else f"https://{host}:{self.opts.port}"

    @property
    def kubeconfig_path(self) -> Path:
        return self.opts.data_dir / "admin.kubeconfig"

    async def start(self) -> None:
        data = self.opts.data_dir
        data.mkdir(parents=True, exist_ok=True)
        extra = [self.advertise_address, *(self.opts.tls_sans or [])]
        pki = ensure_pki(data / "pki", default_sans(self.opts.bind_address, extra))
        token = ensure_token_file(data / "tokens.csv")
        authenticator = TokenAuthenticator.from_file(data / "tokens.csv")

        endpoints = self.opts.etcd_servers
        if not endpoints:
            self.embedded = EmbeddedEtcd(data / "etcd")
            endpoints = [await self.embedded.start()]
            self.tasks.append(asyncio.create_task(self._supervise_etcd(), name="etcd-supervisor"))
            log.info("embedded etcd serving on %s", endpoints[0])
        self.etcd = await EtcdStore.connect(endpoints)
        self.cache = WatchCache(self.etcd, "/registry")
        await self.cache.start()
        self.tasks.append(asyncio.create_task(run_compactor(self.etcd, self.opts.compaction_interval), name="compactor"))

        scheme = default_scheme()
        svc_rt = scheme.by_resource("", "v1", "services")
        assert svc_rt is not None
        services = ServiceAllocator(
            self.etcd, self.opts.service_cidr, self.opts.service_node_port_range, svc_rt.storage_prefix(),
        )
        # Before the first write: a crash of the last run may have left the bitmaps behind the
        # stored Services (or the ranges were reconfigured).
        await services.repair()
        self.tasks.append(asyncio.create_task(
            services.run_repair_loop(self.opts.service_repair_interval), name="service-allocation-repair",
        ))
        authorizer = Authorizer(self.cache, scheme)
        admission = AdmissionConfig(self.opts.default_toleration_seconds, self.opts.pod_security_default,
                                    extra_validating=(RbacEscalation(authorizer),))
        store = Store(self.etcd, self.cache, scheme, admission, services)
        await self._ensure_system_namespaces(store)
        await ensure_kubernetes_service(store, services.ips.first, self.advertise_address, self.opts.port)
        await ensure_cluster_info(store, self.url, pki.ca_pem())
        await ensure_bootstrap_policy(store, scheme)
        secrets_rt = scheme.by_resource("", "v1", "secrets")
        assert secrets_rt is not None
        bootstrap_tokens = BootstrapTokenAuthenticator(self.cache.cache_for(secrets_rt.storage_prefix()))
        state = ApiServerState(store, scheme, authenticator, self.url, authorizer=authorizer,
                               token_authenticators=[bootstrap_tokens.authenticate_token])
        # Service-account tokens: signed with DATA/pki/sa.key, issued through TokenRequest.
        signer = TokenSigner(ensure_signing_key(data / "pki" / "sa.key"))
        state.token_authenticators.append(
            ServiceAccountTokenAuthenticator(signer, scheme, cache_lookup(self.cache)).authenticate_token)
        state.ready_checks["etcd"] = self._check_etcd
        state.ready_checks["watch-cache"] = self._check_cache
        app = build_app(state)
        node_proxy = NodeProxy(*ensure_agent_client_cert(pki))  # pods/log and pods/exec to node agents
        app[NODE_PROXY_KEY] = node_proxy
        app[TOKEN_REQUESTS_KEY] = TokenRequestHandler(store, scheme, signer)
        app.on_cleanup.append(node_proxy.close)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(pki.serving_cert, pki.serving_key)
        # Client certificates are optional (tokens work too) but, when sent, must chain to our CA.
        ctx.verify_mode = ssl.CERT_OPTIONAL
        ctx.load_verify_locations(cafile=str(pki.ca_cert))
        # Header limits are explicit (an oversized request line or header answers 400 before any
        # handler runs); bodies are never inflated (see controlplane.apiserver.body).
        self.runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0, **HTTP_LIMITS)
        await self.runner.setup()
        site = web.TCPSite(self.runner, self.opts.bind_address, self.opts.port, ssl_context=ctx, backlog=1024)
        await site.start()
        self.component_kubeconfigs = ensure_component_kubeconfigs(data, pki, self.url)
        write_kubeconfig(self.kubeconfig_path, self.url, pki.ca_pem(), token)
        log.info("API server listening on %s; admin kubeconfig: %s", self.url, self.kubeconfig_path)

    async def _ensure_system_namespaces(self, store: Store) -> None:
        ns_rt = default_scheme().by_resource("", "v1", "namespaces")
        assert ns_rt is not None
        for name in SYSTEM_NAMESPACES:
            try:
                await store.create(ns_rt, None, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
            except errors.ApiError as e:
                if e.code != 409:
                    raise

    async def _supervise_etcd(self) -> None:
        assert self.embedded is not None
        code = await self.embedded.wait()
        log.error("embedded etcd exited with code %s; the control plane stops", code)
        self.failed.set()

    async def _check_etcd(self) -> str | None:
        assert self.etcd is not None
        try:
            async with asyncio.timeout(2):
                await self.etcd.current_revision()
        except Exception as e:
            return f"etcd: {type(e).__name__}"
        return None

    async def _check_cache(self) -> str | None:
        assert self.cache is not None
        return None if self.cache.revision > 0 else "watch cache not synced"

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.cache is not None:
            await self.cache.stop()
        if self.etcd is not None:
            await self.etcd.close()
        if self.embedded is not None:
            await self.embedded.stop()
