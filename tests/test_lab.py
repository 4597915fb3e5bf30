"""Tests for smtp_magic.lab.server: real TCP and real TLS against the three roles, no mocks."""

from __future__ import annotations

import base64
import contextlib
import os
import signal
import smtplib
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from smtp_magic.lab.handler import bind
from smtp_magic.lab.server import DEFAULT_PORTS, DEMO_PASSWORD, DEMO_USERNAME, LabServer

ANY_PORTS = {25: 0, 465: 0, 587: 0}  # ephemeral ports, so tests never fight over 8025/8465/8587


@pytest.fixture(scope="module")
def module_lab() -> Iterator[LabServer]:
    """This module's own lab, so a broken lab cannot hide behind the shared conftest one."""
    with LabServer(ANY_PORTS) as lab:
        yield lab


@pytest.fixture
def lab(module_lab: LabServer) -> LabServer:
    """Overrides conftest's session ``lab``: this module's lab, with an empty mailbox."""
    module_lab.clear()
    return module_lab


@pytest.fixture(scope="module")
def tuned_lab() -> Iterator[LabServer]:
    """A second lab with a short handshake timeout and a small size limit."""
    with LabServer(ANY_PORTS, handshake_timeout=1.0, data_size_limit=2048) as lab:
        yield lab


def verifying(lab: LabServer) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=lab.cafile)


def message(subject: str = "lab test", body: str = "Hello from the test suite.\n") -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "alice@lab.localhost"
    msg["To"] = "bob@example.org, carol@example.org"
    msg["Subject"] = subject
    msg.set_content(body)
    return msg


def plain(lab: LabServer, role: int) -> smtplib.SMTP:
    return smtplib.SMTP("127.0.0.1", lab.ports[role], timeout=5)


def implicit(lab: LabServer, context: ssl.SSLContext | None = None) -> smtplib.SMTP_SSL:
    ctx = context or verifying(lab)
    return smtplib.SMTP_SSL("127.0.0.1", lab.ports[465], context=ctx, timeout=5)


def is_free(port: int) -> bool:
    with socket.socket() as sock:
        if os.name == "posix":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


# -- role 25: plaintext greeting, STARTTLS optional, no AUTH -------------------------------------


def test_25_greets_in_plaintext_and_offers_starttls_without_auth(lab: LabServer) -> None:
    with socket.create_connection(("127.0.0.1", lab.ports[25]), timeout=5) as sock:
        greeting = sock.recv(1024)
    assert greeting.startswith(b"220 lab.localhost")
    assert b"smtp_magic-lab" in greeting
    with plain(lab, 25) as smtp:
        smtp.ehlo()
        assert smtp.has_extn("starttls")
        assert not smtp.has_extn("auth")


def test_25_accepts_plaintext_mail(lab: LabServer) -> None:
    with plain(lab, 25) as smtp:
        smtp.send_message(message("plain"))
    (received,) = lab.wait_for_messages(1)
    assert received.role == 25
    assert not received.tls
    assert not received.authenticated
    assert received.message["Subject"] == "plain"


def test_25_mail_after_starttls_is_encrypted(lab: LabServer) -> None:
    with plain(lab, 25) as smtp:
        smtp.starttls(context=verifying(lab))
        smtp.ehlo()
        assert not smtp.has_extn("auth")  # role 25 has no accounts, even over TLS
        smtp.send_message(message("after starttls"))
    (received,) = lab.wait_for_messages(1)
    assert received.tls
    assert received.role == 25


# -- role 587: STARTTLS required, then AUTH ------------------------------------------------------


def test_587_offers_starttls_but_not_auth_before_tls(lab: LabServer) -> None:
    with plain(lab, 587) as smtp:
        smtp.ehlo()
        assert smtp.has_extn("starttls")
        assert not smtp.has_extn("auth")
        with pytest.raises(smtplib.SMTPSenderRefused) as info:
            smtp.sendmail("alice@lab.localhost", ["bob@example.org"], b"Subject: x\r\n\r\nx\r\n")
    assert info.value.smtp_code == 530
    assert b"STARTTLS" in info.value.smtp_error
    assert lab.messages == []


def test_587_requires_auth_after_starttls(lab: LabServer) -> None:
    with plain(lab, 587) as smtp:
        smtp.starttls(context=verifying(lab))
        smtp.ehlo()
        assert smtp.has_extn("auth")
        assert not smtp.has_extn("starttls")
        with pytest.raises(smtplib.SMTPSenderRefused) as info:
            smtp.send_message(message())
    assert info.value.smtp_code == 530
    assert b"Authentication required" in info.value.smtp_error


