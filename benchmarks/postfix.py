"""A real Postfix on 127.0.0.1, in a private configuration and queue directory, that accepts and discards mail.

Used by the benchmarks (benchmarks/run.py) and by tests/test_postfix.py. Needs Debian's
``postfix`` package (``.ci/run`` installs it) and root, because Postfix's master starts its
daemons as the ``postfix`` user; no system service is touched: everything lives in a temporary
directory, the listener is 127.0.0.1 on a free port, and ``stop()`` removes it all.

Every message is accepted (from 127.0.0.1 only: ``mynetworks``), queued, and handed to the
``discard`` transport, except for two test recipients: ``nobody@example.org`` is refused
(550) and ``busy@example.org`` refused for now (450). Postfix's cleanup daemon logs one ``message-id=<...>`` line per message it
received, to a private log file; ``message_ids()`` counts them, which is how the tests prove that
nothing was lost and nothing was sent twice.

Example::

    with Postfix() as postfix:
        send(message, Settings("127.0.0.1", port=postfix.port, security="plain", sender=...))
        postfix.wait_for(1)
"""

from __future__ import annotations

import collections
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

MASTER = "/usr/lib/postfix/sbin/master"  # Debian's daemon_directory
SASLPASSWD = "/usr/sbin/saslpasswd2"  # Debian's sasl2-bin: the Cyrus SASL password database
_REALM = "postfix.localhost"

_QUEUE_DIRS = [
    (name, "root", 0o700)
    for name in (
        "active",
        "bounce",
        "corrupt",
        "defer",
        "deferred",
        "flush",
        "hold",
        "incoming",
        "private",
        "saved",
        "trace",
    )
] + [("maildrop", "postdrop", 0o730), ("public", "postdrop", 0o710), ("pid", "root", 0o755)]

_MASTER_CF = """\
{port}      inet  n       -       n       -       -       smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
proxymap  unix  -       -       n       -       -       proxymap
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
"""

_MAIN_CF = """\
compatibility_level = 3.6
config_directory = {root}/etc
queue_directory = {root}/queue
data_directory = {root}/data
maillog_file = {root}/maillog
maillog_file_prefixes = {root}
myhostname = postfix.localhost
mydomain = localhost
myorigin = postfix.localhost
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = {mynetworks}
smtpd_relay_restrictions = permit_sasl_authenticated, permit_mynetworks, reject
smtpd_recipient_restrictions =
    check_recipient_access inline:{{
        {{ nobody@example.org = 550 5.1.1 No such user here }},
        {{ busy@example.org = 450 4.2.1 Mailbox busy, try again later }} }},
    permit_sasl_authenticated, permit_mynetworks, reject
smtpd_peername_lookup = no
disable_dns_lookups = yes
smtp_dns_support_level = disabled
default_transport = discard:benchmark
relay_transport = discard:benchmark
local_transport = discard:benchmark
alias_maps =
alias_database =
local_recipient_maps =
biff = no
message_size_limit = 52428800
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
smtpd_client_message_rate_limit = 0
smtpd_client_recipient_rate_limit = 0
smtpd_error_sleep_time = 0
smtpd_soft_error_limit = 1000
smtpd_hard_error_limit = 1000
smtpd_junk_command_limit = 100000
smtpd_recipient_limit = 1000
in_flow_delay = 0
"""

_MESSAGE_ID = re.compile(r"cleanup\[\d+\]: [0-9A-F]+: message-id=(<[^>]*>|\S*)")


