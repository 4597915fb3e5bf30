"""SendMailForm without a browser: widgets on a DummyComm, clicks run handlers, the lab is real."""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import secrets
import socket
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import ipywidgets as W
import pandas as pd
import pytest

from smtp_magic.errors import (
    AuthenticationError,
    SecurityMismatchError,
    SettingsError,
    SMTPMagicError,
)
from smtp_magic.lab.server import DEMO_PASSWORD, DEMO_SENDER, LabServer
from smtp_magic.notebook import formcheck
from smtp_magic.notebook.form import SECURITY_CHOICES, SendMailForm
from smtp_magic.settings import Settings

WAIT = 20.0  # seconds: generous, and bounded


@pytest.fixture(autouse=True)
def close_widgets() -> Iterator[None]:
    yield
    W.Widget.close_all()


@pytest.fixture
def make_form() -> Iterator[Callable[..., SendMailForm]]:
    forms: list[SendMailForm] = []

    def make(*args: Any, **kwargs: Any) -> SendMailForm:
        form = SendMailForm(*args, **kwargs)
        forms.append(form)
        return form

    yield make
    for form in forms:
        form.close()


def upload(name: str, content: bytes, kind: str = "application/octet-stream") -> dict[str, Any]:
    """One file as ipywidgets 8 FileUpload holds it after a browser upload."""
    return {
        "name": name,
        "type": kind,
        "size": len(content),
        "content": memoryview(content),
        "last_modified": dt.datetime(2024, 5, 1, tzinfo=dt.UTC),
    }


def fill(form: SendMailForm, **values: Any) -> None:
    defaults = {"to": "reader@example.org", "subject": "Weekly numbers", "body": "**Hello**"}
    for name, value in {**defaults, **values}.items():
        getattr(form, name).value = value


def click_and_wait(form: SendMailForm, button: W.Button) -> Any:
    button.click()
    assert form.last is not None
    return form.last.result(timeout=WAIT)


def all_widget_state(form: SendMailForm) -> str:
    """Everything the form's widgets would sync to a frontend or save into a notebook."""
    states, todo = [], [form.box]
    while todo:
        widget = todo.pop()
        states.append(widget.get_state())
        todo.extend(getattr(widget, "children", ()))
    assert any(s.get("_model_name") == "PasswordModel" for s in states)
    return json.dumps(states, default=repr)


def assert_enabled(form: SendMailForm) -> None:
    assert [b.disabled for b in form.buttons] == [False, False, False]


# -- sending -------------------------------------------------------------------------------


def test_send_delivers_upload_and_dataframe(clean_lab: LabServer, make_form: Callable) -> None:
    df = pd.DataFrame({"city": ["Oslo", "Lima"], "mm": [763, 16]})
    form = make_form(clean_lab.settings(587), namespace={"df": df})
    fill(form, to="a@example.org, B <b@example.org>", cc="c@example.org", variables="df")
    form.files.value = (upload("notes.txt", b"plain words\n", "text/plain"),)

    report = click_and_wait(form, form.send_button)

    (received,) = clean_lab.messages
    assert received.message["Subject"] == "Weekly numbers"
    assert set(received.rcpt_tos) == {"a@example.org", "b@example.org", "c@example.org"}
    assert received.tls and received.authenticated and received.role == 587
    files = {p.get_filename(): p.get_content() for p in received.message.iter_attachments()}
    assert files["notes.txt"] == "plain words\n"
    assert pd.read_csv(io.StringIO(files["df.csv"])).equals(df)
    assert report.accepted == ("a@example.org", "b@example.org", "c@example.org")
    assert "Sent" in form.status.value and "c@example.org" in form.status.value
    # Several recipients: the bar shows how many the server accepted in the one transaction.
    assert form.progress.layout.display != "none"
    assert (form.progress.value, form.progress.max) == (3, 3)
    assert form.progress.bar_style == "success"
    assert_enabled(form)


def test_one_recipient_hides_progress(clean_lab: LabServer, make_form: Callable) -> None:
    form = make_form(clean_lab.settings(465))
    fill(form)
    click_and_wait(form, form.send_button)
    assert [m.role for m in clean_lab.messages] == [465]
    assert form.progress.layout.display == "none"


def test_security_dropdown_explains_each_mode(lab: LabServer, make_form: Callable) -> None:
    form = make_form(lab.settings(587, security="auto"))
    labels = dict((value, label) for label, value in SECURITY_CHOICES)
    assert form.security.options == tuple(SECURITY_CHOICES)
    assert labels["tls"].startswith("465: TLS from the first byte")
    assert form.security.value == "auto"


