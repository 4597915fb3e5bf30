"""The smtp-magic command: demo, serve, probe, send, send-notebook, login, logout and setup, thin front ends over the public API."""

from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from smtp_magic.auth.credentials import with_password
from smtp_magic.cli import login as clilogin
from smtp_magic.cli import notebook as clinotebook
from smtp_magic.cli import setup as clisetup
from smtp_magic.errors import ComposeError, SettingsError, SMTPMagicError
from smtp_magic.message.compose import compose
from smtp_magic.message.preview import preview
from smtp_magic.options import port_type, seconds_type
from smtp_magic.printable import printable
from smtp_magic.probe import DEFAULT_PROBE_PORTS, probe
from smtp_magic.send import send
from smtp_magic.settings import SECURITY_MODES, Security, Settings

__all__ = ["build_parser", "main"]

_ROLES = (25, 465, 587)


def _demo(args: argparse.Namespace) -> int:
    from smtp_magic.lab.server import LabServer

    out = args.out
    with LabServer() as lab:
        print("smtp_magic lab running on 127.0.0.1 (nothing leaves this machine):", file=out)
        for role in _ROLES:
            print(f"  plays port {role:<3} on 127.0.0.1:{lab.ports[role]}", file=out)
        print(f"  CA certificate: {lab.cafile}\n", file=out)

        print("1. One message through each role, with security='auto':", file=out)
        print(
            f"   {'role':<5}{'port':<7}{'security':<10}{'TLS':<10}{'login':<12}{'delivered'}",
            file=out,
        )
        for role in _ROLES:
            message = compose(
                to="student@example.org",
                subject=f"Hello from the port {role} role",
                body=f"This message went through the lab role that plays port **{role}**.",
            )
            start = time.monotonic()
            report = send(message, lab.settings(role, security="auto"))
            took = time.monotonic() - start
            received = any(m.message["Subject"] == message["Subject"] for m in lab.messages)
            login = f"AUTH {report.auth_mechanism}" if report.auth_mechanism else "none"
            print(
                f"   {role:<5}{report.port:<7}{report.security:<10}"
                f"{report.tls.version if report.tls else 'none':<10}{login:<12}"
                f"{'yes' if received else 'NO'} ({took:.2f} s)",
                file=out,
            )
        print(
            f"   (port {lab.ports[465]} is not a standard port, so 'auto' waited "
            "for a greeting, heard none, and chose TLS; it remembers that for next time.)\n",
            file=out,
        )

        print("2. The two classic mistakes, and what smtp_magic says about them:", file=out)
        message = compose(to="student@example.org", subject="Oops", body="Wrong mode.")
        mistakes: list[tuple[str, int, Security]] = [
            ("implicit TLS against the 587 role, like smtplib.SMTP_SSL(host, 587)", 587, "tls"),
            ("plaintext against the 465 role, like smtplib.SMTP(host, 465)", 465, "starttls"),
        ]
        for number, (what, role, security) in enumerate(mistakes, start=1):
            wrong = dataclasses.replace(lab.settings(role), security=security, timeout=2.0)
            print(f"   {number}. {what}:", file=out)
            try:
                send(message, wrong)
            except SMTPMagicError as exc:
                print(f"      {type(exc).__name__}: {exc.phrased('cli')}", file=out)
            else:  # pragma: no cover - would mean the lab does not behave like the port
                print("      unexpectedly succeeded", file=out)
                return 1
        print(
            "\nNext: `smtp-magic serve` to keep a lab running, or open the notebooks in "
            "notebooks/.",
            file=out,
        )
    return 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _serve(args: argparse.Namespace) -> int:
    from smtp_magic.lab.server import LabServer

    out = args.out
    lab = LabServer(directory=args.directory, persona=args.persona)
    # `kill` (SIGTERM) ends the lab as Ctrl-C does, so its temp folder goes too (a SIGKILL
    # cannot be caught: the next lab to start removes what it left).
    signal.signal(signal.SIGTERM, _interrupt)
    lab.start()
    try:
        if args.refuse:
            try:
                lab.refuse(args.refuse)
            except ValueError as exc:
                print(f"smtp-magic serve: {exc}", file=sys.stderr)
                return 2
        print("smtp_magic lab server (127.0.0.1 only). Press Ctrl-C to stop.", file=out)
        if args.persona != "plain":
            refusing = f", refusing with {args.refuse!r}" if args.refuse else ""
            print(f"  persona:        {args.persona}{refusing}", file=out)
        for role in _ROLES:
            print(f"  plays port {role:<3} on 127.0.0.1:{lab.ports[role]}", file=out)
        print(f"  CA certificate: {lab.cafile}", file=out)
        print(f"  demo account:   {lab.username} / {lab.password}", file=out)
        print(
            "Try:\n"
            f"  openssl s_client -starttls smtp -connect 127.0.0.1:{lab.ports[587]} "
            f"-CAfile {lab.cafile} -verify_return_error\n"
            f"  smtp-magic probe 127.0.0.1 --port {lab.ports[25]} --port {lab.ports[465]} "
            f"--port {lab.ports[587]} --cafile {lab.cafile}",
            file=out,
            flush=True,
        )
        seen = 0
        while args.seconds is None or args.seconds > 0:
            time.sleep(0.2)
            if args.seconds is not None:
                args.seconds -= 0.2
            messages = lab.messages
            for received in messages[seen:]:
                print(
                    # Subject and envelope come from whichever local client sent the message.
                    f"received on the {received.role} role: "
                    f"{printable(repr(received.message['Subject']))} "
                    f"from {printable(received.mail_from)} "
                    f"to {printable(', '.join(received.rcpt_tos))} "
                    f"(tls={received.tls}, authenticated={received.authenticated})",
                    file=out,
                    flush=True,
                )
            seen = len(messages)
    except KeyboardInterrupt:
        pass
    finally:
        lab.stop()
    return 0


