"""Per-integration TLS options: a CA bundle replacing the system trust store, and a client
certificate for mutual TLS; turned into an always-verifying `ssl.SSLContext`.

Shared by the admin API, which checks an integration's options before storing them, and the
worker's upstream client (`keyrail_workers.http_client`), which connects with them.
"""

from __future__ import annotations

import contextlib
import os
import re
import ssl
import tempfile
from collections.abc import Iterator

import msgspec


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

    def as_integration_field(self) -> tuple[str, str]:
        """(the field, the message) as an integration's `tls` object spells them: `tls.ca_bundle_pem`."""
        message = str(self).replace("TlsOptions.", "tls.")
        named = re.search(r"tls\.\w+", message)
        return (named.group(0) if named else "tls"), message


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
