"""Tests for smtp_magic.notebook.magic: %%sendmail and friends in a real IPython shell, against the lab.

Sending behaviours run twice through one parametrised fixture (``mail``): once through the
Python API (``send(compose(...), settings)``) and once through ``%%sendmail``, and assert on what
the lab received. No mocks: real TCP, real TLS, a real InteractiveShell.
"""

from __future__ import annotations

import io
import re
import shlex
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.image
import matplotlib.pyplot as plt
import pandas as pd
import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output
from traitlets.config import Config

from smtp_magic import ComposeError, SecurityMismatchError, compose, send
from smtp_magic.lab.server import DEMO_PASSWORD, LabServer
from smtp_magic.notebook.magic import PASSWORD_REFUSED, SendMail, active_settings

SENDER = "analyst@lab.localhost"


# -- the shell --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def session_ip() -> Iterator[InteractiveShell]:
    """A real InteractiveShell for this module, cleared afterwards.

    Not ``globalipapp.start_ipython()``: its shell lives for the whole pytest process, so
    ``get_ipython()`` would stay non-None in later test modules, which then format displays
    with this shell's formatter. History is off (jupysql's TestingShell does the same).
    """
    if InteractiveShell.initialized():  # another module's shell: share it, leave it be
        yield InteractiveShell.instance()
        return
    config = Config()
    config.HistoryAccessor.enabled = False
    main = sys.modules["__main__"]  # the shell installs its namespace as __main__
    shell = InteractiveShell.instance(config=config)
    try:
        yield shell
    finally:
        InteractiveShell.clear_instance()
        sys.modules["__main__"] = main


@pytest.fixture
def ip(session_ip: InteractiveShell) -> Iterator[InteractiveShell]:
    """The shell with ``%load_ext smtp_magic``, showing HTML too; unloaded and reset after."""
    formatter = session_ip.display_formatter
    saved = formatter.active_types
    formatter.active_types = formatter.format_types  # capture text/html, not only text/plain
    session_ip.run_line_magic("load_ext", "smtp_magic")
    yield session_ip
    session_ip.run_line_magic("unload_ext", "smtp_magic")
    # What %reset -f does for the namespace, without its two gc.collect() calls, which cost
    # about half a second each in a pytest process holding pandas and matplotlib.
    for name in set(session_ip.user_ns) - set(session_ip.user_ns_hidden):
        del session_ip.user_ns[name]
    session_ip.config.pop("SendMail", None)  # %config also writes into the shell's config
    formatter.active_types = saved
    plt.close("all")


def defaults_of(ip: InteractiveShell) -> SendMail:
    [found] = [c for c in ip.configurables if isinstance(c, SendMail)]
    return found


def sendmail(ip: InteractiveShell, line: str, body: str = "Hello.\n") -> Any:
    """Run a %%sendmail cell; re-raises its errors (as jupysql's TestingShell does)."""
    return ip.run_cell_magic("sendmail", line, body)


@pytest.fixture
def lab_env(clean_lab: LabServer, monkeypatch: pytest.MonkeyPatch) -> LabServer:
    """SMTP_* variables that point at the session lab's 587 role, as a user's shell would."""
    for name, value in {
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(clean_lab.ports[587]),
        "SMTP_SECURITY": "starttls",
        "SMTP_USERNAME": clean_lab.username,
        "SMTP_PASSWORD": clean_lab.password,
        "SMTP_FROM": SENDER,
        "SMTP_CAFILE": clean_lab.cafile,
    }.items():
        monkeypatch.setenv(name, value)
    return clean_lab


# -- one behaviour, two front ends ------------------------------------------------------------


@dataclass
class Mailer:
    """Sends one message through the API or the magic; ``received()`` is what the lab got."""

    via: str
    ip: InteractiveShell
    lab: LabServer

    def __call__(
        self,
        *,
        to: str,
        subject: str,
        body: str,
        attach: Sequence[str] = (),
        format: str = "markdown",
        template: bool = False,
    ) -> None:
        ns = self.ip.user_ns
        if self.via == "api":
            attachments = [(name, ns[name]) if name in ns else Path(name) for name in attach]
            message = compose(
                to=to,
                subject=subject,
                body=body,
                sender=SENDER,
                attachments=attachments,
                format=format,  # type: ignore[arg-type]
                template_vars=ns if template else None,
            )
            send(message, self.lab.settings(587))
        else:
            argv = ["--to", to, "--subject", subject, "--format", format, "--quiet"]
            for name in attach:
                argv += ["--attach", name]
            if template:
                argv.append("--template")
            sendmail(self.ip, shlex.join(argv), body)

    def received(self) -> EmailMessage:
        [received] = self.lab.wait_for_messages(1)
        return received.message


