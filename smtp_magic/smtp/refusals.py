"""Known refusals of Microsoft 365, Gmail and every server, each with its fix in the provider's own terms.

A refusal is matched on the reply code, the enhanced status code (RFC 3463) and a pattern of the
reply text. Provider rules come first; a provider rule applies when the provider is recognised
(from the settings' host, the server's greeting, or a discovery result) or when its text is one
only that provider sends. Each rule cites the public source its text was confirmed with. Fixes
may carry :mod:`smtp_magic.phrasing` markers, so they read right in Python, the CLI, the magic and
the form.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from smtp_magic.discovery import providers
from smtp_magic.phrasing import action, setting

__all__ = ["REFUSALS", "Refusal", "enhanced_status", "explain", "match", "recognise"]

_STATUS = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")


@dataclass(frozen=True)
class Refusal:
    """One known refusal and its fix.

    Attributes:
        key: A stable name, e.g. "m365-smtp-auth-disabled".
        providers: Provider keys it belongs to; empty for the generic rules.
        codes: Reply codes it applies to; empty means any.
        status: An enhanced status code or its prefix ("5.7.139", "4.7."); "" means any.
        pattern: A regular expression the reply text must match (case-insensitive); "" any.
        unique: True when the text is the provider's own, so it identifies the provider.
        meaning: What happened, in the provider's terms.
        fix: What to change, in the provider's terms.
        source: Where the text and the fix were confirmed.
        anonymous: True when it applies only to a client that did not log in, at a server
            that offers AUTH.
    """

    key: str
    providers: tuple[str, ...]
    codes: tuple[int, ...]
    status: str
    pattern: str
    unique: bool
    meaning: str
    fix: str
    source: str
    anonymous: bool = False

    def matches(
        self, code: int, reply: str, provider: str | None, *, anonymous: bool = False
    ) -> bool:
        """Whether this rule explains ``code``/``reply`` from ``provider`` (a key or None).

        ``anonymous``: the client did not log in, and the server offers AUTH.
        """
        if self.anonymous and not anonymous:
            return False
        if self.codes and code not in self.codes:
            return False
        found = enhanced_status(reply)
        if self.status and not (found or "").startswith(self.status):
            return False
        if self.pattern and not re.search(self.pattern, reply, re.IGNORECASE):
            return False
        return not self.providers or provider in self.providers or self.unique


_M365 = ("microsoft365", "outlook")
_GOOGLE = ("gmail", "google-workspace")
# Each front end names its own way to sign in (smtp-magic login, %smtp_login, the Sign in button).
_OAUTH = "sign in with OAuth2 instead: " + action("sign_in", "microsoft")

REFUSALS: tuple[Refusal, ...] = (
    # --- Microsoft 365 / Outlook.com ----------------------------------------------------------
    Refusal(
        "m365-smtp-auth-disabled", _M365, (535,), "5.7.139", r"SmtpClientAuthentication is disabled", True,
        "Microsoft 365 has SMTP AUTH turned off for this mailbox or tenant.",
        "An admin enables it (Set-CASMailbox -Identity <mailbox> -SmtpClientAuthenticationDisabled "
        "$false, or Set-TransportConfig -SmtpClientAuthenticationDisabled $false for the tenant), "
        "or " + _OAUTH + ".",
        # simonrob/email-oauth2-proxy#193, nodemailer#1484; learn.microsoft.com/exchange/
        # clients-and-mobile-in-exchange-online/authenticated-client-smtp-submission
        "simonrob/email-oauth2-proxy#193; Microsoft Learn: authenticated client SMTP submission",
    ),
    Refusal(
        "m365-basic-auth-disabled", _M365, (535,), "5.7.139", r"basic authentication is disabled", True,
        "Microsoft 365 refuses passwords (basic authentication) here, often because the tenant "
        "uses Security defaults; an app password takes the same path and fails too.",
        _OAUTH[0].upper() + _OAUTH[1:] + ", or ask an admin to allow SMTP AUTH for this mailbox.",
        # rpremraj/mailR#107, nodemailer#1714; app passwords do not help: lukevella/rallly#3154
        "rpremraj/mailR#107; lukevella/rallly#3154",
    ),
    Refusal(
        "m365-bad-credentials", _M365, (535,), "5.7.", r"credentials were incorrect|Authentication unsuccessful", False,
        "Microsoft 365 did not accept the username and password.",
        "The username is the full mailbox address; check the password. With multi-factor "
        "sign-in a password cannot work: " + _OAUTH + ".",
        # MicrosoftDocs/OfficeDocs-Exchange PR#2648 (fix issues with printers, scanners and LOB
        # applications: "Error: Authentication unsuccessful"), MailKit#700
        "MicrosoftDocs/OfficeDocs-Exchange PR#2648; jstedfast/MailKit#700",
    ),
    Refusal(
        "m365-basic-not-supported", _M365, (550,), "5.7.30", r"Basic authentication is not supported", True,
        "Microsoft 365 no longer accepts basic authentication (a password) for client "
        "submission (message center MC786329).",
        _OAUTH[0].upper() + _OAUTH[1:] + ".",
        # OpenCTI-Platform/opencti#12069 (research/providers-oauth-2026.md section 1)
        "OpenCTI-Platform/opencti#12069; MC786329",
    ),
    Refusal(
        "m365-not-authenticated", _M365, (530,), "5.7.57", r"not authenticated", True,
        "Microsoft 365 accepts mail only after a login (it never relays anonymously).",
        "Set " + setting("username") + " to the mailbox address and log in (password or OAuth2).",
        # simonrob/email-oauth2-proxy#315, MicrosoftDocs/OfficeDocs-Exchange#1615
        "simonrob/email-oauth2-proxy#315; MicrosoftDocs/OfficeDocs-Exchange#1615",
    ),
    Refusal(
        "m365-send-as", _M365, (550,), "5.7.60", r"permissions to send as this sender", True,
        "Microsoft 365 lets a mailbox send only as itself unless it holds Send As permission.",
        "Make the From address (" + setting("sender") + ") the address you log in with, or have "
        "an admin grant Send As (Add-RecipientPermission <from-address> -Trustee <login> "
        "-AccessRights SendAs).",
        # gophish/gophish#1600, swiftmailer/swiftmailer#1030, frappe/bench#1457
        "gophish/gophish#1600; swiftmailer/swiftmailer#1030",
    ),
    Refusal(
        "m365-send-as-denied", _M365, (554,), "5.2.", r"SendAsDenied", True,
        "Microsoft 365 refused to submit a message whose From is not the logged-in mailbox "
        "(SendAsDeniedException).",
        "Make the From address (" + setting("sender") + ") the address you log in with, or have "
        "an admin grant Send As on that address.",
        # MicrosoftDocs/OfficeDocs-Support#1187, rss2email/rss2email#147
        "MicrosoftDocs/OfficeDocs-Support#1187; rss2email/rss2email#147",
    ),
    Refusal(
        "m365-thread-limit", _M365, (432,), "4.3.2", r"thread limit exceeded", True,
        "Microsoft 365 limits how many connections one mailbox may submit on at once, and "
        "allows 30 messages a minute.",
        "Send over one connection and pace it, e.g. send_many(messages, settings, rate='30/min'); "
        "retry this message in a minute.",
        # timeoff-management#308; OfficeDocs-Exchange PR#2409 (432 4.3.2); 30 messages a minute:
        # MicrosoftDocs/OfficeDocs-Support PR#1488
        "timeoff-management/timeoff-management-application#308; OfficeDocs-Support PR#1488",
    ),
    Refusal(
        "m365-daily-quota", _M365, (554, 550), "5.", r"SubmissionQuotaExceeded", True,
        "Microsoft 365's sending quota is used up (10,000 recipients a day per mailbox).",
        "Wait until the 24-hour window frees up; bulk mail belongs on a sending service.",
        # MicrosoftDocs/OfficeDocs-Support#1150 and PR#1488
        "MicrosoftDocs/OfficeDocs-Support#1150",
    ),
    # --- Gmail / Google Workspace --------------------------------------------------------------
    Refusal(
        "gmail-app-password", _GOOGLE, (534,), "5.7.9", r"Application-specific password required", True,
        "Google does not accept the account password from apps when 2-Step Verification is on.",
        "Create an app password at myaccount.google.com/apppasswords and use it as the "
        "password (" + action("password_source") + "), or sign in with Google (OAuth2): " + action("sign_in", "google") + ".",
        # mageplaza/magento-2-smtp#181, PHPMailer#1708, Der-Henning/tgtg#517;
        # support.google.com/accounts/answer/185833
        "mageplaza/magento-2-smtp#181; PHPMailer/PHPMailer#1708",
    ),
    Refusal(
        "gmail-bad-credentials", _GOOGLE, (535,), "5.7.8", r"Username and Password not accepted", True,
        "Google did not accept the username and password; it no longer accepts the account "
        "password from apps at all (\"less secure apps\" ended in 2022, 2025 for Workspace).",
        "The username is the full address; use an app password (needs 2-Step Verification) or "
        "sign in with Google (OAuth2): " + action("sign_in", "google") + ".",
        # jef/streetmerchant#1190, mageplaza/magento-2-smtp#178; support.google.com/mail/?p=BadCredentials
        "jef/streetmerchant#1190; mageplaza/magento-2-smtp#178",
    ),
    Refusal(
        "gmail-auth-required", _GOOGLE, (530,), "5.", r"Authentication Required", False,
        "Gmail accepts mail only after a login.",
        "Set " + setting("username") + " to the full Gmail address and log in (app password or "
        "OAuth2).",
        # chenjj/espoofer#42 (530-5.7.0), PHPMailer#1384 (530-5.5.1)
        "chenjj/espoofer#42; PHPMailer/PHPMailer#1384",
    ),
    Refusal(
        "gmail-try-later", _GOOGLE, (421,), "4.7.0", r"Try again later", False,
        "Gmail is limiting connections from this network or account for now.",
        "Wait a few minutes, then retry; send many messages over one connection with pacing "
        "(send_many(..., rate='20/min')).",
        # dawidd6/action-send-mail#196, calcom/cal.diy#5254
        "dawidd6/action-send-mail#196; calcom/cal.diy#5254",
    ),
    Refusal(
        "gmail-daily-limit", _GOOGLE, (550,), "5.4.5", r"Daily user sending (limit|quota) exceeded", True,
        "Gmail's daily sending limit is reached (about 500 recipients a day for gmail.com, "
        "2,000 for Workspace: support.google.com/a/answer/166852).",
        "Wait up to 24 hours; for bulk mail use a sending service (SES, SendGrid, Mailgun, "
        "Postmark).",
        # gen-smtp/gen_smtp#140, woowacourse-teams/2025-ah-madda#635
        "gen-smtp/gen_smtp#140; woowacourse-teams/2025-ah-madda#635",
    ),
    Refusal(
        "gmail-blocked-content", _GOOGLE, (552,), "5.7.0", r"content presents a potential", True,
        "Gmail blocked the message for its content: executables, and archives that contain "
        "them, are refused (support.google.com/mail/answer/6590).",
        "Remove the attachment, or share it as a link.",
        # nylas/nylas-mail#1296
        "nylas/nylas-mail#1296",
    ),
    # --- every provider (RFC 3463 enhanced status codes) -------------------------------------
    Refusal(
        "login-required", (), (550, 553, 554), "5.7.", r"", False,
        "The server refused a client that did not log in: it offers AUTH, and takes mail only "
        "from clients that log in (as a submission service does).",
        "Set " + setting("username") + " (the password comes from " + action("password_source")
        + "), or sign in with OAuth2.",
        # RFC 6409 section 4.3; Postfix answers "554 5.7.1 <rcpt>: Recipient address rejected:
        # Access denied" (tests/test_postfix.py). A 530 is the generic rules' "requires a login".
        "RFC 6409 section 4.3; RFC 3463 section 3.8",
        anonymous=True,
    ),
    Refusal(
        "relay-denied", (), (550, 551, 554), "5.7.1", r"relay", False,
        "The server will not relay this message for you: it takes mail for other domains only "
        "from clients that log in.",
        "Log in (" + setting("username") + ") on your provider's submission port (587 or 465), "
        "not port 25.",
        # RFC 3463 section 3.8 (X.7.1 delivery not authorized); RFC 6409 section 4.3
        "RFC 3463 section 3.8; RFC 6409 section 4.3",
    ),
    Refusal(
        "unknown-user", (), (550, 551, 553), "5.1.1", r"", False,
        "The recipient's address does not exist at its domain.",
        "Check the spelling of the address.",
        # RFC 3463 section 3.2 (X.1.1 bad destination mailbox address)
        "RFC 3463 section 3.2",
    ),
    Refusal(
        "throttled", (), (421, 450, 451), "4.7.", r"rate|throttl|too many|try again later|limit", False,
        "The server is throttling this client for now (a temporary policy refusal).",
        "Wait, then send fewer messages per minute (send_many(..., rate='10/min')).",
        # RFC 3463 section 3.8 (X.7.x security or policy status), 4.X.X is persistent transient
        "RFC 3463 sections 3.1 and 3.8",
    ),
)  # fmt: skip


def enhanced_status(reply: str) -> str | None:
    """The first enhanced status code (RFC 3463) in a reply text, e.g. "5.7.139", or None."""
    found = _STATUS.search(reply)
    return ".".join(found.groups()) if found else None


_FROM_DISCOVERY: dict[str, str] = {}  # host -> provider key, learnt from discover()


def remember(host: str, provider: str) -> None:
    """Remember that ``discover()`` found ``host`` for a domain that ``provider`` runs.

    A custom domain's SRV record or autoconfig file can name a host of its own (say
    ``smtp.contoso.com``) while its MX shows Microsoft 365 behind it: the host name alone would
    not say whose refusals to expect.
    """
    _FROM_DISCOVERY[host.lower().rstrip(".")] = provider


def recognise(host: str = "", greeting: str = "", provider: str | None = None) -> str | None:
    """The provider key for a server: given, learnt from ``discover()``, or from its host or greeting.

    Args:
        host: The host of the settings in use.
        greeting: The server's 220 greeting (its first word is usually its host name).
        provider: A provider key already known (e.g. from ``discover()``); it wins.
    """
    if provider:
        return provider
    learnt = _FROM_DISCOVERY.get(host.lower().rstrip("."))
    if learnt:
        return learnt
    known = providers.by_host(host)
    if known is None and greeting.strip():
        words = greeting.split()
        name = words[1] if words[0].isdigit() and len(words) > 1 else words[0]
        known = providers.by_host(name.lstrip("-"))
    return known.key if known else None


def match(
    code: int, reply: str, provider: str | None = None, *, anonymous: bool = False
) -> Refusal | None:
    """The known refusal that explains ``code``/``reply``, provider rules first, or None.

    ``anonymous``: the client did not log in, and the server offers AUTH.
    """
    text = " ".join(reply.split())
    return next(
        (rule for rule in REFUSALS if rule.matches(code, text, provider, anonymous=anonymous)),
        None,
    )


def explain(
    code: int, reply: str, *, host: str = "", greeting: str = "", provider: str | None = None
) -> str | None:
    """ "What happened. What to change." for a known refusal, with phrasing markers, or None."""
    rule = match(code, reply, recognise(host, greeting, provider))
    return f"{rule.meaning} {rule.fix}" if rule else None
