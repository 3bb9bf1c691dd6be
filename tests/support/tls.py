"""Throwaway PKI and a real HTTPS origin for TLS tests.

Certificates (a CA, server certificates for localhost / 127.0.0.1, client certificates) are
generated at test time with the `cryptography` package (the `test` extra), EC P-256 keys so a whole
set takes milliseconds; nothing is read from or written to the system trust store. PEM text is what
the upstream client takes (`TlsOptions`); `server_context` writes the files `ssl` insists on into a
temporary directory the caller owns. `TlsOrigin` serves HTTPS with them on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.support.raw_http import Request

_ONE_DAY = datetime.timedelta(days=1)


@dataclass(frozen=True)
class Issued:
    """A certificate and its unencrypted private key, both as PEM text."""

    cert_pem: str
    key_pem: str

    def write(self, directory: Path, stem: str) -> tuple[Path, Path]:
        cert, key = directory / f"{stem}.crt", directory / f"{stem}.key"
        cert.write_text(self.cert_pem)
        key.write_text(self.key_pem)
        return cert, key


def _key_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


class CertificateAuthority:
    """A self-signed root that issues leaf certificates."""

    def __init__(self, name: str = "Keyrail Test CA") -> None:
        self._key = ec.generate_private_key(ec.SECP256R1())
        self._name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.datetime.now(datetime.UTC)
        self._cert = (
            x509.CertificateBuilder()
            .subject_name(self._name)
            .issuer_name(self._name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _ONE_DAY)
            .not_valid_after(now + _ONE_DAY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self._key.public_key()), critical=False)
            .sign(self._key, hashes.SHA256())
        )
        self.cert_pem = self._cert.public_bytes(serialization.Encoding.PEM).decode()

    def _issue(self, common_name: str, sans: list[x509.GeneralName], usage: x509.ObjectIdentifier) -> Issued:
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(self._name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _ONE_DAY)
            .not_valid_after(now + _ONE_DAY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()), critical=False
            )
        )
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        cert = builder.sign(self._key, hashes.SHA256())
        return Issued(cert.public_bytes(serialization.Encoding.PEM).decode(), _key_pem(key))

    def server(self, dns: tuple[str, ...] = ("localhost",), ips: tuple[str, ...] = ("127.0.0.1",)) -> Issued:
        sans: list[x509.GeneralName] = [x509.DNSName(name) for name in dns]
        sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
        return self._issue(dns[0] if dns else ips[0], sans, ExtendedKeyUsageOID.SERVER_AUTH)

    def client(self, common_name: str = "keyrail-worker") -> Issued:
        return self._issue(common_name, [], ExtendedKeyUsageOID.CLIENT_AUTH)


def server_context(
    issued: Issued, directory: Path, require_client_cert_from: CertificateAuthority | None = None
) -> ssl.SSLContext:
    """A server-side context presenting `issued`; with a CA, it demands a client certificate from it."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert, key = issued.write(directory, f"server-{abs(hash(issued.cert_pem))}")
    context.load_cert_chain(cert, key)
    if require_client_cert_from is not None:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cadata=require_client_cert_from.cert_pem)
    return context


def answer_ok(request: Request) -> bytes:
    """`200 {"echo":"<request body>"}`, keep-alive."""
    body = b'{"echo":"' + request.body + b'"}'
    return f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body


