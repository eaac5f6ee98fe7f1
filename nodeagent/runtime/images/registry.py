"""A client for the OCI distribution API (v2): manifests and blobs, with registry authentication.

Authentication follows what registries actually do: try anonymously; on ``401`` read the
``WWW-Authenticate`` challenge; for ``Bearer realm=...,service=...,scope=...`` fetch a token from
the realm (sending basic credentials if we have some for that registry) and retry with it; for
``Basic`` retry with the credentials. Tokens are cached per registry and scope.

Nothing is trusted that was not verified: a manifest fetched by digest must hash to it, a
manifest fetched by tag must hash to the ``Docker-Content-Digest`` the registry announced (when it
announces one), and every blob is hashed while it streams to disk and only published under its
digest if it matches (see :class:`~.store.BlobWriter`).

Plain http is used only for loopback registries and those listed as insecure (like Docker's
``--insecure-registry``); everything else is https with certificate verification. Redirects (blob
storage backends) are followed by hand so credentials never leave the registry's origin and a
redirect can never downgrade https to http.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import re
import ssl as ssl_module
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import aiohttp
from yarl import URL

from .manifest import MANIFEST_ACCEPT, MAX_MANIFEST_BYTES, Descriptor
from .reference import Reference, is_digest
from .store import DigestMismatch, ImageStore, sha256_digest

_REDIRECTS = (301, 302, 303, 307, 308)
_MAX_REDIRECTS = 10
_CHUNK = 1 << 20
_PARAM_RE = re.compile(r'([A-Za-z_][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')


class RegistryError(Exception):
    """The registry refused or failed a request (``status`` is the HTTP status, 0 if none)."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class RegistryAuthError(RegistryError):
    """Authentication was required and failed (no or wrong credentials, token server refused)."""


class RegistryNotFound(RegistryError):
    """The repository, manifest or blob does not exist."""


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str

    def basic(self) -> str:
        return "Basic " + base64.b64encode(f"{self.username}:{self.password}".encode()).decode()


@dataclass(frozen=True)
class FetchedManifest:
    data: bytes
    media_type: str
    digest: str  # sha256 of data, verified


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """``Bearer realm="x",service="y"`` -> ("bearer", {"realm": "x", "service": "y"})."""
    scheme, _, rest = header.strip().partition(" ")
    params = {m.group(1).lower(): (m.group(2) if m.group(2) is not None else m.group(3)) for m in _PARAM_RE.finditer(rest)}
    return scheme.lower(), params


def _host_only(hostport: str) -> str:
    if hostport.startswith("["):
        return hostport[1 : hostport.index("]")]
    return hostport.rsplit(":", 1)[0] if hostport.count(":") == 1 else hostport


def is_loopback(hostport: str) -> bool:
    host = _host_only(hostport)
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _error_text(status: int, body: bytes) -> str:
    """The registry's own error message (distribution's ``{"errors": [...]}``) if it sent one."""
    try:
        errors = json.loads(body).get("errors") or []
        msgs = [f"{e.get('code', '')}: {e.get('message', '')}".strip(": ") for e in errors if isinstance(e, dict)]
        if msgs:
            return "; ".join(msgs)
    except (ValueError, AttributeError):
        pass
    return f"HTTP {status}"