@pytest.fixture(params=["api", "magic"])
def mail(request: pytest.FixtureRequest, ip: InteractiveShell, lab_env: LabServer) -> Mailer:
    return Mailer(request.param, ip, lab_env)


def parts(message: EmailMessage) -> list[str]:
    return [part.get_content_type() for part in message.walk()]


def html_of(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("html",))
    assert body is not None
    return body.get_content()


def attachment(message: EmailMessage, filename: str) -> EmailMessage:
    found = [p for p in message.iter_attachments() if p.get_filename() == filename]
    assert found, [p.get_filename() for p in message.iter_attachments()]
    return found[0]


@pytest.fixture
def table() -> pd.DataFrame:
    return pd.DataFrame({"region": ["North", "Süd", "East"], "sales": [12.5, 7.25, 3.0]})


@pytest.fixture
def figure() -> Any:
    fig, ax = plt.subplots(figsize=(2, 1.5))
    ax.plot([1, 2, 3], [3, 1, 2])
    return fig


def assert_png_inline(message: EmailMessage) -> None:
    """Every cid: in the HTML names an image/png part of the message, and it decodes."""
    cids = re.findall(r'src="cid:([^"]+)"', html_of(message))
    assert cids
    images = {
        str(p["Content-ID"]).strip("<>"): p for p in message.walk() if p["Content-ID"] is not None
    }
    for cid in cids:
        part = images[cid]
        assert part.get_content_type() == "image/png"
        pixels = matplotlib.image.imread(io.BytesIO(part.get_content()), format="png")
        assert pixels.shape[0] > 10


def test_markdown_body_becomes_text_and_html(mail: Mailer) -> None:
    mail(to="team@example.org", subject="Numbers", body="Sales are **up**.\n")
    message = mail.received()
    assert parts(message) == ["multipart/alternative", "text/plain", "text/html"]
    assert "Sales are **up**." in message.get_body(preferencelist=("plain",)).get_content()
    assert "<strong>up</strong>" in html_of(message)
    assert message["From"].addresses[0].addr_spec == SENDER


@pytest.mark.parametrize(
    ("format", "expected"),
    [
        ("html", ["multipart/alternative", "text/plain", "text/html"]),
        ("text", ["text/plain"]),
    ],
)
def test_html_and_text_formats(mail: Mailer, format: str, expected: list[str]) -> None:
    mail(to="team@example.org", subject="F", body="<p>Price: <b>$5</b></p>", format=format)
    message = mail.received()
    assert parts(message) == expected
    plain = message.get_body(preferencelist=("plain",)).get_content()
    assert (
        ("Price: $5" in plain) if format == "html" else (plain.strip() == "<p>Price: <b>$5</b></p>")
    )


def test_dataframe_is_a_table_and_a_csv_that_round_trips(mail: Mailer, table: pd.DataFrame) -> None:
    mail.ip.user_ns["sales"] = table
    mail(to="team@example.org", subject="Sales", body="The table:", attach=["sales"])
    message = mail.received()
    assert "<table" in html_of(message) and "Süd" in html_of(message)
    csv = attachment(message, "sales.csv")
    assert csv.get_content_type() == "text/csv"
    pd.testing.assert_frame_equal(pd.read_csv(io.StringIO(csv.get_content())), table)


def test_figure_is_an_inline_png_whose_cid_resolves(mail: Mailer, figure: Any) -> None:
    mail.ip.user_ns["fig"] = figure
    mail(to="team@example.org", subject="Plot", body="The plot:", attach=["fig"])
    message = mail.received()
    assert "multipart/related" in parts(message)
    assert_png_inline(message)


