"""IPython front end: %%sendmail, %smtp_probe, %smtp_lab and %sendmail_form over the public API.

``%load_ext smtp_magic`` registers the magics and a ``SendMail`` Configurable that holds the
defaults (``%config SendMail.host = "smtp.example.org"``, or ``c.SendMail.host`` in
``ipython_config.py``). Where each setting comes from, first match wins:

1. an option on the magic line (``--host``, ``--port``, ...);
2. ``%config SendMail.<name>`` (or ``ipython_config.py``);
3. the ``SMTP_*`` environment variables (read by ``Settings.from_env``);
4. the defaults of :class:`~smtp_magic.settings.Settings`.

``%smtp_lab start`` puts the lab's 587 role, with its CA and demo account, in place of rows 3
and 4 and of any ``%config`` value set before it started; a ``%config`` value set while it runs
still wins over the lab, and naming another host leaves the lab out (its demo password never
goes anywhere else). ``%smtp_lab stop`` restores the defaults as they were before.

``%%sendmail`` turns off IPython's ``$var``/``{var}`` expansion of the magic line: it would
silently turn "$5" into "5", ``{{ month }}`` into ``{ month }``, and stop expanding altogether
at the first unknown name. ``--template`` renders subject and body with Jinja2 instead.

Nothing here speaks SMTP: the magics parse their line, call compose/send/probe/LabServer and
display what those return.
"""

from __future__ import annotations

import argparse
import ast
import os
from collections import ChainMap
from collections.abc import Callable, Iterable, Sequence
from email.message import EmailMessage
from pathlib import Path
from typing import Any, overload

from IPython.core.error import UsageError
from IPython.core.magic import cell_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument, magic_arguments

from smtp_magic.auth.credentials import with_password
from smtp_magic.errors import ComposeError
from smtp_magic.message.compose import compose
from smtp_magic.message.template import is_dataframe
from smtp_magic.notebook.base import (
    PASSWORD_REFUSED,
    DefaultsMagics,
    argv,
    magic_help,
    phrased_for_magics,
)
from smtp_magic.notebook.config import SendMail, active_settings
from smtp_magic.notebook.config import active_lab as active_lab  # re-exported: notebooks import it
from smtp_magic.notebook.display import DryRun, LabMailbox, _show
from smtp_magic.notebook.labmagic import LabMagics
from smtp_magic.notebook.loginmagic import LoginMagics
from smtp_magic.notebook.setupmagic import SetupMagics
from smtp_magic.options import port_type, seconds_type
from smtp_magic.send import send
from smtp_magic.settings import SECURITY_MODES, Settings

__all__ = [
    "PASSWORD_REFUSED",
    "DryRun",
    "LabMailbox",
    "SendMail",
    "SendMailMagics",
    "active_settings",
    "load_ipython_extension",
    "unload_ipython_extension",
]


def _addresses(values: Iterable[str] | None) -> list[str]:
    """Repeated options, each possibly comma-separated; compose parses the lists."""
    return [value for value in values or () if value.strip()]


