"""Where a customer-registered URL may be fetched: the SSRF guard (webhook endpoints, an
org's own OpenID provider).

A webhook URL is written by a customer but fetched by our servers, so unguarded it is a
way into our network: the cloud metadata service, Redis, PostgreSQL, an admin port on
localhost. `parse_url` accepts only plain http(s) URLs, parsed strictly so that no other
URL parser (the HTTP client's, a browser's) can read a different host into them. `resolve`
then resolves the host and checks EVERY address it resolves to: one refused address
refuses the host, since a name resolving to both a public and a private address is the
classic rebinding trick.

The delivery code connects to `Destination.address` (the URL `Destination.target`), with
`Destination.host` as the Host header and TLS server name, and never resolves the host
again. The address checked is then the address connected to, which defeats DNS rebinding
between check and connect (a name answering a public address to the check and
127.0.0.1 a moment later). Redirects must not be followed, or each one goes through
`resolve` again.

Operators let webhooks reach their own internal receivers by listing the hosts in
ORGBASE_WEBHOOKS_ALLOWED_HOSTS (`DestinationPolicy.allowed_hosts`); development may allow
loopback (`DestinationPolicy.allow_loopback`).
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
import unicodedata
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn
from urllib.parse import urlsplit

from orgbase.core.errors import Invalid

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# One answer of getaddrinfo: (family, type, proto, canonname, sockaddr).
AddrInfo = tuple[int, int, int, str, tuple[Any, ...]]
GetAddrInfo = Callable[[str, int], Awaitable[Sequence[AddrInfo]]]

MAX_URL_LENGTH = 2000
DEFAULT_PORTS = {"http": 80, "https": 443}
RESOLVE_TIMEOUT = 5.0

INVALID_URL = "invalid_webhook_url"
REFUSED = "webhook_destination_refused"
UNRESOLVED = "webhook_host_unresolved"

_URL_HINT = "Register an absolute URL such as https://hooks.example.com/orgbase."
_REFUSED_HINT = (
    "Webhooks go to public addresses only. An operator can allow an internal receiver by "
    "adding its host name or IP address to ORGBASE_WEBHOOKS_ALLOWED_HOSTS (comma-separated)."
)
_UNRESOLVED_HINT = "Check the host name: it must resolve in public DNS."

# Unicode categories refused anywhere in a URL: controls, invisible format characters
# (zero-width, bidi overrides: they hide what a URL really says) and separators.
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zs", "Zl", "Zp"})
_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?", re.ASCII)
# WHATWG URL parsers read a host whose last label is a number as an IPv4 address
# (`0x7f.1`, `2130706433`, `127.1` all mean 127.0.0.1), and so do many resolvers.
_NUMERIC_LABEL = re.compile(r"[0-9]+|0x[0-9a-f]*", re.ASCII)
_PORT = re.compile(r"[0-9]{1,5}", re.ASCII)

_LOOPBACK = "a loopback address"
_PRIVATE = "a private address"
_LINK_LOCAL = "a link-local address (this includes the cloud metadata service)"
_MULTICAST = "a multicast address"
_RESERVED = "a reserved address"
_DOCUMENTATION = "a documentation address"
_SPECIAL = "a special-purpose address"

_BROADCAST = ipaddress.IPv4Address("255.255.255.255")
# Spelled out rather than left to `is_global` alone: its tables differ between Python
# releases (3.11.7 calls fec0::/10 and 3fff::/20 global), and the reason helps the caller.
_IPV4_REFUSED = tuple(
    (ipaddress.IPv4Network(network), reason)
    for network, reason in (
        ("0.0.0.0/8", "a 'this network' address"),
        ("10.0.0.0/8", _PRIVATE),
        ("100.64.0.0/10", "a carrier-grade NAT (shared) address"),
        ("169.254.0.0/16", _LINK_LOCAL),
        ("172.16.0.0/12", _PRIVATE),
        ("192.0.0.0/24", _SPECIAL),
        ("192.0.2.0/24", _DOCUMENTATION),
        ("192.88.99.0/24", _SPECIAL),
        ("192.168.0.0/16", _PRIVATE),
        ("198.18.0.0/15", "a benchmarking address"),
        ("198.51.100.0/24", _DOCUMENTATION),
        ("203.0.113.0/24", _DOCUMENTATION),
        ("224.0.0.0/4", _MULTICAST),
        ("240.0.0.0/4", _RESERVED),
    )
)
_IPV6_REFUSED = tuple(
    (ipaddress.IPv6Network(network), reason)
    for network, reason in (
        ("::/96", "an IPv4-compatible address (deprecated)"),
        ("64:ff9b:1::/48", "a local-use NAT64 address"),
        ("100::/64", "a discard-only address"),
        ("2001::/23", _SPECIAL),
        ("2001:db8::/32", _DOCUMENTATION),
        ("3fff::/20", _DOCUMENTATION),
        ("fc00::/7", _PRIVATE),
        ("fe80::/10", _LINK_LOCAL),
        ("fec0::/10", "a site-local address (deprecated)"),
        ("ff00::/8", _MULTICAST),
    )
)
# The only IPv6 block allocated for global unicast; anything outside it is not a receiver.
_IPV6_GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


@dataclass(frozen=True)
class DestinationPolicy:
    # Host names or IP literals (lower-case): always allowed, whatever they resolve to.
    allowed_hosts: frozenset[str]
    # Development: loopback addresses allowed (local receivers).
    allow_loopback: bool


@dataclass(frozen=True)
class Destination:
    url: str  # the URL as registered
    scheme: str  # "http" | "https"
    host: str  # lower-case, IDNA-encoded, brackets stripped for IPv6
    port: int
    address: str  # the checked IP address to connect to
    target: str  # `url` with the host replaced by `address` ([..] for IPv6)


@dataclass(frozen=True)
class _Parsed:
    scheme: str
    host: str
    port: int
    literal: IPAddress | None  # the host when written as an IP address
    rest: str  # everything after the authority (path and query), as written
    port_text: str  # the port as written, "" when none


def parse_url(url: str) -> tuple[str, str, int]:
    """scheme, host, port of a webhook URL; Invalid (code "invalid_webhook_url") for
    anything else."""
    parsed = _parse(url)
    return parsed.scheme, parsed.host, parsed.port


async def resolve(
    url: str,
    policy: DestinationPolicy,
    *,
    getaddrinfo: GetAddrInfo | None = None,
    lookup_seconds: float = RESOLVE_TIMEOUT,
) -> Destination:
    """Parse, resolve the host (asyncio's loop.getaddrinfo, in the running loop) and check
    EVERY address it resolves to; return the first allowed one. Invalid with code
    "webhook_destination_refused" when the host resolves to a refused address,
    "webhook_host_unresolved" when it does not resolve.

    `getaddrinfo(host, port)` replaces the system resolver (tests feed it DNS answers);
    `lookup_seconds` bounds the lookup. An IP literal is not looked up."""
    parsed = _parse(url)
    if parsed.literal is not None:
        addresses = [parsed.literal]
    else:
        lookup = getaddrinfo or _system_getaddrinfo
        addresses = await _lookup(parsed.host, parsed.port, lookup, lookup_seconds)
    if not _allow_listed(parsed.host, policy):
        for address in addresses:
            reason = refusal_reason(address, allow_loopback=policy.allow_loopback)
            if reason is None:
                continue
            where = (
                f"The webhook address {address}"
                if parsed.literal is not None
                else f"The webhook host {parsed.host} resolves to {address}, which"
            )
            raise Invalid(
                f"{where} is {reason}.",
                code=REFUSED,
                details={"host": parsed.host, "address": str(address)},
                hint=_REFUSED_HINT,
            )
    address = addresses[0]
    # A scoped IPv6 address (fe80::1%eth0) can only get here allow-listed; its zone is
    # percent-encoded in a URL.
    in_url = f"[{address}]".replace("%", "%25") if address.version == 6 else str(address)
    port = f":{parsed.port_text}" if parsed.port_text else ""
    return Destination(
        url=url,
        scheme=parsed.scheme,
        host=parsed.host,
        port=parsed.port,
        address=str(address),
        target=f"{parsed.scheme}://{in_url}{port}{parsed.rest}",
    )


def refusal_reason(address: IPAddress, *, allow_loopback: bool = False) -> str | None:
    """Why webhooks may not go to `address` ("a private address"...), None when they may.

    Addresses that embed an IPv4 address (IPv4-mapped ::ffff:a.b.c.d, NAT64 64:ff9b::/96,
    6to4 2002::/16) are judged by the embedded address: that is where the packets go."""
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        reason = refusal_reason(embedded, allow_loopback=allow_loopback)
        return None if reason is None else f"{reason} ({embedded}, embedded)"
    if address.is_loopback:
        return None if allow_loopback else _LOOPBACK
    # The flags as a second net, for whatever the tables miss.
    flags = (
        (address.is_multicast, _MULTICAST),
        (address.is_link_local, _LINK_LOCAL),
        (address.is_private, _PRIVATE),
        (address.is_reserved, _RESERVED),
        (not address.is_global, "not a public address"),
    )
    return _listed_reason(address) or next((reason for hit, reason in flags if hit), None)


def _listed_reason(address: IPAddress) -> str | None:
    if address.is_unspecified:
        return "the unspecified address"
    if isinstance(address, ipaddress.IPv4Address):
        if address == _BROADCAST:
            return "the broadcast address"
        return next((reason for net, reason in _IPV4_REFUSED if address in net), None)
    reason = next((reason for net, reason in _IPV6_REFUSED if address in net), None)
    if reason is None and address not in _IPV6_GLOBAL_UNICAST:
        return _RESERVED
    return reason


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address.sixtofour


def _invalid(message: str) -> NoReturn:
    raise Invalid(message, code=INVALID_URL, hint=_URL_HINT)


def _parse(url: str) -> _Parsed:
    if len(url) > MAX_URL_LENGTH:
        _invalid(f"A webhook URL is at most {MAX_URL_LENGTH} characters long.")
    # Checked before urlsplit, which silently drops tabs and newlines and strips spaces.
    if any(char.isspace() or unicodedata.category(char) in _REFUSED_CATEGORIES for char in url):
        _invalid("A webhook URL may not contain spaces or control characters.")
    # Browsers and WHATWG parsers read a backslash as a slash, Python does not: refusing it
    # leaves no URL on which two parsers disagree about the host.
    if "\\" in url:
        _invalid("A webhook URL may not contain a backslash.")
    if "#" in url:
        _invalid("A webhook URL may not have a fragment (#...): it is never sent.")
    try:
        parts = urlsplit(url)
    except ValueError:
        _invalid("The webhook URL is not a valid URL.")
    scheme = parts.scheme
    if scheme not in DEFAULT_PORTS:
        _invalid("A webhook URL starts with http:// or https://.")
    netloc = parts.netloc
    start = len(scheme) + 3
    if not netloc or url[start : start + len(netloc)] != netloc:
        _invalid("A webhook URL needs a host: http(s)://host/path.")
    if "@" in netloc:
        _invalid("A webhook URL may not contain credentials (user:password@): URLs get logged.")

    host, literal, port_text = _authority(netloc)
    port = DEFAULT_PORTS[scheme]
    if port_text:
        if not _PORT.fullmatch(port_text) or not 1 <= int(port_text) <= 65535:
            _invalid("A webhook URL's port is a number from 1 to 65535.")
        port = int(port_text)
    return _Parsed(scheme, host, port, literal, url[start + len(netloc) :], port_text)


def _authority(netloc: str) -> tuple[str, IPAddress | None, str]:
    """host, IP literal (None for a name), port as written ("" when none)."""
    literal: IPAddress | None
    if netloc.startswith("["):
        close = netloc.find("]")
        if close < 0:
            _invalid("An IPv6 address in a URL is written in brackets: [2606:4700::1].")
        host, literal = _ipv6_host(netloc[1:close])
        after = netloc[close + 1 :]
    else:
        text, colon, port_text = netloc.partition(":")
        host, literal = _named_host(text)
        after = colon + port_text
    if after and not after.startswith(":"):
        _invalid("The webhook URL's host is not valid.")
    return host, literal, after[1:]


def _ipv6_host(text: str) -> tuple[str, ipaddress.IPv6Address]:
    if "%" in text:
        _invalid("A webhook URL may not name an IPv6 zone (%...).")
    try:
        literal = ipaddress.IPv6Address(text)
    except ValueError:
        _invalid("The webhook URL's host is not a valid IPv6 address.")
    return str(literal), literal


def _named_host(text: str) -> tuple[str, ipaddress.IPv4Address | None]:
    if not text:
        _invalid("A webhook URL needs a host: http(s)://host/path.")
    # Percent-encoded hosts are decoded by some parsers (127.0.0.%31), not by others.
    if "%" in text:
        _invalid("A webhook URL's host may not be percent-encoded.")
    if text.isascii():
        host = text.lower()
    else:
        try:
            # Python's IDNA 2003 codec; its nameprep also folds look-alikes such as
            # full-width digits, which the checks below then see as what they are.
            host = text.encode("idna").decode("ascii").lower()
        except UnicodeError:
            _invalid("The webhook URL's host is not a valid international domain name.")
    name = host.removesuffix(".")
    labels = name.split(".")
    if len(name) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        _invalid("The webhook URL's host is not a valid host name.")
    if _NUMERIC_LABEL.fullmatch(labels[-1]):
        try:
            literal = ipaddress.IPv4Address(name)
        except ValueError:
            _invalid("Write an IPv4 address as four decimal numbers, like 93.184.216.34.")
        return str(literal), literal
    return host, None


def _allow_listed(host: str, policy: DestinationPolicy) -> bool:
    if host in policy.allowed_hosts or host.removesuffix(".") in policy.allowed_hosts:
        return True
    # IP literals compare as addresses: "0:0::1" in the list allows [::1].
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return any(_as_address(entry) == address for entry in policy.allowed_hosts)


def _as_address(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


async def _system_getaddrinfo(host: str, port: int) -> Sequence[AddrInfo]:
    loop = asyncio.get_running_loop()
    return await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)


async def _lookup(
    host: str, port: int, getaddrinfo: GetAddrInfo, seconds: float
) -> list[IPAddress]:
    try:
        async with asyncio.timeout(seconds):
            answers = await getaddrinfo(host, port)
    except TimeoutError:
        raise Invalid(
            f"The webhook host {host} did not resolve within {seconds:g} s.",
            code=UNRESOLVED,
            hint=_UNRESOLVED_HINT,
        ) from None
    except (OSError, UnicodeError):
        raise Invalid(
            f"The webhook host {host} does not resolve.", code=UNRESOLVED, hint=_UNRESOLVED_HINT
        ) from None
    addresses: list[IPAddress] = []
    for family, _type, _proto, _canonname, sockaddr in answers:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        try:
            address = ipaddress.ip_address(sockaddr[0])
        except ValueError:
            # Nothing we cannot judge gets through.
            raise Invalid(
                f"The webhook host {host} resolves to an address that cannot be checked.",
                code=REFUSED,
                hint=_REFUSED_HINT,
            ) from None
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise Invalid(
            f"The webhook host {host} has no IPv4 or IPv6 address.",
            code=UNRESOLVED,
            hint=_UNRESOLVED_HINT,
        )
    return addresses
