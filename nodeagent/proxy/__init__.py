"""The service proxy: Services + EndpointSlices rendered into one nftables table per node."""

from nodeagent.proxy.apply import NftApplier
from nodeagent.proxy.proxier import Proxier
from nodeagent.proxy.rules import Ruleset, render, table_name

__all__ = ["NftApplier", "Proxier", "Ruleset", "render", "table_name"]
