"""How fast send_many may go: a rate such as "30/min", providers' known limits, and backoff with jitter."""

from __future__ import annotations

import random
import re
import time

from smtp_magic.errors import SettingsError

__all__ = ["PROVIDER_RATES", "Options", "Pacer", "parse_rate"]

PROVIDER_RATES: dict[str, str] = {
    # Exchange Online's sending limits: "Message rate limit (SMTP client submission only):
    # 30 messages per minute" (learn.microsoft.com, exchange-online-limits#sending-limits).
    "smtp.office365.com": "30/min",
    "smtp-mail.outlook.com": "30/min",
    "outlook.office365.com": "30/min",
}
"""Submission hosts whose per-minute limit is documented; ``rate=None`` follows these."""

_UNITS = {"s": 1.0, "sec": 1.0, "second": 1.0, "min": 60.0, "minute": 60.0, "h": 3600.0}
_UNITS["hour"] = 3600.0
_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*([a-z]+?)s?\s*$")

BACKOFF_CAP = 60.0
"""The longest wait between retries, in seconds."""


def parse_rate(rate: str | float | None, host: str = "") -> float | None:
    """Seconds between message starts for ``rate``; None: no pacing.

    Args:
        rate: "30/min", "2/s", "500/hour", a number of messages per second, "unlimited", or
            None for the known limit of ``host`` (see ``PROVIDER_RATES``), if any.
        host: The server's host name.

    Raises:
        SettingsError: the rate cannot be understood.
    """
    if rate is None:
        known = PROVIDER_RATES.get(host.lower().rstrip("."))
        return parse_rate(known) if known else None
    if isinstance(rate, str) and rate.strip().lower() in ("unlimited", "none", ""):
        return None
    if isinstance(rate, int | float) and not isinstance(rate, bool):
        count, unit = float(rate), 1.0
    else:
        match = _RATE.match(str(rate).lower())
        if not match or match.group(2) not in _UNITS:
            raise SettingsError(
                f"rate={rate!r} is not a rate: write it as messages per unit of time, such as "
                "'30/min', '2/s' or '500/hour' (or 'unlimited')."
            )
        count, unit = float(match.group(1)), _UNITS[match.group(2)]
    if not count > 0 or count == float("inf"):
        raise SettingsError(f"rate={rate!r} must be a positive number of messages.")
    return unit / count


class Options:
    """How a run paces itself: seconds between starts, retries per message, the first backoff."""

    __slots__ = ("backoff", "interval", "retries")

    def __init__(self, interval: float | None, retries: int, backoff: float) -> None:
        self.interval, self.retries, self.backoff = interval, retries, backoff


class Pacer:
    """When the next message may start: at most one per ``interval``, later after failures.

    Args:
        interval: Seconds between message starts (None: as fast as the server answers).
        backoff: Seconds to wait after the first failure; doubled after each further one in a
            row (up to BACKOFF_CAP), times a random factor between 0.5 and 1 (jitter, so that
            many clients throttled together do not come back together).
    """

    def __init__(self, interval: float | None, backoff: float) -> None:
        self.interval = interval
        self.backoff = backoff
        self.next_start = 0.0
        self.failures = 0  # temporary failures in a row
        self.not_before = 0.0

    def failed(self) -> float:
        """Count a temporary failure; the seconds until the next try."""
        self.failures += 1
        wait = min(BACKOFF_CAP, self.backoff * 2.0 ** (self.failures - 1))
        wait *= random.uniform(0.5, 1.0)
        self.not_before = time.monotonic() + wait
        return wait

    def succeeded(self) -> None:
        self.failures = 0

    def wait(self) -> float:
        """Seconds to wait before the next message may start (0: now)."""
        start = max(self.next_start, self.not_before)
        return max(0.0, start - time.monotonic())

    def started(self) -> None:
        """Record that a message starts now."""
        now = time.monotonic()
        if self.interval is not None:
            # On schedule (a sleep overshoots by a fraction of a millisecond): keep the grid, so
            # that the overshoots do not add up over a long run; late: restart from now.
            on_time = self.next_start and 0 <= now - self.next_start < self.interval
            self.next_start = (self.next_start if on_time else now) + self.interval
