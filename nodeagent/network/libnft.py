"""nftables transactions in-process, through libnftables (the library the ``nft`` tool is).

``nft -f -`` costs a fork and an exec of a fresh program for every transaction; measured on
these 2-core machines under a rollout's load that is 20-100 ms per apply, most of the service
proxy's latency budget. libnftables takes the very same text and commits it as one atomic
transaction, the same way ``nft -f`` does (it *is* ``nft -f``), in well under a millisecond
of set-up. It is called through ctypes, so no extra Python package is needed: the library is
part of Debian's ``nftables`` package (``libnftables1``).

A context is made per call, on the calling thread: its netlink socket then belongs to the
calling thread's network namespace, as a subprocess started from that thread would (see
:mod:`.netns`). Calls are serialized within the process (the library's thread safety is not
documented; transactions are short and rare). They block: run them on a worker thread. Without the library (another
distribution's layout), :func:`run` falls back to the ``nft`` program.
"""

from __future__ import annotations

import ctypes
import subprocess
import threading


class NftError(RuntimeError):
    """nftables refused a transaction; carries its error text."""


_lib: ctypes.CDLL | None = None
_loaded = False
_load_lock = threading.Lock()
_run_lock = threading.Lock()


def _load() -> ctypes.CDLL | None:
    global _lib, _loaded
    with _load_lock:
        if not _loaded:
            _loaded = True
            try:
                lib = ctypes.CDLL("libnftables.so.1")
            except OSError:
                return None
            lib.nft_ctx_new.restype = ctypes.c_void_p
            lib.nft_ctx_new.argtypes = [ctypes.c_uint32]
            lib.nft_ctx_free.argtypes = [ctypes.c_void_p]
            lib.nft_ctx_buffer_output.argtypes = [ctypes.c_void_p]
            lib.nft_ctx_buffer_error.argtypes = [ctypes.c_void_p]
            lib.nft_ctx_get_output_buffer.argtypes = [ctypes.c_void_p]
            lib.nft_ctx_get_output_buffer.restype = ctypes.c_char_p
            lib.nft_ctx_get_error_buffer.argtypes = [ctypes.c_void_p]
            lib.nft_ctx_get_error_buffer.restype = ctypes.c_char_p
            lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
            lib.nft_run_cmd_from_buffer.restype = ctypes.c_int
            _lib = lib
    return _lib


def available() -> bool:
    return _load() is not None


def _run_program(text: str) -> str:
    proc = subprocess.run(["nft", "-f", "-"], input=text, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise NftError(f"nft failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout


def run(text: str) -> str:
    """Run ``text`` (what ``nft -f`` reads: one atomic transaction, or a listing) in the calling
    thread's network namespace; its output. Raises :class:`NftError`."""
    lib = _load()
    if lib is None:
        return _run_program(text)
    with _run_lock:
        ctx = lib.nft_ctx_new(0)  # NFT_CTX_DEFAULT
        if not ctx:
            raise NftError("libnftables: cannot create a context")
        try:
            lib.nft_ctx_buffer_output(ctx)
            lib.nft_ctx_buffer_error(ctx)
            rc = lib.nft_run_cmd_from_buffer(ctx, text.encode())
            out = (lib.nft_ctx_get_output_buffer(ctx) or b"").decode(errors="replace")
            err = (lib.nft_ctx_get_error_buffer(ctx) or b"").decode(errors="replace")
        finally:
            lib.nft_ctx_free(ctx)
    if rc != 0:
        raise NftError(f"nft failed ({rc}): {err.strip()}")
    return out
