"""What every magic shares: the SendMail defaults, and a magic line split safely."""

from __future__ import annotations

import shlex
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics

from smtp_magic.notebook.config import SendMail

__all__ = ["PASSWORD_REFUSED", "DefaultsMagics", "argv"]

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
