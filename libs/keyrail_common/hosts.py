"""Custom-host rules: HTTPS unless explicitly allowed, never link-local or cloud metadata."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

_METADATA_HOSTS = {"metadata.google.internal", "metadata", "instance-data", "metadata.azure.com"}


class HostRejected(ValueError):
    pass


def validate_custom_host(url: str, allow_http: bool) -> str:
    """Return the normalised base URL (no trailing slash) or raise `HostRejected` saying why."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise HostRejected("custom_host must be an absolute http(s) URL such as https://llm.example.com/v1")
    if parts.scheme == "http" and not allow_http:
        raise HostRejected("custom_host uses plain http; set allow_http: true to permit it explicitly")
    host = parts.hostname.lower()
    if host in _METADATA_HOSTS:
        raise HostRejected(f"custom_host {host} is a cloud metadata endpoint and is refused")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is not None and (
        address.is_link_local or str(address) in ("169.254.169.254", "fd00:ec2::254")
    ):
        raise HostRejected(f"custom_host {host} is link-local (cloud metadata range) and is refused")
    return url.rstrip("/")
