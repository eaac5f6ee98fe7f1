"""What an authorizer answers: allow, deny (with a reason), or no opinion (ask the next one)."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Verdict(enum.Enum):
    ALLOW = "allow"
    DENY = "deny"
    NO_OPINION = "no-opinion"


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    reason: str = ""

    @property
    def allowed(self) -> bool:
        return self.verdict is Verdict.ALLOW


ALLOW = Decision(Verdict.ALLOW)
NO_OPINION = Decision(Verdict.NO_OPINION)


def deny(reason: str) -> Decision:
    return Decision(Verdict.DENY, reason)
