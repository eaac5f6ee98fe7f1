"""Validation of Endpoints (core/v1) and EndpointSlices (discovery.k8s.io/v1).

Endpoint addresses are where the service proxy sends traffic, so besides being well-formed
they may not be special addresses (unspecified, loopback, link-local), as in Kubernetes.
"""

from __future__ import annotations

from apimachinery.api.core_v1 import EndpointAddress, Endpoints
from apimachinery.api.discovery_v1 import EndpointSlice
from apimachinery.errors import FieldError
from apimachinery.validation.fields import PROTOCOLS
from apimachinery.validation.meta import immutable, validate_object_meta, validate_object_meta_update
from apimachinery.validation.names import (
    is_dns1123_label,
    is_dns1123_subdomain,
    is_valid_ip,
    is_valid_ipv4,
    is_valid_ipv6,
    is_valid_port_num,
    name_is_dns_subdomain,
    non_special_ip_errors,
)

ADDRESS_TYPES = ["FQDN", "IPv4", "IPv6"]
MAX_SLICE_ENDPOINTS = 1000
MAX_ENDPOINT_ADDRESSES = 100


def _ip(ip: str, field: str, check: list[str]) -> list[FieldError]:
    if check:
        return [FieldError.invalid(field, ip, m) for m in check]
    return [FieldError.invalid(field, ip, m) for m in non_special_ip_errors(ip)]


def _address(addr: EndpointAddress, field: str) -> list[FieldError]:
    errors = _ip(addr.ip, f"{field}.ip", is_valid_ip(addr.ip))
    if addr.hostname:
        errors.extend(
            FieldError.invalid(f"{field}.hostname", addr.hostname, m) for m in is_dns1123_label(addr.hostname)
        )
    if addr.node_name is not None:
        errors.extend(
            FieldError.invalid(f"{field}.nodeName", addr.node_name, m)
            for m in is_dns1123_subdomain(addr.node_name)
        )
    return errors


def validate_endpoints(ep: Endpoints) -> list[FieldError]:
    errors = validate_object_meta(ep.metadata, namespaced=True, name_rule=name_is_dns_subdomain)
    for i, subset in enumerate(ep.subsets or []):
        path = f"subsets[{i}]"
        if not subset.addresses and not subset.not_ready_addresses:
            errors.append(FieldError.required(path, "must specify `addresses` or `notReadyAddresses`"))
        for j, addr in enumerate(subset.addresses or []):
            errors.extend(_address(addr, f"{path}.addresses[{j}]"))
        for j, addr in enumerate(subset.not_ready_addresses or []):
            errors.extend(_address(addr, f"{path}.notReadyAddresses[{j}]"))
        ports = subset.ports or []
        for j, port in enumerate(ports):
            ppath = f"{path}.ports[{j}]"
            if len(ports) > 1 and not port.name:
                errors.append(FieldError.required(f"{ppath}.name"))
            elif port.name:
                errors.extend(
                    FieldError.invalid(f"{ppath}.name", port.name, m) for m in is_dns1123_label(port.name)
                )
            errors.extend(
                FieldError.invalid(f"{ppath}.port", port.port, m) for m in is_valid_port_num(port.port)
            )
            if not port.protocol:
                errors.append(FieldError.required(f"{ppath}.protocol"))
            elif port.protocol not in PROTOCOLS:
                errors.append(FieldError.not_supported(f"{ppath}.protocol", port.protocol, PROTOCOLS))
    return errors


def _fqdn(name: str, field: str) -> list[FieldError]:
    if not name:
        return [FieldError.required(field)]
    name = name.removesuffix(".")
    msgs = is_dns1123_subdomain(name)
    if msgs:
        return [FieldError.invalid(field, name, ",".join(msgs))]
    if len(name.split(".")) < 2:
        return [
            FieldError.invalid(field, name, "should be a domain with at least two segments separated by dots")
        ]
    return []


def validate_endpoint_slice(es: EndpointSlice) -> list[FieldError]:
    errors = validate_object_meta(es.metadata, namespaced=True, name_rule=name_is_dns_subdomain)
    if not es.address_type:
        errors.append(FieldError.required("addressType"))
    elif es.address_type not in ADDRESS_TYPES:
        errors.append(FieldError.not_supported("addressType", es.address_type, ADDRESS_TYPES))
    if len(es.endpoints) > MAX_SLICE_ENDPOINTS:
        errors.append(
            FieldError(
                "FieldValueTooMany",
                "endpoints",
                f"must have at most {MAX_SLICE_ENDPOINTS} items",
                len(es.endpoints),
            )
        )
    for i, endpoint in enumerate(es.endpoints):
        path = f"endpoints[{i}]"
        if not endpoint.addresses:
            errors.append(FieldError.required(f"{path}.addresses", "must contain at least 1 address"))
        elif len(endpoint.addresses) > MAX_ENDPOINT_ADDRESSES:
            errors.append(
                FieldError(
                    "FieldValueTooMany",
                    f"{path}.addresses",
                    f"must have at most {MAX_ENDPOINT_ADDRESSES} items",
                    len(endpoint.addresses),
                )
            )
        for j, address in enumerate(endpoint.addresses):
            apath = f"{path}.addresses[{j}]"
            if es.address_type == "IPv4":
                errors.extend(_ip(address, apath, is_valid_ipv4(address)))
            elif es.address_type == "IPv6":
                errors.extend(_ip(address, apath, is_valid_ipv6(address)))
            elif es.address_type == "FQDN":
                errors.extend(_fqdn(address, apath))
        if endpoint.node_name is not None:
            errors.extend(
                FieldError.invalid(f"{path}.nodeName", endpoint.node_name, m)
                for m in is_dns1123_subdomain(endpoint.node_name)
            )
        if endpoint.hostname is not None:
            errors.extend(
                FieldError.invalid(f"{path}.hostname", endpoint.hostname, m)
                for m in is_dns1123_label(endpoint.hostname)
            )
    names: set[str] = set()
    for i, port in enumerate(es.ports or []):
        path = f"ports[{i}]"
        name = port.name or ""
        if name:
            errors.extend(FieldError.invalid(f"{path}.name", name, m) for m in is_dns1123_label(name))
        if name in names:
            errors.append(FieldError.duplicate(f"{path}.name", name))
        names.add(name)
        if port.protocol is None:
            errors.append(FieldError.required(f"{path}.protocol"))
        elif port.protocol not in PROTOCOLS:
            errors.append(FieldError.not_supported(f"{path}.protocol", port.protocol, PROTOCOLS))
        if port.port is not None:
            errors.extend(
                FieldError.invalid(f"{path}.port", port.port, m) for m in is_valid_port_num(port.port)
            )
    return errors


def validate_endpoint_slice_update(new: EndpointSlice, old: EndpointSlice) -> list[FieldError]:
    errors = validate_object_meta_update(new.metadata, old.metadata)
    errors.extend(immutable(new.address_type, old.address_type, "addressType"))
    return errors