def test_a_styler_and_a_figure_arrive_inbox_safe(mail: Mailer, figure: Any) -> None:
    frame = pd.DataFrame({"item": ["a", "b"], "delta": [1.5, -2.0]})
    styler = frame.style.map(lambda v: "color: #b00020" if v < 0 else "", subset=["delta"])
    mail.ip.user_ns.update(deltas=styler, fig=figure)
    mail(
        to="team@example.org",
        subject="Inbox",
        body="# Deltas\n\n{{ deltas }}\n\n{{ fig }}\n",
        template=True,
    )
    message = mail.received()
    html = html_of(message)
    # Nothing depends on a <style> block or a class: Gmail and Outlook drop or ignore them.
    assert "<style" not in html and "class=" not in html and '<meta charset="utf-8">' in html
    assert re.search(r'<td style="[^"]*color:#b00020[^"]*">-2.000000</td>', html)
    assert re.search(
        r'<img src="cid:[^"]+" alt="figure: fig.png" [^>]*width="\d+" height="\d+"', html
    )
    plain = message.get_body(preferencelist=("plain",)).get_content()
    assert "   item      delta\n0  a      1.500000\n1  b     -2.000000\n" in plain


def test_file_by_path_gets_its_mime_type(mail: Mailer, tmp_path: Path) -> None:
    path = tmp_path / "summary.pdf"
    path.write_bytes(b"%PDF-1.4\n% not a real PDF, but its type comes from the name\n")
    mail(to="team@example.org", subject="File", body="Attached.", attach=[str(path)])
    part = attachment(mail.received(), "summary.pdf")
    assert part.get_content_type() == "application/pdf"
    assert part.get_content() == path.read_bytes()


def test_template_shows_notebook_variables(mail: Mailer, table: pd.DataFrame, figure: Any) -> None:
    mail.ip.user_ns.update(sales=table, fig=figure, month="May")
    mail(
        to="team@example.org",
        subject="Sales for {{ month }}",
        body="# {{ month }}\n\n{{ sales }}\n\n{{ fig }}\n",
        template=True,
    )
    message = mail.received()
    assert message["Subject"] == "Sales for May"
    assert "<table" in html_of(message) and "<h1>May</h1>" in html_of(message)
    assert_png_inline(message)


def test_non_ascii_subject_names_and_file_names_round_trip(mail: Mailer, tmp_path: Path) -> None:
    path = tmp_path / "Übersicht März.txt"
    path.write_text("Grüße\n", encoding="utf-8")
    subject = "Grüße: Umsatz März ✓ 日本"
    mail(
        to="Jürgen Müller <jm@example.org>",
        subject=subject,
        body="Schöne Grüße",
        attach=[str(path)],
    )
    message = mail.received()
    assert message["Subject"] == subject
    [address] = message["To"].addresses
    assert (address.display_name, address.addr_spec) == ("Jürgen Müller", "jm@example.org")
    assert attachment(message, "Übersicht März.txt").get_content() == "Grüße\n"


def test_a_line_break_in_a_rendered_subject_is_refused_and_nothing_sent(mail: Mailer) -> None:
    mail.ip.user_ns["title"] = "Hello\nBcc: victim@example.net"
    with pytest.raises(ComposeError, match="line break"):
        mail(to="team@example.org", subject="{{ title }}", body="Hi", template=True)
    assert mail.lab.messages == []
    assert sum(mail.lab.connections.values()) == 0


def test_an_undefined_template_variable_is_named(mail: Mailer) -> None:
    with pytest.raises(ComposeError, match=r"\{\{ revenue \}\}, which is not defined"):
        mail(to="team@example.org", subject="Hi", body="We made {{ revenue }}.", template=True)
    assert mail.lab.messages == []


# -- %%sendmail: the line ---------------------------------------------------------------------


def test_quoted_values_arrive_exactly_and_dollars_and_braces_stay(ip, lab_env) -> None:
    ip.user_ns.update(x="EXPANDED", month="EXPANDED")
    sendmail(ip, '--to a@example.org --subject "Weekly numbers" --quiet')
    sendmail(ip, "--to a@example.org --subject 'Costs $5 more, {x} and $x' --quiet")
    sendmail(ip, '--to a@example.org --subject "Sales {{ month }}" --quiet')
    subjects = [m.message["Subject"] for m in lab_env.wait_for_messages(3)]
    assert subjects == ["Weekly numbers", "Costs $5 more, {x} and $x", "Sales {{ month }}"]


