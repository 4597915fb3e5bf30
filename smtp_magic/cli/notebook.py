"""The ``smtp-magic send-notebook`` subcommand: run a notebook and email its tagged outputs."""

from __future__ import annotations

import argparse
from typing import Any

from smtp_magic.errors import SettingsError
from smtp_magic.message.preview import preview
from smtp_magic.options import port_type, seconds_type
from smtp_magic.sendnotebook import send_notebook
from smtp_magic.settings import SECURITY_MODES, Settings

__all__ = ["add_parser", "parameter_value"]

DESCRIPTION = """\
Email a notebook as a report: the cells tagged 'email' (or all, with --cells all) are rendered
into inbox-safe HTML (styles inlined, tables with their own borders, figures inline) with a
plain-text alternative. With --execute the notebook runs first in a fresh kernel, with
papermill-style parameters (-p NAME VALUE) injected after the cell tagged 'parameters'. A
notebook that sets send_email = False or raises SkipEmail sends nothing (exit code 0). A cell
that fails stops everything (exit code 1, naming the cell) unless --send-on-error.
Settings come from SMTP_* environment variables, overridden by options; the password only from
SMTP_PASSWORD or keyring (there is never a prompt, so it is safe under cron)."""


def parameter_value(text: str) -> object:
    """A ``-p`` value as papermill reads it: True/False/None, an int, a float, else the string."""
    constants: dict[str, Any] = {"True": True, "False": False, "None": None}
    if text in constants:
        return constants[text]
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _run(args: argparse.Namespace) -> int:
    parameters = {name: parameter_value(value) for name, value in args.parameter}
    if parameters and not args.execute:
        raise SettingsError("-p parameters only take effect with --execute: add --execute")
    settings = None
    if not args.dry_run:
        settings = Settings.from_env(
            host=args.host,
            port=args.port,
            security=args.security,
            username=args.user,
            sender=args.sender,
            cafile=args.cafile,
            timeout=args.connect_timeout,
        )
    result = send_notebook(
        args.notebook,
        to=args.to,
        cc=args.cc,
        bcc=args.bcc,
        subject=args.subject,
        sender=args.sender,
        cells=args.cells,
        parameters=parameters,
        execute=args.execute,
        settings=settings,
        attach_notebook=args.attach_notebook,
        attach_html=args.attach_html,
        send_on_error=args.send_on_error,
        timeout=args.timeout,
        kernel_name=args.kernel,
        dry_run=args.dry_run,
    )
    if args.dry_run and result.message is not None:
        print(preview(result.message), file=args.out)
        print("(dry run: nothing was sent)", file=args.out)
    else:
        print(result, file=args.out)
    return 0


def add_parser(commands: Any) -> None:
    """Add ``send-notebook`` to the subcommands of ``smtp-magic``."""
    cmd = commands.add_parser(
        "send-notebook",
        help="email a notebook's tagged outputs as a report (optionally running it first)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cmd.add_argument("notebook", help="the .ipynb file")
    cmd.add_argument("--to", action="append", required=True, help="recipient (repeatable)")
    cmd.add_argument("--cc", action="append", default=[], help="Cc recipient (repeatable)")
    cmd.add_argument("--bcc", action="append", default=[], help="Bcc recipient (repeatable)")
    cmd.add_argument("--subject", help="default: the notebook's file name")
    cmd.add_argument("--from", dest="sender", help="From address (default SMTP_FROM)")
    cmd.add_argument("--cells", choices=("tagged", "all"), default="tagged")
    cmd.add_argument("--execute", action="store_true", help="run the notebook before sending")
    cmd.add_argument(
        "-p",
        "--parameter",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help="a parameter for --execute (repeatable); VALUE True/False/None, a number or text",
    )
    cmd.add_argument("--attach-notebook", action="store_true", help="attach the executed .ipynb")
    cmd.add_argument("--attach-html", action="store_true", help="attach an HTML export")
    cmd.add_argument("--send-on-error", action="store_true", help="send what ran when a cell fails")
    cmd.add_argument(
        "--timeout", type=seconds_type, default=600.0, help="seconds each cell may run"
    )
    cmd.add_argument("--kernel", help="kernel name (default: the notebook's, else python3)")
    cmd.add_argument("--dry-run", action="store_true", help="show the message, send nothing")
    cmd.add_argument("--host")
    cmd.add_argument("--port", type=port_type)
    cmd.add_argument("--security", choices=SECURITY_MODES)
    cmd.add_argument("--user", help="login name (password: SMTP_PASSWORD or keyring)")
    cmd.add_argument("--cafile")
    cmd.add_argument("--connect-timeout", type=seconds_type, help="seconds per SMTP phase")
    cmd.set_defaults(run=_run)
