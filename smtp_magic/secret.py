"""Secret: a password or token that never shows itself in a repr, an error or a traceback's locals."""

from __future__ import annotations

import binascii

__all__ = ["Secret", "SecretStr"]

_MASK = "********"


class Secret:
    """Holds a secret (a password, a token, or an encoded AUTH payload) behind a masked repr.

    Debuggers, ``%xmode Verbose``, pytest ``--showlocals`` and error reporters print the local
    variables of every frame. Code on the way to the wire therefore passes a ``Secret`` around
    and unwraps it only inside the expression that encodes or writes it, so that no frame ever
    holds the plain value in a local variable. Build one from a ``SecretStr`` (whose repr is
    masked too) or from other Secrets and non-secret bytes (``b"\\0" + secret``);
    tests/test_secret_frames.py checks every line of a real login.

    Example:
        >>> Secret("hunter2")
        Secret('********')
    """

    __slots__ = ("_value",)

    def __init__(self, value: str | bytes) -> None:
        self._value = value.encode("utf-8") if isinstance(value, str) else bytes(value)

    def reveal(self) -> bytes:
        """The secret's bytes (UTF-8 for text); use only inside the expression that needs them."""
        return self._value

    def text(self) -> str:
        """The secret as text; use only inside the expression that needs it."""
        return self._value.decode("utf-8")

    # Each operation computes its bytes straight into a new Secret's slot: passing them to
    # __init__ (or to base64.b64encode) would put them in that frame's locals for an instant.
    def __add__(self, other: Secret | bytes) -> Secret:
        joined = Secret.__new__(Secret)
        joined._value = self._value + (other._value if isinstance(other, Secret) else other)
        return joined

    def __radd__(self, other: bytes) -> Secret:
        joined = Secret.__new__(Secret)
        joined._value = other + self._value
        return joined

    def b64(self) -> Secret:
        """The base64 form (no line breaks), as SMTP AUTH sends it (RFC 4954 section 4)."""
        encoded = Secret.__new__(Secret)
        encoded._value = binascii.b2a_base64(self._value, newline=False)  # C: no Python frame
        return encoded

    def __len__(self) -> int:
        return len(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __repr__(self) -> str:
        return f"Secret({_MASK!r})"

    __str__ = __repr__

    def __reduce__(self) -> tuple[type[Secret], tuple[bytes]]:
        return (Secret, (self._value,))


class SecretStr(str):
    """A ``str`` whose ``repr`` is masked: how ``Settings`` holds a password or a token.

    It is a real string (``settings.password == "..."`` and ``str(...)`` work as before), but
    wherever a frame shows it with ``repr``, as ``%xmode Verbose`` does for an expression like
    ``settings.password`` in the line being run, it reads ``'********'``.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return repr(_MASK)