def test_recipients_repeat_and_accept_comma_lists_and_bcc_stays_hidden(ip, lab_env) -> None:
    sendmail(
        ip,
        "--to 'a@example.org, Bob <b@example.org>' --to c@example.org "
        "--cc d@example.org --bcc secret@example.org --reply-to r@example.org --quiet",
    )
    [received] = lab_env.wait_for_messages(1)
    assert set(received.rcpt_tos) == {f"{x}@example.org" for x in "abcd"} | {"secret@example.org"}
    assert received.message["Bcc"] is None
    assert b"secret@example.org" not in received.raw
    assert len(received.message["To"].addresses) == 3
    assert str(received.message["Reply-To"]) == "r@example.org"


def test_from_option_sets_the_sender(ip, lab_env) -> None:
    sendmail(ip, "--to a@example.org --from 'Ana Lyst <ana@example.org>' --quiet")
    [received] = lab_env.wait_for_messages(1)
    assert received.mail_from == "ana@example.org"
    assert str(received.message["From"]) == "Ana Lyst <ana@example.org>"


def test_report_is_displayed_with_the_security_used_and_nothing_returned(ip, lab_env) -> None:
    with capture_output() as captured:
        result = sendmail(ip, "--to a@example.org --subject Report")
    assert result is None  # one display, no Out[] repr
    [output] = captured.outputs
    assert "starttls" in output.data["text/html"]
    text = output.data["text/plain"]
    assert text.startswith("Sent:") and "Security" in text and "starttls" in text
    assert DEMO_PASSWORD not in text + output.data["text/html"]


def test_quiet_displays_nothing_but_sends(ip, lab_env) -> None:
    with capture_output() as captured:
        sendmail(ip, "--to a@example.org --quiet")
    assert captured.outputs == [] and captured.stdout == ""
    assert len(lab_env.wait_for_messages(1)) == 1


def test_dry_run_shows_the_preview_and_needs_no_network_or_password(ip, clean_lab) -> None:
    ip.user_ns["df"] = pd.DataFrame({"a": [1, 2]})
    with capture_output() as captured:
        sendmail(
            ip,
            "--to a@example.org --subject 'Dry' --attach df --dry-run "
            "--host unreachable.invalid --port 9 --user somebody",
        )
    [output] = captured.outputs
    assert output.data["text/plain"].startswith("Dry run: nothing was sent.")
    assert "Subject: Dry" in output.data["text/plain"]
    assert "df.csv" in output.data["text/plain"]
    assert "<iframe sandbox" in output.data["text/html"]
    assert clean_lab.messages == [] and sum(clean_lab.connections.values()) == 0


@pytest.mark.parametrize(
    "option",
    [
        "--password hunter2",
        "--password=hunter2",
        "--pass hunter2",
        "--passwd=hunter2",
        "-p hunter2",
        "-phunter2",
        "--PASSWORD=hunter2",
        "--smtp-secret=hunter2",
        "--api-token=hunter2",
    ],
)
def test_password_options_are_refused_without_echoing_the_value(ip, lab_env, option) -> None:
    with pytest.raises(UsageError) as caught:
        sendmail(ip, f"--to a@example.org --subject Hi {option}")
    assert str(caught.value) == PASSWORD_REFUSED
    assert "hunter2" not in str(caught.value)
    assert lab_env.messages == []


def test_unknown_attach_name_is_a_usage_error_naming_it(ip, lab_env) -> None:
    with pytest.raises(
        UsageError, match=r"'missing_df' is neither a variable .* nor an existing file"
    ):
        sendmail(ip, "--to a@example.org --attach missing_df")
    assert lab_env.messages == []


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("--subject Hi", "no recipient"),
        ("--to a@example.org --port eighty", "not a port number"),
        ("--to a@example.org --security starttlss", "invalid choice"),
        ("--to a@example.org --subject 'unclosed", "check the quotes"),
        ("--to a@example.org --to-each people", "not both"),
    ],
)
def test_bad_lines_are_usage_errors(ip, lab_env, line, expected) -> None:
    with pytest.raises(UsageError, match=expected):
        sendmail(ip, line)
    assert lab_env.messages == []


