"""The ``smtp-magic setup ADDRESS`` subcommand: find the settings for an address, print the SMTP_* lines."""

from __future__ import annotations

import argparse
from typing import Any

from smtp_magic.discover import discover
from smtp_magic.discovery.advice import choose, export_lines, next_steps, resolver_at
from smtp_magic.options import seconds_type

__all__ = ["add_parser"]

DESCRIPTION = """\
Find the SMTP settings for an email address, as a mail program's account set-up does: the
built-in table of major providers, then the domain's autoconfig file (verified HTTPS only), its
SRV records (_submissions before _submission) and its MX and SPF records. Never a port scan.
Prints the candidates as comments and the chosen one as `export SMTP_...` lines, so that
  eval "$(smtp-magic setup alice@example.org)"
sets up `smtp-magic send`. Never prints or asks for a password."""


def _setup(args: argparse.Namespace) -> int:
    out = args.out
    resolver = resolver_at(args.dns, args.timeout) if args.dns else None
    found = discover(args.address, resolver=resolver, timeout=args.timeout, cafile=args.cafile)
    for line in str(found).splitlines():
        print(f"# {line}", file=out)
    chosen = choose(found.candidates, args.choose)
    if chosen.confirm and not args.confirm:
        print(
            f"# Candidate {args.choose} ({chosen.host}) came from DNS or HTTP and lies outside "
            f"{found.domain}: such answers can be forged. Check it with your provider, then run "
            f"again with --choose {args.choose} --confirm.",
            file=out,
        )
        return 1
    if args.probe:
        for report in found.probe(count=args.probe, timeout=args.timeout, cafile=args.cafile):
            for line in str(report).splitlines():
                print(f"# {line}", file=out)
    print(
        f"# Using candidate {args.choose}: {chosen.host}:{chosen.port} ({chosen.security})",
        file=out,
    )
    for line in export_lines(chosen, found.address):
        print(line, file=out)
    for step in next_steps(chosen, "cli"):
        print(f"# Next: {step}", file=out)
    return 0


def add_parser(commands: Any) -> None:
    """Add ``setup`` to the subcommands of ``smtp-magic``."""
    setup = commands.add_parser(
        "setup",
        help="find the settings for an email address; print SMTP_* lines to export",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    setup.add_argument("address", help="the email address to send from")
    setup.add_argument(
        "--choose", type=int, default=1, metavar="N", help="use candidate N (default: the best)"
    )
    setup.add_argument(
        "--confirm",
        action="store_true",
        help="accept a candidate outside the address's domain that came from DNS or HTTP",
    )
    setup.add_argument(
        "--probe",
        type=int,
        nargs="?",
        const=2,
        default=0,
        metavar="N",
        help="also probe the N best candidates (default 2; sends no credentials)",
    )
    setup.add_argument(
        "--dns", metavar="HOST[:PORT]", help="ask this DNS server (default: the system's)"
    )
    setup.add_argument("--cafile", help="extra CA certificates to trust (autoconfig HTTPS, probes)")
    setup.add_argument(
        "--timeout", type=seconds_type, default=5.0, help="seconds per lookup (default 5)"
    )
    setup.set_defaults(run=_setup)
