"""The policy a message is written to the wire with: CRLF line ends, and a short header folded without the folding machinery.

Folding the headers is most of what flattening a small message costs: for every header the
email package builds a label, a whitespace token and the whole parse tree into a new token list
and walks it token by token (``_header_value_parser._refold_parse_tree``), even when the result
is simply ``Name: value``. It is exactly that whenever the header fits on one line, is ASCII and
holds no line break: the walk then appends the label, one space and the value's text, and
nothing else happens (every other branch needs non-ASCII text, a line break, a ``ptext`` or
``mime-parameters`` token at the top, or a line too long). ``_WirePolicy`` writes such a header
directly and hands every other one (and every plain string value) to the email package. The
bytes are the same either way; tests/test_wirefold.py compares them with the email package's.
"""

from __future__ import annotations

import functools
import sys
from email.headerregistry import BaseHeader
from email.policy import EmailPolicy, Policy

__all__ = ["wire_policy"]

_WALKED = frozenset({"ptext", "mime-parameters"})
"""Top-level token types that ``_refold_parse_tree`` treats specially even on one line."""


class _WirePolicy(EmailPolicy):
    """EmailPolicy whose ``fold_binary`` writes a one-line ASCII header without refolding it."""

    def fold_binary(self, name: str, value: str) -> bytes:
        line = _one_line(self, value)
        return line if line is not None else super().fold_binary(name, value)


def _one_line(policy: EmailPolicy, value: object) -> bytes | None:
    """``Name: value`` + linesep as the email package would fold ``value``; None: not that simple."""
    if getattr(type(value), "fold", None) is not BaseHeader.fold:
        return None  # a plain string (written as it is, or refolded), or a class of its own
    tree = getattr(value, "_parse_tree", None)
    if not tree or tree.token_type in _WALKED:
        return None  # no value (fold writes "Name:" without the space), or a special token
    # BaseHeader.fold writes the header object's own name, not the one it is stored under.
    line: str = value.name + ": " + str(tree)  # type: ignore[attr-defined]
    if (
        not line.isascii()
        or "\r" in line
        or "\n" in line
        or len(line) > (policy.max_line_length or sys.maxsize)
    ):
        return None
    return (line + policy.linesep).encode("ascii")


@functools.lru_cache(maxsize=32)
def wire_policy(policy: Policy, smtputf8: bool) -> Policy:
    """``policy`` with CRLF line ends (and SMTPUTF8's utf8), for writing a message to the wire.

    Policies are immutable, and cloning one for every message of a mail merge costs more than
    its MAIL command. The email package's own EmailPolicy (``email.policy.default``, what
    ``compose()`` uses) becomes ``_WirePolicy`` with the same settings; a policy of another
    class keeps its class and its own folding.
    """
    wire = policy.clone(linesep="\r\n")
    if isinstance(wire, EmailPolicy):  # compat32 (a message parsed by default) has no utf8
        wire = wire.clone(utf8=smtputf8)
    if type(wire) is EmailPolicy:
        # The instance's settings (those that differ from the class defaults) and its header
        # factory, carried over as they are.
        wire = _WirePolicy(**vars(wire))
    return wire