def test_errors_show_our_diagnosis_without_a_traceback(ip, lab_env) -> None:
    # Implicit TLS against the plaintext 587 role: the classic mistake.
    line = f"--to a@example.org --security tls --port {lab_env.ports[587]} --timeout 3"
    with pytest.raises(SecurityMismatchError):
        sendmail(ip, line)
    with capture_output() as captured:
        result = ip.run_cell(f"%%sendmail {line}\nHello")
    assert isinstance(result.error_in_exec, SecurityMismatchError)
    assert "SecurityMismatchError: " in captured.stdout
    assert "STARTTLS" in captured.stdout or "starttls" in captured.stdout
    assert "Traceback" not in captured.stdout + captured.stderr
    # The fix is phrased as this magic's options, not as Python arguments.
    assert "Use --security starttls (or --security auto)." in captured.stdout
    assert "security='" not in captured.stdout


def test_help_shows_docstring_and_usage(ip) -> None:
    with capture_output() as captured:
        ip.run_cell("%%sendmail?")
    assert "Send the cell body as an email message." in captured.stdout
    for option in ("--to-each EXPR", "--attach NAME_OR_PATH", "--dry-run", "--template"):
        assert option in captured.stdout
    # Plain text for the pager: no reST literal markers, the cell magic named with %%.
    assert "``" not in captured.stdout and "::" not in captured.stdout
    assert "%%sendmail [--to ADDRESSES]" in captured.stdout
    with capture_output() as probe_help:
        ip.run_cell("%smtp_probe?")
    assert "%smtp_probe [--port PORT]" in probe_help.stdout and "``" not in probe_help.stdout


# -- settings and their precedence ------------------------------------------------------------


def test_precedence_option_over_config_over_env_over_default(ip, monkeypatch) -> None:
    defaults = defaults_of(ip)
    assert (defaults.build_settings().host, defaults.build_settings().port) == ("localhost", 587)
    monkeypatch.setenv("SMTP_HOST", "env.example.org")
    monkeypatch.setenv("SMTP_TIMEOUT", "7")
    assert defaults.build_settings().host == "env.example.org"
    ip.run_line_magic("config", "SendMail.host = 'config.example.org'")
    settings = defaults.build_settings()
    assert (settings.host, settings.timeout) == ("config.example.org", 7.0)
    assert defaults.build_settings(host="option.example.org").host == "option.example.org"
    assert active_settings() == defaults.build_settings()


def test_precedence_decides_which_lab_port_gets_the_message(ip, lab_env) -> None:
    # The environment names the 587 role, %config the 465 role, the option the 587 role again.
    sendmail(ip, "--to a@example.org --quiet")
    ip.run_line_magic("config", f"SendMail.port = {lab_env.ports[465]}")
    ip.run_line_magic("config", "SendMail.security = 'tls'")
    sendmail(ip, "--to a@example.org --quiet")
    sendmail(ip, f"--to a@example.org --quiet --port {lab_env.ports[587]} --security starttls")
    roles = [(m.role, m.tls, m.authenticated) for m in lab_env.wait_for_messages(3)]
    assert roles == [(587, True, True), (465, True, True), (587, True, True)]


def test_ipython_config_file_values_apply(session_ip) -> None:
    session_ip.config.SendMail.host = "from-config-file.example.org"
    try:
        session_ip.run_line_magic("load_ext", "smtp_magic")
        assert active_settings().host == "from-config-file.example.org"
    finally:
        session_ip.run_line_magic("unload_ext", "smtp_magic")
        del session_ip.config["SendMail"]


def test_active_settings_is_none_without_the_extension(session_ip) -> None:
    assert not any(isinstance(c, SendMail) for c in session_ip.configurables)
    assert active_settings() is None


def test_unload_removes_magics_and_configurable(session_ip) -> None:
    session_ip.run_line_magic("load_ext", "smtp_magic")
    session_ip.run_line_magic("unload_ext", "smtp_magic")
    assert session_ip.find_cell_magic("sendmail") is None
    for name in ("smtp_probe", "smtp_lab", "sendmail_form"):
        assert session_ip.find_line_magic(name) is None
    assert not any(isinstance(c, SendMail) for c in session_ip.configurables)


# -- %smtp_lab --------------------------------------------------------------------------------


@pytest.fixture
def kernel_lab(ip: InteractiveShell) -> LabServer:
    """``%smtp_lab start`` in the shell; the ``ip`` fixture's unload stops it."""
    with capture_output():
        ip.run_line_magic("smtp_lab", "start")
    lab = defaults_of(ip).lab
    assert lab is not None
    return lab


