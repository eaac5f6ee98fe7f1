"""What the API server and the node agents agree on for ``pods/log`` and ``pods/exec``.

The API server reaches a node's agent over HTTPS, and each side proves who it is:

* the API server presents a client certificate signed by the cluster CA with the common name
  :data:`APISERVER_CLIENT_CN`; the agent accepts nothing else (it trusts only the CA from its
  kubeconfig and checks the name, because the CA also signs other clients' certificates);
* the agent serves with its own self-signed certificate and publishes that certificate's
  SHA-256 fingerprint on its Node (:data:`SERVING_CERT_ANNOTATION`, port in
  ``status.daemonEndpoints.kubeletEndpoint.Port``); the API server accepts a handshake only
  from a peer whose certificate has exactly that fingerprint (:func:`pinned_client_context`).

The channel protocol of exec WebSockets (``v5.channel.k8s.io``/``v4``) is shared too.
"""

from __future__ import annotations

import hashlib
import ssl
from pathlib import Path

APISERVER_CLIENT_CN = "kube-apiserver-kubelet-client"
SERVING_CERT_ANNOTATION = "kube-lite.dev/agent-serving-cert-sha256"
DEFAULT_AGENT_PORT = 10250

EXEC_PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")
STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255


def cert_fingerprint(der: bytes) -> str:
    """The SHA-256 of a DER certificate, lowercase hex (what the Node annotation holds)."""
    return hashlib.sha256(der).hexdigest()


class _PinnedContext(ssl.SSLContext):
    pinned_sha256 = ""


class _PinnedSSLObject(ssl.SSLObject):
    """Fails the handshake itself when the peer's certificate is not the pinned one, so not a
    byte of the request reaches an impostor."""

    def do_handshake(self) -> None:
        super().do_handshake()
        der = self.getpeercert(binary_form=True)
        want = getattr(self.context, "pinned_sha256", "")
        if not der or not want or cert_fingerprint(der) != want:
            got = cert_fingerprint(der) if der else "none"
            raise ssl.SSLCertVerificationError(
                f"the node agent's certificate (sha256 {got}) is not the one its Node publishes ({want or 'none'})"
            )


def pinned_client_context(fingerprint: str, cert_file: Path, key_file: Path) -> ssl.SSLContext:
    """A client TLS context that presents ``cert_file`` and trusts exactly one server
    certificate: the one whose SHA-256 is ``fingerprint`` (no CA, no host name: the pin is the
    identity)."""
    ctx = _PinnedContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the pin below replaces chain validation
    ctx.pinned_sha256 = fingerprint.lower()
    ctx.sslobject_class = _PinnedSSLObject
    ctx.load_cert_chain(cert_file, key_file)
    return ctx
