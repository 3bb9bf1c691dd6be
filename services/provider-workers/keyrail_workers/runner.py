"""One attempt: credential → adapter → HTTP → adapter, within the attempt's deadline.

The runner is the only place that does the upstream I/O of an attempt. It knows no wire format
(the adapter does) and builds no result itself (the attempt recorder does): it fetches the
credential, lets the adapter build the request, sends it, and hands the answer back to the
adapter, or to the stream relay.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import msgspec

from keyrail_common.attempts import AttemptRecorder
from keyrail_common.failures import ErrorInfo, FailureClass, failure
from keyrail_common.messages import ProviderCall, ProviderResult
from keyrail_common.registry import ProviderRegistry, Quirks
from keyrail_common.vault import CachedCredentials
from keyrail_workers.adapters import ADAPTERS
from keyrail_workers.adapters.base import (
    AccessToken,
    Adapter,
    AdapterCall,
    Credential,
    TokenExchanger,
    UpstreamError,
    UpstreamRequest,
)
from keyrail_workers.adapters.vertex.token_cache import TokenCache
from keyrail_workers.http_client import (
    TlsOptions,
    TlsOptionsError,
    UpstreamConnectionError,
    UpstreamPool,
    UpstreamResponse,
    UpstreamTimeout,
)
from keyrail_workers.metrics import UPSTREAM_SECONDS
from keyrail_workers.relay import Publish, StreamRelay
from keyrail_workers.upstream_errors import (
    connection_failure,
    refused_failure,
    timeout_failure,
    upstream_failure,
)

Reply = Callable[[ProviderResult], Awaitable[None]]


class TokenRefused(Exception):
    """The token endpoint (or the adapter, before asking it) refused the credential."""

    def __init__(self, error: UpstreamError) -> None:
        super().__init__(error.message)
        self.error = error


def loop_deadline(wall_deadline_ns: int) -> float:
    """A wall-clock deadline (what crosses the bus) as the event loop's clock."""
    return asyncio.get_running_loop().time() + (wall_deadline_ns - time.time_ns()) / 1e9