def test_done_when_a_table_a_figure_and_a_file_reach_the_lab(
    ip, kernel_lab, table, figure, tmp_path
) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("See the plot.\n")
    ip.user_ns.update(df=table, fig=figure, notes=path)
    with capture_output() as captured:
        sendmail(
            ip,
            "--to team@example.org --subject 'Weekly numbers' --attach df --attach fig "
            "--attach notes",
            "Hello team,\n\nthe numbers:\n",
        )
    assert "Sent:" in captured.outputs[0].data["text/plain"]
    [received] = kernel_lab.wait_for_messages(1)
    message = received.message
    assert (received.role, received.tls, received.authenticated) == (587, True, True)
    assert message["Subject"] == "Weekly numbers"
    assert "<table" in html_of(message)
    assert_png_inline(message)
    pd.testing.assert_frame_equal(
        pd.read_csv(io.StringIO(attachment(message, "df.csv").get_content())), table
    )
    assert attachment(message, "notes.txt").get_content() == "See the plot.\n"


def test_lab_start_status_messages_stop(ip, monkeypatch) -> None:
    monkeypatch.setenv("SMTP_HOST", "env.example.org")
    with capture_output() as started:
        ip.run_line_magic("smtp_lab", "start")
    lab = defaults_of(ip).lab
    assert lab is not None and lab.running
    assert f"127.0.0.1:{lab.ports[587]}" in started.stdout and lab.cafile in started.stdout
    with capture_output() as again:
        ip.run_line_magic("smtp_lab", "start")
    assert "already running" in again.stdout and defaults_of(ip).lab is lab
    with capture_output() as status:
        ip.run_line_magic("smtp_lab", "status")
    for role in (25, 465, 587):
        assert f"127.0.0.1:{lab.ports[role]}" in status.stdout
    assert lab.cafile in status.stdout
    assert DEMO_PASSWORD not in started.stdout + again.stdout + status.stdout

    settings = active_settings()  # the lab beats SMTP_HOST
    assert (settings.host, settings.port, settings.cafile) == (
        "127.0.0.1",
        lab.ports[587],
        lab.cafile,
    )
    sendmail(ip, "--to student@example.org --subject 'Über the lab' --quiet", "Hi *there*")
    with capture_output() as shown:
        ip.run_line_magic("smtp_lab", "messages")
    [output] = shown.outputs
    assert "1 message(s)" in output.data["text/plain"]
    assert "Subject: Über the lab" in output.data["text/plain"]
    assert "587 role, TLS, logged in" in output.data["text/plain"]
    assert "<iframe sandbox" in output.data["text/html"]

    with capture_output() as stopped:
        ip.run_line_magic("smtp_lab", "stop")
    assert "stopped" in stopped.stdout and not lab.running
    assert active_settings().host == "env.example.org"
    with capture_output() as after:
        ip.run_line_magic("smtp_lab", "status")
    assert "No lab is running" in after.stdout


def test_lab_precedence_config_after_start_and_options_win(ip, kernel_lab, monkeypatch) -> None:
    monkeypatch.setenv("SMTP_PORT", "2525")
    defaults = defaults_of(ip)
    ip.run_line_magic("config", f"SendMail.port = {kernel_lab.ports[465]}")
    assert defaults.build_settings().port == kernel_lab.ports[465]  # %config after start wins
    assert defaults.build_settings(port=kernel_lab.ports[25]).port == kernel_lab.ports[25]
    # Another login or another host never gets the lab's demo password.
    assert defaults.build_settings(username="alice").password is None
    elsewhere = defaults.build_settings(host="smtp.example.org")
    assert elsewhere.password is None and elsewhere.cafile is None
    assert elsewhere.port == kernel_lab.ports[465]  # off the lab, %config still beats SMTP_PORT
    assert defaults.build_settings().password == kernel_lab.password
    ip.run_line_magic("smtp_lab", "stop")
    assert defaults.port is None  # the %config made for the lab is undone
    assert defaults.build_settings().port == 2525


def test_lab_settings_before_start_are_restored(ip, monkeypatch) -> None:
    ip.run_line_magic("config", "SendMail.host = 'smtp.example.org'")
    with capture_output():
        ip.run_line_magic("smtp_lab", "start")
    assert active_settings().host == "127.0.0.1"  # the lab beats a %config made before it
    ip.run_line_magic("smtp_lab", "stop")
    assert active_settings().host == "smtp.example.org"


