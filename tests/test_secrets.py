"""Secrets: drive every front end with a distinctive password, then search everything for it.

One module-scoped harness sends through the Python API, the CLI (real subprocesses), the form
(headless), ``%%sendmail`` and friends (a real InteractiveShell whose history is written to a
sqlite file) and a notebook executed by nbclient and saved to disk, all against a LabServer whose
account password is ``SECRET``. It collects every repr, str, HTML, transcript, error, captured
output, widget state, history entry and saved file into a corpus of named sources. The tests
then check that the corpus really holds what each front end shows (so the search is not vacuous)
and that no password occurs in it: not as typed, not as the base64 of AUTH PLAIN or AUTH LOGIN.

A second harness signs in with OAuth2 against the lab's authority through the API,
``%smtp_login`` (history on disk), the form's Sign in button, ``smtp-magic login/send/logout``
and a notebook executed and saved, then searches for every access and refresh token issued.
"""

# ruff: noqa: F811  (the certs fixture, imported from tests/hostile.py)

from __future__ import annotations

import atexit
import base64
import contextlib
import dataclasses
import io
import json
import logging
import os
import subprocess
import sys
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from IPython.core.history import HistoryAccessor
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output
from traitlets.config import Config

import smtp_magic.bulk
from smtp_magic import (
    AuthenticationError,
    SecurityMismatchError,
    SendReport,
    Settings,
    SettingsError,
    SMTPMagicError,
    compose,
    probe,
    send,
    send_many,
)
from smtp_magic.lab.server import DEMO_PASSWORD, DEMO_USERNAME, LabServer
from smtp_magic.lab.tokens import StaticTokens
from smtp_magic.report import format_transcript
from smtp_magic.smtp.session import forget_auto_choices
from tests.hostile import certs  # noqa: F401  (a fixture, for the hostile servers below)

SECRET = "Zq8#secret-Pa55w0rd!"  # the account's password: distinctive, and unchanged by escaping
WRONG = "Wx3#wrong-Tr1cky-Pw!"  # a wrong password a user might type: it must not show either
USER = DEMO_USERNAME
SENDER = "analyst@lab.localhost"
TO = "reader@example.org"
WAIT = 30.0  # seconds: generous and bounded


def auth_plain(password: str) -> str:
    """What AUTH PLAIN puts on the wire (RFC 4616): base64 of NUL user NUL password."""
    return base64.b64encode(b"\0" + USER.encode() + b"\0" + password.encode()).decode()


def auth_login(password: str) -> str:
    """What AUTH LOGIN puts on the wire for the password: its base64."""
    return base64.b64encode(password.encode()).decode()


NEEDLES: dict[str, str] = {}
for _name, _password in (("SECRET", SECRET), ("WRONG", WRONG), ("DEMO_PASSWORD", DEMO_PASSWORD)):
    NEEDLES[_name] = _password
    NEEDLES[f"{_name} as AUTH PLAIN"] = auth_plain(_password)
    NEEDLES[f"{_name} as AUTH LOGIN"] = auth_login(_password)
NEEDLES["SECRET, a middle slice"] = SECRET[4:-4]  # catches a shortened or partly masked copy
NEEDLES["WRONG, a middle slice"] = WRONG[4:-4]

# OAuth2 access tokens: a good one, and an expired one the server refuses.
TOKEN = "ya29.Tk9#secret-Access-Token-61f3"
OLD_TOKEN = "ya29.Ex7#expired-Access-Token-0b8e"
TOKEN_USER = "analyst@lab.localhost"
for _name, _token in (("TOKEN", TOKEN), ("OLD_TOKEN", OLD_TOKEN)):
    NEEDLES[_name] = _token
    NEEDLES[f"{_name}, a middle slice"] = _token[5:-4]
    NEEDLES[f"{_name} as XOAUTH2"] = base64.b64encode(
        f"user={TOKEN_USER}\x01auth=Bearer {_token}\x01\x01".encode()
    ).decode()
    NEEDLES[f"{_name} as OAUTHBEARER"] = base64.b64encode(
        f"n,a={TOKEN_USER},\x01auth=Bearer {_token}\x01\x01".encode()
    ).decode()
    NEEDLES[f"{_name} as base64"] = base64.b64encode(_token.encode()).decode()


# -- the corpus ---------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """json.dumps' fallback: bytes as text (ASCII needles survive latin-1), anything else repr."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("latin-1")
    return repr(value)


