"""The exceptions smtp_magic raises: each says what happened, why, and what to change.

The tree (a reader sees the whole hierarchy before the code)::

    SMTPMagicError
    ├── SettingsError (ValueError)            invalid Settings, magic options or form input
    ├── ComposeError (ValueError)             a message that cannot be built (bad address, header injection)
    ├── ConnectError (ConnectionError)        nothing listening, host name not found, network unreachable
    ├── SMTPTimeoutError (TimeoutError)       a phase (connect, greeting, TLS, EHLO, AUTH, DATA...) took too long
    ├── ConnectionLostError (ConnectionError) the server closed the connection; nothing was delivered
    ├── SecurityMismatchError                 TLS against a plaintext port, or plaintext against an implicit-TLS port
    ├── TLSError
    │   ├── CertificateError                  untrusted CA, self-signed, expired, wrong host name
    │   ├── TLSUnavailableError               STARTTLS not offered or refused: refusing to continue in plaintext
    │   ├── TLSHandshakeError                 the handshake failed for another reason (e.g. only TLS 1.0 offered)
    │   └── STARTTLSInjectionError            bytes followed the STARTTLS 220 reply (response injection)
    ├── CredentialsRefusedError               would have sent a password without TLS; nothing was sent
    ├── AuthenticationError                   the server rejected the login, or offers no usable AUTH
    ├── RejectedError                         the server refused part of the transaction (code, reply)
    │   ├── SenderRejectedError               MAIL FROM refused
    │   ├── RecipientsRejectedError           every recipient refused (``recipients`` maps address -> (code, text))
    │   └── MessageRejectedError              DATA refused, or the message is larger than the server's SIZE
    ├── DeliveryUnknownError                  lost after the message data, before the server confirmed it
    ├── NotebookError                         a notebook run by send_notebook failed (``cell`` names the cell)
    ├── ProtocolError                         the server answered something SMTP does not allow
    └── SignInError                           no OAuth2 token: signing in failed or is needed (``command``)

Every error carries structured fields (``host``, ``port``, ``security``, ``phase``, ``code``,
``reply``), never contains a secret, and renders in IPython without a traceback.

The fix in a message is phrased for the front end that shows it, from one text: the message
names settings and actions with :mod:`smtp_magic.phrasing` markers; ``str(exc)`` and
``exc.message`` read as Python (``security='starttls'``), ``exc.phrased("cli")`` as the command
line (``--security starttls``), ``"magic"`` as ``%%sendmail`` options, ``"form"`` as form fields.
A front end that re-raises sets ``exc.front_end`` so IPython's rendering uses its phrasing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from smtp_magic.diagram import Diagram

from smtp_magic.phrasing import render
from smtp_magic.printable import printable

__all__ = [
    "AuthenticationError",
    "CertificateError",
    "ComposeError",
    "ConnectError",
    "ConnectionLostError",
    "CredentialsRefusedError",
    "DeliveryUnknownError",
    "MessageRejectedError",
    "NotebookError",
    "ProtocolError",
    "RecipientsRejectedError",
    "RejectedError",
    "SMTPMagicError",
    "SMTPTimeoutError",
    "STARTTLSInjectionError",
    "SecurityMismatchError",
    "SenderRejectedError",
    "SettingsError",
    "SignInError",
    "TLSError",
    "TLSHandshakeError",
    "TLSUnavailableError",
]


class SMTPMagicError(Exception):
    """Base class of every error smtp_magic raises on purpose.

    Args:
        message: One or two sentences: what happened, why, and what to change; settings and
            actions in it may be :mod:`smtp_magic.phrasing` markers.
        host: The server's host name, when a server is involved.
        port: The server's port.
        security: The security mode in use ("tls", "starttls", "plain" or "auto").
        phase: The step that failed ("connect", "greeting", "tls", "ehlo", "starttls", "auth",
            "mail", "rcpt", "data", ...).
        code: The SMTP reply code, when the server answered.
        reply: The SMTP reply text, when the server answered.
        transcript: The conversation so far (AUTH payloads redacted), for teaching and debugging.
    """

    refusal: str | None = None
    """The key of the known provider refusal this is (:mod:`smtp_magic.smtp.refusals`), if any."""

    def __init__(
        self,
        message: str,
        *,
        host: str | None = None,
        port: int | None = None,
        security: str | None = None,
        phase: str | None = None,
        code: int | None = None,
        reply: str | None = None,
        transcript: Sequence[Any] = (),
    ) -> None:
        # The message quotes what servers said (a reply, a greeting): no escape sequence of
        # theirs reaches a terminal or a notebook through it.
        self.template = printable(message, keep="\n")
        self.message = render(self.template, "python")
        self.front_end = "python"
        super().__init__(self.message)
        self.host = host
        self.port = port
        self.security = security
        self.phase = phase
        self.code = code
        self.reply = reply
        self.transcript = tuple(transcript)

    def __reduce__(self) -> tuple[Any, ...]:
        # BaseException pickles as cls(*args) plus __dict__; a subclass with a required
        # keyword-only field (expected, recipients) cannot be rebuilt that way. Rebuild without
        # calling __init__, then restore every field: pickle (multiprocessing, joblib) and
        # copy.deepcopy both go through here.
        return (_rebuild, (type(self), self.args), self.__dict__)

    def __str__(self) -> str:
        return self.phrased(self.front_end)

    def phrased(self, front_end: str) -> str:
        """The message with its fix phrased for ``front_end``: "python", "cli", "magic" or "form"."""
        return render(self.template, front_end)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"

    @property
    def where(self) -> str:
        """``host:port`` of the server involved, or an empty string."""
        if self.host is None:
            return ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}" if self.port is not None else host

    @property
    def temporary(self) -> bool:
        """True when retrying later may succeed (an SMTP 4xx reply, a timeout, a lost connection)."""
        return self.code is not None and 400 <= self.code < 500

    def _render_traceback_(self) -> list[str]:
        # IPython shows these lines instead of a traceback (ipython#14024: UsageError does not).
        return [f"{type(self).__name__}: {self}"]

    def diagram(self, front_end: str | None = None) -> Diagram | None:
        """The conversation up to the failure as a ladder diagram, the failed step in red.

        Args:
            front_end: Phrase the diagnosis for this front end ("python", "cli", "magic",
                "form"); by default the one the error was raised through.

        Returns:
            The diagram, or None when no server was talked to (a settings or compose error).
        """
        if not self.transcript and self.host is None:
            return None
        from smtp_magic.diagram import ladder

        where = self.where or "the server"
        return ladder(
            self.transcript,
            title=f"SMTP conversation with {where}: {type(self).__name__} at {self.phase or 'an unknown step'}",
            server=f"server {where}",
            failed_phase=self.phase,
            diagnosis=str(self) if front_end is None else self.phrased(front_end),
        )

    def _repr_html_(self) -> str:
        # Shown when the error is displayed (the notebook extension displays a raised one too):
        # the diagnosis, the conversation as a picture, the text transcript one click away.
        import html

        from smtp_magic.report import conversation_html

        head = (
            f"<p><strong style='color:#cf222e'>{html.escape(type(self).__name__)}</strong>: "
            f"{html.escape(str(self))}</p>"
        )
        return f"<div>{head}{conversation_html(self.diagram(), self.transcript)}</div>"


class SettingsError(SMTPMagicError, ValueError):
    """Invalid settings, magic options or form input; nothing was sent."""


class ComposeError(SMTPMagicError, ValueError):
    """The message cannot be built: a bad address, a line break in a header, an unknown attachment."""


class ConnectError(SMTPMagicError, ConnectionError):
    """No connection: nothing listening, the host name is unknown, or the network is unreachable."""


class SMTPTimeoutError(SMTPMagicError, TimeoutError):
    """A phase of the conversation took longer than the configured timeout."""

    @property
    def temporary(self) -> bool:
        return True


class ConnectionLostError(SMTPMagicError, ConnectionError):
    """The server closed the connection before the message was handed over; nothing was delivered."""

    @property
    def temporary(self) -> bool:
        return True


class SecurityMismatchError(SMTPMagicError):
    """The port speaks a different security mode from the one used.

    ``expected`` is the mode the port wants: "tls" (implicit TLS) or "starttls".
    """

    def __init__(self, message: str, *, expected: str, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.expected = expected


class TLSError(SMTPMagicError):
    """TLS could not be established safely."""


class CertificateError(TLSError):
    """The server's certificate did not verify.

    ``verify_code`` is OpenSSL's code (18 self-signed, 20 unknown issuer, 10 expired, 9 not yet
    valid, 62 host name mismatch, 64 IP address mismatch).
    """

    def __init__(self, message: str, *, verify_code: int | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.verify_code = verify_code


class TLSUnavailableError(TLSError):
    """STARTTLS was not offered or was refused; smtp_magic never continues in plaintext."""


class TLSHandshakeError(TLSError):
    """The TLS handshake failed for a reason other than the certificate."""


class STARTTLSInjectionError(TLSError):
    """Plaintext bytes followed the STARTTLS 220 reply (RFC 3207 section 6; CVE-2011-0411)."""


class CredentialsRefusedError(SMTPMagicError):
    """smtp_magic refused to send a password over a connection without TLS."""


class AuthenticationError(SMTPMagicError):
    """The server rejected the username or password, or offers no mechanism smtp_magic can use."""


class RejectedError(SMTPMagicError):
    """The server refused part of the mail transaction; ``code`` and ``reply`` say how."""


class SenderRejectedError(RejectedError):
    """The server refused the sender (MAIL FROM)."""


class RecipientsRejectedError(RejectedError):
    """The server refused every recipient; ``recipients`` maps each address to (code, text)."""

    def __init__(
        self, message: str, *, recipients: dict[str, tuple[int, str]], **kwargs: Any
    ) -> None:
        super().__init__(message, **kwargs)
        self.recipients = dict(recipients)


class MessageRejectedError(RejectedError):
    """The server refused the message itself (DATA), or it exceeds the server's SIZE limit."""