def test_unload_stops_the_lab(session_ip) -> None:
    session_ip.run_line_magic("load_ext", "smtp_magic")
    try:
        with capture_output():
            session_ip.run_line_magic("smtp_lab", "start")
        lab = defaults_of(session_ip).lab
    finally:
        session_ip.run_line_magic("unload_ext", "smtp_magic")
    assert lab is not None and not lab.running


# -- %smtp_probe ------------------------------------------------------------------------------


def test_probe_shows_the_table_for_the_lab_ports(ip, lab) -> None:
    ports = " ".join(f"--port {lab.ports[role]}" for role in (25, 465, 587))
    with capture_output() as captured:
        result = ip.run_line_magic("smtp_probe", f"127.0.0.1 {ports} --cafile {lab.cafile}")
    assert result is None
    [output] = captured.outputs
    text = output.data["text/plain"]
    assert text.startswith("Probe of 127.0.0.1")
    rows = {line.split()[0]: line for line in text.splitlines()[3:6]}
    assert "plaintext greeting" in rows[str(lab.ports[587])]
    assert "TLS first" in rows[str(lab.ports[465])]
    assert text.count("verified") >= 3 and "NOT verified" not in text
    assert "<table>" in output.data["text/html"]


def test_probe_without_a_host_examines_the_running_lab_with_its_ca(ip, kernel_lab) -> None:
    with capture_output() as captured:
        ip.run_line_magic("smtp_probe", f"--port {kernel_lab.ports[587]}")
    text = captured.outputs[0].data["text/plain"]
    assert f"{kernel_lab.ports[587]}" in text and "starttls" in text
    assert "NOT verified" not in text and "verified" in text


def test_probe_notes_name_the_magics_options(ip, lab) -> None:
    """An untrusted certificate's note says --cafile (the magic's option), in text and table."""
    with capture_output() as captured:
        ip.run_line_magic("smtp_probe", f"127.0.0.1 --port {lab.ports[465]} --timeout 3")
    data = captured.outputs[0].data
    for shown in (data["text/plain"], data["text/html"]):
        assert "--cafile" in shown and "cafile=" not in shown
    assert "<th>--security</th>" in data["text/html"]


def test_probe_without_host_or_lab_is_a_usage_error(ip) -> None:
    with pytest.raises(UsageError, match="give a host"):
        ip.run_line_magic("smtp_probe", "")


# -- mail merge -------------------------------------------------------------------------------


@pytest.fixture
def people() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "email": ["ann@example.org", "bob@example.org", "cem@example.org"],
            "name": ["Ann", "Bob", "Cem"],
            "owed": [10, 25, 40],
        }
    )


@pytest.mark.parametrize("expr", ["people.email", "people['email']"])
def test_mail_merge_sends_one_message_per_row_over_one_connection(
    ip, lab_env, people, expr
) -> None:
    ip.user_ns.update(people=people, team="Finance")
    with capture_output() as captured:
        sendmail(
            ip,
            f'--to-each "{expr}" --subject "Hello {{{{ name }}}}" --bcc archive@example.org',
            "Dear {{ name }}, you owe {{ owed }} EUR. -- {{ team }} ({{ to }})",
        )
    received = lab_env.wait_for_messages(3)
    assert lab_env.connections[587] == 1
    assert [m.message["Subject"] for m in received] == ["Hello Ann", "Hello Bob", "Hello Cem"]
    assert [str(m.message["To"]) for m in received] == list(people.email)
    bob = received[1].message.get_body(preferencelist=("plain",)).get_content()
    assert bob.strip() == "Dear Bob, you owe 25 EUR. -- Finance (bob@example.org)"
    assert all("archive@example.org" in m.rcpt_tos for m in received)
    report = captured.outputs[-1].data
    assert "3 accepted" in report["text/plain"] and "3 accepted" in report["text/html"]


