"""LabServer: a local aiosmtpd server with trustme certificates that plays ports 25, 465 and 587."""

from __future__ import annotations

import hmac
import logging
import smtplib
import ssl
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trustme
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from smtp_magic.lab import folders
from smtp_magic.lab.handler import HOST, LabController, LabHandler, ReceivedMessage, listening
from smtp_magic.lab.oauth_smtp import OAuthLabHandler, OAuthLogins, OAuthStyle
from smtp_magic.lab.tokens import StaticTokens, TokenValidator

if TYPE_CHECKING:
    from smtp_magic.lab.personas import PersonaBehaviour
    from smtp_magic.settings import Settings

__all__ = ["DEMO_PASSWORD", "DEMO_USERNAME", "ROLES", "LabServer", "ReceivedMessage"]

DEMO_USERNAME = "demo"
DEMO_PASSWORD = "lab-demo-pass-7431"
DEMO_SENDER = "demo@lab.localhost"
ROLES = (25, 465, 587)
DEFAULT_PORTS = {25: 8025, 465: 8465, 587: 8587}
SERVER_HOSTNAME = "lab.localhost"  # the greeting name; also avoids a blocking getfqdn() (#178)
SELF_TEST_TIMEOUT = 3.0
DATA_SIZE_LIMIT = 32 * 2**20
"""The lab's SIZE: room for a message at Gmail's 25 MB limit, and no more (it was 40 MiB)."""
KEEP_MESSAGES = 100
"""How many received messages the lab keeps; older ones are dropped."""
KEEP_BYTES = 32 * 2**20
"""How many bytes of received messages (as sent) the lab keeps; older ones are dropped. The
parsed copy of each takes about as much again."""


