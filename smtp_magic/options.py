"""Argument types shared by the command line and the magics."""

from __future__ import annotations

import argparse

__all__ = ["port_type", "seconds_type"]


def port_type(text: str) -> int:
    """argparse type for a TCP port; shared with the magics."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a TCP port (1-65535)")
    return value


def seconds_type(text: str) -> float:
    """argparse type for a positive number of seconds; shared with the magics."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive number of seconds")
    return value
