"""What every magic shares: the SendMail defaults, and a magic line split safely."""

from __future__ import annotations

import functools
import re
import shlex
from collections.abc import Callable
from typing import Any, TypeVar

from IPython.core.error import UsageError
from IPython.core.magic import Magics

from smtp_magic.errors import SMTPMagicError
from smtp_magic.notebook.config import SendMail

__all__ = ["PASSWORD_REFUSED", "DefaultsMagics", "argv", "magic_help", "phrased_for_magics"]

F = TypeVar("F", bound=Callable[..., Any])

PASSWORD_REFUSED = (
    "Passwords never go on the magic line (it is saved in the notebook and in IPython's "
    "history): set SMTP_PASSWORD, use keyring, or answer the prompt."
)
_SECRET_WORDS = ("pass", "secret", "token", "pwd")


def argv(line: str) -> list[str]:
    """Split the magic line as a shell would, refusing anything that looks like a password."""
    try:
        argv = shlex.split(line)
    except ValueError as exc:  # "No closing quotation"
        raise UsageError(f"cannot read the magic line: {exc}; check the quotes.") from None
    for token in argv:
        if not token.startswith("-") or token == "-":
            continue
        name = token.split("=", 1)[0].lstrip("-").lower()
        short_p = not token.startswith("--") and token[1:2] == "p"  # -p, -psecret
        if short_p or any(word in name for word in _SECRET_WORDS):
            raise UsageError(PASSWORD_REFUSED)  # never echo the token: it may hold the value
    return argv


class DefaultsMagics(Magics):
    """Magics that share one SendMail configurable (the defaults of every magic)."""

    def __init__(self, shell: Any, defaults: SendMail) -> None:
        super().__init__(shell=shell)
        self.defaults = defaults

    @property
    def _ip(self) -> Any:
        """The shell these magics are registered on (IPython types it as optional)."""
        assert self.shell is not None
        return self.shell


def phrased_for_magics(method: F) -> F:
    """Make the SMTPMagicErrors a magic raises name magic options (``--security starttls``).

    IPython shows them through ``_render_traceback_``, which uses ``exc.front_end``. Put this
    directly above the ``def``, under IPython's decorators (``functools.wraps`` keeps the
    ``parser`` that ``magic_arguments`` attaches).
    """

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except SMTPMagicError as exc:
            exc.front_end = "magic"
            raise

    return wrapper  # type: ignore[return-value]


_LITERAL = re.compile(r"``([^`]+)``")


def magic_help(prefix: str = "%") -> Callable[[F], F]:
    """Rewrite a magic's help (``%%sendmail?``) as plain text that reads well in the pager.

    ``magic_arguments`` prepends its usage as a reST literal block (``::``) and names every
    magic with one ``%``; the pager shows text, not reST. This drops the ``::``, names a cell
    magic ``%%name``, and turns ````literal```` into ``literal`` and ``Example::`` into
    ``Example:``. Put it above ``@cell_magic``/``@line_magic`` (it runs after them).
    """

    def decorate(func: F) -> F:
        doc = func.__doc__ or ""
        if doc.startswith("::\n"):
            doc = doc[3:].lstrip("\n")
        name = getattr(func, "__name__", "")
        doc = doc.replace(f"%{name} ", f"{prefix}{name} ", 1)
        doc = _LITERAL.sub(r"\1", doc).replace("::\n", ":\n")
        func.__doc__ = doc
        return func

    return decorate