class LabServer:
    """A local SMTP lab: three listeners on 127.0.0.1 that behave like ports 25, 465 and 587.

    Role 25 greets in plaintext, offers STARTTLS and no AUTH. Role 587 greets in plaintext and
    requires STARTTLS, then AUTH, before MAIL. Role 465 speaks TLS from the first byte and
    requires AUTH. Certificates come from a fresh trustme CA whose PEM is at ``cafile``.
    """

    def __init__(
        self,
        ports: Mapping[int, int] | None = None,
        *,
        username: str = DEMO_USERNAME,
        password: str = DEMO_PASSWORD,
        data_size_limit: int = DATA_SIZE_LIMIT,
        keep: int = KEEP_MESSAGES,
        keep_bytes: int = KEEP_BYTES,
        handshake_timeout: float = 5.0,
        directory: str | Path | None = None,
        tokens: TokenValidator | None = None,
        oauth_style: OAuthStyle = "google",
        persona: str = "plain",
    ) -> None:
        """Prepare the lab (nothing listens until ``start()``).

        Args:
            ports: Role -> port to bind; 0 means any free port. Roles left out use 8025, 8465
                and 8587 when free, else any free port.
            username: The one account's login name.
            password: The one account's password.
            data_size_limit: The largest message accepted, in bytes (the SIZE it advertises).
            keep: How many received messages ``messages`` keeps; the oldest go first.
            keep_bytes: How many bytes of received messages ``messages`` keeps (the newest
                message is always kept); the oldest go first.
            handshake_timeout: Seconds the 465 role waits for a TLS handshake.
            directory: Where to write the CA PEM; default: a temporary directory removed by
                ``stop()``.
            tokens: Judges OAuth2 access tokens (``StaticTokens``, or the lab authority's
                validator); given, roles 465 and 587 also offer XOAUTH2 and OAUTHBEARER.
            oauth_style: How token logins fail: "google" (a 334 JSON challenge, then 535
                5.7.8) or "microsoft" (XOAUTH2 only, a bare 535 5.7.3).
            persona: "plain", or "gmail" / "microsoft365" to greet, answer EHLO and refuse like
                that service (:mod:`smtp_magic.lab.personas`; ``refuse()`` picks a refusal).
                A persona also offers OAuth2 logins, failing them in its service's style
                (nobody may log in unless ``tokens`` says so).

        Raises:
            ValueError: If ``ports`` names a role other than 25, 465 or 587, or ``persona`` is
                unknown.
        """
        from smtp_magic.lab.personas import PERSONAS

        if persona != "plain" and persona not in PERSONAS:
            raise ValueError(
                f"Unknown persona {persona!r}: use 'plain', {', '.join(map(repr, PERSONAS))}."
            )
        unknown = set(ports or {}) - set(ROLES)
        if unknown:
            raise ValueError(f"Unknown lab role(s) {sorted(unknown)}: the roles are 25, 465, 587.")
        self._requested = dict(ports or {})
        self.username = username
        self.password = password
        self._data_size_limit = data_size_limit
        self._keep = max(keep, 1)
        self._keep_bytes = keep_bytes
        self._kept_bytes = 0
        self._received = 0  # messages received since start (or clear), kept or not
        self._handshake_timeout = handshake_timeout
        self._directory = Path(directory) if directory is not None else None
        self.ca = trustme.CA(organization_name="smtp_magic lab CA")
        self._leaf = self.ca.issue_cert("localhost", "127.0.0.1", "::1", common_name="localhost")
        self._lock = threading.Condition()
        self._messages: list[ReceivedMessage] = []
        self._connections = dict.fromkeys(ROLES, 0)
        self._controllers: dict[int, LabController] = {}
        self._ports: dict[int, int] = {}
        self._cafile: Path | None = None
        self._tmpdir: Path | None = None
        if persona != "plain":
            oauth_style = PERSONAS[persona].oauth_style
            tokens = tokens if tokens is not None else StaticTokens()
        self.oauth = OAuthLogins(tokens, style=oauth_style) if tokens is not None else None
        """The OAuth2 logins (and what the lab saw of them), when ``tokens`` was given."""
        self.persona = persona
        self._behaviour: PersonaBehaviour | None = None

    def start(self) -> LabServer:
        """Bind the three listeners, check each one answers over TLS, and return the lab.

        Raises:
            OSError: If a port given explicitly in ``ports`` is in use.
            RuntimeError: If a listener does not pass its self-test.
        """
        if self.running:
            return self
        # aiosmtpd logs a warning on every AUTH ("login_data is deprecated") and on every 465
        # connection; keep its logger quiet unless the user configured it.
        mail_log = logging.getLogger("mail.log")
        if mail_log.level == logging.NOTSET:
            mail_log.setLevel(logging.ERROR)
        try:
            if self._directory is None:
                self._tmpdir = folders.make_folder()
            folder = self._directory or self._tmpdir
            assert folder is not None
            folder.mkdir(parents=True, exist_ok=True)
            self._cafile = folder / "lab-ca.pem"
            self.ca.cert_pem.write_to_path(str(self._cafile))
            server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            server_ctx.minimum_version = ssl.TLSVersion.TLSv1_2
            self._leaf.configure_cert(server_ctx)
            for role in ROLES:
                self._start_role(role, server_ctx)
            for role in ROLES:
                self._self_test(role)
            if self.persona != "plain":
                from smtp_magic.lab.personarole import play

                self._behaviour = play(self, self.persona)
        except BaseException:
            self.stop()
            raise
        self.clear()  # the readiness and self-test connections are not the user's
        return self

    def _start_role(self, role: int, server_ctx: ssl.SSLContext) -> None:
        wanted = self._requested.get(role, DEFAULT_PORTS[role])
        try:
            sock = listening(wanted)
        except OSError as exc:
            if role not in self._requested:  # a busy default port: take any free one
                sock = listening(0)
            else:
                raise OSError(
                    exc.errno,
                    f"Cannot listen on {HOST}:{wanted} for the lab's {role} role: {exc.strerror}. "
                    f"Choose another port, or pass ports={{{role}: 0}} for any free port.",
                ) from exc
        auth: dict[str, Any] = {"authenticator": self._authenticate, "auth_required": True}
        handler = LabHandler(role, self._record)
        if self.oauth is not None and role != 25:
            handler = OAuthLabHandler(role, self._record, self.oauth)
            auth["auth_exclude_mechanism"] = self.oauth.excluded
        behaviour: dict[str, Any] = {
            25: {"tls_context": server_ctx, "require_starttls": False},  # STARTTLS optional
            465: {"ssl_context": server_ctx, **auth},  # TLS from the first byte
            587: {"tls_context": server_ctx, "require_starttls": True, **auth},
        }[role]
        controller = LabController(
            handler,
            sock=sock,
            handshake_timeout=self._handshake_timeout,
            on_connect=lambda: self._count(role),
            cafile=str(self._cafile),
            server_hostname=SERVER_HOSTNAME,
            ident="smtp_magic-lab",
            data_size_limit=self._data_size_limit,
            **behaviour,
        )
        try:
            controller.start()
        except BaseException:
            sock.close()
            controller.stop(no_assert=True)
            raise
        self._controllers[role] = controller
        self._ports[role] = sock.getsockname()[1]

    def _self_test(self, role: int) -> None:
        """NOOP over verified TLS; Controller.start() does not prove TLS works (pitfall 5)."""
        assert self._cafile is not None
        ctx = ssl.create_default_context(cafile=str(self._cafile))
        port = self._ports[role]
        # local_hostname: smtplib's default, socket.getfqdn(), can take a while on some hosts.
        options: dict[str, Any] = {"timeout": SELF_TEST_TIMEOUT, "local_hostname": "localhost"}
        try:
            if role == 465:
                with smtplib.SMTP_SSL(HOST, port, context=ctx, **options) as smtp:
                    code, _ = smtp.noop()
            else:
                with smtplib.SMTP(HOST, port, **options) as smtp:
                    smtp.starttls(context=ctx)
                    code, _ = smtp.noop()
            if code != 250:
                raise smtplib.SMTPResponseException(code, b"NOOP refused")
        except (OSError, smtplib.SMTPException) as exc:
            raise RuntimeError(
                f"The lab's {role} role on {HOST}:{port} started but failed its self-test "
                f"({type(exc).__name__}: {exc}). Check that nothing intercepts local "
                f"connections, then try LabServer(ports={{{role}: 0}}) for another port."
            ) from exc

    def stop(self) -> None:
        """Stop every listener and remove the temporary CA directory. Safe to call twice."""
        controllers, self._controllers = self._controllers, {}
        self._behaviour = None
        for controller in controllers.values():
            controller.stop(no_assert=True)
        self._ports = {}
        if self._tmpdir is not None:
            folders.remove_folder(self._tmpdir)
            self._tmpdir = None
            self._cafile = None

    def refuse(self, kind: str | None) -> None:
        """Refuse every later attempt the way the persona's service does (None: stop).

        Raises:
            ValueError: The lab plays no persona, or the persona has no refusal ``kind``.
            RuntimeError: The lab is not running.
        """
        if self.persona == "plain":
            raise ValueError(
                "refuse() needs a persona: LabServer(persona='gmail' or 'microsoft365')."
            )
        if self._behaviour is None:
            raise RuntimeError("The lab is not running: call lab.start() first.")
        self._behaviour.refuse(kind)

    def __enter__(self) -> LabServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        """Whether the listeners are up."""
        return bool(self._controllers)

    @property
    def ports(self) -> dict[int, int]:
        """Role (25, 465, 587) -> the port bound on 127.0.0.1; empty until ``start()``."""
        return dict(self._ports)

    @property
    def cafile(self) -> str:
        """The path of the lab CA's PEM, to trust in clients (smtp_magic, openssl, swaks)."""
        if self._cafile is None:
            raise RuntimeError("The lab has no CA file until it starts: call lab.start() first.")
        return str(self._cafile)

    def settings(self, role: int = 587, **overrides: Any) -> Settings:
        """Return Settings that reach one role of this lab, with the demo account where needed.

        Args:
            role: 25, 465 or 587.
            **overrides: Settings fields to change, for example ``security="tls"``.

        Raises:
            ValueError: If ``role`` is not 25, 465 or 587.
            RuntimeError: If the lab is not running.
        """
        from smtp_magic.settings import Settings

        if role not in ROLES:
            raise ValueError(f"Unknown lab role {role!r}: choose 25, 465 or 587.")
        if not self.running:
            raise RuntimeError("The lab is not running: call lab.start() first.")
        login = role != 25  # port 25 relays without AUTH
        values: dict[str, Any] = {
            "host": HOST,
            "port": self._ports[role],
            # The mode a client uses on the real port. The lab listens on other port numbers,
            # where security="auto" would first wait for a greeting; pass security="auto" to see it.
            "security": "tls" if role == 465 else "starttls",
            "username": self.username if login else None,
            "password": self.password if login else None,
            "sender": DEMO_SENDER,
            "cafile": self.cafile,
        }
        values.update(overrides)
        if values.get("token") is not None:  # an OAuth2 login uses the token, not the password
            values["password"] = None
        return Settings(values.pop("host"), **values)

    @property
    def messages(self) -> list[ReceivedMessage]:
        """A copy of the messages kept, oldest first.

        The lab keeps the last ``keep`` messages (100) and at most ``keep_bytes`` of them
        (32 MiB), so a long session cannot fill the kernel's memory: ``dropped`` counts the
        older ones it let go.
        """
        with self._lock:
            return list(self._messages)

    @property
    def dropped(self) -> int:
        """How many received messages were dropped to keep ``messages`` within its bounds."""
        with self._lock:
            return self._received - len(self._messages)

    @property
    def connections(self) -> dict[int, int]:
        """Role -> TCP connections accepted since start (or the last ``clear()``)."""
        with self._lock:
            return dict(self._connections)

    def clear(self) -> None:
        """Forget received messages and reset the connection counts."""
        with self._lock:
            self._messages.clear()
            self._kept_bytes = self._received = 0
            self._connections = dict.fromkeys(ROLES, 0)

    def wait_for_messages(self, n: int, timeout: float = 5.0) -> list[ReceivedMessage]:
        """Block until at least ``n`` messages have arrived, and return those kept.

        Raises:
            TimeoutError: If fewer than ``n`` arrive within ``timeout`` seconds.
        """
        with self._lock:
            if not self._lock.wait_for(lambda: self._received >= n, timeout):
                raise TimeoutError(
                    f"The lab received {self._received} message(s) in {timeout:g} s, "
                    f"expected at least {n}. Check the send result, or wait longer."
                )
            return list(self._messages)

    def _record(self, received: ReceivedMessage) -> int:
        with self._lock:
            self._messages.append(received)
            self._received += 1
            self._kept_bytes += len(received.raw)
            while len(self._messages) > 1 and (
                len(self._messages) > self._keep or self._kept_bytes > self._keep_bytes
            ):
                self._kept_bytes -= len(self._messages.pop(0).raw)
            self._lock.notify_all()
            return self._received

    def _count(self, role: int) -> None:
        with self._lock:
            self._connections[role] += 1

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        if not isinstance(data, LoginPassword):
            return AuthResult(success=False, handled=False)
        # Compare both fields in constant time: timing must not tell which one was wrong.
        user_ok = hmac.compare_digest(data.login, self.username.encode())
        password_ok = hmac.compare_digest(data.password, self.password.encode())
        ok = user_ok and password_ok
        return AuthResult(success=ok, handled=False, auth_data=self.username if ok else None)

    def __repr__(self) -> str:
        if not self.running:
            return "<LabServer stopped>"
        ports = ", ".join(f"{role}->{port}" for role, port in self._ports.items())
        persona = f", persona={self.persona!r}" if self.persona != "plain" else ""
        return f"<LabServer on {HOST} ({ports}){persona}, cafile={self.cafile!r}>"
