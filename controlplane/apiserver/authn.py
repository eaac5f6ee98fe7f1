"""Authentication: bearer tokens from a static token file, and client certificates.

The file has Kubernetes' static-token format, one user per line:
``token,user,uid,"group1,group2"``. On first start the control plane creates it with an admin
token (user ``admin``, group ``system:masters``). Tokens are compared in constant time.

A client certificate signed by the cluster CA (verified by the TLS handshake) names its user in
the subject's CN and the user's groups in its O entries, as in Kubernetes.
"""

from __future__ import annotations

import csv
import hmac
import io
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class UserInfo:
    name: str
    uid: str = ""
    groups: tuple[str, ...] = field(default_factory=tuple)


ANONYMOUS = UserInfo("system:anonymous", groups=("system:unauthenticated",))
AUTHENTICATED = "system:authenticated"


def certificate_user(peercert: dict[str, Any] | None) -> UserInfo | None:
    """The user of a verified client certificate (``ssl.getpeercert()`` form), or None."""
    if not peercert:
        return None
    name = ""
    groups: list[str] = []
    for rdn in peercert.get("subject") or ():
        for key, value in rdn:
            if key == "commonName":
                name = value
            elif key == "organizationName":
                groups.append(value)
    if not name:
        return None
    return UserInfo(name, groups=(*groups, AUTHENTICATED))


class TokenAuthenticator:
    def __init__(self, users: dict[str, UserInfo]) -> None:
        self._users = users

    @classmethod
    def from_file(cls, path: Path) -> TokenAuthenticator:
        users: dict[str, UserInfo] = {}
        for lineno, row in enumerate(csv.reader(io.StringIO(path.read_text())), 1):
            if not row or row[0].startswith("#"):
                continue
            if len(row) < 2:
                raise ValueError(f"{path}:{lineno}: expected token,user[,uid[,groups]]")
            groups = tuple(g for g in (row[3].split(",") if len(row) > 3 else []) if g)
            users[row[0]] = UserInfo(row[1], row[2] if len(row) > 2 else "", (*groups, AUTHENTICATED))
        return cls(users)

    def authenticate(self, authorization: str | None) -> UserInfo | None:
        """The user for an ``Authorization: Bearer ...`` header, or None."""
        if not authorization:
            return None
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        token = token.strip()
        # Look up by comparing against every known token in constant time, so response
        # timing does not reveal how much of a guessed token was right.
        found: UserInfo | None = None
        for known, user in self._users.items():
            if hmac.compare_digest(known.encode(), token.encode()):
                found = user
        return found


def ensure_token_file(path: Path) -> str:
    """Create the token file with a fresh admin token if it does not exist; return the admin token."""
    if path.exists():
        for row in csv.reader(io.StringIO(path.read_text())):
            if len(row) >= 2 and row[1] == "admin":
                return row[0]
        raise ValueError(f"{path} has no admin user")
    token = secrets.token_urlsafe(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(f'{token},admin,admin,"system:masters"\n')
    return token
