"""Custom-host rules: HTTPS unless explicitly allowed, never link-local or cloud metadata."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

_METADATA_HOSTS = {"metadata.google.internal", "metadata", "instance-data", "metadata.azure.com"}
_EXAMPLE = "custom_host must be an absolute http(s) URL such as https://llm.example.com/v1"


class HostRejected(ValueError):
    pass


def _literal_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a host literal names, including legacy IPv4 spellings the resolver accepts
    (`2852039166`, `0xA9FEA9FE`, `169.254.43518`)."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        try:
            address = ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return address


def is_forbidden_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Link-local (the cloud metadata range) or a known metadata address, IPv4-mapped included."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_link_local or str(address) in ("169.254.169.254", "fd00:ec2::254")


def is_forbidden_host(host: str) -> bool:
    """A cloud metadata name or a link-local literal in any spelling: what a worker refuses to send
    to a proxy, which resolves the name itself where the worker's own resolver check cannot see."""
    host = host.lower().rstrip(".")
    if host in _METADATA_HOSTS:
        return True
    address = _literal_address(host)
    return address is not None and is_forbidden_address(address)


def validate_custom_host(url: str, allow_http: bool) -> str:
    """Return the normalised base URL (no trailing slash) or raise `HostRejected` saying why."""
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
    except ValueError as exc:  # e.g. unbalanced IPv6 brackets
        raise HostRejected(f"{_EXAMPLE} ({exc})") from exc
    if parts.scheme not in ("https", "http") or not hostname:
        raise HostRejected(_EXAMPLE)
    if parts.scheme == "http" and not allow_http:
        raise HostRejected("custom_host uses plain http; set allow_http: true to permit it explicitly")
    host = hostname.lower().rstrip(".")
    if host in _METADATA_HOSTS:
        raise HostRejected(f"custom_host {host} is a cloud metadata endpoint and is refused")
    address = _literal_address(host)
    if address is not None and is_forbidden_address(address):
        raise HostRejected(f"custom_host {host} is link-local (cloud metadata range) and is refused")
    return url.rstrip("/")
