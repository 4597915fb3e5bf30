"""Addresses and header values: parsed, validated, one line each, written faithfully (no I/O)."""

from __future__ import annotations

import email.policy
import re
from collections.abc import Iterable
from email.errors import HeaderParseError
from email.headerregistry import Address, HeaderRegistry
from email.message import EmailMessage, Message
from email.parser import BytesParser

from smtp_magic.errors import ComposeError

__all__ = ["check_headers", "check_round_trip", "one_line", "parse_addresses", "short"]

_HEADERS = HeaderRegistry()
_LINE_BREAKS = frozenset("\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")
_BREAK = re.compile("[" + "".join(sorted(_LINE_BREAKS)) + "]")
_FOLD = re.compile(r"\r?\n(?=[ \t])")  # a folded line: a line break followed by white space


def short(value: str) -> str:
    shown = repr(value)
    return shown if len(shown) <= 80 else shown[:77] + "..."


def one_line(field_name: str, value: str) -> str:
    """Refuse line breaks in a header value, before the email package ever sees it."""
    # CR and LF, plus the other characters str.splitlines() breaks at: the email package
    # refuses those with a bare ValueError, so name them here with the field.
    if any(char in _LINE_BREAKS for char in value):
        raise ComposeError(
            f"{field_name} {short(value)} contains a line break; header values must be one line "
            "(this prevents header injection)"
        )
    return value


def _idna(domain: str, field_name: str, raw: str) -> str:
    """Return the ASCII (IDNA) form of a domain, so the address works without SMTPUTF8."""
    if domain.isascii():
        return domain
    try:
        return domain.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise ComposeError(
            f"{field_name} address {short(raw)} has a domain that cannot be written in ASCII "
            f"(IDNA: {exc}); check the spelling of the domain"
        ) from exc


def parse_addresses(field_name: str, value: str | Iterable[str] | None) -> list[Address]:
    """Parse a comma-separated string or an iterable of strings into validated addresses."""
    if value is None:
        return []
    items = [value] if isinstance(value, str) else list(value)
    addresses: list[Address] = []
    for item in items:
        if not isinstance(item, str):
            raise ComposeError(
                f"{field_name} contains {short(repr(item))} of type {type(item).__name__}; "
                "give addresses as strings like 'Alice <alice@example.org>'"
            )
        one_line(field_name, item)
        if not item.strip():
            continue
        addresses.extend(_parse_one(field_name, item))
    return addresses


def _bad_address(field_name: str, raw: str, why: str) -> ComposeError:
    return ComposeError(
        f"{field_name} address {short(raw)} is malformed ({why}); "
        "write it as name@example.org or 'Name <name@example.org>', separated by commas"
    )


def _parse_one(field_name: str, raw: str) -> list[Address]:
    try:
        header = _HEADERS("To", raw)  # any address-list header name parses the same way
    except (HeaderParseError, IndexError, ValueError) as exc:  # the parser has rough edges
        raise _bad_address(field_name, raw, "it cannot be parsed") from exc
    allowed = {"NonASCIILocalPartDefect"}  # allowed: the sender then needs SMTPUTF8 (RFC 6531)
    defects = [d for d in header.defects if type(d).__name__ not in allowed]
    if defects:
        raise _bad_address(field_name, raw, str(defects[0]).rstrip("."))
    result: list[Address] = []
    for group in header.groups:  # type: ignore[attr-defined]  # an AddressHeader
        if group.display_name is not None:
            raise _bad_address(
                field_name, raw, "address groups 'name: a@b, c@d;' are not supported"
            )
        for address in group.addresses:
            if not address.username:
                raise _bad_address(field_name, raw, "the part before @ is empty")
            if not address.domain:
                raise _bad_address(field_name, raw, "there is no @domain")
            result.append(
                Address(
                    display_name=address.display_name.strip(),
                    username=address.username,
                    domain=_idna(address.domain, field_name, raw),
                )
            )
    if not result:
        raise _bad_address(field_name, raw, "no address found")
    return result


_CHECKED_HEADERS = ("From", "To", "Cc", "Bcc", "Reply-To", "Subject")


