"""Cluster DNS: the name index (records), the server, and the pods' resolv.conf."""

from nodeagent.dns.records import RecordIndex, build_index, resolv_conf
from nodeagent.dns.server import ClusterDNS, DnsServer

__all__ = ["ClusterDNS", "DnsServer", "RecordIndex", "build_index", "resolv_conf"]
