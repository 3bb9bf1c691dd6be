"""Egress settings for the upstream client: proxies from the environment, per-integration TLS options.

Pure configuration, no I/O: `ProxySettings.from_environ()` is read once where a worker builds its
`UpstreamPool`, and `tls_context(TlsOptions)` turns an integration's PEM fields into a verifying
`ssl.SSLContext` (or a `TlsOptionsError` naming the bad field). The TLS options live in
`keyrail_common.tls`, where the admin API checks them when an integration is saved; they are
re-exported here. How the pool uses them is described in `keyrail_workers.http_client`.

Proxy environment, as curl and requests read it
  * `https_proxy` / `HTTPS_PROXY` for https:// upstreams, `http_proxy` / `HTTP_PROXY` for http://
    ones; the lower-case name wins when both are set, an empty value counts as unset.
  * A proxy URL is `http://[user:password@]host[:port]`; without a scheme `http://` is assumed
    (as both do), without a port 80 (requests' rule; curl would assume 1080). User and password are
    percent-decoded and sent as `Proxy-Authorization: Basic`; they are never part of a repr, a log
    line or an error message. Other schemes (`https://` to the proxy, `socks5://`, ...) are refused
    at startup with a `ValueError` naming the variable, never ignored: silently going direct would
    bypass the egress control the proxy exists for. `ALL_PROXY` is not read (it usually names a
    SOCKS proxy, which this client does not speak).
  * `no_proxy` / `NO_PROXY`: entries separated by commas (spaces around them are ignored):
      - `*` alone: no upstream uses a proxy;
      - a name, `example.com`, `.example.com` or `*.example.com`: that host and every host under it
        (`api.example.com`), never `badexample.com`; case-insensitive, a trailing dot ignored;
      - an IP address (`10.1.2.3`, `::1`, `[::1]`) or a CIDR block (`10.0.0.0/8`, `fd00::/8`):
        upstreams whose URL host *is* such an address literal. Names are not resolved to check
        them, as in curl and requests, so `NO_PROXY=10.0.0.0/8` does not cover `vllm.internal`
        even when it resolves into that block: list the name too;
      - any of these with `:port` (`example.com:8443`, `10.0.0.0/8:443`, `[::1]:8443`): only
        upstreams on that port.
    `localhost` and loopback addresses are not special: list them if they must bypass the proxy.
"""

from __future__ import annotations

import base64
import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from keyrail_common.tls import TlsOptions, TlsOptionsError, tls_context

__all__ = ["NoProxy", "Proxy", "ProxySettings", "TlsOptions", "TlsOptionsError", "tls_context"]

_IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


# --- proxies ----------------------------------------------------------------------------------------