class RegistryClient:
    def __init__(
        self,
        *,
        insecure_registries: Iterable[str] = (),
        credentials: Mapping[str, Credentials] | None = None,
        ssl: ssl_module.SSLContext | None = None,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.insecure = set(insecure_registries)
        self.credentials = dict(credentials or {})
        self._ssl = ssl
        self._session = session
        self._owns_session = session is None
        self._tokens: dict[tuple[str, str], str] = {}
        self._basic: set[str] = set()  # hosts that asked for Basic auth

    async def close(self) -> None:
        if self._session is not None and self._owns_session:
            await self._session.close()
        self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=120))
        return self._session

    def plain_http_allowed(self, hostport: str) -> bool:
        return is_loopback(hostport) or hostport in self.insecure or _host_only(hostport) in self.insecure

    def base_url(self, ref: Reference) -> URL:
        host = ref.api_host
        scheme = "http" if self.plain_http_allowed(host) else "https"
        return URL(f"{scheme}://{host}")

    # -- requests --------------------------------------------------------------------------------

    async def _get(self, url: URL, headers: dict[str, str]) -> aiohttp.ClientResponse:
        """GET following redirects by hand (credentials stay on their origin, no https->http)."""
        origin = url.origin()
        for _ in range(_MAX_REDIRECTS):
            hdrs = headers if url.origin() == origin else {k: v for k, v in headers.items() if k.lower() != "authorization"}
            try:
                resp = await self._http().get(url, headers=hdrs, allow_redirects=False, ssl=self._ssl or True)
            except aiohttp.ClientError as e:
                raise RegistryError(f"GET {url}: {e}") from e
            if resp.status not in _REDIRECTS:
                return resp
            location = resp.headers.get("Location")
            resp.release()
            if not location:
                raise RegistryError(f"GET {url}: redirect without a Location", resp.status)
            new = url.join(URL(location))
            if new.scheme not in ("http", "https"):
                raise RegistryError(f"GET {url}: redirect to unsupported URL {new}")
            if new.scheme == "http" and not self.plain_http_allowed(new.host or ""):
                raise RegistryError(f"GET {url}: refusing redirect to plain http {new}")
            url = new
        raise RegistryError(f"GET {url}: too many redirects")

    async def _request(self, ref: Reference, path: str, headers: dict[str, str]) -> aiohttp.ClientResponse:
        host = ref.api_host
        scope = f"repository:{ref.path}:pull"
        url = self.base_url(ref) / "v2" / ref.path / path
        for attempt in range(2):
            hdrs = dict(headers)
            auth = self._auth_header(host, scope)
            if auth:
                hdrs["Authorization"] = auth
            resp = await self._get(url, hdrs)
            if resp.status != 401:
                return resp
            challenge = resp.headers.get("WWW-Authenticate", "")
            body = await resp.read()
            resp.release()
            if attempt == 1 or not challenge:
                who = "with the configured credentials" if host in self.credentials else "anonymously"
                raise RegistryAuthError(
                    f"{host}: unauthorized {who}: {_error_text(401, body)}", 401
                )
            await self._authenticate(host, scope, challenge)
        raise AssertionError("unreachable")

    def _auth_header(self, host: str, scope: str) -> str | None:
        token = self._tokens.get((host, scope))
        if token:
            return f"Bearer {token}"
        creds = self.credentials.get(host)
        if creds and host in self._basic:
            return creds.basic()
        return None

    async def _authenticate(self, host: str, scope: str, challenge: str) -> None:
        scheme, params = parse_challenge(challenge)
        if scheme == "basic":
            if host not in self.credentials:
                raise RegistryAuthError(f"{host}: the registry wants basic authentication and no credentials are configured", 401)
            self._basic.add(host)
            return
        if scheme != "bearer" or "realm" not in params:
            raise RegistryAuthError(f"{host}: unsupported authentication challenge {challenge!r}", 401)
        realm = URL(params["realm"])
        if realm.scheme not in ("http", "https") or (realm.scheme == "http" and not self.plain_http_allowed(realm.host or "")):
            raise RegistryAuthError(f"{host}: refusing token realm {realm} (plain http to a non-loopback host)", 401)
        query = {}
        if "service" in params:
            query["service"] = params["service"]
        query["scope"] = params.get("scope") or scope
        creds = self.credentials.get(host)
        headers = {"Authorization": creds.basic()} if creds else {}
        try:
            async with self._http().get(realm.update_query(query), headers=headers, ssl=self._ssl or True) as resp:
                body = await resp.read()
                if resp.status != 200:
                    raise RegistryAuthError(f"{host}: token server {realm} refused: {_error_text(resp.status, body)}", resp.status)
        except aiohttp.ClientError as e:
            raise RegistryAuthError(f"{host}: token server {realm}: {e}") from e
        try:
            doc = json.loads(body)
            token = doc.get("token") or doc.get("access_token")
        except (ValueError, AttributeError):
            token = None
        if not isinstance(token, str) or not token:
            raise RegistryAuthError(f"{host}: token server {realm} sent no token")
        self._tokens[(host, scope)] = token

    # -- API -------------------------------------------------------------------------------------

    async def get_manifest(self, ref: Reference, reference: str | None = None) -> FetchedManifest:
        """The manifest or index ``reference`` (tag or digest; default: the ref's own) names."""
        reference = reference or ref.pull_reference
        resp = await self._request(ref, f"manifests/{reference}", {"Accept": MANIFEST_ACCEPT})
        async with resp:
            if resp.status != 200:
                body = await resp.content.read(64 << 10)
                cls = RegistryNotFound if resp.status == 404 else RegistryError
                raise cls(f"{ref.name}:{reference}: {_error_text(resp.status, body)}", resp.status)
            if (resp.content_length or 0) > MAX_MANIFEST_BYTES:
                raise RegistryError(f"{ref.name}:{reference}: manifest larger than {MAX_MANIFEST_BYTES} bytes")
            data = await resp.content.read(MAX_MANIFEST_BYTES + 1)
            if len(data) > MAX_MANIFEST_BYTES:
                raise RegistryError(f"{ref.name}:{reference}: manifest larger than {MAX_MANIFEST_BYTES} bytes")
            media_type = resp.headers.get("Content-Type", "").split(";")[0].strip()
            announced = resp.headers.get("Docker-Content-Digest")
        digest = sha256_digest(data)
        if is_digest(reference) and digest != reference:
            raise DigestMismatch(f"manifest {ref.name}@{reference}", reference, digest)
        if announced and announced.startswith("sha256:") and announced != digest:
            raise DigestMismatch(f"manifest {ref.name}:{reference}", announced, digest)
        return FetchedManifest(data, media_type, digest)

    async def fetch_blob(self, ref: Reference, desc: Descriptor, store: ImageStore) -> None:
        """Stream blob ``desc`` into ``store``; it appears there only if digest and size match."""
        if store.has_blob(desc.digest):
            return
        resp = await self._request(ref, f"blobs/{desc.digest}", {})
        writer = store.blob_writer(desc.digest, desc.size, what=f"blob {ref.name}@{desc.digest}")
        try:
            async with resp:
                if resp.status != 200:
                    body = await resp.content.read(64 << 10)
                    cls = RegistryNotFound if resp.status == 404 else RegistryError
                    raise cls(f"blob {ref.name}@{desc.digest}: {_error_text(resp.status, body)}", resp.status)
                async for chunk in resp.content.iter_chunked(_CHUNK):
                    writer.write(chunk)
        except aiohttp.ClientError as e:
            writer.abort()
            raise RegistryError(f"blob {ref.name}@{desc.digest}: {e}") from e
        except BaseException:
            writer.abort()
            raise
        writer.commit()
