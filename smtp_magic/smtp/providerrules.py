"""Diagnosis rule for refusals a provider is known for: the fix in Microsoft's or Google's own terms.

It runs before the generic reply rules. When the server's reply (or the last reply before it
hung up, as Gmail does after ``421 4.7.0``) matches :data:`smtp_magic.smtp.refusals.REFUSALS`
for the provider recognised from the settings' host or the greeting, the error keeps the class
and fields the generic rules give it, and its message says what the provider means and how to
fix it there. Unknown refusals are left to the generic rules.
"""

from __future__ import annotations

import smtplib

from smtp_magic import errors
from smtp_magic.phrasing import strip_markers
from smtp_magic.smtp import refusals, replies
from smtp_magic.smtp.diagnosis import Context, Rule, reply_text

__all__ = ["RULES", "said"]


def said(c: Context) -> tuple[int, str] | None:
    """The reply code and text that ended the session, if the server gave one."""
    exc = c.exc
    if isinstance(exc, smtplib.SMTPRecipientsRefused) and exc.recipients:
        code, text = next(iter(exc.recipients.values()))
        return code, reply_text(text)
    if isinstance(exc, smtplib.SMTPResponseException) and exc.smtp_code >= 400:
        return exc.smtp_code, reply_text(exc.smtp_error)
    if isinstance(exc, smtplib.SMTPServerDisconnected | ConnectionError | EOFError):
        # The server said no and hung up (RFC 5321 section 3.8: 421 then close); smtplib then
        # reports only the hang-up. The refusal is the server's last reply in the transcript.
        lines = [line.text for line in c.session.transcript if line.direction == "S"]
        if lines and lines[-1][:3].isdigit() and lines[-1][:1] in "45":
            last = lines[-1][:3]
            tail: list[str] = []
            for line in reversed(lines):  # the last reply's lines (a multi-line reply)
                if line[:3] != last or len(tail) == 10:
                    break
                tail.insert(0, line[4:])
            return int(last), reply_text(" ".join(tail))
    return None


_REFUSED = {
    "auth": "refused the login",
    "mail": "refused the sender",
    "rcpt": "refused the recipients",
    "data": "refused the message",
    "data-end": "refused the message",
}


def _known_refusal(c: Context) -> errors.SMTPMagicError | None:
    found = said(c)
    if found is None or c.phase == "starttls":  # a STARTTLS refusal is about TLS first
        return None
    code, reply = found
    provider = refusals.recognise(c.settings.host, c.session.greeting or "")
    session = c.session
    # A sender or recipient refused a client that could have logged in and did not.
    anonymous = (
        c.phase in ("mail", "rcpt")
        and session.auth_mechanism is None
        and "auth" in session.extensions
    )
    rule = refusals.match(code, reply, provider, anonymous=anonymous)
    if rule is None:
        return None
    shown = strip_markers(reply)
    what = _REFUSED.get(c.phase, f"refused during {c.during}")
    # A 4xx or 5xx reply is a definite no, even after the data: nothing was delivered.
    message = (
        f"{c.where} {what} ({code} {shown}). {rule.meaning} {rule.fix} The message was not sent."
    )
    generic = None
    if isinstance(c.exc, smtplib.SMTPResponseException | smtplib.SMTPRecipientsRefused):
        generic = next((e for r in replies.RULES if (e := r(c)) is not None), None)
    if isinstance(c.exc, smtplib.SMTPRecipientsRefused) and generic is not None:
        # Keep the list of who was refused: the fix may concern only some of them.
        message = (
            f"{c.where} refused every recipient ({generic.reply}). {rule.meaning} {rule.fix} "
            "Nothing was sent."
        )
    error = generic or c.make(errors.RejectedError, message, code=code, reply=reply)
    error.template = message
    error.message = str(error.phrased("python"))
    error.args = (error.message,)
    error.refusal = rule.key
    return error


RULES: list[Rule] = [_known_refusal]