def test_587_delivers_after_starttls_and_login(lab: LabServer) -> None:
    with plain(lab, 587) as smtp:
        smtp.starttls(context=verifying(lab))
        smtp.login(DEMO_USERNAME, DEMO_PASSWORD)
        refused = smtp.send_message(message("submitted"))
    assert refused == {}
    (received,) = lab.wait_for_messages(1)
    assert (received.role, received.tls, received.authenticated) == (587, True, True)
    assert received.mail_from == "alice@lab.localhost"
    assert received.rcpt_tos == ("bob@example.org", "carol@example.org")
    assert isinstance(received.message, EmailMessage)
    assert received.message["Subject"] == "submitted"
    assert received.message.get_content() == "Hello from the test suite.\n"
    assert b"Subject: submitted" in received.raw


def test_587_rejects_a_wrong_password(lab: LabServer) -> None:
    with plain(lab, 587) as smtp:
        smtp.starttls(context=verifying(lab))
        with pytest.raises(smtplib.SMTPAuthenticationError) as info:
            smtp.login(DEMO_USERNAME, "not-the-password")
    assert info.value.smtp_code == 535


def test_auth_login_challenges_are_readable(lab: LabServer) -> None:
    """aiosmtpd's default challenges end in NUL, which breaks some clients (aiosmtpd #566)."""

    def b64(text: str) -> str:
        return base64.b64encode(text.encode()).decode()

    with plain(lab, 587) as smtp:
        smtp.starttls(context=verifying(lab))
        smtp.ehlo()
        assert smtp.docmd("AUTH", "LOGIN") == (334, b64("Username:").encode())
        assert smtp.docmd(b64(DEMO_USERNAME)) == (334, b64("Password:").encode())
        code, _ = smtp.docmd(b64(DEMO_PASSWORD))
    assert code == 235


# -- role 465: implicit TLS, AUTH required -------------------------------------------------------


def test_465_speaks_verified_tls_and_delivers(lab: LabServer) -> None:
    with implicit(lab) as smtp:
        assert isinstance(smtp.sock, ssl.SSLSocket)
        assert smtp.sock.version() in {"TLSv1.2", "TLSv1.3"}
        smtp.ehlo()
        assert smtp.has_extn("auth")  # pitfall 3: hidden unless auth_require_tls=False
        assert not smtp.has_extn("starttls")
        smtp.login(DEMO_USERNAME, DEMO_PASSWORD)
        smtp.send_message(message("implicit"))
    (received,) = lab.wait_for_messages(1)
    assert (received.role, received.tls, received.authenticated) == (465, True, True)
    assert received.message["Subject"] == "implicit"


def test_465_requires_auth(lab: LabServer) -> None:
    with implicit(lab) as smtp, pytest.raises(smtplib.SMTPSenderRefused) as info:
        smtp.send_message(message())
    assert info.value.smtp_code == 530


def test_465_drops_a_plaintext_client_after_the_handshake_timeout(tuned_lab: LabServer) -> None:
    started = time.monotonic()
    with pytest.raises(smtplib.SMTPServerDisconnected):
        smtplib.SMTP("127.0.0.1", tuned_lab.ports[465], timeout=8)
    elapsed = time.monotonic() - started
    # handshake_timeout=1.0: well before the client's 8 s and asyncio's default 60 s.
    assert 0.5 < elapsed < 4, elapsed


def test_data_size_limit_is_enforced(tuned_lab: LabServer) -> None:
    with (
        smtplib.SMTP("127.0.0.1", tuned_lab.ports[25], timeout=5) as smtp,
        pytest.raises(smtplib.SMTPSenderRefused) as info,
    ):
        smtp.send_message(message(body="x" * 4000))
    assert info.value.smtp_code == 552


# -- certificates ---------------------------------------------------------------------------------


def test_tls_fails_without_the_lab_ca(lab: LabServer) -> None:
    """The successes above were earned: the system store alone does not trust the lab."""
    with pytest.raises(ssl.SSLCertVerificationError) as info:
        implicit(lab, ssl.create_default_context())
    assert info.value.verify_code == 20  # unable to get local issuer certificate
    with plain(lab, 587) as smtp, pytest.raises(ssl.SSLCertVerificationError):
        smtp.starttls(context=ssl.create_default_context())


def test_tls_fails_for_a_name_not_in_the_certificate(lab: LabServer) -> None:
    with (
        socket.create_connection(("127.0.0.1", lab.ports[465]), timeout=5) as raw,
        pytest.raises(ssl.SSLCertVerificationError) as info,
    ):
        verifying(lab).wrap_socket(raw, server_hostname="mail.example.org")
    assert info.value.verify_code == 62  # hostname mismatch


