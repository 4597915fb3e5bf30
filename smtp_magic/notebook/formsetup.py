"""The form's "Find settings" button: discover() the address, fill the server fields, say how to log in."""

from __future__ import annotations

from typing import TYPE_CHECKING

from smtp_magic.discover import Discovery, discover
from smtp_magic.discovery.advice import next_steps
from smtp_magic.notebook.formview import escape, show

if TYPE_CHECKING:
    from smtp_magic.notebook.form import SendMailForm

__all__ = ["find_settings"]


def find_settings(form: SendMailForm, *, timeout: float = 5.0) -> None:
    """Look up ``form.address`` on the form's worker; fill Host, Port, Security, Username, From.

    The candidates are shown in the form's output. A candidate whose host came from DNS or HTTP
    outside the address's domain is never filled in by itself: the status asks to confirm it.
    """
    address = form.address.value.strip()
    if not address:
        form._status_error("SettingsError", "Type your email address into Address first.")
        return
    form.output.outputs = ()

    def job() -> Discovery:
        found = discover(address, timeout=timeout)
        show(form.output, found)
        best = next((c for c in found.candidates if not c.confirm), None)
        if best is None:
            why = found.notes[-1] if found.notes else "nothing found"
            if found.candidates:
                why = (
                    f"the only candidates lie outside {found.domain} and came from DNS or HTTP "
                    "(they may be forged): check them with your provider and type them in"
                )
            form._status_error("Find settings", f"No settings filled in: {why}.")
            return found
        form.host.value, form.port.value = best.host, best.port
        form.security.value = best.security
        form.username.value = best.username
        form.sender.value = found.address
        steps = "".join(f"<div>{escape(step)}</div>" for step in next_steps(best, "form"))
        form.status.value = (
            f"<b>Find settings</b>: filled in {escape(best.host)}:{best.port} "
            f"({escape(best.security)}), found via {escape(best.source)}.{steps}"
        )
        return found

    form._start(f"Looking up the settings for {escape(address)}...", job)
