"""Human durations, the way Kubernetes prints ages (shared by server-side Tables and the CLI)."""

from __future__ import annotations

import re


def human_duration(seconds: float) -> str:
    """A duration the way Kubernetes prints ages (``duration.HumanDuration``): exact seconds below
    two minutes, then coarser units the older it gets (``3m2s``, ``15m``, ``4h5m``, ``2d3h``, ``3y``)."""
    whole = int(seconds)  # truncates toward zero, like Go's int(d.Seconds())
    if whole < -1:
        return "<invalid>"  # more than the tolerated clock skew in the future
    if whole < 0:
        return "0s"
    if whole < 120:
        return f"{whole}s"
    minutes = whole // 60
    if minutes < 10:
        s = whole % 60
        return f"{minutes}m" if s == 0 else f"{minutes}m{s}s"
    if minutes < 3 * 60:
        return f"{minutes}m"
    hours = whole // 3600
    if hours < 8:
        m = minutes % 60
        return f"{hours}h" if m == 0 else f"{hours}h{m}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        h = hours % 24
        return f"{hours // 24}d" if h == 0 else f"{hours // 24}d{h}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        years, days = hours // 24 // 365, (hours // 24) % 365
        return f"{years}y" if days == 0 else f"{years}y{days}d"
    return f"{hours // 24 // 365}y"


_GO_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?$")


def parse_duration(text: str) -> float:
    """Seconds in a Go-style duration as Kubernetes tools take them (``30s``, ``1m30s``, ``2h``,
    or bare seconds); ValueError otherwise."""
    try:
        return float(text)
    except ValueError:
        pass
    m = _GO_DURATION.match(text)
    if not text or m is None:
        raise ValueError(f'invalid duration "{text}"')
    h, mi, s = m.groups()
    return int(h or 0) * 3600 + int(mi or 0) * 60 + float(s or 0)