@magics_class
class SendMailMagics(DefaultsMagics):
    """%%sendmail and its mail merge."""

    # %%sendmail ----------------------------------------------------------------------------

    @magic_help("%%")
    @no_var_expand
    @magic_arguments()
    @argument("--to", action="append", metavar="ADDRESSES", help="recipients (repeatable, a,b)")
    @argument("--cc", action="append", metavar="ADDRESSES", help="Cc recipients (repeatable)")
    @argument("--bcc", action="append", metavar="ADDRESSES", help="Bcc recipients (repeatable)")
    @argument("--subject", default="", help='the subject (quote it: --subject "Weekly numbers")')
    @argument("--from", dest="sender", metavar="ADDRESS", help="From (default SendMail.sender)")
    @argument("--reply-to", metavar="ADDRESS", help="where replies go")
    @argument(
        "--attach",
        action="append",
        default=[],
        metavar="NAME_OR_PATH",
        help="a variable (DataFrame, Figure, bytes, str/Path) or a file path (repeatable)",
    )
    @argument("--format", choices=("markdown", "html", "text"), default="markdown")
    @argument(
        "--template",
        action="store_true",
        help="render subject and body with Jinja2 against the notebook's variables",
    )
    @argument(
        "--to-each",
        metavar="EXPR",
        help="mail merge: one message per address in EXPR (df.email, df['email'] or a list); "
        "each row's columns are template variables; sent over one connection",
    )
    @argument("--dry-run", action="store_true", help="show the message, send nothing")
    @argument("--quiet", action="store_true", help="no report unless something was refused")
    @argument("--no-progress", action="store_true", help="no progress bar for --to-each")
    @argument("--host")
    @argument("--port", type=port_type)
    @argument("--security", choices=SECURITY_MODES)
    @argument("--user", metavar="USERNAME", help="login (password: SMTP_PASSWORD/keyring/prompt)")
    @argument("--cafile", help="extra CA certificates to trust (PEM)")
    @argument("--timeout", type=seconds_type, metavar="SECONDS")
    @cell_magic
    @phrased_for_magics
    def sendmail(self, line: str, cell: str) -> None:
        """Send the cell body as an email message.

        The body is Markdown (--format html or text to change that), sent with a plain text
        part and an HTML alternative. DataFrames given with --attach show as a table and
        travel as CSV; Figures show inline. With --template, {{ name }} in the subject and
        body shows a notebook variable ({{ df }} a table, {{ fig }} a figure). IPython's
        $var/{var} expansion is off: "$5" stays "$5".

        Mail merge: --to-each df.email sends one message per row, over one connection,
        rendering subject and body as templates with that row's columns as variables
        ({{ name }}), plus to (the address) and row (all columns). --to-each also takes a
        list of addresses. Every message is built before the first is sent.

        Settings: options on this line, then %config SendMail, then the SMTP_* variables (or
        the lab after %smtp_lab start). The password never goes on this line: it comes from
        SMTP_PASSWORD, keyring or the prompt.

        Errors name the option to change (--security starttls), not Python's arguments.

        Example:

            %%sendmail --to team@example.org --subject "Weekly numbers" --attach df --attach fig
            Hello team, the numbers are attached.
        """
        args = self.sendmail.parser.parse_args(argv(line))
        if args.to_each and args.to:
            raise UsageError("give --to or --to-each, not both: --to-each sets To per message.")
        if not (args.to or args.cc or args.bcc or args.to_each):
            raise UsageError("no recipient: give --to ADDRESS (or --cc, --bcc, --to-each).")
        settings = self.defaults.build_settings(
            host=args.host,
            port=args.port,
            security=args.security,
            username=args.user,
            cafile=args.cafile,
            timeout=args.timeout,
        )
        common: dict[str, Any] = {
            "cc": _addresses(args.cc),
            "bcc": _addresses(args.bcc),
            "sender": args.sender or settings.sender,
            "reply_to": args.reply_to,
            "attachments": [self._attachment(name) for name in args.attach],
            "format": args.format,
        }
        if args.to_each:
            self._merge(args, cell, settings, common)
            return
        message = compose(
            to=_addresses(args.to),
            subject=args.subject,
            body=cell,
            template_vars=self._ip.user_ns if args.template else None,
            **common,
        )
        if args.dry_run:
            _show(DryRun(message))
            return
        report = send(message, with_password(settings, interactive=True))
        if not args.quiet or report.refused:  # quiet hides success, never a refusal
            _show(report)

    def _attachment(self, name: str) -> object:
        """A notebook variable (as ``(name, value)``, so ``df`` becomes df.csv) or a file path."""
        namespace = self._ip.user_ns
        if name.isidentifier() and name in namespace:
            value = namespace[name]
            if isinstance(value, (str, os.PathLike)):
                return value  # a path held in a variable: keep the file's own name
            return (name, value)
        path = Path(name).expanduser()
        if path.exists():
            return path
        raise UsageError(
            f"--attach {name!r} is neither a variable in the notebook nor an existing file "
            f"(looked for {str(path.absolute())!r}): define the variable or fix the path."
        )

    def _recipients(self, expr: str) -> tuple[list[str], Callable[[int], dict[str, Any]]]:
        """Evaluate ``--to-each EXPR``: the addresses, and how to get row i's variables.

        The rows are not copied into a dict each: a column is a list, and row i is made when
        its message is built, so a 100,000-row table costs a few lists, not 100,000 dicts.
        """
        value = self._evaluate(expr)
        frame, column = self._parent_frame(expr)
        if is_dataframe(value):
            raise UsageError(
                f"--to-each {expr!r} is a whole table: name its address column, "
                f"e.g. --to-each '{expr}.email' or \"{expr}['email']\"."
            )
        columns: dict[str, list[Any]] = {}
        if frame is not None:
            columns = {str(k): frame[k].tolist() for k in frame.columns}
            addresses = columns[str(column)]
        elif type(value).__name__ == "Series":
            addresses = list(value)
            if isinstance(value.name, str):
                columns = {value.name: addresses}
        elif isinstance(value, (list, tuple)):
            addresses = list(value)
        else:
            raise UsageError(
                f"--to-each {expr!r} is a {type(value).__name__}: give a DataFrame column "
                "(df.email) or a list of addresses; for one recipient use --to."
            )
        for number, address in enumerate(addresses, start=1):
            if not isinstance(address, str) or not address.strip():
                raise ComposeError(
                    f"--to-each {expr!r}: row {number} has no address ({address!r}); "
                    "drop or fill that row first. Nothing was sent."
                )
        if not addresses:
            raise UsageError(f"--to-each {expr!r} is empty: there is nobody to send to.")

        def row(index: int) -> dict[str, Any]:
            return {name: values[index] for name, values in columns.items()}

        return addresses, row

    def _evaluate(self, expr: str) -> Any:
        try:
            return self._ip.ev(expr)
        except Exception as exc:
            raise UsageError(
                f"--to-each {expr!r} could not be evaluated ({type(exc).__name__}: {exc}): "
                "give an expression such as df.email, df['email'] or a list of addresses."
            ) from None

    def _parent_frame(self, expr: str) -> tuple[Any, str]:
        """For ``X.col`` or ``X['col']`` where X is a DataFrame with that column: (X, 'col')."""
        try:
            node = ast.parse(expr.strip(), mode="eval").body
        except SyntaxError:
            return None, ""
        if isinstance(node, ast.Attribute):
            container, column = node.value, node.attr
        elif (
            isinstance(node, ast.Subscript)
            and isinstance(node.slice, ast.Constant)
            and isinstance(node.slice.value, str)
        ):
            container, column = node.value, node.slice.value
        else:
            return None, ""
        frame = self._evaluate(ast.unparse(container))
        if is_dataframe(frame) and column in frame.columns:
            return frame, column
        return None, ""

    def _merge(
        self, args: argparse.Namespace, body: str, settings: Settings, common: dict[str, Any]
    ) -> None:
        """Mail merge: one message per row, each built just before it is sent, on one connection.

        The first message is built up front (the dry run shows it; a template error surfaces
        before connecting); the others only when ``send_many`` reaches them, so memory stays
        bounded however many rows there are (issue 11, finding 12).
        """
        addresses, row_of = self._recipients(args.to_each)
        namespace = self._ip.user_ns

        def build(index: int) -> EmailMessage:
            row = row_of(index)
            variables = ChainMap({**row, "row": row, "to": addresses[index]}, namespace)
            return compose(
                to=addresses[index],
                subject=args.subject,
                body=body,
                template_vars=variables,
                **common,
            )

        messages = _Merge(len(addresses), build)
        if args.dry_run:
            _show(DryRun(messages[0], count=len(messages)))
            return
        from smtp_magic.bulk import send_many

        report = send_many(
            messages,
            with_password(settings, interactive=True),
            progress=not (args.quiet or args.no_progress),
        )
        trouble = len(report.accepted) != len(report) or any(r.refused for r in report)
        if not args.quiet or trouble:  # quiet hides success, never a message left behind
            _show(report)