def test_security_mismatch_shows_our_diagnosis(clean_lab: LabServer, make_form: Callable) -> None:
    form = make_form(clean_lab.settings(587))
    fill(form)
    form.security.value = "tls"  # implicit TLS against the port that greets in plaintext
    form.send_button.click()
    assert form.last is not None
    with pytest.raises(SecurityMismatchError) as caught:
        form.last.result(timeout=WAIT)
    assert "SecurityMismatchError" in form.status.value
    # The same diagnosis, with the fix in the form's terms (its Security field).
    assert caught.value.phrased("form").replace("'", "&#x27;") in form.status.value
    assert "Use the Security field set to starttls (or auto)." in form.status.value
    assert "security=" not in form.status.value
    assert clean_lab.messages == []
    assert form.progress.bar_style == "danger"
    assert_enabled(form)


def test_test_connection_shows_probe_table(clean_lab: LabServer, make_form: Callable) -> None:
    form = make_form(clean_lab.settings(587))
    report = click_and_wait(form, form.test_button)
    port = clean_lab.ports[587]
    assert report[port].starttls
    (shown,) = form.output.outputs
    assert "<table>" in shown["data"]["text/html"]
    assert f"<td>{port}</td>" in shown["data"]["text/html"]
    assert "Probe of 127.0.0.1" in shown["data"]["text/plain"]
    assert "offers STARTTLS" in form.status.value
    assert "use the Security field set to starttls (or auto)" in form.status.value
    assert clean_lab.messages == []
    assert_enabled(form)


def test_test_connection_to_implicit_tls_port(clean_lab: LabServer, make_form: Callable) -> None:
    form = make_form(clean_lab.settings(465))
    click_and_wait(form, form.test_button)
    assert "speaks TLS first" in form.status.value
    assert "use the Security field set to tls (or auto)" in form.status.value


def test_preview_shows_message_and_sends_nothing(clean_lab: LabServer, make_form: Callable) -> None:
    form = make_form(clean_lab.settings(587))
    fill(form, subject="Draft")
    form.files.value = (upload("data.bin", b"\x00\x01"),)
    click_and_wait(form, form.preview_button)
    (shown,) = form.output.outputs
    assert "Subject: Draft" in shown["data"]["text/plain"]
    assert "data.bin" in shown["data"]["text/plain"]
    assert "<iframe sandbox" in shown["data"]["text/html"]
    assert "nothing was sent" in form.status.value
    assert clean_lab.messages == []
    assert clean_lab.connections == {25: 0, 465: 0, 587: 0}


# -- validation: inline messages, nothing sent --------------------------------------------


@pytest.mark.parametrize(
    ("field", "values", "words"),
    [
        ("sender", {"sender": "not an address"}, "sender address 'not an address' is malformed"),
        ("sender", {"sender": ""}, "From is required"),
        ("to", {"to": "bob@@example.org"}, "to address 'bob@@example.org' is malformed"),
        ("to", {"to": "  "}, "To is required"),
        ("cc", {"cc": "carol"}, "cc address 'carol' is malformed"),
        ("subject", {"subject": ""}, "Subject is required"),
        ("port", {"port": 0}, "port=0 is not a TCP port"),
        ("port", {"port": 70000}, "port=70000 is not a TCP port"),
        ("host", {"host": ""}, "host is empty"),
        ("variables", {"variables": "missing_df"}, "no variable 'missing_df'"),
        ("variables", {"variables": "df; rm"}, "is not a variable name"),
        ("variables", {"variables": "number"}, "of type int"),
        ("security", {"security": "plain"}, "security='plain' never sends credentials"),
        ("username", {"username": ""}, "a password was given without a username"),
    ],
)
def test_validation_error_shows_inline_and_sends_nothing(
    clean_lab: LabServer, make_form: Callable, field: str, values: dict[str, Any], words: str
) -> None:
    form = make_form(clean_lab.settings(587), namespace={"df": pd.DataFrame(), "number": 42})
    fill(form, **values)
    buttons = [form.send_button]
    if field in ("sender", "to", "cc", "subject", "variables"):
        buttons.append(form.preview_button)  # the preview checks the message the same way
    if field in ("host", "port"):
        buttons.append(form.test_button)  # and Test connection the server fields
    for button in buttons:
        button.click()
        error = form.errors[field]
        assert words.replace("'", "&#x27;") in error.value
        assert error.layout.display != "none"
        assert "Nothing was sent" in form.status.value
        others = [name for name, e in form.errors.items() if e.value and name != field]
        assert others == []
    assert form.last is None
    assert clean_lab.messages == []
    assert clean_lab.connections == {25: 0, 465: 0, 587: 0}
    assert_enabled(form)


