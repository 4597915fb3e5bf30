"""Size checks before sending: Gmail's clipping, oversized images, and providers' message limits.

Sources for the numbers (checked 2026):

- Gmail shows "[Message clipped] View entire message" when the HTML of a message passes about
  102 KB (spamresource.com measured 102-105 KB depending on the transfer encoding); we warn
  from 100 KB.
- Gmail accepts messages up to 25 MB as sent (support.google.com/mail/answer/6584), counted
  after base64, which makes attachments about a third larger.
- Exchange Online (Microsoft 365, smtp.office365.com) defaults to 35 MB a message, including
  encoding (learn.microsoft.com, "Exchange Online limits"); a tenant may lower or raise it.

A server that advertises SIZE (RFC 1870) is checked against it by the session before MAIL;
these limits catch the providers' own before a connection is even opened.
"""

from __future__ import annotations

from email.message import EmailMessage, Message

from smtp_magic.message.inbox import MAX_IMAGE_WIDTH, image_size

__all__ = [
    "CLIP_BYTES",
    "PROVIDER_LIMITS",
    "over_provider_limit",
    "provider_limit",
    "size_warnings",
]

CLIP_BYTES = 100_000

# An inline image wider than this many times its shown width carries pixels no one sees.
OVERSIZE_FACTOR = 2
# An inline image bigger than this is worth shrinking, whatever its pixel size.
IMAGE_BYTES = 1_000_000

# Host name (or its suffix after a dot) -> (provider, the most a message may be, in bytes).
PROVIDER_LIMITS: dict[str, tuple[str, int]] = {
    "smtp.gmail.com": ("Gmail", 25_000_000),
    "smtp-relay.gmail.com": ("Google Workspace", 25_000_000),
    "smtp.office365.com": ("Microsoft 365", 35_000_000),
    "smtp-mail.outlook.com": ("Outlook.com", 35_000_000),
}


def _megabytes(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB"


def provider_limit(host: str) -> tuple[str, int] | None:
    """The known message size limit of the provider behind ``host``, if any.

    Args:
        host: The SMTP server's host name, e.g. ``"smtp.gmail.com"``.

    Returns:
        ``(provider name, limit in bytes)``, or None for a host not in :data:`PROVIDER_LIMITS`.
    """
    return PROVIDER_LIMITS.get(host.lower().rstrip("."))


def _html_size(message: EmailMessage) -> int:
    part = message.get_body(preferencelist=("html",))
    if part is None:
        return 0
    content = part.get_content()
    text = content if isinstance(content, str) else content.decode("utf-8", "replace")
    return len(text.replace("\r\n", "\n").encode("utf-8"))


def _image_warning(part: Message) -> str | None:
    data = part.get_payload(decode=True)
    if not isinstance(data, bytes):
        return None
    name = part.get_filename() or "an inline image"
    size = image_size(data)
    if size is not None and size[0] > OVERSIZE_FACTOR * MAX_IMAGE_WIDTH:
        return (
            f"{name} is {size[0]}x{size[1]} pixels but is shown at most {MAX_IMAGE_WIDTH} wide: "
            f"{_megabytes(len(data))} of it no one sees; save it smaller "
            "(for a matplotlib figure: fig.savefig(..., dpi=100) or a smaller figsize)."
        )
    if len(data) > IMAGE_BYTES:
        return (
            f"{name} is {_megabytes(len(data))}, large for an inline image; "
            "save it at a lower resolution, or as JPEG if it is a photograph."
        )
    return None


def size_warnings(message: EmailMessage) -> list[str]:
    """What may make the message look wrong in an inbox because of its size.

    Args:
        message: A composed message.

    Returns:
        One sentence per problem (empty when there is none): an HTML part past about 100 KB,
        which Gmail clips, and inline images larger than they are shown.
    """
    warnings = []
    html_size = _html_size(message)
    if html_size > CLIP_BYTES:
        warnings.append(
            f"the HTML part is {html_size / 1000:.0f} kB; Gmail clips HTML past about 102 kB "
            "behind 'View entire message'. Show fewer rows (df.head(50)) and attach the full "
            "table as CSV instead."
        )
    for part in message.walk():
        if part.get_content_maintype() == "image" and part.get("Content-ID") is not None:
            warning = _image_warning(part)
            if warning is not None:
                warnings.append(warning)
    return warnings


def over_provider_limit(size: int, host: str) -> str | None:
    """Why a message of ``size`` bytes cannot go through ``host``, or None when it can.

    Args:
        size: The message's size as sent (after base64), in bytes.
        host: The SMTP server's host name.

    Returns:
        A sentence for the error, naming the provider and its limit; None when no known limit
        is exceeded.
    """
    known = provider_limit(host)
    if known is None or size <= known[1]:
        return None
    provider, limit = known
    return (
        f"the message is {_megabytes(size)} as sent (attachments grow by a third in base64), "
        f"more than the {_megabytes(limit)} {provider} accepts, so it was not sent and no "
        "connection was opened. Send smaller attachments, or share a link to the files."
    )