def text_of(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("latin-1")
    return json.dumps(value, default=_plain)


@dataclass
class Corpus:
    """Everything a user, a notebook file or the history could show, by where it came from."""

    sources: dict[str, str] = field(default_factory=dict)

    def add(self, source: str, *values: Any) -> None:
        text = "\n".join(text_of(v) for v in values)
        previous = self.sources.get(source)
        self.sources[source] = text if previous is None else previous + "\n" + text

    def text(self, prefix: str = "") -> str:
        return "\n".join(t for s, t in self.sources.items() if s.startswith(prefix))


def report_texts(report: SendReport) -> tuple[str, ...]:
    return (
        str(report),
        repr(report),
        report._repr_html_(),
        format_transcript(report.transcript),
        repr(report.transcript),
    )


def locals_text(exc: BaseException) -> str:
    """The chained traceback with the local variables of smtp_magic's frames, as reporters show.

    The test's own frames are left out: they hold what the test holds (a token it was given),
    just as a user's frames hold what the user typed; the promise is about smtp_magic's frames.
    """
    shown = traceback.TracebackException.from_exception(exc, capture_locals=True)
    ours = f"{os.sep}smtp_magic{os.sep}"
    todo: list[Any] = [shown]
    while todo:
        each = todo.pop()
        for frame in each.stack:
            if ours not in frame.filename:
                frame.locals = None
        todo += [e for e in (each.__cause__, each.__context__) if e is not None]
    return "".join(shown.format())


def error_texts(exc: BaseException) -> tuple[str, ...]:
    """What an error shows: str, repr, the full chained traceback, fields and transcript."""
    texts = [str(exc), repr(exc), "".join(traceback.format_exception(exc)), locals_text(exc)]
    if isinstance(exc, SMTPMagicError):
        texts += [
            format_transcript(exc.transcript),
            repr(vars(exc)),
            *exc._render_traceback_(),
        ]
    return tuple(texts)


def expect_error(kind: type[SMTPMagicError], call: Callable[[], object]) -> SMTPMagicError:
    with pytest.raises(kind) as caught:
        call()
    return caught.value


def message(subject: str, to: str = TO) -> EmailMessage:
    return compose(to=to, subject=subject, body="Hello **reader**.", sender=SENDER)


def smtp_env(lab: LabServer, password: str | None = SECRET) -> dict[str, str]:
    """SMTP_* variables pointing at the lab's 587 role, as a user's shell would set them."""
    env = {
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(lab.ports[587]),
        "SMTP_SECURITY": "starttls",
        "SMTP_USERNAME": USER,
        "SMTP_FROM": SENDER,
        "SMTP_CAFILE": lab.cafile,
    }
    if password is not None:
        env["SMTP_PASSWORD"] = password
    return env


def child_env(lab: LabServer, password: str = SECRET) -> dict[str, str]:
    """The environment of a subprocess or kernel: ours without SMTP_*, plus the lab's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMTP_")}
    return {**env, **smtp_env(lab, password)}


# -- the Python API -----------------------------------------------------------------------


def exercise_api(lab: LabServer, corpus: Corpus) -> None:
    starttls = Settings(
        "127.0.0.1",
        port=lab.ports[587],
        security="starttls",
        username=USER,
        password=SECRET,
        sender=SENDER,
        cafile=lab.cafile,
    )
    tls = lab.settings(465)
    assert tls.password == SECRET
    for label, settings in (("587", starttls), ("465", tls)):
        report = send(message(f"API via {label}"), settings)
        assert report.delivered and report.auth_mechanism, report
        corpus.add(f"api: send via {label}", repr(settings), str(settings), *report_texts(report))

    failures: dict[str, tuple[type[SMTPMagicError], Settings]] = {
        "tls against 587": (SecurityMismatchError, dataclasses.replace(starttls, security="tls")),
        "wrong password on 587": (
            AuthenticationError,
            dataclasses.replace(starttls, password=WRONG),
        ),
        "wrong password on 465": (AuthenticationError, dataclasses.replace(tls, password=WRONG)),
    }
    for label, (kind, settings) in failures.items():
        exc = expect_error(kind, lambda s=settings, label=label: send(message(label), s))
        corpus.add(f"api: {label}", repr(settings), *error_texts(exc))

    progress = io.StringIO()
    with contextlib.redirect_stderr(progress):  # the text progress bar
        bulk = send_many([message(f"Bulk {i}", f"r{i}@example.org") for i in range(3)], starttls)
    assert len(bulk.accepted) == 3, bulk
    corpus.add(
        "api: send_many",
        str(bulk),
        repr(bulk),
        bulk._repr_html_(),
        *(str(result) for result in bulk),
        repr(bulk.results),
        repr(bulk.settings),
        progress.getvalue(),
    )
    wrong = dataclasses.replace(starttls, password=WRONG)
    exc = expect_error(
        AuthenticationError, lambda: send_many([message("Bulk, wrong")], wrong, progress=False)
    )
    last = smtp_magic.bulk.last_report
    assert last is not None
    corpus.add(
        "api: send_many with a wrong password", *error_texts(exc), str(last), last._repr_html_()
    )

    found = probe("127.0.0.1", sorted(lab.ports.values()), cafile=lab.cafile)
    corpus.add(
        "api: probe",
        str(found),
        repr(found),
        found._repr_html_(),
        *(format_transcript(port.transcript) for port in found),
    )


def exercise_api_tokens(lab: LabServer, corpus: Corpus) -> None:
    """OAuth2 through the API: a token string, a token function that first hands out an
    expired token, and a refused token; on both roles, and through send_many."""
    handed_out: list[str] = []

    def token() -> str:
        handed_out.append(OLD_TOKEN if not handed_out else TOKEN)
        return handed_out[-1]

    for label, role, value in (("587", 587, TOKEN), ("465, refreshed", 465, token)):
        settings = lab.settings(role, username=TOKEN_USER, token=value)
        report = send(message(f"API with a token via {label}"), settings)
        assert report.auth_mechanism == "OAUTHBEARER", report
        corpus.add(f"api: token via {label}", repr(settings), str(settings), *report_texts(report))
    assert handed_out == [OLD_TOKEN, TOKEN]
    refused = lab.settings(587, username=TOKEN_USER, token=OLD_TOKEN)
    exc = expect_error(AuthenticationError, lambda: send(message("Expired token"), refused))
    corpus.add("api: expired token", repr(refused), *error_texts(exc))
    bulk = send_many(
        [message("Bulk with a token")], lab.settings(587, username=TOKEN_USER, token=TOKEN)
    )
    assert len(bulk.accepted) == 1, bulk
    corpus.add("api: send_many with a token", str(bulk), repr(bulk), bulk._repr_html_())


# -- the command line ---------------------------------------------------------------------


def exercise_cli(lab: LabServer, corpus: Corpus) -> None:
    module = [sys.executable, "-m", "smtp_magic.cli"]
    script = Path(sys.executable).with_name("smtp-magic")  # the installed console script
    installed = [str(script)] if script.exists() else module
    send_it = [*module, "send", "--to", TO, "--subject", "From the CLI"]
    ports = [a for port in sorted(lab.ports.values()) for a in ("--port", str(port))]
    probe_it = [*installed, "probe", "127.0.0.1", *ports, "--cafile", lab.cafile]
    # label -> (command, SMTP_PASSWORD, exit code, words it prints); the body comes from stdin.
    runs: dict[str, tuple[list[str], str, int, str]] = {
        "send": (send_it, SECRET, 0, "Sent"),
        "send --security tls": (
            [*send_it, "--security", "tls"],
            SECRET,
            1,
            "SecurityMismatchError",
        ),
        "send, wrong password": (send_it, WRONG, 1, "AuthenticationError"),
        "probe": (probe_it, SECRET, 0, "Probe of"),
    }
    started = {
        label: subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=child_env(lab, password),
        )
        for label, (command, password, _code, _words) in runs.items()
    }
    try:
        for label, process in started.items():
            out, err = process.communicate("Body from *stdin*.\n", timeout=WAIT)
            _command, _password, code, words = runs[label]
            assert (process.returncode, words in out + err) == (code, True), (label, out, err)
            corpus.add(f"cli: {label}", out, err)
    finally:
        for process in started.values():
            if process.poll() is None:
                process.kill()
                process.wait()


# -- the form -----------------------------------------------------------------------------


def live_widgets() -> dict[str, Any]:
    """Every ipywidgets widget alive in this process, by model id (what a frontend could sync)."""
    from ipywidgets.widgets import widget

    return dict(widget._instances)  # Widget.widgets is the public name, but deprecated


def widget_states(root: Any) -> list[dict[str, Any]]:
    """``get_state()`` of ``root`` and of its children, recursively."""
    states, todo = [], [root]
    while todo:
        widget = todo.pop()
        states.append(widget.get_state())
        todo.extend(getattr(widget, "children", ()))
    return states


def exercise_widget(lab: LabServer, corpus: Corpus) -> None:
    from smtp_magic.notebook.form import SendMailForm

    before = set(live_widgets())
    without_password = dataclasses.replace(lab.settings(587), password=None)
    forms: dict[str, SendMailForm] = {}

    def form(label: str, settings: Settings, subject: str) -> SendMailForm:
        made = forms[label] = SendMailForm(settings, namespace={})
        made.to.value, made.subject.value, made.body.value = TO, subject, "**Hello**"
        return made

    try:
        typed = form("typed password", without_password, "Form, typed password")
        typed.password.set_state({"value": SECRET})  # what the browser sends when one types
        assert typed.password.value == SECRET
        typed.send_button.click()
        assert typed.password.value == ""  # cleared at once
        assert typed.last is not None
        report = typed.last.result(timeout=WAIT)
        assert "Sent" in typed.status.value
        corpus.add("widget: typed password, report", *report_texts(report))

        wrong = form("wrong typed password", without_password, "Form, wrong password")
        wrong.password.set_state({"value": WRONG})
        wrong.send_button.click()
        assert wrong.last is not None
        exc = wrong.last.exception(timeout=WAIT)
        assert isinstance(exc, AuthenticationError), exc
        assert "AuthenticationError" in wrong.status.value
        corpus.add("widget: wrong typed password, error", *error_texts(exc))

        given = form("password from settings", lab.settings(587), "Form, settings password")
        for button in (given.send_button, given.test_button, given.preview_button):
            button.click()
            assert given.last is not None
            given.last.result(timeout=WAIT)
        assert "Preview below" in given.status.value and given.output.outputs

        for label, made in forms.items():
            corpus.add(
                f"widget: {label}",
                repr(made),
                made.status.value,
                made._repr_mimebundle_(),
                made.output.outputs,
                widget_states(made.box),
            )
        created = {k: w for k, w in live_widgets().items() if k not in before}
        assert any(w.get_state().get("_model_name") == "PasswordModel" for w in created.values())
        corpus.add("widget: every widget created", [w.get_state() for w in created.values()])
    finally:
        for made in forms.values():
            made.close()


# -- the magics, in a shell that keeps its history --------------------------------------------


@dataclass
class Cell:
    label: str
    source: str
    shows: str = ""  # words the captured output must contain
    error: type[BaseException] | None = None
    password: str | None = SECRET  # SMTP_PASSWORD while the cell runs (None: unset)


def shell_cells(lab: LabServer) -> list[Cell]:
    ports = " ".join(f"--port {lab.ports[role]}" for role in (587, 465))
    sendmail = f'%%sendmail --to {TO} --subject "{{}}"'
    return [
        Cell("load", "%load_ext smtp_magic"),
        # A verbose traceback would list local variables; ours must not reach one at all.
        Cell("xmode", "%xmode Verbose", "Verbose"),
        Cell("send", sendmail.format("Magic check") + "\nHello from **%%sendmail**.\n", "Sent"),
        Cell("dry run", sendmail.format("Dry") + " --dry-run\nNot sent.\n", "nothing was sent"),
        Cell(
            "wrong mode",
            sendmail.format("Wrong mode") + " --security tls\nNo.\n",
            "SecurityMismatchError",
            SecurityMismatchError,
        ),
        Cell(
            "wrong password",
            sendmail.format("Wrong password") + "\nNo.\n",
            "AuthenticationError",
            AuthenticationError,
            password=WRONG,
        ),
        Cell(
            "password from the prompt",
            sendmail.format("Prompted") + "\nHello.\n",
            "Sent",
            password=None,
        ),
        Cell("probe", f"%smtp_probe 127.0.0.1 {ports} --cafile {lab.cafile}", "Probe of"),
        Cell("recipients", f"recipients = {['a@example.org', 'b@example.org', 'c@example.org']}"),
        Cell(
            "mail merge",
            '%%sendmail --to-each recipients --subject "Merge for {{ to }}"\nHello {{ to }}.\n',
            "accepted",
        ),
        Cell(
            "settings",
            "from smtp_magic import Settings\nsettings = Settings.from_env()\nsettings",
            "Settings(host='127.0.0.1'",
        ),
        Cell("bulk report", "import smtp_magic.bulk\nsmtp_magic.bulk.last_report", "accepted"),
        Cell("config", "%config SendMail", "SendMail"),
        Cell("form", "%sendmail_form", "SendMailForm("),
        Cell("lab start", "%smtp_lab start", "Lab running"),
        Cell("lab status", "%smtp_lab status", f"account: {USER}"),
        Cell("lab send", sendmail.format("Via the magic lab") + "\nHello.\n", "Sent"),
        Cell("lab probe", "%smtp_probe", "Probe of"),
        Cell("lab messages", "%smtp_lab messages", "Via the magic lab"),
        Cell("lab stop", "%smtp_lab stop", "stopped"),
    ]


@contextlib.contextmanager
def history_shell(hist_file: Path) -> Iterator[InteractiveShell]:
    """A real InteractiveShell whose history (inputs and outputs) goes to ``hist_file``."""
    assert not InteractiveShell.initialized(), (
        "another InteractiveShell is alive in this process: the secrets test needs its own, "
        "with history written to a file"
    )
    config = Config()
    config.HistoryAccessor.enabled = True
    config.HistoryManager.hist_file = str(hist_file)
    config.HistoryManager.db_log_output = True  # Out[n] reprs go to the file too
    main = sys.modules["__main__"]  # the shell installs its namespace as __main__
    shell = InteractiveShell.instance(config=config)
    assert shell.history_manager is not None and shell.history_manager.enabled
    formatter = shell.display_formatter
    formatter.active_types = formatter.format_types  # capture text/html, not only text/plain
    try:
        yield shell
    finally:
        with contextlib.suppress(Exception):
            shell.run_line_magic("unload_ext", "smtp_magic")  # stops a lab left running
        shell.atexit_operations()  # ends the history session and closes its database
        atexit.unregister(shell.atexit_operations)
        InteractiveShell.clear_instance()
        sys.modules["__main__"] = main


def exercise_magic(
    lab: LabServer, monkeypatch: pytest.MonkeyPatch, tmp: Path, corpus: Corpus
) -> None:
    import getpass

    hist_file = tmp / "ipython-history.sqlite"
    prompts: list[str] = []

    def answer(prompt: str = "") -> str:  # the user types the password at the prompt
        prompts.append(prompt)
        return SECRET

    monkeypatch.setattr(getpass, "getpass", answer)
    for name, value in smtp_env(lab).items():
        monkeypatch.setenv(name, value)
    before = set(live_widgets())
    with history_shell(hist_file) as shell:
        for cell in shell_cells(lab):
            if cell.password is None:
                monkeypatch.delenv("SMTP_PASSWORD", raising=False)
            else:
                monkeypatch.setenv("SMTP_PASSWORD", cell.password)
            with capture_output() as captured:
                result = shell.run_cell(cell.source, store_history=True)
            outputs = [[o.data, o.metadata] for o in captured.outputs]
            shown = captured.stdout + captured.stderr + text_of(outputs)
            if cell.error is None:
                assert result.success, (cell.label, result.error_in_exec, shown)
            else:
                assert isinstance(result.error_in_exec, cell.error), (cell.label, shown)
                corpus.add(f"magic: {cell.label}, error", *error_texts(result.error_in_exec))
            assert cell.shows in shown, (cell.label, shown)
            corpus.add(f"magic: {cell.label}", captured.stdout, captured.stderr, outputs)
        assert len(prompts) == 1, prompts  # the prompted cell did ask

        manager = shell.history_manager
        assert manager is not None
        manager.writeout_cache()
        session = manager.session_number
        corpus.add(
            "magic: history, this session",
            list(manager.get_range(session, raw=True, output=True)),
            list(manager.get_range(session, raw=False, output=True)),
        )
        reader = HistoryAccessor(hist_file=str(hist_file))
        try:
            stored = list(reader.get_range(session, raw=True, output=True))
            stored += list(reader.get_range(session, raw=False, output=True))
        finally:
            reader.db.close()
        inputs = [entry[2][0] for entry in stored]
        assert any(f'%%sendmail --to {TO} --subject "Magic check"' in i for i in inputs), inputs
        assert any("Settings(host=" in str(entry[2][1]) for entry in stored), stored
        corpus.add("magic: history, read back from the file", stored)

        hidden = set(shell.user_ns_hidden)
        corpus.add(
            "magic: user namespace",
            {name: repr(value) for name, value in shell.user_ns.items() if name not in hidden},
            repr(shell.user_ns.get("_")),
            repr(shell.user_ns.get("Out")),
        )
        created = {k: w for k, w in live_widgets().items() if k not in before}
        corpus.add("magic: every widget created", [w.get_state() for w in created.values()])
        for widget in created.values():
            widget.close()
    # After the shell closed its session: the database file as it stays on disk.
    files = sorted(tmp.glob(hist_file.name + "*"))  # the database and any -journal or -wal
    corpus.add("magic: history file bytes", *(path.read_bytes() for path in files))


# -- a notebook, executed and saved -------------------------------------------------------

NOTEBOOK_CELLS: list[tuple[str, list[str]]] = [
    (
        """\
import dataclasses, os
from smtp_magic import Settings, SMTPMagicError, compose, send
from smtp_magic.report import format_transcript

settings = Settings.from_env()  # the password comes from SMTP_PASSWORD
report = send(compose(to="reader@example.org", subject="From a notebook", body="Hi"), settings)
print(report)
print(format_transcript(report.transcript))
settings""",
        [],
    ),
    ("report", []),
    (
        """\
try:
    send(compose(to="reader@example.org", subject="x", body="x"),
         dataclasses.replace(settings, security="tls"))
except SMTPMagicError as exc:
    print(type(exc).__name__, exc)
    print(format_transcript(exc.transcript))""",
        [],
    ),
    ("%load_ext smtp_magic", []),
    ('%%sendmail --to reader@example.org --subject "Magic in a notebook"\nHello.', []),
    (
        '%%sendmail --to reader@example.org --subject "Wrong mode" --security tls\nHello.',
        ["raises-exception"],
    ),
    (
        """\
from smtp_magic.notebook.form import SendMailForm

form = SendMailForm(dataclasses.replace(settings, password=None), namespace=globals())
form""",
        [],
    ),
    (
        """\
form.to.value, form.subject.value = "reader@example.org", "From the form in a notebook"
form.password.value = os.environ["SMTP_PASSWORD"]  # what typing in the page does
form.send_button.click()
print(form.last.result(timeout=30))
print("password widget empty:", form.password.value == "")""",
        [],
    ),
    ("%sendmail_form", []),
]


def exercise_notebook(lab: LabServer, tmp: Path, corpus: Corpus) -> None:
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook()
    for source, tags in NOTEBOOK_CELLS:
        assert SECRET not in source
        nb.cells.append(nbformat.v4.new_code_cell(source, metadata={"tags": tags}))
    kernel_history = tmp / "kernel-history.sqlite"
    client = NotebookClient(  # store_widget_state keeps its default, True, on purpose
        nb,
        timeout=60,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp)}},
        ipython_hist_file=str(kernel_history),
        extra_arguments=["--HistoryManager.db_log_output=True"],
    )
    assert client.store_widget_state is True
    client.execute(env=child_env(lab))  # the kernel reads SMTP_PASSWORD from its environment
    saved = tmp / "saved.ipynb"
    nbformat.write(nb, saved)

    texts = [text_of(cell.get("outputs", [])) for cell in nb.cells]
    assert "Sent" in texts[0] and "SecurityMismatchError" in texts[2], texts
    assert "SecurityMismatchError" in texts[5] and "password widget empty: True" in texts[7]
    state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    passwords = [m for m in state.values() if m["model_name"] == "PasswordModel"]
    assert [m["state"]["value"] for m in passwords] == ["", ""], passwords
    corpus.add("notebook: saved file", saved.read_bytes())
    files = sorted(tmp.glob(kernel_history.name + "*"))
    assert files and b"%%sendmail" in files[0].read_bytes(), files
    corpus.add("notebook: kernel history file bytes", *(path.read_bytes() for path in files))


class LogLines(logging.Handler):
    """Keeps every record it is handed, formatted with its arguments."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.name} {record.levelname}: {record.getMessage()}")


