"""What every command gets: the API client, the scheme, the namespace rules, and the streams."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import TextIO

from apimachinery.client.rest import ApiClient
from apimachinery.scheme import ResourceType, Scheme


@dataclass
class Cli:
    client: ApiClient
    scheme: Scheme
    # -n/--namespace if given, else the kubeconfig context's namespace.
    namespace: str
    namespace_explicit: bool = False
    out: TextIO = field(default_factory=lambda: sys.stdout)
    err: TextIO = field(default_factory=lambda: sys.stderr)
    failed: bool = False
    # Set by commands that pass a code through (exec); otherwise 1 if anything failed.
    exit_code: int = 0

    def print(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def warn(self, text: str) -> None:
        print(text, file=self.err, flush=True)

    def fail(self, text: str) -> None:
        """Report one error and carry on with the other objects; the exit code becomes 1."""
        self.failed = True
        self.warn(text)

    def ns_for(self, rt: ResourceType) -> str | None:
        return self.namespace if rt.namespaced else None
