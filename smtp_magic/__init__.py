"""smtp_magic: send email from Jupyter correctly and safely, and learn how SMTP ports and TLS work.

The public API::

    from smtp_magic import Settings, send, compose, probe, discover, LabServer, SMTPMagicError

Importing the package loads neither IPython, ipywidgets nor aiosmtpd: the lab, the form and
the magic load them when they are first used.
"""

import sys as _sys
import types as _types
from typing import TYPE_CHECKING as _TYPE_CHECKING
from typing import Any as _Any

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
from smtp_magic.settings import Settings

if _TYPE_CHECKING:
    from smtp_magic.bulk import BulkReport, MessageResult, send_many
    from smtp_magic.discover import Candidate, Discovery, discover
    from smtp_magic.lab.server import LabServer, ReceivedMessage
    from smtp_magic.message.compose import compose
    from smtp_magic.message.preview import MessagePreview, preview
    from smtp_magic.notebook.form import SendMailForm
    from smtp_magic.probe import probe
    from smtp_magic.report import PortProbe, ProbeReport, SendReport
    from smtp_magic.send import send
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
    "BulkReport": "smtp_magic.bulk",
    "MessageResult": "smtp_magic.bulk",
    "send_many": "smtp_magic.bulk",
    "Candidate": "smtp_magic.discover",
    "Discovery": "smtp_magic.discover",
    "discover": "smtp_magic.discover",
    "compose": "smtp_magic.message.compose",
    "MessagePreview": "smtp_magic.message.preview",
    "preview": "smtp_magic.message.preview",
    "probe": "smtp_magic.probe",
    "PortProbe": "smtp_magic.report",
    "ProbeReport": "smtp_magic.report",
    "SendReport": "smtp_magic.report",
    "send": "smtp_magic.send",
    "NotebookSend": "smtp_magic.sendnotebook",
    "SkipEmail": "smtp_magic.sendnotebook",
    "send_notebook": "smtp_magic.sendnotebook",
    "LabServer": "smtp_magic.lab.server",
    "ReceivedMessage": "smtp_magic.lab.server",
    "SendMailForm": "smtp_magic.notebook.form",
}


def __getattr__(name: str) -> _Any:
    # Everything but the settings and the errors loads on first use, so `import smtp_magic`
    # stays quick: the protocol, the messages, the lab (aiosmtpd, trustme), the front ends
    # (IPython, ipywidgets) and notebook reports.
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'smtp_magic' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


class _Package(_types.ModuleType):
    """The package module, keeping ``send``, ``probe`` and ``discover`` the functions.

    Importing a submodule sets the package's attribute of that name to the submodule; for a
    name that is also a lazily loaded function (``smtp_magic.send`` the module, ``send`` the
    function), that would hide the function from ``from smtp_magic import send``.
    """

    def __setattr__(self, name: str, value: _Any) -> None:
        if isinstance(value, _types.ModuleType) and name in _LAZY and name not in globals():
            return  # the submodule stays reachable through sys.modules and its full name
        super().__setattr__(name, value)


_sys.modules[__name__].__class__ = _Package


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