def _probe(args: argparse.Namespace) -> int:
    report = probe(
        args.host, args.port or DEFAULT_PROBE_PORTS, timeout=args.timeout, cafile=args.cafile
    )
    print(report.text("cli"), file=args.out)
    return 0


def _body(args: argparse.Namespace) -> str:
    """The message body: --body, --body-file, or stdin (which then cannot carry a password)."""
    if args.body is not None and args.body_file is not None:
        raise SettingsError("give --body or --body-file, not both.")
    if args.body_file is not None:
        try:
            raw = Path(args.body_file).read_bytes()
        except OSError as exc:
            raise SettingsError(
                f"cannot read --body-file {args.body_file!r} ({exc.strerror}): check the path."
            ) from None
        return _utf8(raw, f"--body-file {args.body_file!r}")
    if args.body is not None:
        return str(args.body)
    if args.password_stdin:
        raise SettingsError(
            "--password-stdin reads the password from stdin, so the body cannot come from there "
            "too: give it with --body TEXT or --body-file PATH."
        )
    stdin = sys.stdin
    if hasattr(stdin, "buffer"):
        return _utf8(stdin.buffer.read(), "standard input")
    # A text stream without bytes underneath: undecodable bytes became lone surrogates.
    return _utf8(stdin.read().encode("utf-8", "surrogateescape"), "standard input")


def _utf8(raw: bytes, source: str) -> str:
    """The body as text; a body that is not UTF-8 is explained, not a UnicodeDecodeError."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ComposeError(
            f"{source} is not UTF-8 text (byte 0x{raw[exc.start]:02x} at position {exc.start}): "
            "convert it first (e.g. iconv -f latin1 -t utf-8), or send a binary file with --attach."
        ) from None


def _stdin_password() -> str:
    """The first line of stdin, for --password-stdin (as `docker login --password-stdin`)."""
    password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise SettingsError("--password-stdin found no password on stdin (an empty first line).")
    return password


def _can_prompt(args: argparse.Namespace) -> bool:
    """Whether getpass can ask: it prompts on the controlling terminal, even when stdin is a pipe."""
    try:
        os.close(os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY))
        return True
    except OSError:  # no controlling terminal (cron, CI, a service), or not a POSIX system
        from_stdin = args.body is None and args.body_file is None
        return sys.stdin.isatty() and not from_stdin and not args.password_stdin


def _send(args: argparse.Namespace) -> int:
    body = _body(args)
    message = compose(
        to=args.to,
        cc=args.cc,
        bcc=args.bcc,
        subject=args.subject,
        body=body,
        sender=args.sender,
        attachments=[Path(p) for p in args.attach],
        format=args.format,
    )
    if args.dry_run:
        print(preview(message), file=args.out)
        print("(dry run: nothing was sent)", file=args.out)
        return 0
    settings = Settings.from_env(
        host=args.host,
        port=args.port,
        security=args.security,
        username=args.user,
        sender=args.sender,
        cafile=args.cafile,
        certfile=args.certfile,
        keyfile=args.keyfile,
        timeout=args.timeout,
    )
    if args.password_stdin:
        if not settings.username:
            raise SettingsError("--password-stdin needs a login name: give --user NAME as well.")
        settings = dataclasses.replace(settings, password=_stdin_password())
    settings = clilogin.with_token(args, settings)
    settings = with_password(settings, interactive=_can_prompt(args))
    report = send(message, settings)
    print(report, file=args.out)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``smtp-magic``."""
    parser = argparse.ArgumentParser(
        prog="smtp-magic",
        description="Send email correctly and safely, and learn how SMTP ports 25, 465 and 587 work.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser(
        "demo",
        help="start the lab, send through ports 25/465/587, show two classic mistakes",
        description="Start a local lab server, send one message through each role with "
        "security='auto', then reproduce the two classic mistakes and show the diagnoses.",
    )
    demo.set_defaults(run=_demo)

    serve = commands.add_parser(
        "serve",
        help="run the lab server in the foreground",
        description="Run the lab server (127.0.0.1 only) until interrupted, printing its "
        "ports, CA file and demo account, and each message it receives.",
    )
    serve.add_argument("--directory", help="where to write lab-ca.pem (default: a temp dir)")
    serve.add_argument(
        "--persona",
        choices=("plain", "gmail", "microsoft365"),
        default="plain",
        help="greet, answer EHLO and refuse like this service (default: plain)",
    )
    serve.add_argument(
        "--refuse",
        metavar="KIND",
        help="with --persona: refuse every attempt this way, e.g. app-password (gmail) or "
        "smtp-auth-disabled (microsoft365)",
    )
    serve.add_argument("--seconds", type=float, help=argparse.SUPPRESS)
    serve.set_defaults(run=_serve)

    prb = commands.add_parser(
        "probe",
        help="show what each port of a host speaks",
        description="Show what each port speaks (plaintext or TLS first, STARTTLS, AUTH, "
        "TLS version, certificate) and which security to use. Sends no credentials or mail.",
    )
    prb.add_argument("host")
    prb.add_argument("--port", type=port_type, action="append", help="port to probe (repeatable)")
    prb.add_argument("--cafile", help="extra CA certificates to trust (PEM)")
    prb.add_argument(
        "--timeout", type=seconds_type, default=5.0, help="seconds per phase (default 5)"
    )
    prb.set_defaults(run=_probe)

    _add_send(commands)
    clinotebook.add_parser(commands)
    clilogin.add_parsers(commands)
    clisetup.add_parser(commands)
    return parser