# -- the harness and the tests --------------------------------------------------------------


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Corpus]:
    """Drive every front end once with SECRET (and WRONG) and collect all they show."""
    tmp = tmp_path_factory.mktemp("secrets")
    found = Corpus()
    with pytest.MonkeyPatch.context() as monkeypatch:
        # The autouse clean_environ fixture is function-scoped: it has not run yet.
        for name in list(os.environ):
            if name.startswith("SMTP_"):
                monkeypatch.delenv(name)
        # No keyring of the machine answers in place of the prompt (nor hangs on a D-Bus call).
        monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")
        forget_auto_choices()
        # Every log record, with the lab's server (aiosmtpd's "mail.log") at its most talkative:
        # a user who turns logging up must not find a password in it either.
        logs = LogLines()
        logging.getLogger().addHandler(logs)
        mail_log = logging.getLogger("mail.log")
        level = mail_log.level
        mail_log.setLevel(logging.DEBUG)
        try:
            tokens = StaticTokens({TOKEN: TOKEN_USER}, expired=[OLD_TOKEN])
            with LabServer(ports={25: 0, 465: 0, 587: 0}, password=SECRET, tokens=tokens) as lab:
                exercise_api(lab, found)
                exercise_api_tokens(lab, found)
                exercise_cli(lab, found)
                exercise_widget(lab, found)
                exercise_magic(lab, monkeypatch, tmp, found)
                exercise_notebook(lab, tmp, found)
                received = lab.messages
                assert len(received) >= 15, len(received)
                found.add(
                    "lab: the messages it received, raw", repr(lab), *(m.raw for m in received)
                )
        finally:
            logging.getLogger().removeHandler(logs)
            mail_log.setLevel(level)
            forget_auto_choices()
        found.add("logs: every record, mail.log at DEBUG", *logs.lines)
    yield found


