"""Egress settings for the upstream client: proxies from the environment, per-integration TLS options.

Pure configuration, no I/O: `ProxySettings.from_environ()` is read once where a worker builds its
`UpstreamPool`, and `tls_context(TlsOptions)` turns an integration's PEM fields into a verifying
`ssl.SSLContext` (or a `TlsOptionsError` naming the bad field). How the pool uses them is described
in `keyrail_workers.http_client`.

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
import contextlib
import ipaddress
import os
import ssl
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import msgspec

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


# --- TLS options ------------------------------------------------------------------------------------


class TlsOptions(msgspec.Struct, frozen=True, kw_only=True):
    """One integration's TLS trust and client identity; hashable, so the pool keys contexts on it.

    `ca_bundle_pem`: PEM CA certificates that REPLACE the system trust store for this integration
    (curl's `--cacert`, requests' `verify=path`): a private CA's integration trusts only that CA. To
    trust both, put the system bundle's certificates into the PEM too. Empty: the system store.
    `client_cert_pem` / `client_key_pem`: a client certificate (chain) and its unencrypted private
    key for servers that require mutual TLS; both or neither. There is deliberately no field that
    turns verification off: every context requires a valid chain and a matching host name.
    """

    ca_bundle_pem: str = ""
    client_cert_pem: str = ""
    client_key_pem: str = ""

    def __repr__(self) -> str:
        def describe(pem: str) -> str:
            return f"<{pem.count('-----BEGIN ')} PEM blocks>" if pem.strip() else "''"

        return (
            f"TlsOptions(ca_bundle_pem={describe(self.ca_bundle_pem)}, "
            f"client_cert_pem={describe(self.client_cert_pem)}, "
            f"client_key_pem={'<redacted>' if self.client_key_pem.strip() else repr('')})"
        )

    @property
    def is_default(self) -> bool:
        return not (self.ca_bundle_pem.strip() or self.client_cert_pem.strip() or self.client_key_pem.strip())


class TlsOptionsError(ValueError):
    """A `TlsOptions` field that cannot be used; the message names the field, never its content."""


def tls_context(options: TlsOptions | None = None) -> ssl.SSLContext:
    """A client context for `options`: certificate and host name verification always on.

    Raises `TlsOptionsError` for unusable PEM (admin validation can call this before storing)."""
    if options is None or options.is_default:
        return ssl.create_default_context()
    ca_bundle = options.ca_bundle_pem.strip()
    if ca_bundle:
        _refuse_private_key(ca_bundle, "ca_bundle_pem", "it takes CA certificates only")
        try:
            context = ssl.create_default_context(cadata=ca_bundle)
        except (ssl.SSLError, ValueError) as exc:
            raise TlsOptionsError(
                f"TlsOptions.ca_bundle_pem is not a PEM bundle of CA certificates ({_reason(exc)})"
            ) from None
    else:
        context = ssl.create_default_context()
    cert, key = options.client_cert_pem.strip(), options.client_key_pem.strip()
    if cert or key:
        _load_client_identity(context, cert, key)
    # create_default_context() sets both already; stated here because nothing may ever relax them.
    context.verify_mode = ssl.CERT_REQUIRED
    context.check_hostname = True
    return context


def _load_client_identity(context: ssl.SSLContext, cert: str, key: str) -> None:
    if not cert:
        raise TlsOptionsError("TlsOptions.client_key_pem is set but client_cert_pem is empty")
    if not key:
        raise TlsOptionsError("TlsOptions.client_cert_pem is set but client_key_pem is empty")
    _refuse_private_key(cert, "client_cert_pem", "put the key in client_key_pem")
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cadata=cert)
    except (ssl.SSLError, ValueError) as exc:
        raise TlsOptionsError(
            f"TlsOptions.client_cert_pem is not a PEM certificate ({_reason(exc)})"
        ) from None
    if "PRIVATE KEY" not in key:
        raise TlsOptionsError("TlsOptions.client_key_pem is not a PEM private key")
    if "ENCRYPTED" in key:
        raise TlsOptionsError("TlsOptions.client_key_pem is encrypted; it must be stored unencrypted")

    def no_password() -> str:
        raise TlsOptionsError("TlsOptions.client_key_pem is encrypted; it must be stored unencrypted")

    with _pem_file(cert) as cert_path, _pem_file(key) as key_path:
        try:
            context.load_cert_chain(cert_path, key_path, password=no_password)
        except ssl.SSLError as exc:
            if "KEY_VALUES_MISMATCH" in str(exc.reason):
                raise TlsOptionsError(
                    "TlsOptions.client_key_pem is not the private key of client_cert_pem"
                ) from None
            raise TlsOptionsError(
                f"TlsOptions.client_key_pem is not a usable PEM private key ({_reason(exc)})"
            ) from None


def _refuse_private_key(pem: str, field: str, hint: str) -> None:
    if "PRIVATE KEY-----" in pem:
        raise TlsOptionsError(f"TlsOptions.{field} contains a private key; {hint}")


def _reason(exc: Exception) -> str:
    """OpenSSL's reason code or Python's message: never the PEM text itself."""
    reason = getattr(exc, "reason", None)
    return str(reason) if reason else type(exc).__name__


@contextlib.contextmanager
def _pem_file(text: str) -> Iterator[str]:
    """A path `ssl` can read `text` from (it loads certificate chains from files only): an anonymous
    in-memory file where Linux has them, so a private key never touches a disk; elsewhere a file in
    a private temporary directory, deleted at once."""
    data = text.encode()
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("keyrail-tls", os.MFD_CLOEXEC)
        try:
            with open(fd, "wb", closefd=False) as handle:
                handle.write(data)
            yield f"/proc/self/fd/{fd}"
        finally:
            os.close(fd)
        return
    with tempfile.TemporaryDirectory(prefix="keyrail-tls-") as directory:
        path = os.path.join(directory, "pem")
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as handle:
            handle.write(data)
        yield path
