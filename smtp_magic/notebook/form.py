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

Passwords: one typed into the Password widget is read when any button is clicked (Send,
Preview or Test connection) and the widget is cleared at once, because a widget's value is synced
state, which a saved notebook can keep. The typed password then waits in a private attribute
until the next Send uses it, once, and is never put back into the widget. A password that came
with the settings is kept in a private attribute and never put into a widget.

The widgets and their layout are :class:`~smtp_magic.formview.FormWidgets`, the checks of the
fields are :mod:`smtp_magic.notebook.formcheck`; this module is what the buttons do.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from email.message import EmailMessage
from email.utils import getaddresses
from typing import Any, TypeVar

import ipywidgets as W

from smtp_magic.errors import AuthenticationError, SMTPMagicError
from smtp_magic.message.preview import preview
from smtp_magic.notebook import formcheck
from smtp_magic.notebook.formsetup import find_settings
from smtp_magic.notebook.formview import SECURITY_CHOICES, FormWidgets, escape, show
from smtp_magic.phrasing import render, setting
from smtp_magic.probe import probe
from smtp_magic.report import ProbeReport, SendReport, format_transcript
from smtp_magic.secret import SecretStr
from smtp_magic.send import send
from smtp_magic.settings import Settings

__all__ = ["SECURITY_CHOICES", "SendMailForm"]

T = TypeVar("T")

MASK = "********"
_TYPE_HERE = "typed here, cleared when sent"
_FROM_SETTINGS = "(from settings)"
_HELD = "(typed: kept for the next Send only)"
_USED_TYPED = "the password typed in the Password field"
_USED_SETTINGS = "the password from the settings given to the form"