def test_every_front_end_was_searched(corpus: Corpus) -> None:
    """The corpus holds what each front end shows, so finding nothing in it means something."""
    sources = corpus.sources
    assert sum(len(text) for text in sources.values()) > 100_000
    for front_end in ("api", "cli", "widget", "magic", "notebook", "lab", "logs"):
        assert any(s.startswith(front_end + ":") for s in sources), front_end
    # The login happened and was redacted, in plaintext transcripts and in HTML.
    assert "AUTH PLAIN &lt;redacted&gt;" in corpus.text("api: send via 587")
    assert "AUTH PLAIN <redacted>" in corpus.text("api: wrong password on 465")
    assert "rejected the login" in corpus.text("api: wrong password on 587")
    assert "AUTH OAUTHBEARER <redacted>" in corpus.text("api: token via 587")
    assert "expired or was revoked" in corpus.text("api: expired token")
    assert "token='********'" in corpus.text("api: token via 587")
    assert "AUTH OAUTHBEARER" in corpus.text("logs:")  # the server logged the token logins
    assert "starttls" in corpus.text("api: probe")
    assert "Sent" in corpus.text("cli: send") and "Sent" in corpus.text("widget: typed")
    assert "PasswordModel" in corpus.text("widget: every widget created")
    assert "%%sendmail --to-each recipients" in corpus.text("magic: history file bytes")
    assert "password='********'" in corpus.text("magic: history, read back")  # Out[n] logged
    assert "password='********'" in corpus.text("notebook: saved file")
    assert "account: demo" in corpus.text("magic: lab status")
    assert "AUTH PLAIN" in corpus.text("logs:")  # the server logged the login command
    assert "PasswordModel" in corpus.text("notebook: saved file")
    assert "application/vnd.jupyter.widget-state+json" in corpus.text("notebook: saved file")


