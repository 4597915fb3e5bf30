"""The built-in table of major mail providers: submission hosts, how to log in, and how to recognise them.

Each entry was checked against a public source, cited beside it: the provider's own documentation,
or Thunderbird's ISPDB (github.com/thunderbird/autoconfig, ``ispdb/*.xml``, as of March 2026),
which Thunderbird's account set-up uses. Only facts are taken from the ISPDB (host names, ports,
domains); its files are not bundled.

A provider is recognised by the address's domain, else (custom domains) by the domain's MX host
(``aspmx.l.google.com``: Google Workspace; ``*.mail.protection.outlook.com``: Microsoft 365) or
an ``include:`` of its SPF record (``sendgrid.net``). The hosts always come from this table, never
from DNS, so a forged MX or SPF answer can at worst point at a well-known provider's server.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "PROVIDERS",
    "Endpoint",
    "Login",
    "Provider",
    "by_domain",
    "by_host",
    "by_key",
    "by_mx",
    "by_spf",
    "ses_region",
]

Login = Literal["password", "app-password", "oauth2", "api-key"]


@dataclass(frozen=True)
class Endpoint:
    """One submission port of a provider: host, port and security mode ("tls" or "starttls")."""

    host: str
    port: int
    security: Literal["tls", "starttls"]


@dataclass(frozen=True)
class Provider:
    """A mail provider's submission settings and what identifies it.

    Attributes:
        key: A short name used by personas and refusal rules ("gmail", "microsoft365").
        name: The provider's name as users know it.
        endpoints: Submission endpoints, implicit TLS first where offered (RFC 8314 section 3).
        login: How to log in: a password, an app password, OAuth2, or an API key as password.
        username: The login name: ``%EMAILADDRESS%``, ``%EMAILLOCALPART%`` (as in the ISPDB), a
            literal (SendGrid's ``apikey``), or empty when the provider's console issues one.
        note: One line on what to do before the first send.
        oauth: The OAuth2 authority for ``login == "oauth2"`` ("google", "microsoft").
        domains: Address domains served.
        mx: MX host suffixes that identify the provider for custom domains.
        spf: SPF ``include:`` domains that identify a sending service.
        hosts: Host-name suffixes of the provider's servers (to recognise settings and greetings).
    """

    key: str
    name: str
    endpoints: tuple[Endpoint, ...]
    login: Login
    username: str
    note: str
    oauth: str | None = None
    domains: tuple[str, ...] = ()
    mx: tuple[str, ...] = ()
    spf: tuple[str, ...] = ()
    hosts: tuple[str, ...] = ()


def _both(host: str, *, implicit: bool = True) -> tuple[Endpoint, ...]:
    """465 (implicit TLS, preferred by RFC 8314) and 587 (STARTTLS) on one host."""
    pair = (Endpoint(host, 465, "tls"), Endpoint(host, 587, "starttls"))
    return pair if implicit else pair[1:]


def _tlds(stem: str, suffixes: str) -> tuple[str, ...]:
    return tuple(f"{stem}.{suffix}" for suffix in suffixes.split())


# Outlook.com's consumer domains: ISPDB hotmail.com.xml lists these (and more country variants).
_OUTLOOK_DOMAINS = (
    *("hotmail.com", "live.com", "msn.com", "outlook.com", "windowslive.com", "livemail.tw"),
    *_tlds(
        "outlook",
        "at be cl cz de dk es fr hu ie in it jp kr lv my ph pt sa sg sk co.id co.il co.th "
        "com.ar com.au com.br com.gr com.tr com.vn",
    ),
    *_tlds(
        "hotmail",
        "be ca cl cz de dk es fi fr gr hu it lt lv my nl no ph rs se sg sk co.id co.il co.in "
        "co.jp co.kr co.th co.uk co.za com.ar com.au com.br com.hk com.tr com.tw com.vn",
    ),
    *_tlds(
        "live",
        "at be ca cl cn de dk fi fr hk ie in it jp nl no ru se co.jp co.kr co.uk co.za com.ar "
        "com.au com.mx com.my com.ph com.pt com.sg",
    ),
)

PROVIDERS: tuple[Provider, ...] = (
    # ISPDB googlemail.com.xml: smtp.gmail.com 465 SSL, OAuth2 or password; 587 STARTTLS is
    # Google's documented alternative (support.google.com/a/answer/176600). Passwords need
    # 2-Step Verification and an app password since "less secure apps" ended (May 2022, and
    # May 2025 for Workspace; research/providers-oauth-2026.md section 1).
    Provider(
        key="gmail",
        name="Gmail",
        endpoints=_both("smtp.gmail.com"),
        login="oauth2",
        username="%EMAILADDRESS%",
        oauth="google",
        note="sign in with Google (OAuth2), or use an app password (needs 2-Step Verification)",
        domains=("gmail.com", "googlemail.com"),
        hosts=("gmail.com", "google.com", "googlemail.com"),
    ),
    Provider(
        key="google-workspace",
        name="Google Workspace",
        endpoints=_both("smtp.gmail.com"),
        login="oauth2",
        username="%EMAILADDRESS%",
        oauth="google",
        note="sign in with Google (OAuth2), or an app password if your admin allows them",
        # Workspace MX: aspmx.l.google.com and alt*.aspmx.l.google.com, or smtp.google.com
        # for domains set up since 2023 (ISPDB lists google.com as an MX domain).
        mx=("aspmx.l.google.com", "googlemail.com", "smtp.google.com", "google.com"),
        spf=("_spf.google.com",),
        hosts=("gmail.com", "google.com"),
    ),
    # ISPDB office365.com.xml: smtp.office365.com 587 STARTTLS, OAuth2; MX
    # *.mail.protection.outlook.com. Basic auth (SMTP AUTH with a password) is off unless an
    # admin enables it, and is being retired (MC786329).
    Provider(
        key="microsoft365",
        name="Microsoft 365",
        endpoints=(Endpoint("smtp.office365.com", 587, "starttls"),),
        login="oauth2",
        username="%EMAILADDRESS%",
        oauth="microsoft",
        note="sign in with Microsoft (OAuth2); passwords work only where an admin enabled SMTP AUTH",
        domains=("onmicrosoft.com",),
        mx=("mail.protection.outlook.com",),
        spf=("spf.protection.outlook.com",),
        hosts=("office365.com", "outlook.com", "office.com"),
    ),
    # ISPDB hotmail.com.xml: smtp-mail.outlook.com 587 STARTTLS, OAuth2 only (basic auth ended
    # on 16 September 2024).
    Provider(
        key="outlook",
        name="Outlook.com",
        endpoints=(Endpoint("smtp-mail.outlook.com", 587, "starttls"),),
        login="oauth2",
        username="%EMAILADDRESS%",
        oauth="microsoft",
        note="sign in with Microsoft (OAuth2); Outlook.com no longer accepts passwords for SMTP",
        domains=_OUTLOOK_DOMAINS,
        mx=("olc.protection.outlook.com",),
        hosts=("outlook.com", "hotmail.com", "live.com"),
    ),
    # ISPDB yahoo.com.xml: smtp.mail.yahoo.com 465 SSL; Yahoo's OAuth2 needs an app registered
    # with Yahoo, so an app password is the practical way.
    Provider(
        key="yahoo",
        name="Yahoo Mail",
        endpoints=_both("smtp.mail.yahoo.com"),
        login="app-password",
        username="%EMAILADDRESS%",
        note="generate an app password under Yahoo Account security",
        domains=(*_tlds("yahoo", "com ca de it fr es se co.in co.uk com.au com.br"), "ymail.com"),
        mx=("yahoodns.net",),
        hosts=("yahoo.com", "yahoodns.net"),
    ),
    # ISPDB me.com.xml: smtp.mail.me.com 587 STARTTLS; Apple requires an app-specific password.
    Provider(
        key="icloud",
        name="iCloud Mail",
        endpoints=(Endpoint("smtp.mail.me.com", 587, "starttls"),),
        login="app-password",
        username="%EMAILADDRESS%",
        note="generate an app-specific password at account.apple.com",
        domains=("icloud.com", "me.com", "mac.com"),
        mx=("mail.icloud.com",),
        spf=("icloud.com",),
        hosts=("me.com", "icloud.com"),
    ),
    # ISPDB messagingengine.com.xml: smtp.fastmail.com 465 SSL; 587 STARTTLS also documented
    # (fastmail.help/hc/en-us/articles/1500000278342).
    Provider(
        key="fastmail",
        name="Fastmail",
        endpoints=_both("smtp.fastmail.com"),
        login="app-password",
        username="%EMAILADDRESS%",
        note="create an app password under Settings > Privacy & Security",
        domains=("fastmail.com", "fastmail.fm"),
        mx=("messagingengine.com",),
        spf=("spf.messagingengine.com",),
        hosts=("fastmail.com", "messagingengine.com"),
    ),
    # ISPDB zoho.com.xml and zoho.eu.xml: 465 SSL and 587 STARTTLS.
    Provider(
        key="zoho",
        name="Zoho Mail",
        endpoints=_both("smtp.zoho.com"),
        login="password",
        username="%EMAILADDRESS%",
        note="your Zoho password, or an app-specific password if two-factor sign-in is on",
        domains=("zoho.com", "zohomail.com"),
        mx=("zoho.com",),
        spf=("zoho.com", "zcsend.net"),
        hosts=("zoho.com",),
    ),
    Provider(
        key="zoho-eu",
        name="Zoho Mail (EU)",
        endpoints=_both("smtp.zoho.eu"),
        login="password",
        username="%EMAILADDRESS%",
        note="your Zoho password, or an app-specific password if two-factor sign-in is on",
        domains=("zoho.eu", "zohomail.eu"),
        mx=("zoho.eu",),
        spf=("zoho.eu",),
        hosts=("zoho.eu",),
    ),
    # ISPDB gmx.net.xml, gmx.com.xml: 465 SSL and 587 STARTTLS.
    Provider(
        key="gmx",
        name="GMX",
        endpoints=_both("mail.gmx.net"),
        login="password",
        username="%EMAILADDRESS%",
        note="turn on POP3/IMAP access in the GMX settings first",
        domains=("gmx.net", "gmx.de", "gmx.at", "gmx.ch", "gmx.eu", "gmx.biz", "gmx.org"),
        mx=("gmx.net",),
        hosts=("gmx.net",),
    ),
    Provider(
        key="gmx-com",
        name="GMX (international)",
        endpoints=_both("mail.gmx.com"),
        login="password",
        username="%EMAILADDRESS%",
        note="turn on POP3/IMAP access in the GMX settings first",
        domains=("gmx.com", "gmx.us", "gmx.co.uk", "gmx.fr", "gmx.es", "gmx.it", "gmx.ca"),
        mx=("gmx.com",),
        hosts=("gmx.com",),
    ),
    # ISPDB web.de.xml: smtp.web.de 465 SSL and 587 STARTTLS; the login is the local part.
    Provider(
        key="webde",
        name="WEB.DE",
        endpoints=_both("smtp.web.de"),
        login="password",
        username="%EMAILLOCALPART%",
        note="turn on POP3/IMAP access in the WEB.DE settings first",
        domains=("web.de",),
        mx=("web.de",),
        hosts=("web.de",),
    ),
    # ISPDB aol.com.xml: smtp.aol.com 465 SSL; app passwords as for Yahoo.
    Provider(
        key="aol",
        name="AOL Mail",
        endpoints=(Endpoint("smtp.aol.com", 465, "tls"),),
        login="app-password",
        username="%EMAILADDRESS%",
        note="generate an app password under AOL Account security",
        domains=("aol.com", "aim.com", "netscape.net", "compuserve.com", "aol.de", "aol.co.uk"),
        hosts=("aol.com",),
    ),
    # Proton Mail has no public SMTP submission for personal accounts: Proton Mail Bridge runs
    # on this machine and listens on 127.0.0.1 (SMTP 1025 by default, STARTTLS) with a password
    # of its own and a self-signed certificate (proton.me/support/bridge-ssl-connection-issue).
    Provider(
        key="proton",
        name="Proton Mail (Bridge)",
        endpoints=(Endpoint("127.0.0.1", 1025, "starttls"),),
        login="password",
        username="%EMAILADDRESS%",
        note="run Proton Mail Bridge; use the port and password it shows, and export its "
        "certificate for cafile=",
        domains=("proton.me", "protonmail.com", "protonmail.ch", "pm.me"),
        mx=("protonmail.ch",),
        spf=("_spf.protonmail.ch",),
        hosts=("protonmail.ch", "proton.me"),
    ),
    # docs.aws.amazon.com/ses/latest/dg/smtp-connect.html: email-smtp.<region>.amazonaws.com,
    # 465 (TLS wrapper) and 587 (STARTTLS), with SES SMTP credentials (not the AWS keys).
    Provider(
        key="ses",
        name="Amazon SES",
        endpoints=_both("email-smtp.{region}.amazonaws.com"),
        login="password",
        username="",
        note="create SMTP credentials in the SES console (they differ from AWS access keys), "
        "in the region you send from",
        mx=("amazonaws.com",),
        spf=("amazonses.com",),
        hosts=("amazonaws.com",),
    ),
    # twilio.com/docs/sendgrid/for-developers/sending-email/integrating-with-the-smtp-api:
    # username is the literal "apikey", the password is an API key with Mail Send permission.
    Provider(
        key="sendgrid",
        name="SendGrid",
        endpoints=_both("smtp.sendgrid.net"),
        login="api-key",
        username="apikey",
        note="the username is literally 'apikey'; the password is an API key with Mail Send "
        "permission",
        mx=("sendgrid.net",),
        spf=("sendgrid.net",),
        hosts=("sendgrid.net",),
    ),
    # documentation.mailgun.com/docs/mailgun/user-manual/smtp-protocol/: SMTP credentials per
    # sending domain; EU accounts use smtp.eu.mailgun.org.
    Provider(
        key="mailgun",
        name="Mailgun",
        endpoints=_both("smtp.mailgun.org"),
        login="password",
        username="",
        note="use the sending domain's SMTP credentials (EU accounts: smtp.eu.mailgun.org)",
        mx=("mailgun.org",),
        spf=("mailgun.org",),
        hosts=("mailgun.org",),
    ),
    # postmarkapp.com/support/article/811: smtp.postmarkapp.com, ports 25, 2525, 587, STARTTLS
    # only; the Server API Token is both username and password.
    Provider(
        key="postmark",
        name="Postmark",
        endpoints=(Endpoint("smtp.postmarkapp.com", 587, "starttls"),),
        login="api-key",
        username="",
        note="the Server API Token is both the username and the password",
        mx=("postmarkapp.com",),
        spf=("spf.mtasv.net",),
        hosts=("postmarkapp.com", "mtasv.net"),
    ),
)

_SES_REGION = re.compile(r"inbound-smtp\.([a-z0-9-]+)\.amazonaws\.com\.?$")
DEFAULT_SES_REGION = "us-east-1"


def _under(name: str, suffix: str) -> bool:
    name, suffix = name.lower().rstrip("."), suffix.lower().rstrip(".")
    return name == suffix or name.endswith("." + suffix)


def by_key(key: str) -> Provider | None:
    """The provider with this key ("gmail", "microsoft365", ...), or None."""
    return next((p for p in PROVIDERS if p.key == key), None)


def by_domain(domain: str) -> Provider | None:
    """The provider whose addresses end in ``@domain`` exactly, or None."""
    return next((p for p in PROVIDERS if domain.lower().rstrip(".") in p.domains), None)


def by_mx(mx_host: str) -> Provider | None:
    """The provider behind an MX host (most specific suffix wins), or None."""
    matches = [(len(s), p) for p in PROVIDERS for s in p.mx if _under(mx_host, s)]
    if mx_host and _SES_REGION.search(mx_host.lower()) is None:
        matches = [(n, p) for n, p in matches if p.key != "ses"]  # other AWS hosts are not SES
    return max(matches, key=lambda pair: pair[0])[1] if matches else None


def by_spf(include: str) -> Provider | None:
    """The provider named by an SPF ``include:`` domain, or None."""
    return next((p for p in PROVIDERS if any(_under(include, s) for s in p.spf)), None)


def by_host(host: str) -> Provider | None:
    """The provider a server host name belongs to (from settings or a greeting), or None."""
    host = host.lower().rstrip(".")
    if not host or host == "localhost" or host.replace(".", "").isdigit() or ":" in host:
        return None  # an address says nothing about who runs the server (a lab, a Bridge)
    for provider in PROVIDERS:
        if any(_under(host, e.host) for e in provider.endpoints if "{" not in e.host):
            return provider
    for provider in PROVIDERS:
        if any(_under(host, suffix) for suffix in provider.hosts):
            return provider
    return None


def ses_region(mx_host: str) -> str:
    """The AWS region of an SES inbound MX host, or the default region."""
    found = _SES_REGION.search(mx_host.lower())
    return found.group(1) if found else DEFAULT_SES_REGION
