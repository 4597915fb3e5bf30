"""The lab authority's HTTP routes: OpenID discovery, the sign-in and device pages, token, device code, revocation."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

from flask import Flask, Response, jsonify, request

from smtp_magic.lab.authoritystore import LAB_TENANT

if TYPE_CHECKING:
    from smtp_magic.lab.authority import OAuthAuthority

__all__ = ["add_routes", "form_page"]


_BASE = f"/{LAB_TENANT}/oauth2/v2.0"  # Microsoft's endpoints live under the tenant


def add_routes(app: Flask, server: Any, authority: OAuthAuthority) -> None:
    """Add every route to ``app``; ``server`` is authlib's AuthorizationServer."""
    _add_endpoints(app, server, authority)
    _add_pages(app, server, authority)


def _add_endpoints(app: Flask, server: Any, authority: OAuthAuthority) -> None:
    """What programs call: OpenID discovery, token, device code, revocation."""
    base = _BASE

    @app.get(f"/{LAB_TENANT}/v2.0/.well-known/openid-configuration")
    def discovery() -> Response:
        # What msal reads first (tenant discovery); the names follow OpenID Connect Discovery 1.0.
        url = authority.url
        return jsonify(
            {
                "issuer": f"{url}/{LAB_TENANT}/v2.0",
                "authorization_endpoint": f"{url}{base}/authorize",
                "token_endpoint": f"{url}{base}/token",
                "device_authorization_endpoint": f"{url}{base}/devicecode",
                "revocation_endpoint": f"{url}/revoke",
                "response_types_supported": ["code"],
                "grant_types_supported": [
                    "authorization_code",
                    "refresh_token",
                    "client_credentials",
                    "urn:ietf:params:oauth:grant-type:device_code",
                ],
            }
        )

    @app.post(f"{base}/token")
    def token() -> Any:
        authority.local.nonce = None
        return server.create_token_response()

    @app.post(f"{base}/devicecode")
    def devicecode() -> Any:
        return server.create_endpoint_response("device_authorization")

    @app.post("/revoke")
    def revoke() -> Any:
        return server.create_endpoint_response("revocation")


def _add_pages(app: Flask, server: Any, authority: OAuthAuthority) -> None:
    """What a person sees: the sign-in page and the device-code page."""
    base = _BASE

    @app.route(f"{base}/authorize", methods=["GET", "POST"])
    def authorize() -> Any:
        if request.method == "GET":
            try:
                server.get_consent_grant(end_user=None)
            except Exception as exc:  # authlib's OAuth2Error: shown, never redirected
                return Response(f"invalid request: {html.escape(str(exc))}", status=400)
            options = "".join(
                f'<option value="{html.escape(u)}">{html.escape(u)}</option>'
                for u in authority.users
            )
            body = (
                f'<label>Account <select name="user">{options}</select></label>'
                '<button name="decision" value="approve">Allow</button>'
                '<button name="decision" value="deny">Cancel</button>'
            )
            # The form posts back to this same address, query included, so it holds only the answer.
            return form_page("Sign in to the lab", body, {})
        user = request.form.get("user") if request.form.get("decision") == "approve" else None
        if user is not None and user not in authority.users:
            user = None
        try:
            grant = server.get_consent_grant(end_user=user)
        except Exception as exc:  # authlib's OAuth2Error
            return Response(f"invalid request: {html.escape(str(exc))}", status=400)
        answer = server.create_authorization_response(grant=grant, grant_user=user)
        if request.args.get("response_mode") == "form_post" and answer.status_code == 302:
            return _form_post(answer.headers["Location"])
        return answer

    @app.route("/device", methods=["GET", "POST"])
    def device() -> Response:
        if request.method == "GET":
            options = "".join(
                f'<option value="{html.escape(u)}">{html.escape(u)}</option>'
                for u in authority.users
            )
            body = (
                '<label>Code <input name="user_code"></label>'
                f'<label>Account <select name="user">{options}</select></label>'
                '<button name="decision" value="approve">Allow</button>'
                '<button name="decision" value="deny">Deny</button>'
            )
            fields = {k: v for k, v in request.args.items() if k != "user_code"}
            page = form_page("Enter the code shown on your device", body, fields)
            return page
        code = request.form.get("user_code", "").strip().upper()
        user = request.form.get("user", "")
        approved = request.form.get("decision") == "approve"
        if user not in authority.users or not authority.approve(code, user, approved=approved):
            return Response("That code is unknown or has expired.", status=400)
        verdict = "signed in" if approved else "denied"
        return Response(f"You have {verdict}; you can close this window.", mimetype="text/plain")


def form_page(title: str, body: str, fields: dict[str, str]) -> Response:
    """A minimal HTML page with one form (hidden fields kept), for the sign-in and device steps."""
    hidden = "".join(
        f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
        for k, v in fields.items()
    )
    page = (
        f"<!doctype html><title>{html.escape(title)}</title><h1>{html.escape(title)}</h1>"
        f'<form method="post">{hidden}{body}</form>'
    )
    return Response(page, mimetype="text/html")


def _form_post(location: str) -> Response:
    """OAuth 2.0 Form Post Response Mode: the result as a form the browser posts to the app."""
    from urllib.parse import parse_qsl, urlsplit

    parts = urlsplit(location)
    action = f"{parts.scheme}://{parts.netloc}{parts.path}"
    hidden = "".join(
        f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
        for k, v in parse_qsl(parts.query)
    )
    page = (
        f'<!doctype html><title>Signing in</title><form method="post" action="{html.escape(action)}">'
        f"{hidden}</form><script>document.forms[0].submit()</script>"
    )
    return Response(page, mimetype="text/html")