def test_no_password_anywhere(corpus: Corpus) -> None:
    """No password, nor its AUTH PLAIN or AUTH LOGIN base64, occurs in anything collected."""
    leaks = []
    for source, text in corpus.sources.items():
        for needle_name, needle in NEEDLES.items():
            count = text.count(needle)
            if count:
                at = text.index(needle)
                context = text[max(at - 80, 0) : at + len(needle) + 80].replace(needle, "«HERE»")
                leaks.append(f"{source}: {needle_name} x{count}, e.g. ...{context!r}...")
    assert not leaks, "passwords leaked:\n" + "\n".join(leaks)


# -- OAuth2 sign-in: issued access and refresh tokens -----------------------------------------
#
# The tokens below are not known in advance: the lab's authority issues them. The harness signs
# in through every front end (API, %smtp_login with history on disk, the form's Sign in button,
# smtp-magic login/send/logout, a notebook executed by nbclient and saved), then searches what
# they showed for every access and refresh token the authorities issued, and the app secret.

OAUTH_NOTEBOOK_CELLS = [
    """\
import json, os
from smtp_magic import LabServer, compose, send
from smtp_magic.auth.microsoft import MicrosoftTokens
from smtp_magic.auth.tokenstore import MemoryStore
from smtp_magic.lab.authority import DEMO_CLIENT_ID, DEMO_USER, OAuthAuthority

authority = OAuthAuthority(robot=DEMO_USER).start()
lab = LabServer(ports={25: 0, 465: 0, 587: 0}, tokens=authority.validator).start()
tokens = MicrosoftTokens(DEMO_CLIENT_ID, username=DEMO_USER, authority=authority.microsoft_authority,
                         cafile=authority.cafile, store=MemoryStore())
tokens.sign_in(interactive=True)""",
    """\
settings = lab.settings(587, username=DEMO_USER, token=tokens)
print(send(compose(to="reader@example.org", subject="Token in a notebook", body="x"), settings))
settings, tokens""",
    """\
%load_ext smtp_magic
%config SendMail.host = "127.0.0.1"
%config SendMail.port = {lab.ports[587]}
%config SendMail.security = "starttls"
%config SendMail.cafile = {lab.cafile!r}
%config SendMail.sender = {DEMO_USER!r}
%smtp_login microsoft --client-id {DEMO_CLIENT_ID} --username {DEMO_USER} --authority {authority.microsoft_authority} --cafile {authority.cafile} --interactive""",
    '%%sendmail --to reader@example.org --subject "Magic with a token"\nHello.',
    """\
from smtp_magic.notebook.form import SendMailForm

form = SendMailForm(lab.settings(587, username=DEMO_USER, token=MicrosoftTokens(
    DEMO_CLIENT_ID, username=DEMO_USER, authority=authority.microsoft_authority,
    cafile=authority.cafile, store=MemoryStore())))
form.signin_button.click()
print(form.last.result(timeout=30))
form.to.value, form.subject.value = "reader@example.org", "Form with a token"
form.send_button.click()
print(form.last.result(timeout=30))
form""",
    "stale = tokens()\nauthority.expire(stale)\nsend(compose(to='r@example.org', subject='x', body='x'), lab.settings(587, username=DEMO_USER, token=stale))",
]


