"""smtp_magic: send email from Jupyter correctly and safely, and learn how SMTP ports and TLS work.

The public API::

    from smtp_magic import Settings, send, compose, probe, discover, LabServer, SMTPMagicError

Importing the package loads neither IPython, ipywidgets nor aiosmtpd: the lab, the form and
the magic load them when they are first used.
"""

from typing import TYPE_CHECKING as _TYPE_CHECKING
from typing import Any as _Any

from smtp_magic.bulk import BulkReport, MessageResult, send_many

# Imported here, not lazily: importing the submodule smtp_magic.discover would otherwise set
# the package's attribute `discover` to the module, hiding the function.
from smtp_magic.discover import Candidate, Discovery, discover
from smtp_magic.errors import (
    AuthenticationError,
    CertificateError,
    ComposeError,
    ConnectError,
    ConnectionLostError,
    CredentialsRefusedError,
    DeliveryUnknownError,
    MessageRejectedError,
    NotebookError,
    ProtocolError,
    RecipientsRejectedError,
    RejectedError,
    SecurityMismatchError,
    SenderRejectedError,
    SettingsError,
    SignInError,
    SMTPMagicError,
    SMTPTimeoutError,
    STARTTLSInjectionError,
    TLSError,
    TLSHandshakeError,
    TLSUnavailableError,
)
from smtp_magic.message.compose import compose
from smtp_magic.message.preview import MessagePreview, preview
from smtp_magic.probe import probe
from smtp_magic.report import PortProbe, ProbeReport, SendReport
from smtp_magic.send import send
from smtp_magic.settings import Settings

if _TYPE_CHECKING:
    from smtp_magic.lab.server import LabServer, ReceivedMessage
    from smtp_magic.notebook.form import SendMailForm
    from smtp_magic.sendnotebook import NotebookSend, SkipEmail, send_notebook

__version__ = "0.1.0"

__all__ = [
    "AuthenticationError",
    "BulkReport",
    "Candidate",
    "CertificateError",
    "ComposeError",
    "ConnectError",
    "ConnectionLostError",
    "CredentialsRefusedError",
    "DeliveryUnknownError",
    "Discovery",
    "LabServer",
    "MessagePreview",
    "MessageRejectedError",
    "MessageResult",
    "NotebookError",
    "NotebookSend",
    "PortProbe",
    "ProbeReport",
    "ProtocolError",
    "ReceivedMessage",
    "RecipientsRejectedError",
    "RejectedError",
    "SMTPMagicError",
    "SMTPTimeoutError",
    "STARTTLSInjectionError",
    "SecurityMismatchError",
    "SendMailForm",
    "SendReport",
    "SenderRejectedError",
    "Settings",
    "SettingsError",
    "SignInError",
    "SkipEmail",
    "TLSError",
    "TLSHandshakeError",
    "TLSUnavailableError",
    "compose",
    "discover",
    "load_ipython_extension",
    "preview",
    "probe",
    "send",
    "send_many",
    "send_notebook",
    "unload_ipython_extension",
]

_LAZY = {
    "NotebookSend": "smtp_magic.sendnotebook",
    "SkipEmail": "smtp_magic.sendnotebook",
    "send_notebook": "smtp_magic.sendnotebook",
    "LabServer": "smtp_magic.lab.server",
    "ReceivedMessage": "smtp_magic.lab.server",
    "SendMailForm": "smtp_magic.notebook.form",
}


def __getattr__(name: str) -> _Any:
    # The lab (aiosmtpd, trustme), the front ends (IPython, ipywidgets) and notebook reports
    # load on first use, so `import smtp_magic` stays quick.
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'smtp_magic' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def load_ipython_extension(ipython: _Any) -> None:
    """``%load_ext smtp_magic``: register %%sendmail, %smtp_probe, %smtp_lab, %sendmail_form,
    %smtp_setup, %smtp_login and %smtp_logout."""
    from smtp_magic.notebook.display import show_error_diagrams
    from smtp_magic.notebook.magic import load_ipython_extension as load

    load(ipython)
    show_error_diagrams(ipython)  # a raised error shows the conversation, its failed step red


def unload_ipython_extension(ipython: _Any) -> None:
    """``%unload_ext smtp_magic``: remove the magics again."""
    from smtp_magic.notebook.display import hide_error_diagrams
    from smtp_magic.notebook.magic import unload_ipython_extension as unload

    unload(ipython)
    hide_error_diagrams(ipython)