def check_round_trip(message: EmailMessage) -> None:
    """Refuse a header that the email package would not write faithfully.

    Folding long non-ASCII display names into RFC 2047 encoded-words can add a space in
    CPython 3.11 (found by the property test); a recipient would then see a different name.
    Each header is folded as smtplib sends it and parsed back; a difference is an error.
    """
    folded = b"".join(
        email.policy.SMTP.fold_binary(name, message[name])
        for name in _CHECKED_HEADERS
        if name in message
    )
    parsed = BytesParser(policy=email.policy.default).parsebytes(folded + b"\r\n", headersonly=True)
    for name in _CHECKED_HEADERS:
        if name not in message:
            continue
        ours, theirs = message[name], parsed[name]
        if name == "Subject":
            same = str(ours) == str(theirs)
        else:
            same = ours.addresses == getattr(theirs, "addresses", None)
        if not same:
            raise ComposeError(
                f"{name} {short(str(ours))} would arrive as {short(str(theirs))}: Python's "
                "email package cannot encode it faithfully; shorten it or simplify its spacing"
            )


def check_headers(message: Message) -> None:
    """Refuse a message any of whose headers or parameters, decoded, holds a line break.

    Refusing CR and LF in what the caller passes (``one_line``) is not enough: the email package
    decodes RFC 2047 encoded-words (``=?utf-8?q?a=0D=0AX-Injected:_yes?=``) in header values and
    inside quoted parameters such as an attachment's file name, and writes the decoded text,
    line breaks included, when it folds the header. So every header and parameter of every part
    is checked in its decoded form. Plain string headers (the ``compat32`` policy, which writes
    them as they are) may be folded, but not broken.

    Raises:
        ComposeError: naming the header, the parameter and the decoded value.
    """
    for part in message.walk():
        fetch = part.policy.header_fetch_parse
        for name, raw in part._headers:  # type: ignore[attr-defined]
            if _BREAK.search(name):
                raise ComposeError(f"a header name {short(name)} contains a line break")
            if type(raw) is str and _inert(raw):
                continue  # nothing in it can decode to a line break: no need to parse it
            try:
                value = fetch(name, raw)  # what items() gives: parsed by the policy
            except ValueError as exc:
                # The email package itself refuses some decoded values (an address whose
                # encoded display name hides CR or LF): still a header that would break.
                raise ComposeError(
                    f"the {name} header {short(raw)} cannot be used: decoded, {exc}"
                ) from None
            _check_value(name, value)


# What the email package decodes in a header value: RFC 2047 encoded-words ("=?"), RFC 2231
# extended parameters ("name*=charset''value", percent-escapes or a charset such as UTF-7 that
# turns ASCII into any character), and surrogate-escaped bytes (not ASCII).
_DECODED = re.compile(r"=\?|[*%]")


def _inert(raw: str) -> bool:
    """Whether a raw header value (as parsed, not yet a header object) cannot hold a line break
    once decoded: printable ASCII without line breaks and without anything that decodes.

    Parsing it then only rearranges its own characters (quoted-pairs lose their backslash,
    address lists are rewritten), so the decoded text cannot hold a line break either.
    """
    return raw.isascii() and not _BREAK.search(raw) and not _DECODED.search(raw)


def _check_value(name: str, value: object) -> None:
    """Refuse one header value (a header object or a plain string) whose text, decoded, breaks."""
    text = str(value)
    if not hasattr(value, "defects"):  # a plain string: folding is allowed
        text = _FOLD.sub("", text)
    if not _BREAK.search(text):
        return
    params = getattr(value, "params", None) or {}
    for param, decoded in params.items():
        if isinstance(decoded, str) and _BREAK.search(decoded):
            raise ComposeError(
                f"the {param} parameter of {name}, decoded, is {short(decoded)}: it "
                "contains a line break (an RFC 2047 encoded-word can carry one). "
                "Rename it; header values must be one line (this prevents header "
                "injection)"
            )
    raise ComposeError(
        f"{name}, decoded, is {short(text)}: it contains a line break (an RFC 2047 "
        "encoded-word can carry one); header values must be one line (this prevents "
        "header injection)"
    )
