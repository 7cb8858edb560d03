"""Proof that an org controls an email domain: a TXT record it publishes in that domain.

Each claim of a domain has its own random token; the org publishes
``_orgbase-challenge.<domain> TXT "orgbase-domain-verification=<token>"`` and the gateway
looks the record up itself (dnspython's async resolver: the system's resolver, or the DNS
servers of ``tenancy.dns_resolvers``). Only the claim whose token is published is proven,
so a squatter's claim of someone else's domain can never be verified by the domain's DNS.
"""

from __future__ import annotations

import dns.asyncresolver
import dns.exception
import dns.nameserver
import dns.resolver
import msgspec
import structlog

from orgbase.core.errors import Unavailable
from orgbase.core.settings import TenancySettings, resolver_address

log = structlog.get_logger("orgbase.domain_proof")

CHALLENGE_LABEL = "_orgbase-challenge"
VALUE_PREFIX = "orgbase-domain-verification="


class DomainChallenge(msgspec.Struct, frozen=True):
    """The DNS record that proves a claim: publish it, then ask for verification."""

    type: str
    name: str
    value: str


def challenge_for(domain: str, token: str) -> DomainChallenge:
    return DomainChallenge("TXT", f"{CHALLENGE_LABEL}.{domain}", f"{VALUE_PREFIX}{token}")


class DnsProver:
    """Looks up a claim's TXT record (never cached here: each verification asks DNS)."""

    def __init__(self, settings: TenancySettings) -> None:
        self.nameservers = [resolver_address(r) for r in settings.dns_resolvers]
        self.timeout = settings.dns_timeout_seconds

    def _resolver(self) -> dns.asyncresolver.Resolver:
        try:
            resolver = dns.asyncresolver.Resolver(configure=not self.nameservers)
        except dns.resolver.NoResolverConfiguration:
            raise self._unavailable("no DNS resolver is configured") from None
        if self.nameservers:
            resolver.nameservers = [
                dns.nameserver.Do53Nameserver(address, port) for address, port in self.nameservers
            ]
        resolver.lifetime = self.timeout
        resolver.cache = None
        return resolver

    @staticmethod
    def _unavailable(message: str) -> Unavailable:
        return Unavailable(
            f"the domain's DNS could not be asked: {message}",
            code="dns_unavailable",
            hint="try again in a moment",
        )

    async def published(self, challenge: DomainChallenge) -> bool:
        """Is the challenge's value among the TXT strings at its name? (An absent name or
        record is a plain no; a resolver that does not answer is a 503.)"""
        try:
            answer = await self._resolver().resolve(challenge.name, "TXT", search=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer, dns.resolver.YXDOMAIN):
            return False
        except dns.exception.Timeout:
            raise self._unavailable("no answer in time") from None
        except dns.resolver.NoNameservers as exc:
            log.warning("domain proof lookup failed", name=challenge.name, error=str(exc)[:300])
            raise self._unavailable("every DNS server failed to answer") from None
        except dns.exception.DNSException as exc:
            log.warning("domain proof lookup failed", name=challenge.name, error=str(exc)[:300])
            raise self._unavailable(type(exc).__name__) from None
        for record in answer:
            # A TXT record's strings are one value split into chunks of 255 bytes at most.
            text = b"".join(getattr(record, "strings", ())).decode("utf-8", "replace").strip()
            if text == challenge.value:
                return True
        return False
