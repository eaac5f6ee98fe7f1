"""Pulling from a real registry (Debian's docker-registry), with images pushed by a real skopeo.

The registry runs as a subprocess on a free loopback port with its storage in a temporary
directory; images are built here (the busybox image from busybox.py, and small custom images),
written as OCI layouts and pushed with ``skopeo copy``. Tampering is done the blunt way, by
flipping bytes in the registry's own storage, so the registry really serves bad content.

Bearer tokens are tested against the real registry too: a second registry process, serving the
same storage, is configured with ``auth: token`` and trusts a certificate made here; a small
aiohttp token server signs RS256 JWTs with it (x5c header), as a real token service does. Basic
auth and redirects (blob storage on another origin) use a small aiohttp front of our own.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime
import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
import yaml
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from nodeagent.runtime.images import ImageNeverPull, ImageService, PullError, PullPolicy
from nodeagent.runtime.images import manifest as mf
from nodeagent.runtime.images.busybox import BuiltImage, build_busybox_image
from nodeagent.runtime.images.registry import Credentials
from tests.fixtures.apiserver import free_port

pytestmark = [
    pytest.mark.skipif(not shutil.which("docker-registry") or not shutil.which("skopeo"),
                       reason="needs docker-registry and skopeo (deploy/setup.sh --test)"),
]

TOKEN_SERVICE = "kube-lite-test-registry"
TOKEN_ISSUER = "kube-lite-test-issuer"
USER, PASSWORD = "alice", "s3cret"


# -- registry processes --------------------------------------------------------------------------


@dataclass
class Registry:
    host: str
    data: Path
    proc: subprocess.Popen[bytes]
    log: Path

    def blob_file(self, digest: str) -> Path:
        hexpart = digest.removeprefix("sha256:")
        return self.data / "docker/registry/v2/blobs/sha256" / hexpart[:2] / hexpart / "data"


def start_registry(workdir: Path, data: Path, auth: dict[str, Any] | None = None) -> Registry:
    port = free_port()
    name = uuid.uuid4().hex[:8]
    config: dict[str, Any] = {
        "version": 0.1,
        "log": {"level": "info"},
        "storage": {"filesystem": {"rootdirectory": str(data)}, "delete": {"enabled": True}},
        "http": {"addr": f"127.0.0.1:{port}", "secret": uuid.uuid4().hex},
    }
    if auth:
        config["auth"] = auth
    cfg = workdir / f"registry-{name}.yml"
    cfg.write_text(yaml.safe_dump(config))
    log = workdir / f"registry-{name}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(["docker-registry", "serve", str(cfg)], stdout=out, stderr=subprocess.STDOUT)
    reg = Registry(f"127.0.0.1:{port}", data, proc, log)
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"http://{reg.host}/v2/", timeout=2).close()
            return reg
        except urllib.error.HTTPError as e:
            if e.code == 401:
                return reg
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_registry(reg)
            raise RuntimeError(f"docker-registry did not start:\n{log.read_text()}")
        time.sleep(0.05)


def stop_registry(reg: Registry) -> None:
    if reg.proc.poll() is None:
        reg.proc.terminate()
        try:
            reg.proc.wait(10)
        except subprocess.TimeoutExpired:
            reg.proc.kill()
            reg.proc.wait()


# -- images built here ---------------------------------------------------------------------------


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class Img:
    manifest: bytes
    blobs: dict[str, bytes] = field(default_factory=dict)
    config_digest: str = ""
    layer_digests: list[str] = field(default_factory=list)
    diff_ids: list[str] = field(default_factory=list)

    @property
    def digest(self) -> str:
        return sha(self.manifest)


def make_image(files: dict[str, bytes], *, arch: str = "amd64", cmd: list[str] | None = None) -> Img:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            ti = tarfile.TarInfo(name)
            ti.size, ti.mode = len(data), 0o644
            tar.addfile(ti, io.BytesIO(data))
    raw = buf.getvalue()
    layer = gzip.compress(raw, mtime=0)
    config = json.dumps({
        "architecture": arch, "os": "linux",
        "config": {"Cmd": cmd or ["/bin/true"], "Env": ["A=1"], "WorkingDir": "/work", "User": "65534"},
        "rootfs": {"type": "layers", "diff_ids": [sha(raw)]},
    }).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": mf.OCI_MANIFEST,
        "config": {"mediaType": mf.OCI_CONFIG, "digest": sha(config), "size": len(config)},
        "layers": [{"mediaType": mf.OCI_LAYER_GZIP, "digest": sha(layer), "size": len(layer)}],
    }).encode()
    return Img(manifest, {sha(config): config, sha(layer): layer}, sha(config), [sha(layer)], [sha(raw)])


def from_built(built: BuiltImage) -> Img:
    return Img(built.manifest, {built.config_digest: built.config, built.layer_digest: built.layer},
               built.config_digest, [built.layer_digest], [built.diff_id])


def write_layout(dest: Path, ref_name: str, top: bytes, media_type: str, blobs: dict[str, bytes]) -> None:
    (dest / "blobs/sha256").mkdir(parents=True, exist_ok=True)
    for digest, data in {**blobs, sha(top): top}.items():
        (dest / "blobs/sha256" / digest.removeprefix("sha256:")).write_bytes(data)
    (dest / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    entry = {"mediaType": media_type, "digest": sha(top), "size": len(top),
             "annotations": {"org.opencontainers.image.ref.name": ref_name}}
    (dest / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [entry]}))


def skopeo(*args: str) -> None:
    proc = subprocess.run(["skopeo", "--insecure-policy", *args], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def push(workdir: Path, img: Img, dest: str) -> None:
    layout = Path(tempfile.mkdtemp(dir=workdir))
    write_layout(layout, "x", img.manifest, mf.OCI_MANIFEST, img.blobs)
    skopeo("copy", "--dest-tls-verify=false", f"oci:{layout}:x", f"docker://{dest}")


def host_busybox() -> bytes:
    return Path(os.path.realpath("/bin/busybox")).read_bytes()


def flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


# -- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="kube-lite-registry-test-"))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def registry(workdir: Path) -> Iterator[Registry]:
    reg = start_registry(workdir, workdir / "data")
    try:
        yield reg
    finally:
        stop_registry(reg)


@pytest.fixture(scope="module")
def busybox(registry: Registry, workdir: Path) -> BuiltImage:
    built = build_busybox_image()
    push(workdir, from_built(built), f"{registry.host}/test/busybox:1")
    return built


@pytest_asyncio.fixture(loop_scope="session")
async def images() -> AsyncIterator[ImageService]:
    d = Path(tempfile.mkdtemp(prefix="kube-lite-images-"))
    svc = ImageService(d)
    try:
        yield svc
    finally:
        await svc.close()
        shutil.rmtree(d, ignore_errors=True)


def store_is_clean_of(svc: ImageService, img: Img) -> None:
    """Nothing of ``img`` was recorded or published: no image, no blobs, no layers, no staging left."""
    assert svc.status(img.config_digest) is None
    assert not svc.store.index_path.exists() or img.config_digest not in svc.store.index_path.read_text()
    for digest in img.layer_digests:
        assert not svc.store.has_blob(digest)
    for diff_id in img.diff_ids:
        assert not svc.store.has_layer(diff_id)
    assert list(svc.store.tmp_dir.iterdir()) == []


# -- pulls ---------------------------------------------------------------------------------------


async def test_pull_by_tag(images: ImageService, registry: Registry, busybox: BuiltImage) -> None:
    ref = f"{registry.host}/test/busybox:1"
    info = await images.pull(ref)
    assert info.id == busybox.config_digest
    assert info.manifest_digest == busybox.manifest_digest
    assert info.repo_tags == [ref]
    assert info.repo_digests == [f"{registry.host}/test/busybox@{busybox.manifest_digest}"]
    assert info.config.cmd == ["sh"] and info.config.env[0].startswith("PATH=")
    assert info.diff_ids == [busybox.diff_id]
    assert len(info.layer_dirs) == 1
    rootfs = info.layer_dirs[0]
    assert (rootfs / "bin/busybox").read_bytes() == host_busybox()
    assert os.readlink(rootfs / "bin/sh") == "busybox"
    assert "nobody:x:65534" in (rootfs / "etc/passwd").read_text()
    # Every stored blob is exactly its digest.
    for digest in (busybox.config_digest, busybox.layer_digest, busybox.manifest_digest):
        assert sha(images.store.blob_path(digest).read_bytes()) == digest
    # The same image under every name it has.
    assert images.status(ref) == info
    assert images.status(f"{registry.host}/test/busybox@{busybox.manifest_digest}") == info
    assert images.status(info.id) == info
    assert images.status(info.id.removeprefix("sha256:")[:12]) == info
    assert images.status(f"{registry.host}/test/busybox:2") is None
    assert [i.id for i in images.list()] == [info.id]


async def test_pull_by_digest(images: ImageService, registry: Registry, busybox: BuiltImage) -> None:
    ref = f"{registry.host}/test/busybox@{busybox.manifest_digest}"
    info = await images.pull(ref)
    assert info.id == busybox.config_digest
    assert info.repo_tags == []  # a digest reference says nothing about tags
    assert info.repo_digests == [ref]
    # The tag and the digest then name the same image, recorded once.
    tagged = await images.pull(f"{registry.host}/test/busybox:1")
    assert tagged.id == info.id and tagged.repo_digests == [ref]
    assert len(images.list()) == 1


async def test_concurrent_pulls_share_one_image(images: ImageService, registry: Registry, busybox: BuiltImage) -> None:
    ref = f"{registry.host}/test/busybox:1"
    infos = await asyncio.gather(*(images.ensure(ref, PullPolicy.ALWAYS) for _ in range(5)))
    assert {i.id for i in infos} == {busybox.config_digest}
    assert len(list(images.store.layers_dir.iterdir())) == 1
    assert list(images.store.tmp_dir.iterdir()) == []


async def test_missing_tag_and_repository(images: ImageService, registry: Registry, busybox: BuiltImage) -> None:
    with pytest.raises(PullError, match="MANIFEST_UNKNOWN") as info:
        await images.pull(f"{registry.host}/test/busybox:nope")
    assert info.value.reason == "ErrImagePull"
    assert f'"{registry.host}/test/busybox:nope"' in str(info.value)
    with pytest.raises(PullError, match=r"NAME_UNKNOWN|MANIFEST_UNKNOWN"):
        await images.pull(f"{registry.host}/test/nothing-here:1")
    assert images.list() == []


async def test_pull_policies(images: ImageService, registry: Registry, busybox: BuiltImage) -> None:
    # An image present locally under a registry nobody listens on: only Always goes to the network.
    dead = f"127.0.0.1:{free_port()}/offline/busybox:1"
    with pytest.raises(ImageNeverPull, match=f'Container image "{dead}" is not present with pull policy of Never'):
        await images.ensure(dead, PullPolicy.NEVER)
    built = await images.build_busybox(dead)
    assert (await images.ensure(dead, PullPolicy.NEVER)).id == built.id
    assert (await images.ensure(dead, "IfNotPresent")).id == built.id
    with pytest.raises(PullError, match=r"Cannot connect|Connect call failed|connection refused"):
        await images.ensure(dead, PullPolicy.ALWAYS)
    # IfNotPresent pulls what is missing.
    info = await images.ensure(f"{registry.host}/test/busybox:1", PullPolicy.IF_NOT_PRESENT)
    assert info.id == busybox.config_digest


async def test_image_index_picks_the_platform(registry: Registry, workdir: Path) -> None:
    amd = make_image({"arch": b"amd64"}, arch="amd64")
    arm = make_image({"arch": b"arm64"}, arch="arm64")
    index = json.dumps({"schemaVersion": 2, "mediaType": mf.OCI_INDEX, "manifests": [
        {"mediaType": mf.OCI_MANIFEST, "digest": arm.digest, "size": len(arm.manifest),
         "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
        {"mediaType": mf.OCI_MANIFEST, "digest": amd.digest, "size": len(amd.manifest),
         "platform": {"os": "linux", "architecture": "amd64"}},
    ]}).encode()
    layout = workdir / "multi"
    blobs = {**amd.blobs, **arm.blobs, amd.digest: amd.manifest, arm.digest: arm.manifest}
    write_layout(layout, "multi", index, mf.OCI_INDEX, blobs)
    skopeo("copy", "--all", "--dest-tls-verify=false", f"oci:{layout}:multi", f"docker://{registry.host}/test/multi:1")

    for platform, img in ((mf.Platform("linux", "amd64"), amd), (mf.Platform("linux", "arm64"), arm)):
        d = Path(tempfile.mkdtemp(prefix="kube-lite-images-"))
        svc = ImageService(d, platform=platform)
        try:
            info = await svc.pull(f"{registry.host}/test/multi:1")
            assert info.id == img.config_digest
            assert info.manifest_digest == img.digest
            # The repo digest is the index's: that is what the tag points at.
            assert info.repo_digests == [f"{registry.host}/test/multi@{sha(index)}"]
            assert (info.layer_dirs[0] / "arch").read_bytes() == platform.architecture.encode()
            assert svc.store.has_blob(sha(index))
        finally:
            await svc.close()
            shutil.rmtree(d, ignore_errors=True)

    d = Path(tempfile.mkdtemp(prefix="kube-lite-images-"))
    svc = ImageService(d, platform=mf.Platform("linux", "s390x"))
    arm_svc = ImageService(d / "arm", platform=mf.Platform("linux", "arm64"))
    try:
        with pytest.raises(PullError, match=r"no manifest for platform linux/s390x .*linux/amd64, linux/arm64/v8"):
            await svc.pull(f"{registry.host}/test/multi:1")
        # An OCI layout holding the whole index (skopeo --all) imports the platform's image.
        skopeo("copy", "--all", "--src-tls-verify=false", f"docker://{registry.host}/test/multi:1", f"oci:{d / 'all'}:multi:2")
        [imported] = await arm_svc.import_archive(d / "all")
        assert imported.id == arm.config_digest
        assert imported.repo_tags == ["docker.io/library/multi:2"]
    finally:
        await svc.close()
        await arm_svc.close()
        shutil.rmtree(d, ignore_errors=True)


# -- tampering -----------------------------------------------------------------------------------


async def test_tampered_layer_blob_is_refused(images: ImageService, registry: Registry, workdir: Path) -> None:
    img = make_image({"payload": os.urandom(4096)})
    push(workdir, img, f"{registry.host}/test/tamper-layer:1")
    flip_byte(registry.blob_file(img.layer_digests[0]))
    with pytest.raises(PullError, match=f"digest mismatch: expected {img.layer_digests[0]}"):
        await images.pull(f"{registry.host}/test/tamper-layer:1")
    store_is_clean_of(images, img)


async def test_tampered_config_blob_is_refused(images: ImageService, registry: Registry, workdir: Path) -> None:
    img = make_image({"payload": os.urandom(64)}, cmd=["/bin/tampered"])
    push(workdir, img, f"{registry.host}/test/tamper-config:1")
    flip_byte(registry.blob_file(img.config_digest))
    with pytest.raises(PullError, match=f"digest mismatch: expected {img.config_digest}"):
        await images.pull(f"{registry.host}/test/tamper-config:1")
    store_is_clean_of(images, img)
    assert not images.store.has_blob(img.config_digest)


async def test_tampered_manifest_is_refused(images: ImageService, registry: Registry, workdir: Path) -> None:
    img = make_image({"payload": os.urandom(64)}, cmd=["/bin/manifest"])
    push(workdir, img, f"{registry.host}/test/tamper-manifest:1")
    path = registry.blob_file(img.digest)
    path.write_bytes(path.read_bytes().replace(b'"schemaVersion": 2', b'"schemaVersion":  2'))
    # By tag the registry announces the digest it stored the manifest under; by digest we asked for it.
    for ref in (f"{registry.host}/test/tamper-manifest:1", f"{registry.host}/test/tamper-manifest@{img.digest}"):
        with pytest.raises(PullError, match=f"digest mismatch: expected {img.digest}"):
            await images.pull(ref)
    store_is_clean_of(images, img)
    assert not images.store.has_blob(img.config_digest)


# -- authentication ------------------------------------------------------------------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class TokenServer:
    key: rsa.RSAPrivateKey
    cert: x509.Certificate
    requests: list[dict[str, Any]] = field(default_factory=list)

    def sign(self, claims: dict[str, Any]) -> str:
        der = self.cert.public_bytes(serialization.Encoding.DER)
        header = {"typ": "JWT", "alg": "RS256", "x5c": [base64.b64encode(der).decode()]}
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        sig = self.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64url(sig)}"

    async def handle(self, request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization", "")
        user = None
        if auth.startswith("Basic "):
            name, _, pw = base64.b64decode(auth[6:]).decode().partition(":")
            if (name, pw) != (USER, PASSWORD):
                return web.json_response({"details": "bad credentials"}, status=401)
            user = name
        scope = request.query.get("scope", "")
        self.requests.append({"service": request.query.get("service"), "scope": scope, "user": user})
        if user is None:
            return web.json_response({"details": "authentication required"}, status=401)
        kind, _, rest = scope.partition(":")
        name, _, actions = rest.rpartition(":")
        now = int(time.time())
        token = self.sign({
            "iss": TOKEN_ISSUER, "sub": user, "aud": request.query.get("service"), "exp": now + 300,
            "nbf": now - 10, "iat": now, "jti": uuid.uuid4().hex,
            "access": [{"type": kind, "name": name, "actions": [a for a in actions.split(",") if a == "pull"]}],
        })
        return web.json_response({"token": token, "expires_in": 300})


def _self_signed() -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-lite test token signer")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return key, cert


@contextlib.asynccontextmanager
async def serve(app: web.Application) -> AsyncIterator[str]:
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def token_registry(registry: Registry, busybox: BuiltImage, workdir: Path) -> AsyncIterator[tuple[Registry, TokenServer]]:
    key, cert = _self_signed()
    bundle = workdir / "token-ca.pem"
    bundle.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    server = TokenServer(key, cert)
    app = web.Application()
    app.router.add_get("/token", server.handle)
    async with serve(app) as token_host:
        auth = {"token": {"realm": f"http://{token_host}/token", "service": TOKEN_SERVICE,
                          "issuer": TOKEN_ISSUER, "rootcertbundle": str(bundle)}}
        reg = await asyncio.to_thread(start_registry, workdir, registry.data, auth)
        try:
            yield reg, server
        finally:
            await asyncio.to_thread(stop_registry, reg)


async def test_bearer_token_against_real_registry(token_registry: tuple[Registry, TokenServer], busybox: BuiltImage) -> None:
    reg, server = token_registry
    ref = f"{reg.host}/test/busybox:1"
    d = Path(tempfile.mkdtemp(prefix="kube-lite-images-"))
    anonymous = ImageService(d / "anon")
    authed = ImageService(d / "authed", credentials={reg.host: Credentials(USER, PASSWORD)})
    wrong = ImageService(d / "wrong", credentials={reg.host: Credentials(USER, "nope")})
    try:
        with pytest.raises(PullError, match=r"token server .* refused"):
            await anonymous.pull(ref)
        assert anonymous.list() == []
        with pytest.raises(PullError, match=r"token server .* refused"):
            await wrong.pull(ref)
        server.requests.clear()
        info = await authed.pull(ref)
        assert info.id == busybox.config_digest
        assert (info.layer_dirs[0] / "bin/busybox").is_file()
        # One token for the repository, from the challenge's realm, service and scope, reused for
        # the manifest and both blobs.
        assert server.requests == [{"service": TOKEN_SERVICE, "scope": "repository:test/busybox:pull", "user": USER}]
        # A pod's pull secret, for one pull only: the service's own client stays anonymous.
        pulled = await anonymous.ensure(ref, PullPolicy.IF_NOT_PRESENT, credentials=Credentials(USER, PASSWORD))
        assert pulled.id == busybox.config_digest
        with pytest.raises(PullError, match=r"token server .* refused"):
            await anonymous.pull(ref)
    finally:
        for svc in (anonymous, authed, wrong):
            await svc.close()
        shutil.rmtree(d, ignore_errors=True)


async def test_basic_auth_and_redirected_blobs(registry: Registry, busybox: BuiltImage) -> None:
    """A front that wants Basic auth and redirects blob GETs to storage on another origin."""
    storage_seen: list[dict[str, str]] = []
    expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()

    async with aiohttp.ClientSession() as upstream:

        async def storage(request: web.Request) -> web.Response:
            storage_seen.append(dict(request.headers))
            async with upstream.get(f"http://{registry.host}/v2/{request.match_info['tail']}") as r:
                return web.Response(body=await r.read(), status=r.status)

        storage_app = web.Application()
        storage_app.router.add_get("/store/{tail:.*}", storage)
        async with serve(storage_app) as storage_host:

            async def front(request: web.Request) -> web.StreamResponse:
                if request.headers.get("Authorization") != expected:
                    return web.Response(status=401, headers={"WWW-Authenticate": 'Basic realm="front"'},
                                        text='{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}')
                tail = request.match_info["tail"]
                if "/blobs/" in tail:
                    raise web.HTTPTemporaryRedirect(f"http://{storage_host}/store/{tail}")
                async with upstream.get(f"http://{registry.host}/v2/{tail}", headers={"Accept": request.headers["Accept"]}) as r:
                    return web.Response(body=await r.read(), status=r.status,
                                        headers={"Content-Type": r.headers["Content-Type"]})

            front_app = web.Application()
            front_app.router.add_get("/v2/{tail:.*}", front)
            async with serve(front_app) as front_host:
                d = Path(tempfile.mkdtemp(prefix="kube-lite-images-"))
                anonymous = ImageService(d / "anon")
                svc = ImageService(d / "s", credentials={front_host: Credentials(USER, PASSWORD)})
                try:
                    with pytest.raises(PullError, match="no credentials are configured"):
                        await anonymous.pull(f"{front_host}/test/busybox:1")
                    info = await svc.pull(f"{front_host}/test/busybox:1")
                    assert info.id == busybox.config_digest
                    assert info.repo_tags == [f"{front_host}/test/busybox:1"]
                finally:
                    await anonymous.close()
                    await svc.close()
                    shutil.rmtree(d, ignore_errors=True)
    assert len(storage_seen) == 2  # config and layer, both via the redirect
    assert all("Authorization" not in h for h in storage_seen)  # credentials stay on their origin


# -- archives made by skopeo ---------------------------------------------------------------------


async def test_import_docker_archive_and_oci_tar_from_skopeo(images: ImageService, registry: Registry,
                                                             busybox: BuiltImage, workdir: Path) -> None:
    docker_tar = workdir / "busybox-docker.tar"
    docker_tar.unlink(missing_ok=True)
    skopeo("copy", "--src-tls-verify=false", f"docker://{registry.host}/test/busybox:1",
           f"docker-archive:{docker_tar}:example.com/imported/busybox:7")
    [info] = await images.import_archive(docker_tar)
    assert info.id == busybox.config_digest  # same config bytes, so the same image id
    assert info.repo_tags == ["example.com/imported/busybox:7"]
    assert info.repo_digests == []
    assert info.diff_ids == [busybox.diff_id]
    assert (info.layer_dirs[0] / "bin/busybox").is_file()

    layout = workdir / "busybox-oci"
    shutil.rmtree(layout, ignore_errors=True)
    skopeo("copy", "--src-tls-verify=false", f"docker://{registry.host}/test/busybox:1", f"oci:{layout}:busybox:9")
    oci_tar = workdir / "busybox-oci.tar"
    with tarfile.open(oci_tar, "w") as tar:
        tar.add(layout, arcname=".")
    [from_tar] = await images.import_archive(oci_tar)
    assert from_tar.id == busybox.config_digest
    assert set(from_tar.repo_tags) == {"example.com/imported/busybox:7", "docker.io/library/busybox:9"}
    [renamed] = await images.import_archive(layout, name="127.0.0.1:5000/renamed")
    assert "127.0.0.1:5000/renamed:9" in renamed.repo_tags  # the layout's tag, under the new name
