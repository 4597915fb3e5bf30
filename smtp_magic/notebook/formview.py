"""FormWidgets: the widgets and layout of the send-mail form, with no behaviour of their own."""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as W

from smtp_magic.notebook.formcheck import Problems
from smtp_magic.settings import Settings

__all__ = ["ERROR_COLOR", "FIELDS", "SECURITY_CHOICES", "FormWidgets", "escape", "show"]

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

ERROR_COLOR = "#b42318"


def escape(text: str) -> str:
    """``text`` made safe for HTML, quotes included."""
    return html.escape(text, quote=True)


def display_bundle(obj: Any) -> tuple[dict[str, Any], dict[str, Any]]:
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


def show(out: W.Output, obj: Any) -> None:
    """Append ``obj`` to an Output widget; safe from a worker thread (no ``with out:``)."""
    data, metadata = display_bundle(obj)
    out.outputs = (
        *out.outputs,
        {"output_type": "display_data", "data": data, "metadata": metadata},
    )


class FormWidgets:
    """The form's input widgets, buttons, inline errors, status and output, laid out in ``box``.

    :class:`~smtp_magic.widget.SendMailForm` adds what the buttons do.

    Args:
        base: The settings whose host, port, security, username and sender fill the fields.
        password_placeholder: What the empty Password field says (it is never given a value).
        sign_in: The OAuth2 provider ("microsoft", "google") whose token provider the settings
            log in with: shows the "Sign in" button (and, for Microsoft, the choice between a
            device code and the browser). None: no sign-in.
    """

    def __init__(
        self, base: Settings, *, password_placeholder: str, sign_in: str | None = None
    ) -> None:
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

        # "Find settings" fills the server fields from this address (discover()).
        self.address = text("Address", base.sender, "alice@example.org")
        self.find_button = W.Button(description="Find settings", icon="search")
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
            placeholder=password_placeholder,
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
        self._sign_in_widgets(sign_in)
        self.buttons: tuple[W.Button, ...] = (
            self.send_button,
            self.preview_button,
            self.test_button,
        )
        if sign_in:
            self.buttons += (self.signin_button,)

        self.status = W.HTML(value="")
        self.progress = W.IntProgress(
            value=0, min=0, max=1, description="Recipients", style=style, layout=W.Layout()
        )
        self.progress.layout.display = "none"
        self.output = W.Output()

        self._lay_out()

    def _sign_in_widgets(self, sign_in: str | None) -> None:
        """The Sign in button, the choice of how (Microsoft), and the Paste field."""
        # Shown only when the settings carry an OAuth2 token provider (after %smtp_login).
        self.signin_button = W.Button(description="Sign in", icon="key")
        # Microsoft: a device code (a link and a code, any browser) or the browser sign-in (what
        # a tenant whose Conditional Access blocks device codes needs). Google: browser only.
        self.signin_method = W.ToggleButtons(
            options=[("Device code", "device"), ("Browser", "browser")],
            value="device",
            tooltips=["a link and a code to type, in any browser", "sign in in this browser"],
            layout=W.Layout(display="" if sign_in == "microsoft" else "none"),
            style={"button_width": "8.5em"},
        )
        # Where a browser sign-in's final address is pasted when the browser cannot reach the
        # kernel (JupyterHub, Binder); shown only while such a sign-in waits, emptied when read.
        self.paste_box = W.Text(
            description="Paste",
            placeholder="the address your browser ends on after signing in",
            layout=W.Layout(width="40em", display="none"),
            style={"description_width": "8em"},
        )

    def _lay_out(self) -> None:
        """Give every widget its CSS class and error line, and arrange them in ``self.box``."""
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
            ("signin", self.signin_button),
            ("signin-method", self.signin_method),
            ("address", self.address),
            ("find", self.find_button),
            ("status", self.status),
            ("progress", self.progress),
            ("output", self.output),
        ):
            widget.add_class(f"smtp-magic-{name}")

        def heading(text: str) -> W.HTML:
            return W.HTML(f"<b>{escape(text)}</b>")

        self.box = W.VBox(
            [
                heading("Server"),
                W.HBox([self.address, self.find_button]),
                *(rows[n] for n in ("host", "port", "security", "username", "password")),
                # + Sign in and (Microsoft) how, when the settings sign in with OAuth2
                W.HBox([self.test_button, *self.buttons[3:], self.signin_method]),
                self.paste_box,
                heading("Message"),
                *(rows[n] for n in ("sender", "to", "cc", "subject", "body", "files", "variables")),
                W.HBox([self.send_button, self.preview_button]),
                self.progress,
                self.status,
                self.output,
            ]
        )
        self.box.add_class("smtp-magic-form")

    def close(self) -> None:
        """Close every widget of the form."""
        for widget in (*self.box.children, self.box):
            widget.close()
        for name in FIELDS:
            getattr(self, name).close()
            self.errors[name].close()
        for widget in (*self.buttons, self.signin_button, self.signin_method, self.paste_box):
            widget.close()
        for widget in (self.address, self.find_button):
            widget.close()
        for widget in (self.status, self.progress, self.output):
            widget.close()

    def _show_field_error(self, name: str, text: str) -> None:
        error = self.errors[name]
        error.value = f"<span style='color:{ERROR_COLOR}'>{escape(text)}</span>"
        error.layout.display = ""

    def _hide_field_errors(self) -> None:
        for error in self.errors.values():
            error.value = ""
            error.layout.display = "none"

    def _problem_summary(self, problems: Problems) -> str:
        names = [n for n in FIELDS if n in problems]
        shown = ", ".join(getattr(self, n).description for n in names)
        lines = [f"Nothing was sent: check {shown or 'the form'}.", *problems.general]
        return "".join(f"<div style='color:{ERROR_COLOR}'>{escape(line)}</div>" for line in lines)

    def _status_error(self, kind: str, text: str, transcript: str = "", picture: str = "") -> None:
        shown = f"<div style='color:{ERROR_COLOR}'><b>{escape(kind)}</b>: {escape(text)}</div>"
        if transcript:
            # picture: the conversation's diagram (inline SVG), its failed step in red
            shown += (
                "<details><summary>SMTP transcript and the conversation as a picture</summary>"
                f"{picture}<pre style='font-size:90%'>{escape(transcript)}</pre></details>"
            )
        self.status.value = shown