def _add_send(commands: Any) -> None:
    """The ``send`` subcommand and its options."""
    snd = commands.add_parser(
        "send",
        help="send a message (body from --body or stdin)",
        description="Send a message. Settings come from SMTP_* environment variables, "
        "overridden by options. The password never comes from an option (it would show in "
        "`ps` and the shell's history): it comes from SMTP_PASSWORD, --password-stdin, keyring "
        "(`keyring set smtp_magic/HOST NAME`), or a prompt when stdin is a terminal.",
    )
    snd.add_argument("--to", action="append", required=True, help="recipient (repeatable)")
    snd.add_argument("--cc", action="append", default=[], help="Cc recipient (repeatable)")
    snd.add_argument("--bcc", action="append", default=[], help="Bcc recipient (repeatable)")
    snd.add_argument("--subject", required=True)
    snd.add_argument("--from", dest="sender", help="From address (default SMTP_FROM)")
    snd.add_argument("--body", help="message body (default: read stdin)")
    snd.add_argument("--body-file", metavar="PATH", help="read the message body from a file")
    snd.add_argument("--attach", action="append", default=[], metavar="PATH", help="file to attach")
    snd.add_argument("--format", choices=("markdown", "html", "text"), default="markdown")
    snd.add_argument("--dry-run", action="store_true", help="show the message, send nothing")
    snd.add_argument("--host")
    snd.add_argument("--port", type=port_type)
    snd.add_argument("--security", choices=SECURITY_MODES)
    snd.add_argument(
        "--user", help="login name (password: SMTP_PASSWORD, --password-stdin, keyring or prompt)"
    )
    snd.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of stdin (the body then comes from "
        "--body or --body-file)",
    )
    snd.add_argument("--cafile")
    snd.add_argument("--certfile")
    snd.add_argument("--keyfile")
    snd.add_argument("--timeout", type=seconds_type)
    clilogin.add_token_options(snd)
    snd.set_defaults(run=_send)


def main(argv: Sequence[str] | None = None, out=None) -> int:  # type: ignore[no-untyped-def]
    """Run ``smtp-magic``; returns the exit code (1 with our diagnosis on stderr on failure)."""
    args = build_parser().parse_args(argv)
    args.out = out or sys.stdout
    try:
        return int(args.run(args))
    except SMTPMagicError as exc:
        # The fix is phrased as options of this command (--security starttls, not security=).
        print(f"smtp-magic: {type(exc).__name__}: {exc.phrased('cli')}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # The reader went away (`smtp-magic demo | head -3`): stop quietly. Point stdout at
        # devnull so the interpreter's final flush does not raise again, as the Python docs
        # advise ("Note on SIGPIPE", signal module).
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        print("smtp-magic: interrupted", file=sys.stderr)
        return 130
