"""The browser sign-in's way back: a one-shot HTTP listener on 127.0.0.1, or the final address pasted by the user."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from smtp_magic.errors import SignInError

__all__ = ["LoopbackReceiver", "parse_redirect"]

_DONE_PAGE = (
    b"<!doctype html><title>Signed in</title><p>smtp_magic received the sign-in. "
    b"You can close this window and go back to the notebook or terminal.</p>"
)


class LoopbackReceiver:
    """Listens on 127.0.0.1 for the one redirect that ends a browser sign-in (RFC 8252 section 7.3).

    Args:
        host_name: The host name in the redirect URI ("localhost" for Microsoft, whose app
            registrations list ``http://localhost``; "127.0.0.1" for Google, as its docs advise).
            The socket is always bound to 127.0.0.1 only.
    """

    def __init__(self, host_name: str = "127.0.0.1") -> None:
        self._received: str | None = None
        self._event = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                # Favicon requests and the like must not end the wait.
                if "code=" in self.path or "error=" in self.path:
                    receiver._received = self.path
                    receiver._event.set()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.end_headers()
                self.wfile.write(_DONE_PAGE)

            def do_POST(self) -> None:
                # response_mode=form_post (RFC 9700 section 4.3.1 prefers it): the result comes
                # in the body, not in the address, so it stays out of the browser's history.
                length = min(int(self.headers.get("Content-Length") or 0), 65536)
                body = self.rfile.read(length).decode("ascii", "replace")
                self.path = "/?" + body
                self.do_GET()

            def log_message(self, format: str, *args: Any) -> None:
                # The request line holds the authorization code: never log it.
                pass

        self._server = HTTPServer(("127.0.0.1", 0), Handler)
        self.redirect_uri = f"http://{host_name}:{self._server.server_port}/"
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="oauth-loopback", daemon=True
        )
        self._thread.start()

    def wait(self, timeout: float) -> str | None:
        """The full redirected URL, or None when nothing came within ``timeout`` seconds."""
        self._event.wait(timeout)
        path = self._received
        return None if path is None else self.redirect_uri.rstrip("/") + path

    def close(self) -> None:
        """Stop listening."""
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> LoopbackReceiver:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def parse_redirect(url: str, *, state: str | None, provider: str) -> dict[str, str]:
    """The query parameters of the address the browser ended on, checked.

    Args:
        url: What the browser was redirected to (received, or pasted by the user).
        state: The ``state`` sent with the request; a mismatch means the address belongs to
            another sign-in (RFC 6749 section 10.12, cross-site request forgery).
        provider: "Microsoft" or "Google", for the messages.

    Raises:
        SignInError: not a redirect address, the provider reported an error, or the state differs.
    """
    query = parse_qs(urlsplit(url.strip()).query)
    params = {k: v[0] for k, v in query.items() if v}
    if "error" in params:
        description = params.get("error_description", "").replace("+", " ")
        denied = params["error"] == "access_denied"
        raise SignInError(
            f"{provider} did not sign you in ({params['error']}"
            + (f": {description}" if description else "")
            + "). "
            + (
                "You cancelled or did not allow access: sign in again and choose Allow."
                if denied
                else "Sign in again; if it repeats, check the app registration."
            )
        )
    if "code" not in params:
        raise SignInError(
            f"that address carries no sign-in result from {provider}: paste the whole address "
            "from the browser's address bar after signing in (it starts with http://127.0.0.1 "
            "or http://localhost and contains code=)."
        )
    if state is not None and params.get("state") != state:
        raise SignInError(
            "that address belongs to another sign-in attempt (its state does not match): "
            "start the sign-in again and paste the address it ends on."
        )
    return params