def test_errors_clear_when_fixed(clean_lab: LabServer, make_form: Callable) -> None:
    form = make_form(clean_lab.settings(587))
    fill(form, to="")
    form.send_button.click()
    assert form.errors["to"].value and form.last is None
    form.to.value = "reader@example.org"
    click_and_wait(form, form.send_button)
    assert not any(e.value for e in form.errors.values())
    assert all(e.layout.display == "none" for e in form.errors.values())
    assert len(clean_lab.messages) == 1


def test_variables_without_namespace(clean_lab: LabServer, make_form: Callable) -> None:
    form = make_form(clean_lab.settings(587))
    fill(form, variables="df")
    form.send_button.click()
    assert "namespace=globals()" in form.errors["variables"].value
    assert form.last is None and clean_lab.messages == []


def test_error_in_a_handler_ends_in_the_status(clean_lab: LabServer, make_form: Callable) -> None:
    class Broken(Mapping[str, object]):
        def __getitem__(self, key: str) -> object:
            raise RuntimeError("namespace exploded")

        def __contains__(self, key: object) -> bool:
            return True

        def __iter__(self) -> Iterator[str]:
            return iter(())

        def __len__(self) -> int:
            return 0

    form = make_form(clean_lab.settings(587), namespace=Broken())
    fill(form, variables="df")
    form.send_button.click()  # ipywidgets would only log this; the form must show it
    assert "Unexpected RuntimeError" in form.status.value
    assert "namespace exploded" in form.status.value
    assert clean_lab.messages == []
    assert_enabled(form)


# -- running off the kernel thread ---------------------------------------------------------


@pytest.fixture
def stalled_server() -> Iterator[tuple[int, threading.Event]]:
    """A TCP listener that accepts and stays silent until released, then hangs up."""
    listener = socket.create_server(("127.0.0.1", 0))
    release = threading.Event()
    accepted: list[socket.socket] = []

    def serve() -> None:
        listener.settimeout(WAIT)
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        accepted.append(conn)
        release.wait(WAIT)
        conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1], release
    release.set()
    thread.join(WAIT)
    listener.close()


def test_buttons_disabled_while_running(
    stalled_server: tuple[int, threading.Event], make_form: Callable
) -> None:
    port, release = stalled_server
    settings = Settings("127.0.0.1", port=port, security="starttls", sender=DEMO_SENDER)
    form = make_form(settings)
    fill(form, to="a@example.org, b@example.org")

    form.send_button.click()
    running = form.last
    assert running is not None and not running.done()  # the server has not said a word yet
    assert [b.disabled for b in form.buttons] == [True, True, True]
    assert "Sending to a@example.org, b@example.org" in form.status.value
    assert form.progress.layout.display != "none" and form.progress.value == 0
    form.test_button.click()  # a click that slips through while busy changes nothing
    assert form.last is running

    release.set()  # the server hangs up before its greeting
    with pytest.raises(SMTPMagicError):
        running.result(timeout=WAIT)
    assert_enabled(form)
    assert "Sending" not in form.status.value
    assert form.progress.bar_style == "danger"


# -- passwords -----------------------------------------------------------------------------


def auth_plain(username: str, password: str) -> str:
    return base64.b64encode(f"\0{username}\0{password}".encode()).decode()


def test_typed_password_is_used_once_then_cleared(
    clean_lab: LabServer, make_form: Callable
) -> None:
    form = make_form(clean_lab.settings(587, password=None))
    assert form.password.placeholder != "(from settings)"
    fill(form)
    form.password.value = DEMO_PASSWORD  # as typed in the page
    form.send_button.click()
    assert form.password.value == ""  # cleared at once, on the kernel thread
    assert form.last is not None
    form.last.result(timeout=WAIT)
    assert len(clean_lab.messages) == 1
    for text in (repr(form), form.status.value, all_widget_state(form)):
        assert DEMO_PASSWORD not in text
        assert auth_plain("demo", DEMO_PASSWORD) not in text

    last = form.last
    form.send_button.click()  # no password typed again: stopped before any connection
    assert "needs a password" in form.errors["password"].value
    assert form.last is last and len(clean_lab.messages) == 1


