"""The command-line wing: ``smtp-magic demo | serve | probe | send | setup | login | logout | send-notebook``."""

from smtp_magic.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
