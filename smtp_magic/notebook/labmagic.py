"""%smtp_probe, %smtp_lab and %sendmail_form: the magics around the lab and the form."""

from __future__ import annotations

from IPython.core.error import UsageError
from IPython.core.magic import line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments
from IPython.display import display

from smtp_magic.notebook.base import DefaultsMagics, argv, magic_help, phrased_for_magics
from smtp_magic.notebook.display import LabMailbox, _show, _status
from smtp_magic.options import port_type, seconds_type
from smtp_magic.probe import DEFAULT_PROBE_PORTS, probe

__all__ = ["LabMagics"]


@magics_class
class LabMagics(DefaultsMagics):
    """%smtp_probe, %smtp_lab and %sendmail_form."""

    # %smtp_probe ---------------------------------------------------------------------------

    @magic_help()
    @magic_arguments()
    @argument("host", nargs="?", help="the server (default: the running lab)")
    @argument("--port", type=port_type, action="append", help="port to probe (repeatable)")
    @argument("--cafile", help="extra CA certificates to trust (default: the lab's)")
    @argument("--timeout", type=seconds_type, default=5.0, metavar="SECONDS")
    @line_magic
    @phrased_for_magics
    def smtp_probe(self, line: str) -> None:
        """Show what each port of a host speaks: plaintext or TLS first, STARTTLS, AUTH, TLS.

        Sends only EHLO, STARTTLS and QUIT: never credentials or mail. Without a host, probes
        the lab started by ``%smtp_lab start``; while it runs, its CA is trusted.

        Example:

            %smtp_probe smtp.example.org --port 465 --port 587
        """
        args = self.smtp_probe.parser.parse_args(argv(line))
        lab = self.defaults.lab
        host, ports = args.host, args.port
        if host is None:
            if lab is None:
                raise UsageError("give a host (%smtp_probe smtp.example.org), or %smtp_lab start.")
            host, ports = "127.0.0.1", ports or list(lab.ports.values())
        cafile = args.cafile or (lab.cafile if lab is not None else None)
        report = probe(host, ports or DEFAULT_PROBE_PORTS, timeout=args.timeout, cafile=cafile)
        _show(report.phrased("magic"))

    # %smtp_lab -----------------------------------------------------------------------------

    @magic_help()
    @magic_arguments()
    @argument("action", choices=("start", "stop", "status", "messages"))
    @line_magic
    @phrased_for_magics
    def smtp_lab(self, line: str) -> None:
        """Run a local lab server in this kernel that plays ports 25, 465 and 587.

        ``start`` binds 127.0.0.1 ports 8025, 8465 and 8587 (or free ones) and points the
        defaults of %%sendmail, %smtp_probe and %sendmail_form at the 587 role, with the lab's
        CA and demo account. ``status`` shows the ports and CA file, ``messages`` what the lab
        received, ``stop`` stops it and restores the previous defaults.
        """
        args = self.smtp_lab.parser.parse_args(argv(line))
        lab = self.defaults.lab
        if args.action == "start":
            if lab is not None:
                print("The lab is already running:")
                print(_status(lab))
                return
            lab = self.defaults.start_lab()
            print(_status(lab))
            print("%%sendmail, %smtp_probe and %sendmail_form now use its 587 role.")
        elif lab is None:
            print("No lab is running: start one with %smtp_lab start.")
        elif args.action == "stop":
            self.defaults.stop_lab()
            print("The lab is stopped; the defaults are as before it started.")
        elif args.action == "status":
            print(_status(lab))
        else:
            _show(LabMailbox(lab.messages, dropped=lab.dropped))

    # %sendmail_form ------------------------------------------------------------------------

    @magic_help()
    @line_magic
    @phrased_for_magics
    def sendmail_form(self, line: str) -> None:
        """Show a form to write and send a message, with the current defaults filled in."""
        if line.strip():
            raise UsageError("%sendmail_form takes no options: set defaults with %config SendMail.")
        from smtp_magic.notebook.form import SendMailForm

        display(SendMailForm(settings=self.defaults.build_settings(), namespace=self._ip.user_ns))