def test_wrong_password_is_diagnosed_without_showing_it(
    clean_lab: LabServer, make_form: Callable
) -> None:
    wrong = "typed-wrong-" + secrets.token_hex(8)
    form = make_form(clean_lab.settings(587, password=None))
    fill(form)
    form.password.value = wrong
    form.send_button.click()
    assert form.last is not None
    with pytest.raises(AuthenticationError):
        form.last.result(timeout=WAIT)
    assert "AuthenticationError" in form.status.value
    assert "rejected the login" in form.status.value
    for text in (repr(form), form.status.value, all_widget_state(form)):
        assert wrong not in text and auth_plain("demo", wrong) not in text
    assert clean_lab.messages == []


def test_settings_password_never_enters_a_widget(clean_lab: LabServer, make_form: Callable) -> None:
    form = make_form(clean_lab.settings(587))
    assert form.password.value == ""
    assert form.password.placeholder == "(from settings)"
    fill(form)
    click_and_wait(form, form.send_button)
    click_and_wait(form, form.send_button)  # the settings' password serves every send
    assert len(clean_lab.messages) == 2
    bundle = form._repr_mimebundle_()
    for text in (repr(form), bundle["text/plain"], form.status.value, all_widget_state(form)):
        assert DEMO_PASSWORD not in text
    assert "password='********'" in repr(form)


def test_validation_failure_clears_the_typed_password(
    clean_lab: LabServer, make_form: Callable
) -> None:
    form = make_form(clean_lab.settings(587, password=None))
    fill(form, to="")
    form.password.value = DEMO_PASSWORD
    form.send_button.click()
    assert form.password.value == ""
    assert "type it again" in form.errors["password"].value
    assert DEMO_PASSWORD not in all_widget_state(form)
    assert form.last is None


def every_widget_state() -> str:
    """``get_state()`` of every widget alive in this process (what a frontend could sync)."""
    from ipywidgets.widgets import widget

    states = [w.get_state() for w in dict(widget._instances).values()]
    return json.dumps(states, default=repr)


def assert_password_nowhere(form: SendMailForm, password: str) -> None:
    for text in (repr(form), form.status.value, all_widget_state(form), every_widget_state()):
        assert password not in text
        assert auth_plain("demo", password) not in text


def test_preview_takes_the_typed_password_for_the_next_send(
    clean_lab: LabServer, make_form: Callable
) -> None:
    form = make_form(clean_lab.settings(587, password=None))
    fill(form)
    form.password.value = DEMO_PASSWORD  # as typed in the page
    form.preview_button.click()
    assert form.password.value == ""  # cleared at once, on the kernel thread
    assert form.password.placeholder == "(typed: kept for the next Send only)"
    assert form.last is not None
    form.last.result(timeout=WAIT)
    assert "Preview below" in form.status.value
    assert_password_nowhere(form, DEMO_PASSWORD)
    assert "password='********'" in repr(form)  # held for the next Send
    assert clean_lab.messages == []

    report = click_and_wait(form, form.send_button)  # nothing typed now: the held one is used
    (received,) = clean_lab.messages
    assert received.role == 587 and received.tls and received.authenticated
    assert report.accepted == ("reader@example.org",)
    assert form.password.value == ""
    assert form.password.placeholder == "typed here, cleared when sent"
    assert_password_nowhere(form, DEMO_PASSWORD)

    last = form.last
    form.send_button.click()  # that Send used it up: stopped before any connection
    assert "needs a password" in form.errors["password"].value
    assert form.last is last and len(clean_lab.messages) == 1


def test_held_password_is_the_one_typed(clean_lab: LabServer, make_form: Callable) -> None:
    # The failure that proves the success above was earned: a wrong password typed before
    # Preview is the one the next Send logs in with.
    wrong = "typed-wrong-" + secrets.token_hex(8)
    form = make_form(clean_lab.settings(587, password=None))
    fill(form)
    form.password.value = wrong
    click_and_wait(form, form.preview_button)
    form.send_button.click()
    assert form.last is not None
    with pytest.raises(AuthenticationError):
        form.last.result(timeout=WAIT)
    assert clean_lab.messages == []
    assert_password_nowhere(form, wrong)