def _issued(authority: Any) -> list[str]:
    found = []
    for record in authority.tokens():
        found.append(record.access_token)
        if record.refresh_token:
            found.append(record.refresh_token)
    return found


def oauth_needles(tokens: list[str], user: str) -> dict[str, str]:
    needles: dict[str, str] = {}
    for number, token in enumerate(tokens):
        needles[f"issued token {number}"] = token
        needles[f"issued token {number}, a middle slice"] = token[8:-8]
        needles[f"issued token {number} as XOAUTH2"] = base64.b64encode(
            f"user={user}\x01auth=Bearer {token}\x01\x01".encode()
        ).decode()
    return needles


def exercise_oauth_notebook(tmp: Path, corpus: Corpus) -> list[str]:
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook()
    for source in OAUTH_NOTEBOOK_CELLS:
        nb.cells.append(nbformat.v4.new_code_cell(source))
    nb.cells[-1].metadata["tags"] = ["raises-exception"]
    issued = tmp / "issued.json"
    # The last cell only records what the kernel's authority issued, for the search; it prints
    # nothing and is dropped before the notebook is saved.
    nb.cells.append(
        nbformat.v4.new_code_cell(
            "json.dump([t for r in authority.tokens() for t in (r.access_token, r.refresh_token)"
            f" if t], open({str(issued)!r}, 'w'))"
        )
    )
    history = tmp / "oauth-kernel-history.sqlite"
    client = NotebookClient(
        nb,
        timeout=60,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp)}},
        ipython_hist_file=str(history),
        extra_arguments=["--HistoryManager.db_log_output=True"],
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMTP_")}
    env["PYTHON_KEYRING_BACKEND"] = "keyring.backends.null.Keyring"
    client.execute(env=env)
    nb.cells.pop()
    texts = [text_of(cell.get("outputs", [])) for cell in nb.cells]
    assert "enter the code" in texts[0] and "OAUTHBEARER" in texts[1], texts[:2]
    assert "Signed in to Microsoft" in texts[2] and "Sent" in texts[4], texts[2:5]
    assert "expired or was revoked" in texts[5], texts[5]
    saved = tmp / "oauth-saved.ipynb"
    nbformat.write(nb, saved)
    corpus.add("notebook: saved file", saved.read_bytes())
    corpus.add("notebook: kernel history", *(p.read_bytes() for p in tmp.glob(history.name + "*")))
    return list(json.loads(issued.read_text()))


def exercise_oauth_front_ends(authority: Any, lab: LabServer, tmp: Path, corpus: Corpus) -> None:
    from smtp_magic.auth.microsoft import MicrosoftTokens
    from smtp_magic.auth.tokenstore import MemoryStore
    from smtp_magic.cli import main
    from smtp_magic.lab.authority import DEMO_CLIENT_ID, DEMO_USER
    from smtp_magic.notebook.form import SendMailForm

    lab_args = ["--authority", authority.microsoft_authority, "--cafile", authority.cafile]
    # The API: sign in, send, an expired token string, a revoked sign-in later.
    shown: list[Any] = []
    tokens = MicrosoftTokens(
        DEMO_CLIENT_ID, username=DEMO_USER, authority=authority.microsoft_authority,
        cafile=authority.cafile, store=MemoryStore(),
    )  # fmt: skip
    tokens.sign_in(shown.append, interactive=True)
    settings = lab.settings(587, username=DEMO_USER, token=tokens)
    report = send(message("API with a signed-in token"), settings)
    corpus.add("api: oauth sign-in", repr(tokens), repr(settings), shown, *report_texts(report))
    stale = tokens()
    authority.expire(stale)
    exc = expect_error(
        AuthenticationError,
        lambda: send(message("stale"), lab.settings(587, username=DEMO_USER, token=stale)),
    )
    corpus.add("api: oauth expired string", *error_texts(exc))

    # The magic, with its history in a file.
    with history_shell(tmp / "oauth-history.sqlite") as shell, capture_output() as captured:
        shell.run_line_magic("load_ext", "smtp_magic")
        for line in (
            "SendMail.host = '127.0.0.1'",
            f"SendMail.port = {lab.ports[587]}",
            "SendMail.security = 'starttls'",
            f"SendMail.cafile = {lab.cafile!r}",
            f"SendMail.sender = {DEMO_USER!r}",
        ):
            shell.run_cell(f"%config {line}", store_history=True)
        login = " ".join(["microsoft", "--client-id", DEMO_CLIENT_ID, "--username", DEMO_USER,
                          *lab_args, "--interactive"])  # fmt: skip
        assert shell.run_cell(f"%smtp_login {login}", store_history=True).success
        cell = '%%sendmail --to reader@example.org --subject "Magic, token"\nHello.'
        assert shell.run_cell(cell, store_history=True).success
        shell.run_cell("_ = get_ipython().configurables", store_history=True)
        assert shell.run_cell("%smtp_logout", store_history=True).success
    corpus.add("magic: oauth outputs", captured.stdout, captured.stderr,
               *(o.data for o in captured.outputs))  # fmt: skip
    files = sorted(tmp.glob("oauth-history.sqlite*"))
    assert files and b"smtp_login" in files[0].read_bytes(), files
    corpus.add("magic: oauth history file bytes", *(p.read_bytes() for p in files))

    # The form's Sign in button.
    before = set(live_widgets())
    provider = MicrosoftTokens(
        DEMO_CLIENT_ID, username=DEMO_USER, authority=authority.microsoft_authority,
        cafile=authority.cafile, store=MemoryStore(),
    )  # fmt: skip
    form = SendMailForm(lab.settings(587, username=DEMO_USER, token=provider))
    statuses: list[str] = []
    form.status.observe(lambda change: statuses.append(change["new"]), "value")
    form.signin_button.click()
    assert form.last is not None and form.last.result(timeout=WAIT) == DEMO_USER
    form.to.value, form.subject.value = TO, "Form, token"
    form.send_button.click()
    corpus.add("widget: oauth form", repr(form), statuses, str(form.last.result(timeout=WAIT)))
    made = {k: w for k, w in live_widgets().items() if k not in before}
    corpus.add("widget: oauth every widget created", [w.get_state() for w in made.values()])
    form.close()

    # The command line (in process: the keyring is this process's memory backend).
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err):
        common = ["--client-id", DEMO_CLIENT_ID, "--username", DEMO_USER, *lab_args]
        assert main(["login", "microsoft", *common, "--interactive"], out=out) == 0
        assert main(["send", "--to", TO, "--subject", "CLI, token", "--body", "b",
                     "--host", "127.0.0.1", "--port", str(lab.ports[587]), "--security",
                     "starttls", "--cafile", lab.cafile, "--user", DEMO_USER, "--from", DEMO_USER,
                     "--oauth", "microsoft", "--client-id", DEMO_CLIENT_ID, "--authority",
                     authority.microsoft_authority, "--oauth-cafile", authority.cafile],
                    out=out) == 0  # fmt: skip
        with contextlib.redirect_stdout(out):
            sys.stdin, saved_stdin = io.StringIO("lab-app-secret-5521\n"), sys.stdin
            try:
                app = ["--client-id", "lab-unattended-app", "--username", DEMO_USER, *lab_args]
                assert main(["login", "microsoft", *app, "--client-credentials",
                             "--client-secret-stdin"], out=out) == 0  # fmt: skip
            finally:
                sys.stdin = saved_stdin
        assert main(["logout", "microsoft", *common], out=out) == 0
    corpus.add("cli: oauth login, send, logout", out.getvalue(), err.getvalue())

    # Last: an administrator revokes every session; the next send says to sign in again.
    authority.revoke_user(DEMO_USER)
    with authority.store.lock:
        authority.store.refresh.clear()
    tokens.invalidate()
    from smtp_magic import SignInError

    exc = expect_error(SignInError, lambda: send(message("revoked"), settings))
    corpus.add("api: oauth revoked sign-in", *error_texts(exc))


