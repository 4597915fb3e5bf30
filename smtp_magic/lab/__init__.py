"""The lab wing: a local aiosmtpd server on loopback that behaves like ports 25, 465 and 587."""

from smtp_magic.lab.server import (
    DEMO_PASSWORD,
    DEMO_SENDER,
    DEMO_USERNAME,
    LabServer,
    ReceivedMessage,
)

__all__ = ["DEMO_PASSWORD", "DEMO_SENDER", "DEMO_USERNAME", "LabServer", "ReceivedMessage"]