class AttemptRunner:
    def __init__(
        self,
        registry: ProviderRegistry,
        credentials: CachedCredentials,
        upstream: UpstreamPool,
        publish: Publish,
    ) -> None:
        self._registry = registry
        self._credentials = credentials
        self._upstream = upstream
        self._publish = publish
        self._secrets_by_credential: dict[tuple[str, int], list[str]] = {}
        self._tls_by_credential: dict[tuple[str, int], TlsOptions | None] = {}
        # Adapters whose upstream takes an exchanged token (Vertex), and those tokens.
        self._exchangers = {name: a for name, a in ADAPTERS.items() if isinstance(a, TokenExchanger)}
        self._tokens = TokenCache()

    def _adapter(self, call: ProviderCall) -> Adapter | ErrorInfo:
        adapter = ADAPTERS.get(call.target.adapter)
        if adapter is None:
            return failure(
                FailureClass.UNSUPPORTED,
                f"This worker has no '{call.target.adapter}' adapter (for '{call.target.provider_slug}').",
                code="provider_adapter_unavailable",
            )
        if call.dialect not in adapter.dialects or call.operation not in adapter.operations:
            return failure(
                FailureClass.UNSUPPORTED,
                f"The '{adapter.name}' adapter cannot answer {call.operation.value} in the "
                f"{call.dialect.value} dialect in this version (for '{call.target.provider_slug}').",
                code="operation_not_supported",
            )
        return adapter

    async def _credential(self, call: ProviderCall) -> Credential | ErrorInfo:
        target = call.target
        try:
            return await self._credentials.get(target.credential_ref, target.credential_version)
        except Exception:  # BYOK fails closed: never another credential, never a detail that could leak
            return failure(
                FailureClass.WORKER_ERROR,
                f"Credentials of '{target.provider_slug}' could not be read from Vault.",
                code="credentials_unavailable",
            )

    def _adapter_call(self, call: ProviderCall, credential: Credential) -> AdapterCall:
        provider = self._registry.get(call.target.provider)
        headers = credential.get("custom_auth_headers")
        return AdapterCall(
            operation=call.operation,
            dialect=call.dialect,
            model=call.target.model,
            body=call.body,
            stream=call.stream,
            base_url=call.target.base_url,
            quirks=provider.quirks if provider else Quirks(),
            custom_headers=headers if isinstance(headers, dict) else {},
        )

    def _secrets(self, call: ProviderCall, credential: Credential, adapter_call: AdapterCall) -> list[str]:
        """What error messages must never say: every credential value but the registry's non-secret
        fields (a field the registry does not know is a secret), and the custom auth headers.
        Worked out once per credential version (they only change with a rotation)."""
        key = (call.target.credential_ref, call.target.credential_version)
        known = self._secrets_by_credential.get(key)
        if known is None:
            known = self._secrets_by_credential[key] = self._secret_values(call, credential, adapter_call)
        return known

    def _secret_values(
        self, call: ProviderCall, credential: Credential, adapter_call: AdapterCall
    ) -> list[str]:
        provider = self._registry.get(call.target.provider)
        fields = {f.name: f for f in provider.credentials} if provider else {}
        values: list[object] = []
        for name, value in credential.items():
            field = fields.get(name)
            if field is not None and not field.secret:
                continue
            if isinstance(value, dict):  # a key file: its strings but those the registry calls public
                public = field.public_keys if field is not None else frozenset()
                values.extend(v for k, v in value.items() if k not in public)
            else:
                values.append(value)
        return [v for v in (*values, *adapter_call.custom_headers.values()) if isinstance(v, str)]

    def _tls(self, call: ProviderCall, credential: Credential) -> TlsOptions | None:
        """The integration's TLS options (stored with its credential), once per credential version."""
        key = (call.target.credential_ref, call.target.credential_version)
        if key not in self._tls_by_credential:
            stored = credential.get("tls")
            pems = {
                name: value
                for name, value in (stored.items() if isinstance(stored, dict) else ())
                if name in TlsOptions.__struct_fields__ and isinstance(value, str) and value
            }
            self._tls_by_credential[key] = TlsOptions(**pems) if pems else None
        return self._tls_by_credential[key]

    async def _token(
        self, call: ProviderCall, exchanger: TokenExchanger, credential: Credential, tls: TlsOptions | None
    ) -> AccessToken:
        """The cached access token of this credential version, or one exchanged for it now (through
        the integration's own TLS options, as its upstream calls)."""

        async def exchange() -> AccessToken:
            request = exchanger.token_request(credential, time.time())
            if isinstance(request, UpstreamError):
                raise TokenRefused(request)
            response = await self._upstream.post(
                request.url, request.headers, request.body, _remaining_s(call.attempt_deadline_ns), tls=tls
            )
            try:
                body = await response.read()
            finally:
                response.release()
            token = exchanger.parse_token_response(response.status, body)
            if isinstance(token, UpstreamError):
                raise TokenRefused(token)
            return token

        target = call.target
        return await self._tokens.get((target.credential_ref, target.credential_version), exchange)

    async def _send(
        self,
        call: ProviderCall,
        adapter: Adapter,
        adapter_call: AdapterCall,
        credential: Credential,
        secrets: list[str],
    ) -> tuple[AdapterCall, UpstreamRequest, UpstreamResponse] | UpstreamError:
        """Build and send the request. With a token-exchanging adapter, a 401 drops the token and
        the request is sent once more with a fresh one; a second 401 is the answer."""
        exchanger = self._exchangers.get(adapter.name)
        tls = self._tls(call, credential)
        for refreshed in (False, True):
            token = None
            if exchanger is not None:
                token = await self._token(call, exchanger, credential, tls)
                secrets.append(token.value)
                adapter_call = msgspec.structs.replace(adapter_call, access_token=token.value)
            request = adapter.build_request(adapter_call, credential)
            if isinstance(request, UpstreamError):
                return request
            response = await self._upstream.post(
                request.url, request.headers, request.body, _remaining_s(call.attempt_deadline_ns), tls=tls
            )
            if token is None or response.status != 401 or refreshed:
                return adapter_call, request, response
            try:
                await response.read()  # read to its end: the connection goes back to the pool
            finally:
                response.release()
            target = call.target
            self._tokens.drop((target.credential_ref, target.credential_version), token)
        raise AssertionError("unreachable: the second send always returns")

    async def run(self, call: ProviderCall, attempt: AttemptRecorder, reply: Reply) -> None:
        adapter = self._adapter(call)
        if isinstance(adapter, ErrorInfo):
            await reply(attempt.fail(adapter))
            return
        credential = await self._credential(call)
        if isinstance(credential, ErrorInfo):
            await reply(attempt.fail(credential))
            return
        adapter_call = self._adapter_call(call, credential)
        secrets = self._secrets(call, credential, adapter_call)
        if adapter.name in self._exchangers:
            secrets = list(secrets)  # this call's tokens are added: not to the per-credential list
        slug = call.target.provider_slug
        relay: StreamRelay | None = None
        try:
            async with asyncio.timeout_at(loop_deadline(call.attempt_deadline_ns)) as deadline:
                sent = await self._send(call, adapter, adapter_call, credential, secrets)
                if isinstance(sent, UpstreamError):
                    await reply(attempt.fail(refused_failure(slug, sent, secrets)))
                    return
                adapter_call, request, response = sent
                attempt.timings.first_byte_ns = time.time_ns()
                UPSTREAM_SECONDS(slug).observe(time.perf_counter() - attempt.started)
                try:
                    if response.status < 300 and call.stream:
                        relay = StreamRelay(call, attempt, secrets, reply, self._publish)
                        # After the commit point the request's deadline bounds the stream, not the attempt's.
                        await relay.run(
                            adapter.stream_translator(adapter_call, request),
                            response,
                            lambda: deadline.reschedule(loop_deadline(call.deadline_ns)),
                        )
                        return
                    body = await response.read()
                finally:
                    response.release()
        except TokenRefused as exc:
            await reply(attempt.fail(upstream_failure(slug, exc.error, secrets)))
            return
        except TlsOptionsError as exc:  # stored before they were checked, or edited in Vault
            refusal = UpstreamError(
                FailureClass.CREDENTIAL, f"its {exc}", provider_code="invalid_tls_options"
            )
            await reply(attempt.fail(refused_failure(slug, refusal, secrets)))
            return
        except (UpstreamTimeout, TimeoutError):
            error = timeout_failure(slug, (time.perf_counter() - attempt.started))
            if relay is not None and relay.started:
                await relay.end(error)
            else:
                await reply(attempt.fail(error))
            return
        except UpstreamConnectionError as exc:
            await reply(attempt.fail(connection_failure(slug, str(exc))))
            return
        if response.status >= 300:
            classified = adapter.classify_error(response.status, response.headers, body)
            await reply(attempt.fail(upstream_failure(slug, classified, secrets, request.not_found_hint)))
            return
        parsed = adapter.parse_response(adapter_call, body)
        attempt.usage = parsed.usage
        if parsed.error is not None:
            await reply(attempt.fail(upstream_failure(slug, parsed.error, secrets)))
            return
        attempt.timings.done_ns = time.time_ns()
        await reply(attempt.succeed(parsed.body))


def _remaining_s(wall_deadline_ns: int) -> float:
    return max((wall_deadline_ns - time.time_ns()) / 1e9, 0.001)
