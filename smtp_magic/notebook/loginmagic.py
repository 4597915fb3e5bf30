"""%smtp_login and %smtp_logout: sign in once with OAuth2, then %%sendmail and the form log in with the token."""

from __future__ import annotations

import html
import time
from collections.abc import Callable
from typing import Any

from IPython.core.magic import line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from smtp_magic.auth.oauth import Prompt
from smtp_magic.errors import SignInError, SMTPMagicError
from smtp_magic.notebook.base import DefaultsMagics

__all__ = ["LoginMagics", "form_sign_in_job", "prompt_bundle"]

PASTE_WAIT = 300.0  # seconds the form waits for the browser or a pasted address


def prompt_bundle(prompt: Prompt) -> dict[str, str]:
    """A Prompt as a display bundle: a link (and the code, large) in HTML, one line in text."""
    link = f'<a href="{html.escape(prompt.url)}" target="_blank">{html.escape(prompt.url)}</a>'
    if prompt.kind == "device":
        rich = (
            f"<p>To sign in, open {link} and enter the code "
            f"<code style='font-size:1.3em'>{html.escape(prompt.code)}</code></p>"
        )
    else:
        rich = f"<p>Sign in in your browser: {link}</p>"
    return {"text/html": rich, "text/plain": prompt.message}


def form_sign_in_job(tokens: Any, form: Any) -> Callable[[], str]:
    """The form's Sign in: a job for its worker thread that shows the code or link in the form.

    A click is a person at the front end, so there is no headless check (``interactive=True``).
    Microsoft signs in with a device code, or in the browser when the form's "Sign in with" says
    Browser; Google always in the browser. A browser sign-in takes whichever comes first: the
    redirect to this machine's listener (a local browser) or the address pasted into the form's
    Paste field (a browser that cannot reach the kernel: JupyterHub, Binder).
    """
    status, paste_box = form.status, form.paste_box
    browser = tokens.provider == "google" or form.signin_method.value == "browser"

    def show(prompt: Prompt) -> None:
        status.value = prompt_bundle(prompt)["text/html"]

    def paste(prompt: Prompt) -> str:
        status.value = prompt_bundle(prompt)["text/html"] + (
            "<p>After signing in: if this kernel runs on another machine, the browser shows an "
            "error page; paste its address in the Paste field below.</p>"
        )
        paste_box.layout.display = ""
        try:
            deadline = time.monotonic() + PASTE_WAIT
            while time.monotonic() < deadline:
                got = prompt.received(0.25) if prompt.received else None
                pasted, paste_box.value = paste_box.value.strip(), ""
                if got or pasted:
                    return str(got or pasted)
                if prompt.received is None:
                    time.sleep(0.25)
            return ""
        finally:
            paste_box.value, paste_box.layout.display = "", "none"

    def job() -> str:
        how: dict[str, Any] = {"method": "browser", "paste": paste} if browser else {}
        if tokens.provider == "google":
            how.pop("method", None)  # Google has only the browser flow
        try:
            account = str(tokens.sign_in(show, interactive=True, **how))
        except SignInError as exc:
            if "--browser" in exc.template and not browser:
                # Conditional Access blocks device codes here: the fix is the other choice.
                form.signin_method.value = "browser"
            raise
        status.value = (
            f"<b>Signed in</b> as {html.escape(account)}; Send now logs in with the token."
        )
        return account

    return job


def _show(prompt: Prompt) -> None:
    from IPython.display import display

    display(prompt_bundle(prompt), raw=True)


@magics_class
class LoginMagics(DefaultsMagics):
    """The sign-in magics; they set the ``SendMail.oauth_*`` traits that %%sendmail reads."""

    @magic_arguments()
    @argument("provider", choices=("microsoft", "google"), help="who issues the token")
    @argument(
        "--client-id", help="the app's client id (default: %%config SendMail.oauth_client_id)"
    )
    @argument("--username", help="the mailbox (default: %%config SendMail.username)")
    @argument("--tenant", help="Microsoft: organizations (default), consumers, or a tenant id")
    @argument("--authority", help="Microsoft: an authority URL (the lab's, a national cloud)")
    @argument("--cafile", help="extra CA file to trust for the authority (the lab's)")
    @argument("--client-secret-file", help="Google: the downloaded client_secret.json")
    @argument("--browser", action="store_true", help="browser sign-in instead of a device code")
    @argument("--paste", action="store_true", help="browser sign-in, then paste the final address")
    @argument(
        "--interactive",
        action="store_true",
        help="sign in even when the notebook runs headless (someone, or the lab, answers)",
    )
    @line_magic
    def smtp_login(self, line: str) -> None:
        """Sign in with OAuth2 once; %%sendmail and the form then send with the token.

        Microsoft signs in with a device code (a link and a code to type), or with --browser.
        Google signs in in the browser; on a remote kernel (JupyterHub, Binder) add --paste and
        paste the address the browser ends on. The token is kept in keyring, never in the
        notebook. Headless runs (papermill, nbconvert --execute) never start a sign-in.
        """
        args = parse_argstring(self.smtp_login, line)
        d = self.defaults
        d.oauth_provider = args.provider
        for trait, value in (
            ("oauth_client_id", args.client_id),
            ("username", args.username),
            ("oauth_tenant", args.tenant),
            ("oauth_authority", args.authority),
            ("oauth_cafile", args.cafile),
            ("oauth_client_secret_file", args.client_secret_file),
        ):
            if value is not None:
                setattr(d, trait, value)
        how: dict[str, Any] = {}
        if args.browser or args.paste:
            how["method"] = "browser"
        if args.paste:
            how["paste"] = self._paste
        try:
            username = d.username or (d.build_settings().username)
            tokens = d.token_provider(username)
            account = tokens.sign_in(_show, interactive=True if args.interactive else None, **how)
        except SMTPMagicError as exc:
            exc.front_end = "magic"
            raise
        print(
            f"Signed in to {args.provider.capitalize()} as {account}; the token is kept in "
            f"{tokens.store.where}. %%sendmail now logs in with it."
        )

    def _paste(self, prompt: Prompt) -> str:
        _show(prompt)
        # input() goes through the front end (a text box under the cell in Jupyter).
        return input("After signing in, paste the address the browser ended on: ").strip()

    @magic_arguments()
    @argument("--keep", action="store_true", help="only stop using the token; keep it stored")
    @line_magic
    def smtp_logout(self, line: str) -> None:
        """Sign out: forget the stored OAuth2 tokens (Google: revoke them) and use passwords again."""
        args = parse_argstring(self.smtp_logout, line)
        d = self.defaults
        if not d.oauth_provider:
            print("Not signed in (no %smtp_login in this session).")
            return
        provider = d.oauth_provider
        removed = False
        if not args.keep:
            tokens = d.token_provider(d.username or d.build_settings().username)
            removed = tokens.sign_out()
        d.oauth_provider = None
        what = "the stored tokens were removed" if removed else "nothing was stored"
        print(f"Signed out of {provider.capitalize()}: {what}; %%sendmail uses passwords again.")
