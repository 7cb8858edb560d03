"""Comparing a presented secret with the expected one, in constant time.

``hmac.compare_digest`` takes two ``str`` only when both are ASCII: any other character
(a header or cookie value of ``\\xe9``, decoded as Latin-1) raises a ``TypeError``, which
would answer a 500. Every comparison of secrets compares their UTF-8 bytes here instead.
"""

from __future__ import annotations

import hmac


def _bytes(value: str | bytes) -> bytes:
    # surrogatepass: a lone surrogate (from a JSON body) compares as bytes too, never raises.
    return value if isinstance(value, bytes) else value.encode("utf-8", "surrogatepass")


def same_secret(given: str | bytes, expected: str | bytes) -> bool:
    """Is ``given`` the ``expected`` secret? (Constant time for equal lengths.)"""
    return hmac.compare_digest(_bytes(given), _bytes(expected))