class TlsOrigin:
    """A real HTTPS/1.1 origin on 127.0.0.1, one thread per connection with blocking `ssl` sockets.

    Blocking sockets because a failed handshake then sends its alert (certificate required, unknown
    CA, ...) the way production TLS servers do; asyncio's server side drops the connection without
    one. Keep-alive: answers every request on a connection with `respond(request)` until the client
    closes it (or, with `requests_per_connection`, closes it itself after that many, while idle;
    `respond` returning b"" closes it without an answer).
    Records what a test asserts on: connections accepted, SNI names offered, client certificate
    subjects, handshake failures (OpenSSL reason codes) and the requests. An exception in a server
    thread (an assertion in `respond`, a bug here) fails the test at exit.
    """

    def __init__(
        self,
        context: ssl.SSLContext,
        respond: Callable[[Request], bytes] = answer_ok,
        requests_per_connection: int = 0,
    ) -> None:
        self._context = context
        self._respond = respond
        self._per_connection = requests_per_connection  # then close it while idle; 0: no limit
        self.errors: list[BaseException] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self.port: int = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self.connections = 0
        self.server_names: list[str | None] = []
        self.client_subjects: list[str] = []
        self.handshake_errors: list[str] = []
        self.requests: list[Request] = []
        context.sni_callback = self._on_sni

    def url(self, host: str = "127.0.0.1", target: str = "/v1/chat/completions") -> str:
        return f"https://{host}:{self.port}{target}"

    def _on_sni(self, sock: ssl.SSLObject | ssl.SSLSocket, name: str | None, context: ssl.SSLContext) -> None:
        self.server_names.append(name)

    def __enter__(self) -> TlsOrigin:
        thread = threading.Thread(target=self._accept, name=f"tls-origin-{self.port}", daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    async def __aenter__(self) -> TlsOrigin:
        return self.__enter__()

    async def __aexit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        """Stops the threads off the event loop, which may still be relaying for them (a proxy)."""
        await asyncio.to_thread(self.__exit__, exc_type)

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        self._stop.set()
        with self._lock:
            for sock in self._sockets:  # wakes a blocked thread; each thread closes its own socket
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        for thread in self._threads:
            thread.join(5)
        self._listener.close()
        if exc_type is None and self.errors:
            raise self.errors[0]

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            sock.settimeout(None)
            with self._lock:
                conn_id = self.connections
                self.connections += 1
            thread = threading.Thread(target=self._serve, args=(sock, conn_id), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _serve(self, sock: socket.socket, conn_id: int) -> None:
        tls = self._context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        with self._lock:
            self._sockets.append(tls)  # registered before the handshake, so __exit__ can interrupt it
        try:
            tls.do_handshake()
        except (ssl.SSLError, OSError) as exc:
            self.handshake_errors.append(str(getattr(exc, "reason", None) or exc))
            # The alert is sent; close only once the client has read it and hung up. Closing at once
            # with the client's request unread would reset the connection and could discard the
            # alert before the client reads it (TLS 1.3 clients write right after their Finished).
            with contextlib.suppress(OSError):
                tls.settimeout(2.0)
                while socket.socket.recv(tls, 65536):
                    pass
            tls.close()
            return
        stream = tls.makefile("rb")
        try:
            peer = tls.getpeercert()
            if peer:
                subject: Any = peer["subject"]  # ((("commonName", "..."),), ...)
                names = [pair for rdn in subject for pair in rdn]
                self.client_subjects += [str(value) for key, value in names if key == "commonName"]
            served = 0
            while (request := read_request(stream, conn_id)) is not None:
                self.requests.append(request)
                answer = self._respond(request)
                if not answer:
                    break  # b"": hang up without an answer
                tls.sendall(answer)
                served += 1
                if served == self._per_connection:
                    break
        except OSError:
            pass  # the client or the test's end went away
        except Exception as exc:
            self.errors.append(exc)
        finally:
            stream.close()
            tls.close()

    def wait_for_handshake_errors(self, count: int = 1, timeout_s: float = 2.0) -> list[str]:
        """Handshake failures are recorded by the server thread, possibly after the client gave up."""
        deadline = time.monotonic() + timeout_s
        while len(self.handshake_errors) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.handshake_errors


def read_request(stream: BinaryIO, conn_id: int = 0) -> Request | None:
    """One HTTP/1.1 request with a Content-Length body (or none) off a blocking stream; None at EOF."""
    request_line = stream.readline()
    if not request_line:
        return None
    method, target, version = request_line.decode("latin-1").rstrip("\r\n").split(" ")
    headers: list[tuple[str, str]] = []
    while (line := stream.readline().decode("latin-1").rstrip("\r\n")) != "":
        name, _, value = line.partition(":")
        headers.append((name, value.strip()))
    lengths = [value for name, value in headers if name.lower() == "content-length"]
    body = stream.read(int(lengths[0])) if lengths else b""
    return Request(conn_id, method, target, version, headers, body)
