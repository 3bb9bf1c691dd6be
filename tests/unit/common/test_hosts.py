"""Custom-host validation: HTTPS unless allowed, never link-local or cloud metadata endpoints."""

from __future__ import annotations

import pytest

from keyrail_common.hosts import HostRejected, is_forbidden_host, validate_custom_host


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://llm.example.com/v1", "https://llm.example.com/v1"),
        ("https://llm.example.com/v1/", "https://llm.example.com/v1"),
        ("https://llm.example.com/v1///", "https://llm.example.com/v1"),
        ("https://llm.example.com", "https://llm.example.com"),
        ("https://llm.example.com:8443/openai/v1", "https://llm.example.com:8443/openai/v1"),
        ("https://10.0.0.5/v1/", "https://10.0.0.5/v1"),  # private networks are legitimate self-hosting
        ("https://[2001:db8::1]:8443/v1", "https://[2001:db8::1]:8443/v1"),
        ("HTTPS://LLM.Example.com/V1/", "HTTPS://LLM.Example.com/V1"),
    ],
)
def test_https_hosts_are_accepted_and_normalised(url: str, expected: str) -> None:
    assert validate_custom_host(url, allow_http=False) == expected


def test_plain_http_is_refused_unless_explicitly_allowed() -> None:
    with pytest.raises(HostRejected, match="allow_http"):
        validate_custom_host("http://vllm.internal:8000/v1", allow_http=False)

    assert (
        validate_custom_host("http://vllm.internal:8000/v1/", allow_http=True)
        == "http://vllm.internal:8000/v1"
    )


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "https://169.254.169.254/",
        "https://169.254.170.2/v2/credentials",  # ECS task metadata, also link-local
        "https://[fd00:ec2::254]/latest/meta-data/",
        "https://[fe80::1]/v1",
        "http://metadata.google.internal/computeMetadata/v1/",
        "https://METADATA.GOOGLE.INTERNAL/",
        "https://metadata/",
        "https://instance-data/latest",
        "https://metadata.azure.com/metadata/instance",
    ],
)
def test_cloud_metadata_and_link_local_hosts_are_refused(url: str) -> None:
    # allow_http only lifts the scheme rule; it never opens the metadata endpoints.
    with pytest.raises(HostRejected, match="refused"):
        validate_custom_host(url, allow_http=True)
    if url.startswith("https://"):
        with pytest.raises(HostRejected, match="refused"):
            validate_custom_host(url, allow_http=False)


@pytest.mark.parametrize(
    "url",
    [
        pytest.param(
            "https://metadata.google.internal./computeMetadata/v1/",
            id="fqdn-trailing-dot",
        ),
        pytest.param(
            "https://[::ffff:169.254.169.254]/latest/meta-data/",
            id="ipv4-mapped-ipv6",
        ),
        pytest.param(
            "https://2852039166/latest/meta-data/",
            id="decimal-ipv4",
        ),
    ],
)
def test_alternative_spellings_of_metadata_endpoints_are_refused(url: str) -> None:
    with pytest.raises(HostRejected):
        validate_custom_host(url, allow_http=True)


@pytest.mark.parametrize(
    "url",
    [
        "",
        "llm.example.com/v1",
        "not a url",
        "ftp://llm.example.com/v1",
        "file:///etc/passwd",
        "https://",
        "https:///v1",
        "//llm.example.com/v1",
        "javascript:alert(1)",
    ],
)
def test_garbage_is_refused_with_an_example_of_a_valid_url(url: str) -> None:
    with pytest.raises(HostRejected, match=r"https://llm\.example\.com/v1"):
        validate_custom_host(url, allow_http=True)


def test_unbalanced_ipv6_brackets_are_rejected_not_crashed() -> None:
    with pytest.raises(HostRejected):
        validate_custom_host("https://[::1/v1", allow_http=False)


@pytest.mark.parametrize(
    ("host", "forbidden"),
    [
        ("169.254.169.254", True),
        ("169.254.170.2", True),
        ("2852039166", True),  # decimal spelling of 169.254.169.254
        ("0xA9FEA9FE", True),
        ("::ffff:169.254.169.254", True),
        ("fe80::1", True),
        ("fd00:ec2::254", True),
        ("metadata.google.internal", True),
        ("METADATA.google.internal.", True),
        ("metadata", True),
        ("api.openai.com", False),
        ("10.0.0.5", False),
        ("127.0.0.1", False),
        ("localhost", False),
        ("metadata.example.com", False),
    ],
)
def test_is_forbidden_host_for_hosts_a_proxy_would_resolve(host: str, forbidden: bool) -> None:
    assert is_forbidden_host(host) is forbidden