def test_test_connection_takes_the_typed_password(
    clean_lab: LabServer, make_form: Callable
) -> None:
    form = make_form(clean_lab.settings(587, password=None))
    fill(form)
    form.password.value = DEMO_PASSWORD
    form.test_button.click()
    assert form.password.value == ""
    assert form.last is not None
    form.last.result(timeout=WAIT)
    assert "offers STARTTLS" in form.status.value
    assert_password_nowhere(form, DEMO_PASSWORD)

    click_and_wait(form, form.send_button)
    (received,) = clean_lab.messages
    assert received.authenticated
    assert_password_nowhere(form, DEMO_PASSWORD)


def test_click_that_stops_early_still_takes_the_password(
    clean_lab: LabServer, make_form: Callable
) -> None:
    form = make_form(clean_lab.settings(587, password=None))
    fill(form, host="")  # Preview stops on the To field, Test connection on the host
    form.to.value = ""
    for button in (form.preview_button, form.test_button):
        form.password.value = DEMO_PASSWORD
        button.click()
        assert form.password.value == ""
        assert "Nothing was sent" in form.status.value
        assert DEMO_PASSWORD not in every_widget_state()
    assert form.last is None


def test_send_that_fails_validation_drops_a_held_password(
    clean_lab: LabServer, make_form: Callable
) -> None:
    form = make_form(clean_lab.settings(587, password=None))
    fill(form)
    form.password.value = DEMO_PASSWORD
    click_and_wait(form, form.preview_button)
    previewed = form.last
    form.to.value = ""
    form.send_button.click()  # stopped by the To field: the held password is dropped
    assert "type it again" in form.errors["password"].value
    assert form.password.value == ""  # never put back into the widget
    form.to.value = "reader@example.org"
    form.send_button.click()
    assert "needs a password" in form.errors["password"].value
    assert form.last is previewed and clean_lab.messages == []


def test_settings_password_with_preview_and_test(clean_lab: LabServer, make_form: Callable) -> None:
    form = make_form(clean_lab.settings(587))
    fill(form)
    click_and_wait(form, form.preview_button)
    click_and_wait(form, form.test_button)
    assert form.password.placeholder == "(from settings)"
    click_and_wait(form, form.send_button)
    click_and_wait(form, form.send_button)  # the settings' password is not used up
    assert len(clean_lab.messages) == 2
    assert form.password.placeholder == "(from settings)"
    assert_password_nowhere(form, DEMO_PASSWORD)


# -- where the form starts from ------------------------------------------------------------


def test_repr_is_deterministic(lab: LabServer, make_form: Callable) -> None:
    settings = lab.settings(587, security="auto")
    first, second = make_form(settings), make_form(settings)
    fill(first)
    fill(second)
    assert repr(first) == repr(second)
    assert repr(first).startswith("SendMailForm(host='127.0.0.1'")


