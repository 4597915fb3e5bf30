"""SendMailForm: an ipywidgets form to preview, test the connection and send, via the public API.

The form has no SMTP code of its own: it validates its fields with the same rules as
:class:`~smtp_magic.settings.Settings` and :func:`~smtp_magic.compose.compose`, then calls
:func:`~smtp_magic.compose.compose`, :func:`~smtp_magic.preview.preview`,
:func:`~smtp_magic.probe.probe` and :func:`~smtp_magic.send.send`.

Network work runs on one worker thread, so the kernel keeps answering the browser while a send
waits on a slow server; ``form.last`` is the :class:`~concurrent.futures.Future` of the running
(or last) action, for code and tests that want to wait for it::

    form = SendMailForm(lab.settings(587), namespace=globals())
    form.to.value, form.subject.value = "you@example.org", "Hello"
    form.send_button.click()
    form.last.result(timeout=10)

Passwords: one typed into the Password widget is read when Send is clicked, the widget is
cleared at once (a widget's value is synced state, which a saved notebook can keep), and the
password is used for that one send. A password that came with the settings is kept in a private
attribute and never put into a widget.
"""

from __future__ import annotations

import dataclasses
import html
import importlib
import re
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from email.message import EmailMessage
from email.utils import getaddresses
from typing import Any, TypeVar

import ipywidgets as W

from smtp_magic.compose import compose
from smtp_magic.credentials import keyring_service, with_password
from smtp_magic.errors import ComposeError, SettingsError, SMTPMagicError
from smtp_magic.preview import preview
from smtp_magic.probe import probe
from smtp_magic.report import ProbeReport, SendReport, format_transcript
from smtp_magic.send import send
from smtp_magic.settings import Settings

__all__ = ["SECURITY_CHOICES", "SendMailForm"]

T = TypeVar("T")

SECURITY_CHOICES: tuple[tuple[str, str], ...] = (
    ("auto: decide from the port (recommended)", "auto"),
    ("465: TLS from the first byte (tls)", "tls"),
    ("587/25: plaintext greeting, then STARTTLS (starttls)", "starttls"),
    ("plain: no TLS, never with a password", "plain"),
)
"""The security dropdown: (label, value) pairs whose labels say what each mode does."""

FIELDS = (
    "host",
    "port",
    "security",
    "username",
    "password",
    "sender",
    "to",
    "cc",
    "subject",
    "body",
    "files",
    "variables",
)
"""The names of the input widgets, each with an inline error widget in ``form.errors``."""

MASK = "********"
ERROR_COLOR = "#b42318"
_CHECK_ADDRESS = "check@example.org"  # a valid recipient, to check the other fields with compose()
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _escape(text: str) -> str:
    return html.escape(text, quote=True)


