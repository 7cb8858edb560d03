"""Email addresses as accounts know them: one spelling per mailbox.

An address is normalised before it is looked up or stored: Unicode NFKC (fullwidth and
compatibility forms fold to their plain letters), surrounding spaces dropped, lower case,
and an internationalised domain written in its ASCII form (IDNA 2008 / UTS 46:
``bücher.example`` and ``xn--bcher-kva.example`` are one domain). What cannot be
normalised is refused, and so is every character that renders as nothing or reorders
the text around it (zero-width spaces, soft hyphens, bidi overrides, variation
selectors, other format and control characters): two addresses that look the same are
the same account, or one of them is refused.
"""

from __future__ import annotations

import re
import unicodedata

import idna

from orgbase.core.errors import Invalid

MAX_LENGTH = 320
_SHAPE = re.compile(r"[^@\s]{1,64}@[^@\s]{1,255}\.[^@\s]{1,63}")
# Unicode's Default_Ignorable_Code_Point ranges that are not already format (Cf) or
# control (Cc) characters: they render as nothing in most fonts.
_IGNORABLE = (
    (0x034F, 0x034F),
    (0x115F, 0x1160),
    (0x17B4, 0x17B5),
    (0x180B, 0x180F),
    (0x3164, 0x3164),
    (0xFE00, 0xFE0F),
    (0xFFA0, 0xFFA0),
    (0xFFF0, 0xFFF8),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0000, 0xE0FFF),
)
# Control, format (U+200B, U+00AD, U+202E...), surrogate, private use, unassigned;
# separators (spaces other than ASCII's, line and paragraph separators).
_REFUSED_CATEGORIES = frozenset(("Cc", "Cf", "Cs", "Co", "Cn", "Zs", "Zl", "Zp"))


def _invisible(char: str) -> bool:
    if char == " ":
        return False  # visible enough, and refused by the shape anyway
    if unicodedata.category(char) in _REFUSED_CATEGORIES:
        return True
    code = ord(char)
    return any(low <= code <= high for low, high in _IGNORABLE)


def _refused(reason: str) -> Invalid:
    return Invalid(
        f"that is not an email address: {reason}",
        code="invalid_email",
        details={"reason": reason},
    )


def _ascii_domain(domain: str) -> str:
    """The domain as DNS and SMTP see it (A-labels); refused when IDNA says no."""
    if domain.isascii() and "xn--" not in domain:
        return domain
    try:
        return idna.encode(domain, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError):
        raise _refused("the domain is not a valid internationalised domain name") from None


def normalize_email(raw: str) -> str:
    """The one spelling of ``raw`` (400 ``invalid_email`` when there is none)."""
    text = raw.strip()
    if any(_invisible(c) for c in text):
        raise _refused("it has invisible or direction-changing characters")
    email = unicodedata.normalize("NFKC", text).lower()
    if any(_invisible(c) for c in email):  # NFKC can make one (a compatibility space)
        raise _refused("it has invisible or direction-changing characters")
    local, at, domain = email.rpartition("@")
    if not at:
        raise _refused("it has no @")
    domain = _ascii_domain(domain)
    email = f"{local}@{domain}"
    labels = domain.split(".")
    if len(email) > MAX_LENGTH or not _SHAPE.fullmatch(email) or not all(labels):
        raise _refused("it is not shaped like name@domain.tld")
    return email