class _Merge(Sequence[EmailMessage]):
    """The messages of a mail merge, each built when it is asked for (the first one is kept)."""

    def __init__(self, count: int, build: Callable[[int], EmailMessage]) -> None:
        self.size = count
        self.build = build
        self.first = build(0)

    def __len__(self) -> int:
        return self.size

    @overload
    def __getitem__(self, index: int) -> EmailMessage: ...

    @overload
    def __getitem__(self, index: slice) -> list[EmailMessage]: ...

    def __getitem__(self, index: int | slice) -> EmailMessage | list[EmailMessage]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self.size))]
        if index < 0:
            index += self.size
        if not 0 <= index < self.size:
            raise IndexError(f"message {index} of a merge of {self.size}")
        return self.first if index == 0 else self.build(index)

    # %smtp_probe ---------------------------------------------------------------------------


MAGICS: list[type[DefaultsMagics]] = [SendMailMagics, LabMagics, SetupMagics, LoginMagics]
"""Every Magics class ``%load_ext smtp_magic`` registers; each shares the SendMail defaults."""


def load_ipython_extension(ip: Any) -> None:
    """Register the magics and the SendMail configurable (``%load_ext smtp_magic``)."""
    unload_ipython_extension(ip)  # a leftover registration would shadow the new one
    defaults = SendMail(config=ip.config)
    ip.configurables.append(defaults)
    for magics in MAGICS:
        ip.register_magics(magics(ip, defaults))


def unload_ipython_extension(ip: Any) -> None:
    """Remove the magics and the configurable, and stop a lab started by %smtp_lab."""
    # IPython has no public way to unregister a magic; dropping the table entries works.
    for magics in MAGICS:
        for kind, names in magics.magics.items():
            for name in names:
                ip.magics_manager.magics[kind].pop(name, None)
    for configurable in [c for c in ip.configurables if isinstance(c, SendMail)]:
        configurable.stop_lab()
        ip.configurables.remove(configurable)
