"""The SSRF guard of webhook destinations: URLs parsed strictly, every resolved address
checked. IP literals and `localhost` go through the OS resolver; names that must answer
specific addresses (rebinding) go through a fake getaddrinfo, as no DNS server runs here."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Sequence

import pytest

from orgbase.core.destinations import (
    AddrInfo,
    Destination,
    DestinationPolicy,
    parse_url,
    refusal_reason,
    resolve,
)
from orgbase.core.errors import Invalid

STRICT = DestinationPolicy(allowed_hosts=frozenset(), allow_loopback=False)
DEV = DestinationPolicy(allowed_hosts=frozenset(), allow_loopback=True)

INVALID = "invalid_webhook_url"
REFUSED = "webhook_destination_refused"
UNRESOLVED = "webhook_host_unresolved"


class FakeDNS:
    """A getaddrinfo answering fixed addresses per host, recording what was asked."""

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers
        self.asked: list[tuple[str, int]] = []

    async def __call__(self, host: str, port: int) -> Sequence[AddrInfo]:
        self.asked.append((host, port))
        if host not in self.answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [_answer(address, port) for address in self.answers[host]]


def _answer(address: str, port: int) -> AddrInfo:
    if ":" in address:
        return (socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, port, 0, 0))
    return (socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))


def invalid(url: str) -> Invalid:
    with pytest.raises(Invalid) as caught:
        parse_url(url)
    return caught.value


async def refused(
    url: str,
    policy: DestinationPolicy = STRICT,
    dns: FakeDNS | None = None,
) -> Invalid:
    with pytest.raises(Invalid) as caught:
        await resolve(url, policy, getaddrinfo=dns)
    return caught.value


# --- parse_url: what is accepted, and how it is normalised ---------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://example.com/hook", ("https", "example.com", 443)),
        ("http://example.com", ("http", "example.com", 80)),
        ("HTTP://Example.COM:8080/x?y=1&z=%20", ("http", "example.com", 8080)),
        ("https://hooks.example.com:/", ("https", "hooks.example.com", 443)),
        ("https://example.com./", ("https", "example.com.", 443)),
        ("https://my_service.example.com/", ("https", "my_service.example.com", 443)),
        ("https://[2606:4700::1]:8443/", ("https", "2606:4700::1", 8443)),
        ("https://[2606:4700:0:0:0:0:0:1]/", ("https", "2606:4700::1", 443)),
        ("https://93.184.216.34:65535/", ("https", "93.184.216.34", 65535)),
        ("https://bücher.example/", ("https", "xn--bcher-kva.example", 443)),
        ("https://BÜCHER.example/", ("https", "xn--bcher-kva.example", 443)),
        ("https://example.com/@user/ü", ("https", "example.com", 443)),
    ],
)
def test_parse_url_accepts_plain_http_urls(url: str, expected: tuple[str, str, int]) -> None:
    assert parse_url(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        # Other schemes, or no scheme.
        "ftp://example.com/",
        "file:///etc/passwd",
        "gopher://127.0.0.1:6379/_FLUSHALL",
        "javascript:alert(1)",
        "example.com/hook",
        "//example.com/hook",
        "",
        # No host.
        "https://",
        "https:///hook",
        "http:example.com",
        "http:/example.com",
        "https://:443/",
        # Credentials.
        "https://user:pass@example.com/",
        "https://user@example.com/",
        "https://@example.com/",
        "https://example.com:443@127.0.0.1/",
        # Ports.
        "https://example.com:0/",
        "https://example.com:65536/",
        "https://example.com:99999999/",
        "https://example.com:-1/",
        "https://example.com:+443/",
        "https://example.com:\uff14\uff14\uff13/",  # full-width digits
        "https://example.com:https/",
        "https://example.com:80:80/",
        # Fragments, even empty ones.
        "https://example.com/hook#frag",
        "https://example.com/#",
        # Whitespace and control characters anywhere.
        " https://example.com/",
        "https://example.com/ ",
        "https://exa mple.com/",
        "https://example.com/\t",
        "https://exam\nple.com/",
        "https://example.com/\r\nX-Injected: 1",
        "https://example.com/\x00",
        "https://example.com/\x7f",
        "https://example.com/\x85",
        "https://example.com/\u00a0",
        "https://example.com/\u3000",
        "https://exa\u200bmple.com/",
        "https://example.com/\u202e",
        "https://example.com\u2028/",
        # Parser differentials.
        "https://example.com\\@127.0.0.1/",
        "https://127.0.0.1\\.example.com/",
        "https://127.0.0.%31/",
        "https://%65xample.com/",
        # Hosts that are no host names.
        "https://exa..mple.com/",
        "https://.example.com/",
        "https://example.com../",
        "https://-example.com/",
        "https://example-.com/",
        "https://exa$mple.com/",
        "https://exa!mple.com/",
        "https://" + "a" * 64 + ".com/",
        "https://" + ".".join(["a" * 60] * 5) + "/",
        # IPv6 literals: zones, v4 in brackets, unbracketed, unclosed, IPvFuture.
        "https://[fe80::1%25eth0]/",
        "https://[127.0.0.1]/",
        "https://::1/",
        "https://[::1/",
        "https://[::1]x/",
        "https://[v1.fe80::1]/",
        "https://[::1]:0/",
        # Odd IPv4 literals (every one means 127.0.0.1 to WHATWG parsers and glibc).
        "https://0x7f.1/",
        "https://0x7f000001/",
        "https://2130706433/",
        "https://017700000001/",
        "https://0177.0.0.1/",
        "https://127.1/",
        "https://127.0.1/",
        "https://127.000.000.001/",
        "https://0x7f.0x0.0x0.0x1/",
        "https://127.0.0.1.1/",
        "https://example.0x/",
        "https://example.123/",
        # IDNA: what cannot be encoded.
        "https://a\ufffdb.com/",
        "https://a\ue000b.com/",
        "https://\u2488.com/",
        # Length.
        "https://example.com/" + "a" * 1981,
    ],
)
def test_parse_url_refuses_everything_else(url: str) -> None:
    error = invalid(url)
    assert error.code == INVALID
    assert error.hint is not None


def test_the_length_limit_is_2000_characters() -> None:
    base = "https://example.com/"
    assert parse_url(base + "a" * (2000 - len(base)))[1] == "example.com"
    assert invalid(base + "a" * (2001 - len(base))).code == INVALID


def test_credentials_are_named_as_the_reason_and_not_echoed() -> None:
    error = invalid("https://admin:s3cret@example.com/")
    assert "credentials" in error.message
    assert "s3cret" not in error.message


# --- resolve: attacks through IP literals and the OS resolver ------------------------------


@pytest.mark.parametrize(
    ("url", "address", "reason"),
    [
        ("http://127.0.0.1/", "127.0.0.1", "loopback"),
        ("http://127.8.9.10:6379/", "127.8.9.10", "loopback"),
        ("http://[::1]:5432/", "::1", "loopback"),
        ("http://10.0.0.1/", "10.0.0.1", "private"),
        ("http://10.255.255.255/", "10.255.255.255", "private"),
        ("http://172.16.0.1/", "172.16.0.1", "private"),
        ("http://172.31.255.254/", "172.31.255.254", "private"),
        ("http://192.168.1.1/", "192.168.1.1", "private"),
        ("http://[fc00::1]/", "fc00::1", "private"),
        ("http://[fd12:3456:789a::1]/", "fd12:3456:789a::1", "private"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254", "link-local"),
        ("http://169.254.0.1/", "169.254.0.1", "link-local"),
        ("http://[fe80::1]/", "fe80::1", "link-local"),
        ("http://100.64.0.1/", "100.64.0.1", "carrier-grade NAT"),
        ("http://100.127.255.254/", "100.127.255.254", "carrier-grade NAT"),
        ("http://0.0.0.0/", "0.0.0.0", "unspecified"),  # noqa: S104 - refused, not bound
        ("http://0.1.2.3/", "0.1.2.3", "this network"),
        ("http://[::]/", "::", "unspecified"),
        ("http://224.0.0.1/", "224.0.0.1", "multicast"),
        ("http://239.255.255.250:1900/", "239.255.255.250", "multicast"),
        ("http://[ff02::1]/", "ff02::1", "multicast"),
        ("http://[ff0e::1]/", "ff0e::1", "multicast"),
        ("http://240.0.0.1/", "240.0.0.1", "reserved"),
        ("http://255.255.255.255/", "255.255.255.255", "broadcast"),
        ("http://192.0.2.1/", "192.0.2.1", "documentation"),
        ("http://198.51.100.7/", "198.51.100.7", "documentation"),
        ("http://203.0.113.9/", "203.0.113.9", "documentation"),
        ("http://[2001:db8::1]/", "2001:db8::1", "documentation"),
        ("http://[3fff::1]/", "3fff::1", "documentation"),
        ("http://198.18.0.1/", "198.18.0.1", "benchmarking"),
        ("http://198.19.255.254/", "198.19.255.254", "benchmarking"),
        ("http://192.0.0.8/", "192.0.0.8", "special-purpose"),
        ("http://192.88.99.1/", "192.88.99.1", "special-purpose"),
        ("http://[2001::1]/", "2001::1", "special-purpose"),
        ("http://[fec0::1]/", "fec0::1", "site-local"),
        ("http://[100::1]/", "100::1", "discard"),
        ("http://[::127.0.0.1]/", "::127.0.0.1", "IPv4-compatible"),
        ("http://[64:ff9b:1::a00:1]/", "64:ff9b:1::a00:1", "NAT64"),
        ("http://[4000::1]/", "4000::1", "reserved"),
        # Embedded IPv4 addresses are judged by what they embed.
        (
            "http://[::ffff:127.0.0.1]/",
            "::ffff:127.0.0.1",
            "loopback address (127.0.0.1, embedded)",
        ),
        ("http://[::ffff:169.254.169.254]/", "::ffff:169.254.169.254", "link-local"),
        ("http://[::ffff:10.0.0.1]/", "::ffff:10.0.0.1", "private address (10.0.0.1"),
        ("http://[64:ff9b::169.254.169.254]/", "64:ff9b::a9fe:a9fe", "link-local"),
        ("http://[64:ff9b::7f00:1]/", "64:ff9b::7f00:1", "loopback address (127.0.0.1"),
        ("http://[2002:7f00:1::]/", "2002:7f00:1::", "loopback address (127.0.0.1"),
        ("http://[2002:a9fe:a9fe::1]/", "2002:a9fe:a9fe::1", "(169.254.169.254, embedded)"),
        ("http://[2002:c0a8:101::1]/", "2002:c0a8:101::1", "private address (192.168.1.1"),
        # Look-alikes folded by IDNA: full-width digits and dots are 127.0.0.1.
        ("http://\uff11\uff12\uff17\u3002\uff10\u3002\uff10\u3002\uff11/", "127.0.0.1", "loopback"),
    ],
)
async def test_refused_addresses(url: str, address: str, reason: str) -> None:
    error = await refused(url)
    assert error.code == REFUSED
    # Compared as addresses: how Python prints IPv4-mapped ones varies between releases.
    assert ipaddress.ip_address(error.details["address"]) == ipaddress.ip_address(address)
    assert str(ipaddress.ip_address(address)) in error.message
    assert reason in error.message
    assert error.hint is not None
    assert "ORGBASE_WEBHOOKS_ALLOWED_HOSTS" in error.hint


async def test_localhost_through_the_os_resolver_is_refused() -> None:
    error = await refused("http://localhost:8080/hook")
    assert error.code == REFUSED
    assert error.details["host"] == "localhost"
    assert ipaddress.ip_address(error.details["address"]).is_loopback
    assert "The webhook host localhost resolves to" in error.message


@pytest.mark.parametrize("odd", ["0x7f.1", "2130706433", "017700000001", "127.1", "0177.0.0.1"])
async def test_odd_ipv4_literals_are_refused_twice_over(odd: str) -> None:
    # First line: the parser refuses the spelling itself.
    error = await refused(f"http://{odd}/")
    assert error.code == INVALID
    # Second line: the OS resolver does read it as 127.0.0.1, and a name whose lookup
    # gives what the resolver makes of it is refused on the address.
    loop = asyncio.get_running_loop()
    answers = await loop.getaddrinfo(odd, 80, type=socket.SOCK_STREAM)
    assert {answer[4][0] for answer in answers} == {"127.0.0.1"}

    async def through_os(host: str, port: int) -> Sequence[AddrInfo]:
        return await loop.getaddrinfo(odd, port, type=socket.SOCK_STREAM)

    with pytest.raises(Invalid) as caught:
        await resolve("http://odd.example/", STRICT, getaddrinfo=through_os)
    assert caught.value.code == REFUSED
    assert caught.value.details["address"] == "127.0.0.1"


async def test_parse_errors_come_through_resolve() -> None:
    for url in ("ftp://example.com/", "https://u:p@example.com/", "https://example.com/#x"):
        assert (await refused(url)).code == INVALID


# --- resolve: names and DNS answers (rebinding) ---------------------------------------------


@pytest.mark.parametrize(
    ("answers", "bad"),
    [
        (["93.184.216.34", "10.0.0.5"], "10.0.0.5"),
        (["10.0.0.5", "93.184.216.34"], "10.0.0.5"),
        (["93.184.216.34", "127.0.0.1"], "127.0.0.1"),
        (["2606:4700::1", "::1"], "::1"),
        (["2606:4700::1", "93.184.216.34", "169.254.169.254"], "169.254.169.254"),
        (["93.184.216.34", "fd00::1"], "fd00::1"),
        (["93.184.216.34", "::ffff:192.168.0.1"], str(ipaddress.ip_address("::ffff:192.168.0.1"))),
        (["93.184.216.34", "0.0.0.0"], "0.0.0.0"),  # noqa: S104 - refused, not bound
    ],
)
async def test_one_refused_address_refuses_the_host(answers: list[str], bad: str) -> None:
    dns = FakeDNS({"rebind.example.com": answers})
    error = await refused("https://rebind.example.com/hook", dns=dns)
    assert error.code == REFUSED
    assert error.details == {"host": "rebind.example.com", "address": bad}
    assert "rebind.example.com resolves to" in error.message


async def test_names_resolving_to_internal_services_are_refused() -> None:
    dns = FakeDNS(
        {
            "metadata.google.internal": ["169.254.169.254"],
            "127.0.0.1.nip.io": ["127.0.0.1"],
            "redis": ["172.18.0.3"],
            "scoped.example.com": ["fe80::1%1"],
        }
    )
    for host in dns.answers:
        error = await refused(f"http://{host}/", dns=dns)
        assert error.code == REFUSED, host


async def test_a_garbled_answer_is_refused() -> None:
    async def garbled(host: str, port: int) -> Sequence[AddrInfo]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("not-an-address", port))]

    with pytest.raises(Invalid) as caught:
        await resolve("https://garbled.example.com/", STRICT, getaddrinfo=garbled)
    assert caught.value.code == REFUSED


async def test_names_that_do_not_resolve() -> None:
    empty = FakeDNS({"empty.example.com": []})
    for host in ("nowhere.example.com", "empty.example.com"):
        error = await refused(f"https://{host}/", dns=empty)
        assert error.code == UNRESOLVED
        assert host in error.message


async def test_a_slow_lookup_is_unresolved() -> None:
    async def hangs(host: str, port: int) -> Sequence[AddrInfo]:
        await asyncio.sleep(10)
        return []

    with pytest.raises(Invalid) as caught:
        await resolve("https://slow.example.com/", STRICT, getaddrinfo=hangs, lookup_seconds=0.05)
    assert caught.value.code == UNRESOLVED
    assert "did not resolve" in caught.value.message


async def test_the_resolver_gets_the_idna_host_and_the_port() -> None:
    dns = FakeDNS({"xn--bcher-kva.example": ["93.184.216.34"]})
    destination = await resolve("https://Bücher.example:8443/hook", STRICT, getaddrinfo=dns)
    assert dns.asked == [("xn--bcher-kva.example", 8443)]
    assert destination.host == "xn--bcher-kva.example"
    assert destination.target == "https://93.184.216.34:8443/hook"


async def test_literals_are_not_looked_up() -> None:
    dns = FakeDNS({})
    await resolve("https://93.184.216.34/", STRICT, getaddrinfo=dns)
    await resolve("https://[2606:4700::1]/", STRICT, getaddrinfo=dns)
    assert dns.asked == []


# --- resolve: what is allowed ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "scheme", "host", "port", "target"),
    [
        (
            "https://93.184.216.34/hooks/orgbase?v=1",
            "https",
            "93.184.216.34",
            443,
            "https://93.184.216.34/hooks/orgbase?v=1",
        ),
        (
            "http://[2606:4700::1]:8080/hook",
            "http",
            "2606:4700::1",
            8080,
            "http://[2606:4700::1]:8080/hook",
        ),
    ],
    ids=["ipv4", "ipv6"],
)
async def test_a_public_address_literal(
    url: str, scheme: str, host: str, port: int, target: str
) -> None:
    expected = Destination(
        url=url, scheme=scheme, host=host, port=port, address=host, target=target
    )
    assert await resolve(url, STRICT) == expected


@pytest.mark.parametrize(
    "url",
    [
        "https://[::ffff:93.184.216.34]/",
        "https://[64:ff9b::93.184.216.34]/",
        "https://[2002:5db8:d822::1]/",
    ],
)
async def test_embedded_public_ipv4_is_allowed(url: str) -> None:
    destination = await resolve(url, STRICT)
    assert ipaddress.ip_address(destination.address).version == 6


async def test_a_public_name_connects_to_its_first_address() -> None:
    dns = FakeDNS({"hooks.example.com": ["93.184.216.34", "2606:4700::1", "93.184.216.34"]})
    destination = await resolve("https://hooks.example.com/in?a=b", STRICT, getaddrinfo=dns)
    assert destination.host == "hooks.example.com"
    assert destination.address == "93.184.216.34"
    assert destination.target == "https://93.184.216.34/in?a=b"


async def test_an_ipv6_only_name_gets_a_bracketed_target() -> None:
    dns = FakeDNS({"v6.example.com": ["2606:4700::1"]})
    destination = await resolve("http://v6.example.com:81", STRICT, getaddrinfo=dns)
    assert destination.target == "http://[2606:4700::1]:81"


@pytest.mark.parametrize(
    ("url", "address"),
    [
        ("http://127.0.0.1:9000/hook", "127.0.0.1"),
        ("http://127.1.2.3/", "127.1.2.3"),
        ("http://[::1]:9000/", "::1"),
        ("http://[::ffff:127.0.0.1]/", str(ipaddress.ip_address("::ffff:127.0.0.1"))),
    ],
)
async def test_loopback_in_development(url: str, address: str) -> None:
    assert (await resolve(url, DEV)).address == address


async def test_localhost_in_development() -> None:
    destination = await resolve("http://localhost:9000/hook", DEV)
    assert destination.host == "localhost"
    assert ipaddress.ip_address(destination.address).is_loopback


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.1/",
        "http://0.0.0.0/",
        "http://169.254.169.254/",
        "http://[fe80::1]/",
        "http://192.168.0.10/",
    ],
)
async def test_development_allows_loopback_only(url: str) -> None:
    assert (await refused(url, DEV)).code == REFUSED


async def test_allow_listed_hosts() -> None:
    policy = DestinationPolicy(
        allowed_hosts=frozenset({"127.0.0.1", "hooks.internal", "0:0::1"}), allow_loopback=False
    )
    assert (await resolve("http://127.0.0.1:9000/hook", policy)).address == "127.0.0.1"
    assert (await resolve("http://[::1]/", policy)).address == "::1"
    dns = FakeDNS({"hooks.internal": ["10.1.2.3", "192.168.5.5"], "hooks.internal.": ["10.1.2.3"]})
    destination = await resolve("https://hooks.internal/in", policy, getaddrinfo=dns)
    assert destination.address == "10.1.2.3"
    assert destination.target == "https://10.1.2.3/in"
    assert (await resolve("https://hooks.internal./in", policy, getaddrinfo=dns)).port == 443


async def test_the_allow_list_names_hosts_not_addresses() -> None:
    policy = DestinationPolicy(allowed_hosts=frozenset({"127.0.0.1"}), allow_loopback=False)
    # localhost resolves to 127.0.0.1, but it is not on the list.
    assert (await refused("http://localhost/", policy)).code == REFUSED
    assert (await refused("http://127.0.0.2/", policy)).code == REFUSED
    assert (await refused("http://[::ffff:127.0.0.1]/", policy)).code == REFUSED
    dns = FakeDNS({"evil.example.com": ["127.0.0.1"]})
    assert (await refused("http://evil.example.com/", policy, dns)).code == REFUSED


async def test_an_allow_listed_host_must_still_resolve() -> None:
    policy = DestinationPolicy(allowed_hosts=frozenset({"gone.internal"}), allow_loopback=False)
    assert (await refused("http://gone.internal/", policy, FakeDNS({}))).code == UNRESOLVED


# --- refusal_reason on its own ----------------------------------------------------------------


@pytest.mark.parametrize(
    "address", ["93.184.216.34", "8.8.8.8", "1.1.1.1", "2606:4700::1", "2a00:1450:4001::1"]
)
def test_public_addresses_have_no_refusal(address: str) -> None:
    assert refusal_reason(ipaddress.ip_address(address)) is None


def test_every_address_outside_global_unicast_is_refused() -> None:
    for network in ("100.64.0.0/10", "169.254.0.0/16", "fc00::/7", "64:ff9b:1::/48"):
        net = ipaddress.ip_network(network)
        for address in (net.network_address, net.broadcast_address, net[1]):
            assert refusal_reason(address) is not None, address