def test_mail_merge_over_a_filtered_table_or_a_list(ip, lab_env, people) -> None:
    ip.user_ns.update(people=people, extra=["x@example.org", "y@example.org"])
    sendmail(ip, "--to-each 'people[people.owed > 20].email' --subject '{{ name }}' --quiet")
    sendmail(ip, "--to-each extra --subject 'for {{ to }}' --quiet")
    subjects = [m.message["Subject"] for m in lab_env.wait_for_messages(4)]
    assert subjects == ["Bob", "Cem", "for x@example.org", "for y@example.org"]
    assert lab_env.connections[587] == 2


def test_mail_merge_dry_run_sends_nothing_and_counts(ip, clean_lab, people) -> None:
    ip.user_ns["people"] = people
    with capture_output() as captured:
        sendmail(ip, "--to-each people.email --subject 'Hi {{ name }}' --dry-run")
    [output] = captured.outputs
    assert "3 messages would be sent" in output.data["text/plain"]
    assert "3 messages would be sent" in output.data["text/html"]
    assert "Subject: Hi Ann" in output.data["text/plain"]
    assert clean_lab.messages == [] and sum(clean_lab.connections.values()) == 0


def test_mail_merge_builds_each_message_when_it_is_sent(ip, lab_env) -> None:
    """Issue 11, finding 12: a dry run builds one message, a send one per row as it goes."""
    built: list[int] = []

    def mark(number: int) -> str:
        built.append(number)
        return ""

    rows = 3000
    ip.user_ns["mark"] = mark
    ip.user_ns["many"] = pd.DataFrame(
        {"email": [f"p{i}@example.org" for i in range(rows)], "n": range(rows)}
    )
    with capture_output():
        sendmail(ip, "--to-each many.email --subject 'Hi {{ n }}' --dry-run", "{{ mark(n) }}x")
    assert set(built) == {0}  # not 3,000 messages for a preview of one
    built.clear()
    ip.user_ns["few"] = ip.user_ns["many"][:4]
    sendmail(ip, "--to-each few.email --subject 'Hi {{ n }}' --quiet", "{{ mark(n) }}x")
    assert list(dict.fromkeys(built)) == [0, 1, 2, 3]  # row by row, in order
    assert [m.message["Subject"] for m in lab_env.wait_for_messages(4)] == [
        f"Hi {i}" for i in range(4)
    ]


def test_mail_merge_refuses_a_row_without_address_before_sending_any(ip, lab_env) -> None:
    ip.user_ns["people"] = pd.DataFrame({"email": ["a@example.org", None], "name": ["A", "B"]})
    with pytest.raises(ComposeError, match="row 2 has no address"):
        sendmail(ip, "--to-each people.email --subject 'Hi {{ name }}'")
    with pytest.raises(ComposeError, match=r"\{\{ nickname \}\}"):
        sendmail(ip, "--to-each people.email[:1] --subject 'Hi {{ nickname }}'")
    assert lab_env.messages == [] and sum(lab_env.connections.values()) == 0


@pytest.mark.parametrize(
    ("expr", "expected"),
    [("people", "whole table"), ("42", "is a int"), ("nobody", "could not be evaluated")],
)
def test_mail_merge_bad_expressions(ip, lab_env, people, expr, expected) -> None:
    ip.user_ns["people"] = people
    with pytest.raises(UsageError, match=expected):
        sendmail(ip, f"--to-each {expr}")


# -- %sendmail_form ---------------------------------------------------------------------------


def test_form_starts_from_the_current_defaults(ip, kernel_lab) -> None:
    import ipywidgets

    try:
        with capture_output() as captured:
            assert ip.run_line_magic("sendmail_form", "") is None
        text = captured.outputs[0].data["text/plain"]
        assert text.startswith("SendMailForm(")
        assert f"port={kernel_lab.ports[587]}" in text and "host='127.0.0.1'" in text
        assert DEMO_PASSWORD not in text
    finally:
        ipywidgets.Widget.close_all()


def test_no_progress_hides_the_mail_merge_bar(ip, lab_env, capsys) -> None:  # type: ignore[no-untyped-def]
    import pandas as pd

    ip.user_ns["people"] = pd.DataFrame({"email": ["a@example.org", "b@example.org"]})
    ip.run_cell_magic("sendmail", "--to-each people.email --subject Hi --no-progress", "Hello")
    assert "msg" not in capsys.readouterr().err
    ip.run_cell_magic("sendmail", "--to-each people.email --subject Hi", "Hello")
    assert "2/2" in capsys.readouterr().err  # tqdm's text bar outside a kernel