def available(*, sasl: bool = False) -> str | None:
    """None when Postfix (with Cyrus SASL's tools, if ``sasl``) can run here, else why not."""
    if not Path(MASTER).exists():
        return "Debian's postfix package is not installed (.ci/run installs it)"
    if sasl and not Path(SASLPASSWD).exists():
        return "Debian's sasl2-bin package is not installed (.ci/run installs it)"
    if os.geteuid() != 0:
        return "Postfix's master must start as root (it runs its daemons as the postfix user)"
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Postfix:
    """A private Postfix instance: ``start()``, ``port``, ``message_ids()``, ``stop()``."""

    def __init__(
        self,
        port: int | None = None,
        extra: str = "",
        *,
        tls: bool = False,
        login: tuple[str, str] | None = None,
    ) -> None:
        self.port = port or _free_port()
        self.extra = extra  # more main.cf lines
        self.tls = tls or login is not None  # STARTTLS with a certificate from a fresh trustme CA
        self.login = login  # a submission service: AUTH (after STARTTLS) required to send
        self.cafile: str | None = None
        self.root = Path(tempfile.mkdtemp(prefix="smtp-magic-postfix-"))
        self.env = {**os.environ, "MAIL_CONFIG": str(self.root / "etc")}

    def start(self) -> Postfix:
        """Write the configuration, start the master, wait for the 220 greeting."""
        reason = available()
        if reason:
            raise RuntimeError(f"cannot start Postfix: {reason}")
        # Postfix's daemons run as the postfix user and must reach the queue and data directories.
        self.root.chmod(0o755)
        etc = self.root / "etc"
        etc.mkdir()
        (self.root / "queue").mkdir()
        (self.root / "data").mkdir()
        shutil.chown(self.root / "data", "postfix", "postfix")
        main_cf = (
            _MAIN_CF.format(
                root=self.root,
                # With a login, only a logged-in client may send (as on a submission port).
                mynetworks="127.0.0.0/8" if self.login is None else "127.0.0.255/32",
            )
            + self._tls()
            + self._sasl()
            + self.extra
        )
        (etc / "main.cf").write_text(main_cf)
        (etc / "master.cf").write_text(_MASTER_CF.format(port=f"127.0.0.1:{self.port}"))
        # The queue's subdirectories with the owners Postfix wants (what `postfix check` would
        # make, without its 3 s of checks), then the master itself, waiting until it is ready.
        for name, group, mode in _QUEUE_DIRS:
            path = self.root / "queue" / name
            path.mkdir()
            shutil.chown(path, "root" if name == "pid" else "postfix", group)
            path.chmod(mode)
        done = subprocess.run(
            [MASTER, "-c", str(etc), "-w"], capture_output=True, text=True, env=self.env, timeout=60
        )
        if done.returncode != 0:
            log = self.log()
            self.stop()
            raise RuntimeError(f"Postfix's master did not start: {done.stdout}{done.stderr}{log}")
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), 1.0) as sock:
                    sock.settimeout(5.0)
                    if sock.recv(512).startswith(b"220"):
                        sock.sendall(b"QUIT\r\n")
                        return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                log = self.log()
                self.stop()
                raise RuntimeError(f"Postfix did not greet on port {self.port}: {log}")
            time.sleep(0.1)

    def _tls(self) -> str:
        """main.cf lines for STARTTLS (a trustme certificate for 127.0.0.1), if asked for."""
        if not self.tls:
            return ""
        import trustme

        ca = trustme.CA(organization_name="smtp_magic Postfix benchmark CA")
        leaf = ca.issue_cert("127.0.0.1", "localhost")
        chain = self.root / "etc" / "server.pem"
        leaf.private_key_and_cert_chain_pem.write_to_path(str(chain))
        chain.chmod(0o600)
        self.cafile = str(self.root / "ca.pem")
        ca.cert_pem.write_to_path(self.cafile)
        return (
            f"smtpd_tls_chain_files = {chain}\n"
            "smtpd_tls_security_level = may\n"
            "smtpd_tls_loglevel = 0\n"
            "tls_random_source = dev:/dev/urandom\n"
        )

    def _sasl(self) -> str:
        """main.cf lines for a submission service: AUTH PLAIN/LOGIN over TLS only, required."""
        if self.login is None:
            return ""
        username, password = self.login
        sasl = self.root / "etc" / "sasl"
        sasl.mkdir()
        database = sasl / "sasldb2"
        (sasl / "smtpd.conf").write_text(
            f"pwcheck_method: auxprop\nauxprop_plugin: sasldb\nmech_list: PLAIN LOGIN\n"
            f"sasldb_path: {database}\n"
        )
        subprocess.run(
            [SASLPASSWD, "-p", "-c", "-f", str(database), "-u", _REALM, username],
            input=password.encode(),
            check=True,
            timeout=30,
        )
        shutil.chown(database, "postfix", "postfix")
        database.chmod(0o600)
        return (
            "smtpd_sasl_auth_enable = yes\n"
            "smtpd_sasl_type = cyrus\n"
            "smtpd_sasl_path = smtpd\n"
            f"cyrus_sasl_config_path = {sasl}\n"
            f"smtpd_sasl_local_domain = {_REALM}\n"
            "smtpd_tls_auth_only = yes\n"
            "smtpd_sasl_security_options = noanonymous\n"
        )

    def log(self) -> str:
        """The private mail log so far."""
        try:
            return (self.root / "maillog").read_text(errors="replace")
        except OSError:
            return ""

    def message_ids(self) -> collections.Counter[str]:
        """How many times Postfix received each Message-ID (from cleanup's log lines)."""
        return collections.Counter(_MESSAGE_ID.findall(self.log()))

    def received(self) -> int:
        """How many messages Postfix received so far."""
        return sum(self.message_ids().values())

    def wait_for(self, count: int, timeout: float = 20.0) -> collections.Counter[str]:
        """Wait until ``count`` messages were logged (the log is written asynchronously)."""
        deadline = time.monotonic() + timeout
        while True:
            ids = self.message_ids()
            if sum(ids.values()) >= count or time.monotonic() > deadline:
                return ids
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop the master and its daemons, and remove the directory."""
        pidfile = self.root / "queue" / "pid" / "master.pid"
        try:
            pid = int(pidfile.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            pid = 0
        if pid:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGTERM)  # the master stops its daemons, then exits
        deadline = time.monotonic() + 10
        while pid and Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Postfix:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
