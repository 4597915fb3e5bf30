"""Header values stay on one line however they are written: the check against header injection.

A line break in a header value would let whoever chose that value add header lines of their
own. Refusing CR and LF in what the caller passes is not enough: the email package decodes
RFC 2047 encoded-words (``=?utf-8?q?a=0D=0AX-Injected:_yes?=``) in header values and inside
quoted parameters such as an attachment's file name, and writes the decoded text, line breaks
included, when it folds the header. So the check looks at every header and every parameter in
its decoded form, in every part of the finished message.
"""

from __future__ import annotations

import re
from email.message import Message

from smtp_magic.errors import ComposeError

__all__ = ["LINE_BREAKS", "check_headers", "one_line"]

LINE_BREAKS = frozenset("\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")
"""CR and LF, plus the other characters ``str.splitlines()`` (and so the email parser) breaks at."""

_BREAK = re.compile("[" + "".join(sorted(LINE_BREAKS)) + "]")
_FOLD = re.compile(r"\r?\n(?=[ \t])")  # a folded line: a line break followed by white space


def _short(value: str) -> str:
    shown = repr(value)
    return shown if len(shown) <= 80 else shown[:77] + "..."


def one_line(field_name: str, value: str) -> str:
    """Return ``value``, or raise ComposeError if it holds a line break of any kind."""
    if _BREAK.search(value):
        raise ComposeError(
            f"{field_name} {_short(value)} contains a line break; header values must be one line "
            "(this prevents header injection)"
        )
    return value


def check_headers(message: Message) -> None:
    """Refuse a message any of whose headers or parameters, decoded, holds a line break.

    Headers of ``email.policy.default`` messages are checked as the email package will write
    them (encoded-words decoded); plain string headers (the ``compat32`` policy, which writes
    them as they are) may be folded, but not broken.

    Raises:
        ComposeError: naming the header, the parameter and the decoded value.
    """
    for part in message.walk():
        for name, value in part.items():
            if _BREAK.search(name):
                raise ComposeError(f"a header name {_short(name)} contains a line break")
            text = str(value)
            if not hasattr(value, "defects"):  # a plain string: folding is allowed
                text = _FOLD.sub("", text)
            if not _BREAK.search(text):
                continue
            params = getattr(value, "params", None) or {}
            for param, decoded in params.items():
                if isinstance(decoded, str) and _BREAK.search(decoded):
                    raise ComposeError(
                        f"the {param} parameter of {name}, decoded, is {_short(decoded)}: it "
                        "contains a line break (an RFC 2047 encoded-word can carry one). "
                        "Rename it; header values must be one line (this prevents header "
                        "injection)"
                    )
            raise ComposeError(
                f"{name}, decoded, is {_short(text)}: it contains a line break (an RFC 2047 "
                "encoded-word can carry one); header values must be one line (this prevents "
                "header injection)"
            )