@dataclass(frozen=True, repr=False)
class Proxy:
    """An HTTP proxy: where it listens and the `Proxy-Authorization` value it wants ("" for none)."""

    host: str
    port: int
    authorization: str = ""

    @property
    def label(self) -> str:
        """`host:port`, the way errors and logs name the proxy: never with its credentials."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def __repr__(self) -> str:
        credentials = "<credentials>@" if self.authorization else ""
        return f"Proxy(http://{credentials}{self.label})"

    @classmethod
    def from_url(cls, url: str, variable: str = "proxy URL") -> Proxy:
        """Parse `http://[user:password@]host[:port]`; a `ValueError` names `variable`, never `url`
        (it may hold a password)."""
        text = url.strip()
        if "://" not in text:
            text = "http://" + text
        scheme = text.split("://", 1)[0].lower()
        if scheme != "http":
            raise ValueError(
                f"{variable}: only http:// proxies are supported (CONNECT for https upstreams), "
                f"not {scheme}://"
            )
        try:
            parts = urlsplit(text)
            host, port = parts.hostname, parts.port or 80
        except ValueError:
            raise ValueError(f"{variable}: not a valid proxy URL (expected http://host:port)") from None
        if not host:
            raise ValueError(f"{variable}: the proxy URL has no host (expected http://host:port)")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ValueError(f"{variable}: a proxy URL is http://[user:password@]host[:port], with no path")
        authorization = ""
        if parts.username is not None or parts.password is not None:
            user_pass = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}"
            authorization = "Basic " + base64.b64encode(user_pass.encode()).decode("ascii")
        return cls(host, port, authorization)


class NoProxy:
    """The `NO_PROXY` rules (see the module docstring for the syntax), parsed once."""

    def __init__(self, value: str = "") -> None:
        self.everything = False
        self._names: list[tuple[str, int | None]] = []
        self._networks: list[tuple[_IPNetwork, int | None]] = []
        for raw in value.replace(" ", ",").replace("\t", ",").split(","):
            entry = raw.strip().lower()
            if not entry:
                continue
            if entry == "*":
                self.everything = True
                continue
            self._add(entry)

    def _add(self, entry: str) -> None:
        host, port = _split_port(entry)
        try:
            network = ipaddress.ip_network(host, strict=False)
        except ValueError:
            name = host.rstrip(".")
            if name.startswith("*."):
                name = name[2:]
            name = name.lstrip(".")
            if name:
                self._names.append((name, port))
        else:
            self._networks.append((network, port))

    def matches(self, host: str, port: int) -> bool:
        """Whether an upstream at `host` (as `urlsplit(...).hostname` gives it) and `port` goes direct."""
        if self.everything:
            return True
        host = host.lower().rstrip(".")
        try:
            address: _IPAddress | None = ipaddress.ip_address(host)
        except ValueError:
            address = None
        if address is not None:
            return any(
                address.version == network.version and address in network and wanted in (None, port)
                for network, wanted in self._networks
            )
        return any(
            (host == name or host.endswith("." + name)) and wanted in (None, port)
            for name, wanted in self._names
        )


def _split_port(entry: str) -> tuple[str, int | None]:
    """`host:port`, `[v6]:port`, `[v6]`, a bare IPv6 address or CIDR, or a plain host."""
    if entry.startswith("["):
        address, _, rest = entry[1:].partition("]")
        return address, int(rest[1:]) if rest.startswith(":") and rest[1:].isdigit() else None
    if entry.count(":") == 1:
        host, _, port = entry.partition(":")
        if port.isdigit():
            return host, int(port)
    return entry, None


def _first(environ: Mapping[str, str], *names: str) -> tuple[str, str] | None:
    for name in names:
        value = environ.get(name, "").strip()
        if value:
            return name, value
    return None


class ProxySettings:
    """Which proxy, if any, each upstream origin goes through."""

    def __init__(self, https: Proxy | None = None, http: Proxy | None = None, no_proxy: str = "") -> None:
        self.https = https
        self.http = http
        self.no_proxy = NoProxy(no_proxy)
        self._no_proxy_text = no_proxy.strip()

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> ProxySettings:
        """`https_proxy`, `http_proxy` and `no_proxy`, lower case first, as curl and requests read them."""
        env = os.environ if environ is None else environ
        proxies: dict[str, Proxy | None] = {}
        for scheme in ("https", "http"):
            found = _first(env, f"{scheme}_proxy", f"{scheme.upper()}_PROXY")
            proxies[scheme] = Proxy.from_url(found[1], found[0]) if found else None
        no_proxy = _first(env, "no_proxy", "NO_PROXY")
        return cls(proxies["https"], proxies["http"], no_proxy[1] if no_proxy else "")

    def for_origin(self, scheme: str, host: str, port: int) -> Proxy | None:
        proxy = self.https if scheme == "https" else self.http if scheme == "http" else None
        if proxy is None or self.no_proxy.matches(host, port):
            return None
        return proxy

    def __repr__(self) -> str:
        return f"ProxySettings(https={self.https!r}, http={self.http!r}, no_proxy={self._no_proxy_text!r})"