class DeliveryUnknownError(SMTPMagicError, ConnectionError):
    """The message was sent, but the server's confirmation never came: it may have been delivered."""


class NotebookError(SMTPMagicError):
    """A notebook run by ``send_notebook`` failed: a cell raised, timed out, or the kernel died.

    ``cell`` is the 1-based number of the failing cell (None when unknown); ``notebook`` the
    executed notebook as far as it ran. Nothing was sent.
    """

    def __init__(
        self, message: str, *, cell: int | None = None, notebook: Any = None, **kwargs: Any
    ) -> None:
        super().__init__(message, **kwargs)
        self.cell = cell
        self.notebook = notebook


class ProtocolError(SMTPMagicError):
    """The server answered something the SMTP protocol does not allow at that point."""


class SignInError(SMTPMagicError):
    """No OAuth2 access token: the sign-in failed, was refused, or has to be done once by hand.

    ``command`` is the shell command that signs in (``smtp-magic login ...``), when one helps.
    """

    def __init__(self, message: str, *, command: str | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.command = command


def _rebuild(cls: type[SMTPMagicError], args: tuple[Any, ...]) -> SMTPMagicError:
    """An error of ``cls`` with ``args`` but no fields yet: unpickling then sets its ``__dict__``."""
    error = cls.__new__(cls)
    error.args = args
    return error
