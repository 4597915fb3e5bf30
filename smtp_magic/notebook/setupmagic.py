"""%smtp_setup ADDRESS: find the settings for an address, show the candidates, apply one to %config SendMail."""

from __future__ import annotations

from IPython.core.magic import line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments

from smtp_magic.discover import discover
from smtp_magic.discovery.advice import choose, next_steps, resolver_at
from smtp_magic.notebook.base import DefaultsMagics, argv
from smtp_magic.notebook.display import _show
from smtp_magic.options import seconds_type

__all__ = ["SetupMagics"]


@magics_class
class SetupMagics(DefaultsMagics):
    """%smtp_setup."""

    @magic_arguments()
    @argument("address", help="the email address to send from")
    @argument("--choose", type=int, default=1, metavar="N", help="apply candidate N (default 1)")
    @argument(
        "--confirm",
        action="store_true",
        help="accept a candidate outside the address's domain that came from DNS or HTTP",
    )
    @argument("--probe", action="store_true", help="also probe the two best (no credentials)")
    @argument("--dns", metavar="HOST[:PORT]", help="ask this DNS server (default: the system's)")
    @argument("--cafile", help="extra CA certificates to trust (autoconfig HTTPS, probes)")
    @argument("--timeout", type=seconds_type, default=5.0, metavar="SECONDS")
    @line_magic
    def smtp_setup(self, line: str) -> None:
        """Find the SMTP settings for an email address and make them the defaults.

        Looks the address up as a mail program's account set-up does (the built-in provider
        table, the domain's autoconfig file over verified HTTPS, SRV, MX and SPF records; never
        a port scan), shows the candidates, and applies one to ``%config SendMail.*`` (host,
        port, security, username, sender). A host outside the address's domain that came from
        DNS or HTTP is applied only with ``--confirm``. Then it says how to log in.

        Example::

            %smtp_setup alice@example.org
            %smtp_setup alice@example.org --choose 2
        """
        args = self.smtp_setup.parser.parse_args(argv(line))
        resolver = resolver_at(args.dns, args.timeout) if args.dns else None
        found = discover(args.address, resolver=resolver, timeout=args.timeout, cafile=args.cafile)
        _show(found)
        chosen = choose(found.candidates, args.choose)
        if chosen.confirm and not args.confirm:
            print(
                f"Not applied: candidate {args.choose} ({chosen.host}) came from DNS or HTTP and "
                f"lies outside {found.domain}, so the answer may have been forged. Check it with "
                f"your provider, then run %smtp_setup {found.address} --choose {args.choose} "
                "--confirm."
            )
            return
        if args.probe:
            for report in found.probe(timeout=args.timeout, cafile=args.cafile):
                _show(report)
        values = {
            "host": chosen.host,
            "port": chosen.port,
            "security": chosen.security,
            "username": chosen.username or None,
            "sender": found.address,
        }
        for name, value in values.items():
            setattr(self.defaults, name, value)
        applied = ", ".join(f"SendMail.{k} = {v!r}" for k, v in values.items() if v is not None)
        print(f"Applied candidate {args.choose}: {applied}.")
        for step in next_steps(chosen, "magic"):
            print(f"Next: {step}")