class SendMailForm(FormWidgets):
    """A form to write a message, preview it, test the connection and send it.

    Shown by ``%sendmail_form``, or by a cell that ends with the form. The form is not itself a
    widget: it composes widgets (those of :class:`~smtp_magic.formview.FormWidgets`), and
    displays as its ``box``.

    A password typed into ``password`` is taken out of the widget on any click (Send, Preview
    or Test connection), so the widget's synced state never keeps it; it is held privately until
    the next Send, which uses it once and drops it, even when a field stops that Send (then the
    Password field asks for it again). It is never put back into the widget; while it is held,
    the field's placeholder says so. A password given in ``settings`` is held privately for
    every send and the field shows "(from settings)".

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
        base, problem = formcheck.initial_settings(settings)
        self._base = dataclasses.replace(base, password=None)
        # A password from the settings stays here and never enters a widget (widget values are
        # synced state that a saved notebook can keep); so does a typed one, until the next Send.
        self._settings_password = base.password
        self._typed_password: str | None = None
        self._typed_refused = False  # the last Send's typed password was refused by the server
        self._login_note = ""  # which password a refused login used, for the status
        self._namespace = namespace
        self._pool: ThreadPoolExecutor | None = None
        self._busy = False
        self._problems = formcheck.Problems()
        self.last: Future[Any] | None = None
        # An OAuth2 token provider (from %smtp_login, or Settings(token=MicrosoftTokens(...)))
        # gets a Sign in button; a plain token string or function has nothing to sign in to.
        self._tokens = base.token if hasattr(base.token, "sign_in") else None
        super().__init__(
            base,
            password_placeholder=self._password_placeholder(),
            sign_in=getattr(self._tokens, "provider", None),
        )
        self.signin_button.on_click(self._guard(self._on_sign_in))
        self.send_button.on_click(self._guard(self._on_send))
        self.preview_button.on_click(self._guard(self._on_preview))
        self.test_button.on_click(self._guard(self._on_test))
        self.find_button.on_click(self._guard(lambda: find_settings(self)))
        if problem:
            self._status_error("SettingsError", problem)

    # -- display ---------------------------------------------------------------------------

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        bundle = self.box._repr_mimebundle_(**kwargs)
        if isinstance(bundle, dict):
            bundle["text/plain"] = repr(self)  # the VBox's repr lists every child widget
        return bundle

    def __repr__(self) -> str:
        password = repr(MASK) if self._typed_password or self._settings_password else None
        return (
            f"SendMailForm(host={self.host.value!r}, port={self.port.value!r}, "
            f"security={self.security.value!r}, username={self.username.value or None!r}, "
            f"password={password}, sender={self.sender.value or None!r}, "
            f"to={self.to.value!r}, subject={self.subject.value!r})"
        )

    def close(self) -> None:
        """Close the widgets and stop the worker thread (after the running action, if any)."""
        self._typed_password = None
        if self._pool is not None:
            self._pool.shutdown(wait=False)
        super().close()

    # -- the three buttons -----------------------------------------------------------------

    def _guard(self, handler: Callable[[], None]) -> Callable[[W.Button], None]:
        """Wrap a click handler so that an exception ends in the status (ipywidgets hides it)."""

        def on_click(_button: W.Button) -> None:
            self._take_password()  # first, whatever the button and whatever happens next
            if self._busy:  # a click that arrived before the buttons were disabled
                return
            # Every action starts from a clean status and output: an old probe table or
            # diagnosis must not sit beside (and contradict) what this click finds.
            self.status.value = ""
            self.output.outputs = ()
            try:
                handler()
            except Exception as exc:
                self._status_exception(exc, ())

        return on_click

    def _on_sign_in(self) -> None:
        """Sign in off the kernel thread; the code or link shows in the status."""
        from smtp_magic.notebook.loginmagic import form_sign_in_job

        self._start("Starting the sign-in...", form_sign_in_job(self._tokens, self))

    def _take_password(self) -> None:
        """Move a typed password out of the widget (synced state) into a private attribute."""
        typed = self.password.value
        if typed:
            self._typed_password = SecretStr(typed)  # masked in any frame that shows locals
            self.password.value = ""
            self.password.placeholder = self._password_placeholder()

    def _password_placeholder(self) -> str:
        if self._typed_password:
            return _HELD
        return _FROM_SETTINGS if self._settings_password else _TYPE_HERE

    def _on_send(self) -> None:
        # This send uses the typed password, if any, and drops it whatever happens next.
        typed, self._typed_password = self._typed_password, None
        self.password.placeholder = self._password_placeholder()
        self._clear_errors()
        if self._typed_refused and not typed and self._settings_password:
            # Never switch silently from a refused typed password to the settings' one: say so
            # once; the next click uses the settings' password, and the status says which.
            self._typed_refused = False
            self._problems.add(
                "password",
                "The password you typed was refused, and cleared. Type it again, or click Send "
                "once more to log in with the password from the settings.",
            )
            self.status.value = self._problem_summary(self._problems)
            return
        password = typed or self._settings_password
        settings = self._settings(password)
        message = self._message()
        if settings is None or message is None:
            if typed:
                self._problems.add(
                    "password", "The password you typed was cleared for safety: type it again."
                )
            self.status.value = self._problem_summary(self._problems)
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

        used = _USED_TYPED if typed else (_USED_SETTINGS if password else "")

        def job() -> SendReport:
            try:
                report = send(message, settings)
            except AuthenticationError:
                self._typed_refused = bool(typed)
                self._login_note = f"The login used {used}." + (
                    " It has been cleared: type it again in the Password field." if typed else ""
                )
                raise
            self._typed_refused = False
            accepted = len(report.accepted)
            self.progress.value = accepted
            self.progress.description = f"{accepted}/{total} accepted"
            self.progress.bar_style = "warning" if report.refused else "success"
            login = f"<div>Logged in with {escape(used)}.</div>" if used else ""
            self.status.value = report._repr_html_() + login
            return report

        who = ", ".join(recipients)
        login = f" (login with {used})" if used else ""
        self._start(
            f"Sending to {escape(who)} via {escape(settings.address)}{escape(login)}...",
            job,
            secrets=secrets,
        )

    def _on_preview(self) -> None:
        self._clear_errors()
        message = self._message()
        if message is None:
            self.status.value = self._problem_summary(self._problems)
            return
        self.output.outputs = ()

        def job() -> EmailMessage:
            show(self.output, preview(message))
            self.status.value = "Preview below: nothing was sent."
            return message

        self._start("Preparing the preview...", job)

    def _on_test(self) -> None:
        self._clear_errors()
        settings = self._server_settings()
        if settings is None:
            self.status.value = self._problem_summary(self._problems)
            return
        assert settings.port is not None
        port = settings.port
        self.output.outputs = ()

        def job() -> ProbeReport:
            report = probe(
                settings.host, ports=(port,), cafile=settings.cafile, timeout=settings.timeout
            )
            show(self.output, report.phrased("form"))
            found = report[port]
            if not found.reachable:
                verdict = f"{settings.address} is unreachable: {found.note_for('form')}"
            else:
                speaks = {"plaintext": "greets in plaintext", "tls": "speaks TLS first"}.get(
                    found.speaks, "answers"
                )
                verdict = f"{settings.address} {speaks}"
                if found.speaks == "plaintext":
                    verdict += ", offers STARTTLS" if found.starttls else ", offers no STARTTLS"
                if found.recommended:
                    field = render(setting("security", found.recommended), "form")
                    verdict += f": use {field} (or auto)"
                if found.note:
                    verdict += f". {found.note_for('form')}"
            self.status.value = f"<b>Test connection</b>: {escape(verdict)}"
            return report

        self._start(f"Testing {escape(settings.address)}...", job)

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
        # Each problem shows next to its field as soon as it is found.
        self._problems = formcheck.Problems(on_field=self._show_field_error)
        self._hide_field_errors()

    def _server_settings(self) -> Settings | None:
        """Settings of host, port and security, without credentials (enough for Test connection)."""
        return formcheck.server_settings(
            self._base,
            self._problems,
            host=self.host.value,
            port=self.port.value,
            security=self.security.value,
        )

    def _settings(self, password: str | None) -> Settings | None:
        """The Settings of this send (password included), or None after showing why not."""
        return formcheck.send_settings(
            self._base,
            self._problems,
            host=self.host.value,
            port=self.port.value,
            security=self.security.value,
            username=self.username.value,
            password=password,
            sender=self.sender.value,
        )

    def _message(self) -> EmailMessage | None:
        """Compose the message from the fields, or None after showing each problem inline."""
        return formcheck.message(
            self._problems,
            sender=self.sender.value,
            to=self.to.value,
            cc=self.cc.value,
            subject=self.subject.value,
            body=self.body.value,
            files=self.files.value,
            names=self.variables.value,
            namespace=self._namespace,
        )

    # -- the status ------------------------------------------------------------------------

    def _status_exception(self, exc: BaseException, secrets: Iterable[str]) -> None:
        """Show our diagnosis (the words of the magic), or an unexpected error, without secrets."""

        def scrub(text: str) -> str:
            for secret in secrets:
                if secret:
                    text = text.replace(secret, MASK)
            return text

        if isinstance(exc, SMTPMagicError):
            transcript = format_transcript(exc.transcript) if exc.transcript else ""
            text = exc.phrased("form")  # the fix in the form's terms: its fields, its buttons
            if self._login_note:
                text, self._login_note = f"{text} {self._login_note}", ""
            diagram = exc.diagram("form")
            picture = scrub(diagram.svg) if diagram else ""
            self._status_error(type(exc).__name__, scrub(text), scrub(transcript), picture)
        else:
            self._status_error(
                f"Unexpected {type(exc).__name__}",
                scrub(f"{exc} (please report this as a bug in smtp_magic)"),
            )