@pytest.fixture(scope="module")
def oauth_corpus(
    corpus: Corpus, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Corpus, dict[str, str]]]:
    """Sign in everywhere against the lab's authority; the corpus, and the needles to look for."""
    from smtp_magic.lab.authority import DEMO_USER
    from tests.oauthhelpers import APP_SECRET, lab_authority, memory_keyring

    tmp = tmp_path_factory.mktemp("oauth-secrets")
    found = Corpus()
    logs = LogLines()
    logging.getLogger().addHandler(logs)
    vault = memory_keyring()
    backend = next(vault)
    stored: list[str] = []
    try:
        with (
            lab_authority() as authority,
            LabServer(ports={25: 0, 465: 0, 587: 0}, tokens=authority.validator) as lab,
        ):
            exercise_oauth_front_ends(authority, lab, tmp, found)
            stored = list(backend.passwords.values())  # what keyring held (not searched)
            issued = _issued(authority) + exercise_oauth_notebook(tmp, found)
            found.add("lab: oauth messages, raw", repr(lab), *(m.raw for m in lab.messages))
    finally:
        logging.getLogger().removeHandler(logs)
        next(vault, None)
    found.add("logs: every record", *logs.lines)
    assert len(issued) >= 10, issued  # sign-ins, refreshes and rotations really happened
    # The needles are the real strings: keyring (where they belong) holds some of them.
    assert any(token in value for value in stored for token in issued)
    needles = oauth_needles(issued, DEMO_USER)
    needles["the app's client secret"] = APP_SECRET
    yield found, needles


def test_oauth_front_ends_were_searched(oauth_corpus: tuple[Corpus, dict[str, str]]) -> None:
    found, _needles = oauth_corpus
    assert "AUTH OAUTHBEARER" in found.text("api: oauth sign-in")
    assert "enter the code" in found.text("magic: oauth outputs")
    assert "Signed in</b> as" in found.text("widget: oauth form")
    assert "Signed in as" in found.text("cli: oauth")
    assert "smtp_login" in found.text("magic: oauth history file bytes")
    assert "Magic with a token" in found.text("notebook: saved file")
    assert "expired or was revoked" in found.text("api: oauth expired string")
    assert "smtp-magic login microsoft" in found.text("api: oauth revoked sign-in")


def test_no_oauth_token_anywhere(oauth_corpus: tuple[Corpus, dict[str, str]]) -> None:
    """No issued access or refresh token, nor its XOAUTH2 base64, nor the app secret, shows."""
    found, needles = oauth_corpus
    leaks = [
        f"{source}: {name}"
        for source, text in found.sources.items()
        for name, needle in needles.items()
        if needle in text
    ]
    assert not leaks, "tokens leaked:\n" + "\n".join(leaks)


# -- issue 11: tracebacks that show locals, %xmode Verbose, servers that echo, non-ASCII ------------
#
# These drive hostile servers (tests/hostile.py) and the lab directly, so each one names the way a
# password could escape: a frame's locals, an expression IPython's verbose traceback evaluates,
# a server that repeats the AUTH payload back, an encoding that fails with the password in it.

UNICODE = "p\u00e4ssw\u00f6rd-\u00dcn\u00ef-\u5bc6\u7801"  # a non-ASCII password (RFC 4616: UTF-8)


def forms_of(password: str, user: str = USER) -> dict[str, str]:
    """Every form the password takes on the wire: raw, and base64 of each AUTH payload."""
    raw = password.encode("utf-8")
    return {
        "raw": password,
        "AUTH PLAIN": base64.b64encode(b"\0" + user.encode() + b"\0" + raw).decode(),
        "AUTH LOGIN": base64.b64encode(raw).decode(),
    }


def assert_hidden(password: str, *texts: str, user: str = USER) -> None:
    for text in texts:
        for form, needle in forms_of(password, user).items():
            assert needle not in text, f"the password ({form}) shows in: {text[:2000]}"


@contextlib.contextmanager
def interrupt_when(condition: Callable[[], bool]) -> Iterator[None]:
    """Press Ctrl-C (SIGINT to this process) once ``condition()`` holds, from another thread."""
    import signal
    import threading
    import time

    done = threading.Event()

    def watch() -> None:
        deadline = time.monotonic() + WAIT
        while not done.is_set() and time.monotonic() < deadline:
            if condition():
                os.kill(os.getpid(), signal.SIGINT)
                return
            time.sleep(0.02)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        yield
    finally:
        done.set()
        watcher.join()


def stalled_login_server(certs: Any) -> Any:
    """A STARTTLS server that takes the AUTH command and then says nothing (a slow login)."""
    from tests.hostile import Dialog, scripted, stall

    return scripted(Dialog(tls=certs.server_context(), replies={"AUTH": stall}))


def slow_login_settings(port: int, certs: Any) -> Settings:
    return Settings(
        "127.0.0.1",
        port=port,
        security="starttls",
        username=USER,
        password=SECRET,
        sender=SENDER,
        cafile=certs.cafile,
        timeout=WAIT,
    )