def test_certificate_names_localhost(lab: LabServer) -> None:
    ctx = verifying(lab)
    with (
        socket.create_connection(("127.0.0.1", lab.ports[465]), timeout=5) as raw,
        ctx.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        cert = tls.getpeercert()
    assert ("DNS", "localhost") in cert["subjectAltName"]
    assert ("IP Address", "127.0.0.1") in cert["subjectAltName"]
    assert Path(lab.cafile).read_bytes() == lab.ca.cert_pem.bytes()


# -- ports ----------------------------------------------------------------------------------------


def test_default_ports_are_used_when_free() -> None:
    busy = [port for port in DEFAULT_PORTS.values() if not is_free(port)]
    if busy:
        pytest.skip(f"default lab ports in use by something else: {busy}")
    with LabServer() as lab:
        assert lab.ports == DEFAULT_PORTS


def test_busy_default_port_falls_back_to_a_free_one() -> None:
    with contextlib.ExitStack() as stack:
        holder = stack.enter_context(socket.socket())
        with contextlib.suppress(OSError):  # already busy is just as good
            holder.bind(("127.0.0.1", DEFAULT_PORTS[587]))
            holder.listen()
        lab = stack.enter_context(LabServer())
        assert lab.ports[587] != DEFAULT_PORTS[587]
        with plain(lab, 587) as smtp:
            assert smtp.noop()[0] == 250


def test_explicit_busy_port_is_an_error_and_start_cleans_up(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        lab = LabServer({25: 0, 465: 0, 587: taken})
        with pytest.raises(OSError, match=r"ports=\{587: 0\}"):
            lab.start()
    assert not lab.running
    assert lab.ports == {}


def test_listening_sockets_are_tcp_so_asyncio_disables_nagle() -> None:
    """With proto 0, asyncio skips TCP_NODELAY and each TLS greeting stalls ~40 ms."""
    with bind(0) as sock:
        assert sock.proto == socket.IPPROTO_TCP


def test_unknown_role_in_ports_is_rejected() -> None:
    with pytest.raises(ValueError, match="25, 465, 587"):
        LabServer({2525: 0})


# -- settings, bookkeeping ------------------------------------------------------------------------


def test_settings_reach_each_role(lab: LabServer) -> None:
    for role in (465, 587):
        settings = lab.settings(role)
        assert (settings.host, settings.port) == ("127.0.0.1", lab.ports[role])
        assert settings.cafile == lab.cafile
        assert (settings.username, settings.password) == (DEMO_USERNAME, DEMO_PASSWORD)
        assert settings.security == ("tls" if role == 465 else "starttls")
        assert DEMO_PASSWORD not in repr(settings)
    assert lab.settings().port == lab.ports[587]
    relay = lab.settings(25)
    assert (relay.username, relay.password, relay.sender) == (None, None, "demo@lab.localhost")
    assert lab.settings(465, security="tls", timeout=3.0).security == "tls"


def test_settings_errors(lab: LabServer) -> None:
    with pytest.raises(ValueError, match="25, 465 or 587"):
        lab.settings(2525)
    with pytest.raises(RuntimeError, match="start"):
        LabServer().settings(587)


def test_repr_shows_ports_and_cafile_but_never_the_password(lab: LabServer) -> None:
    text = repr(lab)
    assert str(lab.ports[465]) in text
    assert lab.cafile in text
    assert DEMO_PASSWORD not in text
    assert DEMO_PASSWORD not in repr(LabServer())


def test_connections_are_counted_per_role(lab: LabServer) -> None:
    assert lab.connections == {25: 0, 465: 0, 587: 0}
    with plain(lab, 25) as smtp:
        smtp.starttls(context=verifying(lab))  # same connection: counted once
        smtp.noop()
    with plain(lab, 25) as smtp:
        smtp.noop()
    with implicit(lab) as smtp:
        smtp.noop()
    assert lab.connections == {25: 2, 465: 1, 587: 0}


def test_clear_and_messages_copy(lab: LabServer) -> None:
    with plain(lab, 25) as smtp:
        smtp.send_message(message())
    snapshot = lab.wait_for_messages(1)
    snapshot.clear()
    assert len(lab.messages) == 1  # a copy, not the lab's list
    lab.clear()
    assert lab.messages == []
    assert lab.connections == {25: 0, 465: 0, 587: 0}


def test_wait_for_messages_times_out_clearly(lab: LabServer) -> None:
    started = time.monotonic()
    with pytest.raises(
        TimeoutError, match=r"received 0 message\(s\) in 0.2 s, expected at least 1"
    ):
        lab.wait_for_messages(1, timeout=0.2)
    assert time.monotonic() - started < 2


def test_stop_frees_the_ports_and_removes_the_ca_directory() -> None:
    started = time.monotonic()
    lab = LabServer(ANY_PORTS).start()
    assert time.monotonic() - started < 2
    ports, cafile = lab.ports, Path(lab.cafile)
    assert cafile.is_file()
    lab.stop()
    assert not lab.running
    assert not cafile.parent.exists()
    for port in ports.values():
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
    lab.stop()  # twice is fine
    with pytest.raises(RuntimeError, match="start"):
        _ = lab.cafile


def test_directory_keeps_the_ca_file_after_stop(tmp_path: Path) -> None:
    with LabServer(ANY_PORTS, directory=tmp_path / "lab") as lab:
        assert Path(lab.cafile) == tmp_path / "lab" / "lab-ca.pem"
    assert (tmp_path / "lab" / "lab-ca.pem").read_bytes().startswith(b"-----BEGIN CERTIFICATE")


def test_lab_restarts_after_stop() -> None:
    lab = LabServer(ANY_PORTS)
    for _ in range(2):
        with lab, implicit(lab) as smtp:
            assert smtp.noop()[0] == 250


CLIENTS_WITHOUT_THE_CA = {
    587: (
        "    with smtplib.SMTP('127.0.0.1', lab.ports[587], timeout=10) as client:\n"
        "        client.starttls(context=ssl.create_default_context())\n"
    ),
    465: (  # the implicit-TLS role: asyncio alone would report nothing (lab/implicit.py)
        "    with smtplib.SMTP_SSL('127.0.0.1', lab.ports[465], timeout=10,\n"
        "                          context=ssl.create_default_context()):\n"
        "        pass\n"
    ),
}


@pytest.mark.parametrize("role", sorted(CLIENTS_WITHOUT_THE_CA))
def test_a_client_rejecting_the_ca_shows_one_line_in_a_notebook_cell(
    tmp_path: Path, role: int
) -> None:
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            "import smtplib, ssl, time\n"
            "from smtp_magic.lab.server import LabServer\n"
            "lab = LabServer(ports={25: 0, 465: 0, 587: 0}).start()"
        ),
        nbformat.v4.new_code_cell(
            "try:\n" + CLIENTS_WITHOUT_THE_CA[role] + "except ssl.SSLCertVerificationError:\n"
            "    print('the client refused the certificate')\n"
            "time.sleep(0.5)  # the lab's line comes from its own thread"
        ),
        nbformat.v4.new_code_cell("print(lab.cafile); lab.stop()"),
    ]
    NotebookClient(
        nb, timeout=60, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    outputs = nb.cells[1].outputs
    stderr = "".join(o.get("text", "") for o in outputs if o.get("name") == "stderr")
    stdout = "".join(o.get("text", "") for o in outputs if o.get("name") == "stdout")
    cafile = "".join(o.get("text", "") for o in nb.cells[2].outputs).strip()
    assert "the client refused the certificate" in stdout
    assert len([line for line in stderr.splitlines() if line.strip()]) == 1, stderr
    assert "rejected the lab's certificate (unknown CA)" in stderr and cafile in stderr
    assert "Traceback" not in stderr and all(o["output_type"] != "error" for o in outputs)


# -- temp folders: removed at exit, left-overs removed at the next start ----------------------

_LAB_SCRIPT = """\
import sys
from smtp_magic.lab.server import LabServer
lab = LabServer(ports={25: 0, 465: 0, 587: 0}).start()
print(lab.cafile, flush=True)
if sys.argv[1] == "wait":
    import time; time.sleep(60)
"""  # "exit": the script ends without lab.stop(), as a kernel shut down with a lab running


def _lab_process(tmp_path: Path, how: str) -> tuple[subprocess.Popen[str], Path]:
    env = {**os.environ, "TMPDIR": str(tmp_path)}  # tempfile.gettempdir() of the child
    process = subprocess.Popen(
        [sys.executable, "-c", _LAB_SCRIPT, how], stdout=subprocess.PIPE, text=True, env=env
    )
    assert process.stdout is not None
    folder = Path(process.stdout.readline().strip()).parent
    assert folder.parent == tmp_path and folder.name.startswith("smtp_magic-lab-")
    return process, folder


def test_lab_folder_is_removed_when_the_process_exits(tmp_path: Path) -> None:
    process, folder = _lab_process(tmp_path, "exit")
    with process:
        assert process.wait(timeout=60) == 0
    assert not folder.exists()


def test_a_killed_labs_folder_is_removed_by_the_next_lab(tmp_path: Path) -> None:
    killed, left_over = _lab_process(tmp_path, "wait")
    with killed:
        killed.kill()  # SIGKILL: nothing of the process runs, its folder stays behind
    assert left_over.exists()
    running, alive = _lab_process(tmp_path, "wait")  # the next start cleans up
    with running:
        try:
            assert not left_over.exists()
            assert alive.exists()  # a folder whose process still runs is left alone
        finally:
            running.terminate()


def test_serve_stopped_with_sigterm_removes_its_folder(tmp_path: Path) -> None:
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    exe = str(Path(sys.executable).with_name("smtp-magic"))
    with subprocess.Popen([exe, "serve"], stdout=subprocess.PIPE, text=True, env=env) as serve:
        assert serve.stdout is not None
        for line in serve.stdout:
            if "CA certificate" in line:
                break
        assert len(list(tmp_path.glob("smtp_magic-lab-*"))) == 1
        serve.send_signal(signal.SIGTERM)
        assert serve.wait(timeout=30) == 0
    assert list(tmp_path.glob("smtp_magic-lab-*")) == []


# -- issue 11, finding 13: what the lab keeps is bounded --------------------------------------------


def test_the_lab_advertises_a_teaching_sized_size() -> None:
    from smtp_magic.lab.server import DATA_SIZE_LIMIT

    with LabServer(ANY_PORTS) as lab, plain(lab, 25) as smtp:
        smtp.ehlo()
        advertised = int(smtp.esmtp_features["size"])
    assert advertised == DATA_SIZE_LIMIT <= 32 * 2**20


def test_the_lab_keeps_a_bounded_number_of_messages_oldest_dropped() -> None:
    with LabServer(ANY_PORTS, keep=3) as lab, plain(lab, 25) as smtp:
        for i in range(5):
            smtp.send_message(message(f"number {i}"))
        assert lab.wait_for_messages(5)  # counts what arrived, not what is kept
        kept = [m.message["Subject"] for m in lab.messages]
        assert kept == ["number 2", "number 3", "number 4"]
        assert lab.dropped == 2
        lab.clear()
        assert (lab.messages, lab.dropped) == ([], 0)


def test_the_lab_keeps_a_bounded_number_of_bytes_but_always_the_newest() -> None:
    """Six 30 MB messages grew the kernel by 443 MiB; the lab now keeps what fits its budget."""
    big = "x" * 400_000 + "\n"
    with LabServer(ANY_PORTS, keep_bytes=1_000_000) as lab, plain(lab, 25) as smtp:
        for i in range(6):
            smtp.send_message(message(f"big {i}", big))
        lab.wait_for_messages(6)
        kept = lab.messages
        assert sum(len(m.raw) for m in kept) <= 1_000_000
        assert [m.message["Subject"] for m in kept] == ["big 4", "big 5"]
        assert lab.dropped == 4
        smtp.send_message(message("huge", "y" * 1_500_000 + "\n"))  # over the budget alone
        lab.wait_for_messages(7)
        assert [m.message["Subject"] for m in lab.messages] == ["huge"]


def test_smtp_lab_messages_says_what_was_dropped() -> None:
    from smtp_magic.notebook.display import LabMailbox

    with LabServer(ANY_PORTS, keep=2) as lab, plain(lab, 25) as smtp:
        for i in range(4):
            smtp.send_message(message(f"number {i}"))
        lab.wait_for_messages(4)
        shown = LabMailbox(lab.messages, dropped=lab.dropped)
    text = repr(shown)
    assert "received 4 message(s) and keeps the latest 2" in text and "2 older ones" in text
    assert "#3 on the 25 role" in text and "#1 on" not in text
    assert "keeps the latest 2" in shown._repr_html_()


def test_labs_starting_together_share_out_the_default_ports(tmp_path: Path) -> None:
    # Three processes race for 8025/8465/8587 (a notebook beside a test run, say): bind with
    # SO_REUSEADDR lets several succeed, so each must listen at once and fall back when beaten.
    script = (
        "import time\nfrom smtp_magic.lab.server import LabServer\n"
        "lab = LabServer().start(); print(*lab.ports.values(), flush=True)\n"
        "time.sleep(2); lab.stop()"
    )
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", script],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(3)
    ]
    results = [(*run.communicate(timeout=60), run.returncode) for run in runs]
    assert [code for _, _, code in results] == [0, 0, 0], [err for _, err, _ in results]
    ports = [int(port) for out, _, _ in results for port in out.split()]
    assert len(ports) == len(set(ports)) == 9
