"""printable(): text from the network, made safe to show in a terminal, a notebook or a log.

A server's greeting or reply, a certificate's subject, a client's envelope address: any of them
can carry terminal escape sequences (ESC ``[2J`` clears the screen, OSC 8 writes a link, OSC 52
sets the clipboard), other control characters, or bidirectional overrides that make a line read
differently from what it is. Everything that came from outside is passed through
:func:`printable` before it is shown, in text and HTML alike.
"""

from __future__ import annotations

__all__ = ["printable"]


def printable(text: str, *, keep: str = "") -> str:
    """``text`` with every character that is not printable written as its escape (``\\x1b``).

    "Printable" is ``str.isprintable()``: control characters (C0, DEL, C1), format characters
    (bidirectional overrides, zero-width joiners), line and paragraph separators, and
    surrogates are escaped; letters, marks, digits, punctuation, symbols and the plain space
    are kept. The result is printable, so applying it twice changes nothing more.

    Args:
        text: The text to show.
        keep: Characters to leave as they are, e.g. ``"\\n"`` for a multi-line message.
    """
    if text.isprintable():
        return text
    return "".join(
        char
        if char.isprintable() or char in keep
        else char.encode("unicode_escape", "backslashreplace").decode("ascii")
        for char in text
    )