def _display_bundle(obj: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Format ``obj`` as IPython would: with the running shell's formatter, else by hand.

    ``Output.append_display_data`` calls ``InteractiveShell.instance()``, which outside a kernel
    creates a shell singleton that later clashes with other shells (MultipleInstanceError).
    """
    from IPython import get_ipython

    shell = get_ipython()
    if shell is not None:
        data, metadata = shell.display_formatter.format(obj)
        return dict(data), dict(metadata)
    bundle: dict[str, Any] = {"text/plain": str(obj)}
    rich = getattr(obj, "_repr_html_", None)
    if rich is not None:
        bundle["text/html"] = rich()
    return bundle, {}


def _show(out: W.Output, obj: Any) -> None:
    """Append ``obj`` to an Output widget; safe from a worker thread (no ``with out:``)."""
    data, metadata = _display_bundle(obj)
    out.outputs = (
        *out.outputs,
        {"output_type": "display_data", "data": data, "metadata": metadata},
    )


def _initial_settings(settings: Settings | None) -> tuple[Settings, str | None]:
    """The settings to start from: those given, else the magic's current defaults, else SMTP_*."""
    if settings is not None:
        return settings, None
    try:
        magic: Any = importlib.import_module("smtp_magic.magic")
    except ImportError:  # the magic is optional; a broken install must not break the form
        magic = None
    active_settings = getattr(magic, "active_settings", None)
    try:
        active = active_settings() if active_settings is not None else None
        return (active, None) if active is not None else (Settings.from_env(), None)
    except SettingsError as exc:  # a bad %config value or SMTP_* variable: show it, don't fail
        return Settings("localhost"), str(exc)


def _settings_field(message: str) -> str | None:
    """Which form field a SettingsError message is about (its messages start with the name)."""
    if message.startswith(("security", "a password was given without a username")):
        return "security" if message.startswith("security") else "username"
    for name in ("host", "port", "username", "password", "sender"):
        if message.startswith(name):
            return name
    return None


class SendMailForm:
    """A form to write a message, preview it, test the connection and send it.

    Shown by ``%sendmail_form``, or by a cell that ends with the form. The form is not itself a
    widget: it composes widgets, and displays as its ``box``.

    Args:
        settings: Where and how to connect, e.g. ``lab.settings(587)``. Default: the defaults
            of ``%config SendMail`` when the magic is loaded, else ``Settings.from_env()``.
        namespace: Where "Variables to attach" looks up names, e.g. ``globals()`` or
            ``get_ipython().user_ns``; a DataFrame ``df`` is attached as ``df.csv``.

    Attributes:
        last: The Future of the running or last action (send, preview or test), or None.
        errors: Field name -> the HTML widget that shows its inline error.
        status: HTML: what is happening, the SendReport, or the diagnosis of a failure.
        output: Output: the preview, or the probe table.
    """

    def __init__(
        self, settings: Settings | None = None, *, namespace: Mapping[str, object] | None = None
    ) -> None:
        base, problem = _initial_settings(settings)
        self._base = dataclasses.replace(base, password=None)
        # A password from the settings stays here and never enters a widget (widget values are
        # synced state that a saved notebook can keep).
        self._settings_password = base.password
        self._namespace = namespace
        self._pool: ThreadPoolExecutor | None = None
        self._busy = False
        self._general: list[str] = []
        self.last: Future[Any] | None = None

        wide = W.Layout(width="40em")
        style = {"description_width": "8em"}

        def text(description: str, value: str | None, placeholder: str) -> W.Text:
            return W.Text(
                value=value or "",
                description=description,
                placeholder=placeholder,
                layout=wide,
                style=style,
            )

        self.host = text("Host", base.host, "smtp.example.org")
        self.port = W.IntText(value=base.port, description="Port", style=style)
        self.security = W.Dropdown(
            options=list(SECURITY_CHOICES),
            value=base.security,
            description="Security",
            layout=wide,
            style=style,
        )
        self.username = text("Username", base.username, "alice (empty: no login)")
        self.password = W.Password(
            value="",
            description="Password",
            placeholder="(from settings)" if base.password else "typed here, cleared when sent",
            layout=wide,
            style=style,
        )
        self.sender = text("From", base.sender, "alice@example.org")
        self.to = text("To", "", "bob@example.org, Carol <carol@example.org>")
        self.cc = text("Cc", "", "optional, comma-separated")
        self.subject = text("Subject", "", "what the message is about")
        self.body = W.Textarea(
            value="",
            description="Body",
            placeholder="Markdown: **bold**, lists, tables, links",
            rows=8,
            layout=wide,
            style=style,
        )
        self.files = W.FileUpload(multiple=True, description="Attach files")
        self.variables = text("Variables", "", "names to attach, e.g. df, fig")

        self.send_button = W.Button(description="Send", button_style="primary", icon="paper-plane")
        self.preview_button = W.Button(description="Preview", icon="eye")
        self.test_button = W.Button(description="Test connection", icon="plug")
        self.buttons = (self.send_button, self.preview_button, self.test_button)
        self.send_button.on_click(self._guard(self._on_send))
        self.preview_button.on_click(self._guard(self._on_preview))
        self.test_button.on_click(self._guard(self._on_test))

        self.status = W.HTML(value="")
        self.progress = W.IntProgress(
            value=0, min=0, max=1, description="Recipients", style=style, layout=W.Layout()
        )
        self.progress.layout.display = "none"
        self.output = W.Output()

        self.errors: dict[str, W.HTML] = {}
        rows: dict[str, W.Widget] = {}
        for name in FIELDS:
            widget: W.Widget = getattr(self, name)
            widget.add_class(f"smtp-magic-{name}")
            error = W.HTML(value="", layout=W.Layout(display="none", margin="0 0 0 8.5em"))
            error.add_class(f"smtp-magic-{name}-error")
            self.errors[name] = error
            rows[name] = W.VBox([widget, error])
        for name, widget in (
            ("send", self.send_button),
            ("preview", self.preview_button),
            ("test", self.test_button),
            ("status", self.status),
            ("progress", self.progress),
            ("output", self.output),
        ):
            widget.add_class(f"smtp-magic-{name}")

        def heading(text: str) -> W.HTML:
            return W.HTML(f"<b>{_escape(text)}</b>")

        self.box = W.VBox(
            [
                heading("Server"),
                *(rows[n] for n in ("host", "port", "security", "username", "password")),
                W.HBox([self.test_button]),
                heading("Message"),
                *(rows[n] for n in ("sender", "to", "cc", "subject", "body", "files", "variables")),
                W.HBox([self.send_button, self.preview_button]),
                self.progress,
                self.status,
                self.output,
            ]
        )
        self.box.add_class("smtp-magic-form")
        if problem:
            self._status_error("SettingsError", problem)

    # -- display ---------------------------------------------------------------------------

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        bundle = self.box._repr_mimebundle_(**kwargs)
        if isinstance(bundle, dict):
            bundle["text/plain"] = repr(self)  # the VBox's repr lists every child widget
        return bundle

    def __repr__(self) -> str:
        password = repr(MASK) if self._settings_password else None
        return (
            f"SendMailForm(host={self.host.value!r}, port={self.port.value!r}, "
            f"security={self.security.value!r}, username={self.username.value or None!r}, "
            f"password={password}, sender={self.sender.value or None!r}, "
            f"to={self.to.value!r}, subject={self.subject.value!r})"
        )

    def close(self) -> None:
        """Close the widgets and stop the worker thread (after the running action, if any)."""
        if self._pool is not None:
            self._pool.shutdown(wait=False)
        for widget in (*self.box.children, self.box):
            widget.close()
        for name in FIELDS:
            getattr(self, name).close()
            self.errors[name].close()
        for widget in (*self.buttons, self.status, self.progress, self.output):
            widget.close()

    # -- the three buttons -----------------------------------------------------------------

    def _guard(self, handler: Callable[[], None]) -> Callable[[W.Button], None]:
        """Wrap a click handler so that an exception ends in the status (ipywidgets hides it)."""

        def on_click(_button: W.Button) -> None:
            if self._busy:  # a click that arrived before the buttons were disabled
                return
            try:
                handler()
            except Exception as exc:
                self._status_exception(exc, ())

        return on_click

    def _on_send(self) -> None:
        # Read the typed password and clear the widget first, whatever happens next.
        typed = self.password.value
        self.password.value = ""
        self._clear_errors()
        password = typed or self._settings_password
        settings = self._settings(password)
        message = self._message()
        if settings is None or message is None:
            if typed:
                self._field_error(
                    "password", "The password you typed was cleared for safety: type it again."
                )
            self.status.value = self._problem_summary()
            return
        recipients = [
            a for _n, a in getaddresses(message.get_all("To", []) + message.get_all("Cc", [])) if a
        ]
        total = max(len(recipients), 1)
        self.progress.max = total
        self.progress.value = 0
        self.progress.bar_style = "info"
        self.progress.description = f"0/{total} sent"
        self.progress.layout.display = "" if len(recipients) > 1 else "none"
        secrets = (password,) if password else ()

        def job() -> SendReport:
            report = send(message, settings)
            accepted = len(report.accepted)
            self.progress.value = accepted
            self.progress.description = f"{accepted}/{total} accepted"
            self.progress.bar_style = "warning" if report.refused else "success"
            self.status.value = report._repr_html_()
            return report

        who = ", ".join(recipients)
        self._start(
            f"Sending to {_escape(who)} via {_escape(settings.address)}...", job, secrets=secrets
        )

    def _on_preview(self) -> None:
        self._clear_errors()
        message = self._message()
        if message is None:
            self.status.value = self._problem_summary()
            return
        self.output.outputs = ()

        def job() -> EmailMessage:
            _show(self.output, preview(message))
            self.status.value = "Preview below: nothing was sent."
            return message

        self._start("Preparing the preview...", job)

    def _on_test(self) -> None:
        self._clear_errors()
        settings = self._server_settings()
        if settings is None:
            self.status.value = self._problem_summary()
            return
        assert settings.port is not None
        port = settings.port
        self.output.outputs = ()

        def job() -> ProbeReport:
            report = probe(
                settings.host, ports=(port,), cafile=settings.cafile, timeout=settings.timeout
            )
            _show(self.output, report)
            found = report[port]
            if not found.reachable:
                verdict = f"{settings.address} is unreachable: {found.note}"
            else:
                speaks = {"plaintext": "greets in plaintext", "tls": "speaks TLS first"}.get(
                    found.speaks, "answers"
                )
                verdict = f"{settings.address} {speaks}"
                if found.speaks == "plaintext":
                    verdict += ", offers STARTTLS" if found.starttls else ", offers no STARTTLS"
                if found.recommended:
                    verdict += f": use security='{found.recommended}' (or 'auto')"
                if found.note:
                    verdict += f". {found.note}"
            self.status.value = f"<b>Test connection</b>: {_escape(verdict)}"
            return report

        self._start(f"Testing {_escape(settings.address)}...", job)

    # -- running work off the kernel thread ------------------------------------------------

    def _start(self, status: str, job: Callable[[], T], *, secrets: Iterable[str] = ()) -> None:
        self._set_busy(True)
        self.status.value = status
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="smtp_magic-form")
        try:
            self.last = self._pool.submit(self._run, job, tuple(secrets))
        except BaseException:
            self._set_busy(False)
            raise

    def _run(self, job: Callable[[], T], secrets: tuple[str, ...]) -> T:
        # Everything, the status included, is settled before the Future completes, so code
        # that waits on form.last sees the final status (done-callbacks run after waiters wake).
        try:
            return job()
        except Exception as exc:
            self.progress.bar_style = "danger"
            self._status_exception(exc, secrets)
            raise
        finally:
            self._set_busy(False)

    def _set_busy(self, busy: bool) -> None:
        self._busy = busy
        for button in self.buttons:
            button.disabled = busy

    # -- validation ------------------------------------------------------------------------

    def _clear_errors(self) -> None:
        self._general = []
        for error in self.errors.values():
            error.value = ""
            error.layout.display = "none"

    def _field_error(self, name: str, text: str) -> None:
        error = self.errors[name]
        if error.value:  # keep the first problem of each field
            return
        error.value = f"<span style='color:{ERROR_COLOR}'>{_escape(text)}</span>"
        error.layout.display = ""

    def _problem_summary(self) -> str:
        names = [n for n in FIELDS if self.errors[n].value]
        shown = ", ".join(getattr(self, n).description for n in names)
        lines = [f"Nothing was sent: check {shown or 'the form'}.", *self._general]
        return "".join(f"<div style='color:{ERROR_COLOR}'>{_escape(line)}</div>" for line in lines)

    def _server_settings(self) -> Settings | None:
        """Settings of host, port and security, without credentials (enough for Test connection)."""
        host = self.host.value.strip()
        try:
            Settings(host or " ")
        except SettingsError as exc:
            self._field_error("host", exc.message)
        try:
            Settings("localhost", port=self.port.value)
        except SettingsError as exc:
            self._field_error("port", exc.message)
        if self.errors["host"].value or self.errors["port"].value:
            return None
        fields = {"host": host, "port": self.port.value, "security": self.security.value}
        return self._replace(self._base, username=None, password=None, **fields)

    def _settings(self, password: str | None) -> Settings | None:
        """The Settings of this send (password included), or None after showing why not."""
        server = self._server_settings()
        if server is None:
            return None
        settings = self._replace(
            server,
            username=self.username.value.strip() or None,
            password=password or None,
            sender=self.sender.value.strip() or None,
        )
        if settings is None:
            return None
        try:
            # No password typed and none in the settings: try keyring, never a prompt here.
            return with_password(settings, interactive=False)
        except SettingsError:
            self._field_error(
                "password",
                f"{settings.username!r} needs a password at {settings.address}: type it here, "
                f"or store it with `keyring set {keyring_service(settings)} {settings.username}`.",
            )
            return None

    def _replace(self, settings: Settings, **changes: Any) -> Settings | None:
        """``dataclasses.replace``, with a SettingsError shown next to the field it is about."""
        try:
            return dataclasses.replace(settings, **changes)
        except SettingsError as exc:
            field = _settings_field(exc.message)
            if field is None:  # e.g. a cafile that the settings passed in name but is gone
                self._general.append(f"SettingsError: {exc.message}")
            else:
                self._field_error(field, exc.message)
            return None

    def _check(self, name: str, **fields: Any) -> None:
        """Run compose() on one field, so its rules (and words) decide what is valid."""
        try:
            compose(**{"to": _CHECK_ADDRESS, "subject": "", "body": "", **fields})
        except ComposeError as exc:
            self._field_error(name, exc.message)

    def _uploads(self) -> list[tuple[str, object]]:
        """The uploaded files (ipywidgets 8: dicts whose content may be a memoryview)."""
        return [(str(upload["name"]), bytes(upload["content"])) for upload in self.files.value]

    def _variables(self) -> list[tuple[str, object]]:
        """The named variables, looked up in the namespace, as compose() attachments."""
        found: list[tuple[str, object]] = []
        names = [n.strip() for n in self.variables.value.split(",") if n.strip()]
        for name in names:
            if not _NAME.match(name):
                self._field_error(
                    "variables", f"{name!r} is not a variable name: give names like df, fig."
                )
            elif self._namespace is None:
                self._field_error(
                    "variables",
                    "this form has no namespace to look names up in: create it with "
                    "SendMailForm(namespace=globals()), or use %sendmail_form.",
                )
            elif name not in self._namespace:
                self._field_error(
                    "variables",
                    f"there is no variable {name!r} in the notebook: run its cell first.",
                )
            else:
                found.append((name, self._namespace[name]))
        return found

    def _message(self) -> EmailMessage | None:
        """Compose the message from the fields, or None after showing each problem inline."""
        sender = self.sender.value.strip()
        if not sender:
            self._field_error("sender", "From is required: give your address.")
        else:
            self._check("sender", sender=sender)
        if not self.to.value.strip():
            self._field_error("to", "To is required: give at least one address.")
        else:
            self._check("to", to=self.to.value)
        if self.cc.value.strip():
            self._check("cc", cc=self.cc.value)
        if not self.subject.value.strip():
            self._field_error("subject", "Subject is required.")
        else:
            self._check("subject", subject=self.subject.value)
        uploads, variables = self._uploads(), self._variables()
        attachments = uploads + variables
        if any(self.errors[n].value for n in ("sender", "to", "cc", "subject", "variables")):
            return None
        try:
            return compose(
                to=self.to.value,
                cc=self.cc.value,
                subject=self.subject.value,
                body=self.body.value,
                sender=sender,
                attachments=attachments,
            )
        except ComposeError as exc:
            # Find the attachment at fault, so the message stands next to the right field.
            for index, attachment in enumerate(attachments):
                try:
                    compose(to=_CHECK_ADDRESS, subject="", body="", attachments=[attachment])
                except ComposeError as one:
                    field = "files" if index < len(uploads) else "variables"
                    self._field_error(field, one.message)
                    return None
            self._field_error("body", exc.message)
            return None

    # -- the status ------------------------------------------------------------------------

    def _status_error(self, kind: str, text: str, transcript: str = "") -> None:
        shown = f"<div style='color:{ERROR_COLOR}'><b>{_escape(kind)}</b>: {_escape(text)}</div>"
        if transcript:
            shown += (
                "<details><summary>SMTP transcript</summary>"
                f"<pre style='font-size:90%'>{_escape(transcript)}</pre></details>"
            )
        self.status.value = shown

    def _status_exception(self, exc: BaseException, secrets: Iterable[str]) -> None:
        """Show our diagnosis (the words of the magic), or an unexpected error, without secrets."""

        def scrub(text: str) -> str:
            for secret in secrets:
                if secret:
                    text = text.replace(secret, MASK)
            return text

        if isinstance(exc, SMTPMagicError):
            transcript = format_transcript(exc.transcript) if exc.transcript else ""
            self._status_error(type(exc).__name__, scrub(exc.message), scrub(transcript))
        else:
            self._status_error(
                f"Unexpected {type(exc).__name__}",
                scrub(f"{exc} (please report this as a bug in smtp_magic)"),
            )