def test_starts_from_active_magic_settings(
    lab: LabServer, make_form: Callable, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(formcheck, "active_settings", lambda: lab.settings(465))
    form = make_form()
    assert (form.host.value, form.port.value) == ("127.0.0.1", lab.ports[465])
    assert form.password.placeholder == "(from settings)"


def test_starts_from_environment(make_form: Callable, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(formcheck, "active_settings", lambda: None)
    monkeypatch.setenv("SMTP_HOST", "smtp.example.org")
    monkeypatch.setenv("SMTP_PORT", "465")
    monkeypatch.setenv("SMTP_FROM", "alice@example.org")
    monkeypatch.setenv("SMTP_USERNAME", "alice")
    form = make_form()
    assert form.host.value == "smtp.example.org"
    assert (form.port.value, form.security.value) == (465, "auto")
    assert (form.sender.value, form.username.value) == ("alice@example.org", "alice")


def test_bad_environment_is_shown_not_raised(
    make_form: Callable, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(formcheck, "active_settings", lambda: None)  # no IPython running
    monkeypatch.setenv("SMTP_PORT", "five")
    form = make_form()
    assert "SMTP_PORT=&#x27;five&#x27; is not a whole number" in form.status.value
    assert form.host.value == "localhost"


def test_bad_magic_defaults_are_shown_not_raised(
    make_form: Callable, monkeypatch: pytest.MonkeyPatch
) -> None:
    def active_settings() -> Settings:
        raise SettingsError("port=0 is not a TCP port: use a whole number from 1 to 65535.")

    monkeypatch.setattr(formcheck, "active_settings", active_settings)
    form = make_form()
    assert "port=0 is not a TCP port" in form.status.value


# -- a saved notebook holds no password ----------------------------------------------------

NOTEBOOK_CELLS = [
    """\
from pathlib import Path
from smtp_magic.lab.server import LabServer
from smtp_magic.notebook.form import SendMailForm

lab = LabServer(ports={25: 0, 465: 0, 587: 0}, password=Path("secret.txt").read_text()).start()
form = SendMailForm(lab.settings(587, password=None), namespace=globals())
form""",
    """\
form.to.value = "reader@example.org"
form.subject.value = "Saved notebook check"
form.password.value = Path("secret.txt").read_text()  # what typing in the page does
form.send_button.click()
report = form.last.result(timeout=30)
print("delivered:", len(lab.messages), "| password widget empty:", form.password.value == "")""",
    "lab.stop()",
]


def test_saved_notebook_holds_no_password(tmp_path: Path) -> None:
    import nbformat
    from nbclient import NotebookClient

    password = "nb-secret-" + secrets.token_hex(12)
    (tmp_path / "secret.txt").write_text(password)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in NOTEBOOK_CELLS]
    client = NotebookClient(  # store_widget_state keeps its default, True, on purpose
        nb, timeout=60, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    assert client.store_widget_state is True
    client.execute()
    saved = tmp_path / "saved.ipynb"
    nbformat.write(nb, saved)

    text = saved.read_text()
    outputs = "".join(o.get("text", "") for o in nb.cells[1].outputs)
    assert "delivered: 1 | password widget empty: True" in outputs
    # Widget state IS stored (nbclient's default), so this is a real check: the Password
    # model is in the file, with an empty value.
    state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    passwords = [m for m in state.values() if m["model_name"] == "PasswordModel"]
    assert [m["state"]["value"] for m in passwords] == [""]
    assert password not in text
    assert auth_plain("demo", password) not in text


# -- the first hour (issue 17), in a real kernel ------------------------------------------

FIRST_HOUR_CELLS = [
    """\
from smtp_magic.lab.server import LabServer
from smtp_magic.notebook.form import SendMailForm

lab = LabServer(ports={25: 0, 465: 0, 587: 0}).start()
form = SendMailForm(lab.settings(587), namespace=globals())  # the settings carry a password
form.to.value, form.subject.value, form.body.value = "reader@example.org", "Hi", "Hello"
form.port.value, form.security.value = lab.ports[465], "starttls"
form.test_button.click(); form.last.result(timeout=30)
print("TEST:", form.status.value, "| outputs:", len(form.output.outputs))""",
    """\
form.port.value = lab.ports[587]
form.password.value = "typed-but-wrong"
form.send_button.click()
try:
    form.last.result(timeout=30)
except Exception as exc:
    print("RAISED:", type(exc).__name__)
print("FAILED:", form.status.value, "| outputs:", len(form.output.outputs))""",
    """\
form.send_button.click()  # nothing typed: the form must not switch to the settings' password silently
print("AGAIN:", form.status.value, form.errors["password"].value, "| sent:", len(lab.messages))""",
    """\
form.send_button.click(); form.last.result(timeout=30)
print("THIRD:", form.status.value, "| sent:", len(lab.messages))
lab.stop()""",
]


def _run_cells(cells: list[str], tmp_path: Path) -> list[str]:
    """Run ``cells`` in a real kernel (nbclient); each cell's printed text."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    NotebookClient(
        nb, timeout=90, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    return ["".join(o.get("text", "") for o in cell.outputs) for cell in nb.cells]


def test_form_first_hour_in_a_kernel(tmp_path: Path) -> None:
    tested, failed, again, third = _run_cells(FIRST_HOUR_CELLS, tmp_path)
    # Test connection against the implicit-TLS role: the verdict names the form's field.
    assert "speaks TLS first: use the Security field set to tls (or auto)" in tested
    assert "security=" not in tested and "| outputs: 1" in tested
    # A failed login clears the old probe table and verdict, and says which password it used.
    assert "RAISED: AuthenticationError" in failed
    assert "| outputs: 0" in failed and "Security field set to tls" not in failed
    assert "The login used the password typed in the Password field" in failed
    assert "the password comes from the form&#x27;s Password field" in failed
    assert "SMTP_PASSWORD" not in failed and "keyring" not in failed
    assert "typed-but-wrong" not in failed
    # The next Send, with nothing typed, stops and says what it would do instead.
    assert "The password you typed was refused" in again and "| sent: 0" in again
    assert "password from the settings" in again
    # Only a deliberate second click logs in with the settings' password, and says so.
    assert "Logged in with the password from the settings given to the form" in third
    assert "| sent: 1" in third
