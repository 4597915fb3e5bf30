"""Internal refusals raised inside a session and turned into user errors by diagnose."""

from __future__ import annotations

__all__ = [
    "CredentialsWithoutTLS",
    "LookupTimeout",
    "MessageTooLarge",
    "PlaintextAfterSTARTTLS",
    "TLSFirst",
]


class PlaintextAfterSTARTTLS(Exception):
    """Bytes followed the STARTTLS 220 reply before the handshake (response injection)."""

    def __init__(self, count: int) -> None:
        super().__init__(f"{count} byte(s) followed the STARTTLS 220 reply")
        self.count = count


class CredentialsWithoutTLS(Exception):
    """A login was about to happen on a connection without TLS."""


class MessageTooLarge(Exception):
    """The message is larger than the SIZE the server advertised."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"message of {size} bytes exceeds the server's SIZE {limit}")
        self.size = size
        self.limit = limit


class TLSFirst(Exception):
    """No greeting within ``seconds``, and a second connection completed a TLS handshake."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"no greeting within {seconds:g} s; the port speaks TLS first")
        self.seconds = seconds


class LookupTimeout(TimeoutError):
    """Looking up the host name did not finish by the deadline: no address was tried."""

    def __init__(self, host: str) -> None:
        super().__init__(f"looking up {host!r} did not finish in time")
        self.host = host
