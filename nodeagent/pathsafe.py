"""Names from the API used as one directory entry on the node (pod uids, volume names, ids).

The API server validates these already; the node checks again because a name like ``..`` or
``a/b`` (or an empty uid, which would name the parent directory itself) would make the agent
write or delete outside the pod's own directory.
"""

from __future__ import annotations

import errno


class UnsafeName(OSError):
    """Refused like the kernel refuses an invalid file name (EINVAL), so callers that already
    handle OSError (e.g. a pod's volume setup) report it without a special case."""


def entry(name: str, what: str) -> str:
    """``name`` if it is usable as exactly one directory entry, else UnsafeName."""
    if not name or name in (".", "..") or "/" in name or "\0" in name:
        raise UnsafeName(errno.EINVAL, f"invalid {what} {name!r}: not usable as a file name")
    return name