def test_tracebacks_with_locals_show_no_password(
    certs: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """capture_locals=True (pytest --showlocals, rich, Sentry) on each way a send can end."""
    caught: dict[str, BaseException] = {}
    with LabServer(ports={25: 0, 465: 0, 587: 0}, password=SECRET) as lab:
        for role in (587, 465):
            wrong = dataclasses.replace(lab.settings(role), password=WRONG)
            caught[f"wrong password on {role}"] = expect_error(
                AuthenticationError, lambda s=wrong: send(message("x"), s)
            )
    with stalled_login_server(certs) as server:
        settings = slow_login_settings(server.port, certs)
        with (
            pytest.raises(KeyboardInterrupt) as interrupted,
            interrupt_when(lambda: "AUTH" in server.verbs()),
        ):
            send(message("interrupted"), settings)
        caught["Ctrl-C during the login"] = interrupted.value
    monkeypatch.setenv("SMTP_PASSWORD", SECRET)
    monkeypatch.setenv("SMTP_USERNAME", USER)
    for variable, value in (("SMTP_TIMEOUT", "soon"), ("SMTP_SECURITY", "ssl")):
        with monkeypatch.context() as env:
            env.setenv(variable, value)
            caught[f"bad {variable}"] = expect_error(SettingsError, Settings.from_env)
    for label, exc in caught.items():
        text = locals_text(exc)
        assert "Locals" in text or " = " in text, label  # locals really were captured
        assert_hidden(SECRET, text)
        assert_hidden(WRONG, text)


def test_xmode_verbose_interrupting_a_slow_login_shows_no_password(certs: Any) -> None:
    """In a real shell with %xmode Verbose, Ctrl-C during the login prints every frame's values,
    including expressions such as ``settings.password`` in the line being run."""
    assert not InteractiveShell.initialized(), "this test needs its own InteractiveShell"
    main = sys.modules["__main__"]
    shell = InteractiveShell.instance()
    try:
        with stalled_login_server(certs) as server:
            shell.user_ns["settings"] = slow_login_settings(server.port, certs)
            shell.user_ns["message"] = message("verbose")
            with capture_output() as captured:
                assert shell.run_cell("%xmode Verbose").success
                with interrupt_when(lambda: "AUTH" in server.verbs()):
                    result = shell.run_cell("from smtp_magic import send\nsend(message, settings)")
        shown = captured.stdout + captured.stderr
        assert isinstance(result.error_in_exec, KeyboardInterrupt), shown
        assert "settings.password" in shown and "login" in shown  # the verbose frames were shown
        assert_hidden(SECRET, shown, repr(shell.user_ns.get("_")))
    finally:
        atexit.unregister(shell.atexit_operations)
        InteractiveShell.clear_instance()
        sys.modules["__main__"] = main


def echo_auth(peer: Any, line: str) -> bool:
    """A server that repeats every AUTH payload back in its 535, raw and as base64."""
    words = line.split()
    payloads = [words[2]] if len(words) > 2 else []
    if len(words) == 2 and words[1].upper() == "LOGIN":
        for prompt in (b"Username:", b"Password:"):
            peer.reply("334 " + base64.b64encode(prompt).decode())
            payloads.append((peer.readline() or "").strip())
    elif len(words) == 2:
        peer.reply("334 ")
        payloads.append((peer.readline() or "").strip())
    decoded = b" ".join(base64.b64decode(p + "==") for p in payloads)
    peer.send(b"535 5.7.8 rejected " + " ".join(payloads).encode() + b" = " + decoded + b"\r\n")
    return False


@pytest.mark.parametrize("mechanisms", ["AUTH PLAIN LOGIN", "AUTH LOGIN"])
@pytest.mark.parametrize("password", [SECRET, UNICODE], ids=["ascii", "unicode"])
def test_a_server_echoing_the_auth_payload_is_redacted(
    certs: Any, mechanisms: str, password: str
) -> None:
    from smtp_magic.notebook.form import SendMailForm
    from tests.hostile import Dialog, scripted

    dialog = Dialog(
        tls=certs.server_context(),
        tls_extensions=("PIPELINING", mechanisms),
        replies={"AUTH": echo_auth},
    )
    with scripted(dialog) as server:
        settings = dataclasses.replace(
            slow_login_settings(server.port, certs), password=password, timeout=5.0
        )
        exc = expect_error(AuthenticationError, lambda: send(message("echo"), settings))
        form = SendMailForm(settings, namespace={})
        try:
            form.to.value, form.subject.value, form.body.value = TO, "echo", "x"
            form.send_button.click()
            assert form.last is not None
            assert isinstance(form.last.exception(timeout=WAIT), AuthenticationError)
            status = form.status.value
        finally:
            form.close()
    assert "535" in str(exc) and "rejected" in str(exc) and "535" in status
    assert "<redacted>" in str(exc)  # the echo was there, and was redacted
    assert_hidden(password, *error_texts(exc), status, text_of(vars(exc)))


def test_a_non_ascii_password_logs_in_over_tls() -> None:
    """RFC 4616 PLAIN and LOGIN carry UTF-8: a password such as 'pässwörd' logs in to the lab."""
    with LabServer(ports={25: 0, 465: 0, 587: 0}, password=UNICODE) as lab:
        for role in (587, 465):
            report = send(message(f"unicode via {role}"), lab.settings(role))
            assert report.auth_mechanism == "PLAIN" and report.tls is not None
            assert_hidden(UNICODE, *report_texts(report))
        wrong = dataclasses.replace(lab.settings(587), password=UNICODE[::-1])
        exc = expect_error(AuthenticationError, lambda: send(message("wrong"), wrong))
        assert "rejected the login" in str(exc)  # the server's refusal, not an encoding error
        assert_hidden(UNICODE[::-1], *error_texts(exc))
        assert exc.__cause__ is None or UNICODE[::-1] not in repr(exc.__cause__.args)


def test_a_non_ascii_password_logs_in_with_auth_login(certs: Any) -> None:
    from aiosmtpd.smtp import AuthResult

    from tests.hostile import AioServer

    seen: list[bytes] = []

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
        seen.append(data.password)
        return AuthResult(success=data.password == UNICODE.encode("utf-8"))

    with AioServer(
        tls_context=certs.server_context(),
        authenticator=authenticator,
        auth_exclude_mechanism=["PLAIN"],
    ) as server:
        settings = dataclasses.replace(
            slow_login_settings(server.port, certs), password=UNICODE, timeout=5.0
        )
        report = send(message("unicode LOGIN"), settings)
    assert report.auth_mechanism == "LOGIN" and seen == [UNICODE.encode("utf-8")]
    assert_hidden(UNICODE, *report_texts(report))
