"""authlib grants and endpoints for the lab's OAuth2 authority, backed by an AuthorityStore."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc8628 import DeviceAuthorizationEndpoint, DeviceCodeGrant
from authlib.oauth2.rfc8628.models import DeviceCredentialDict

from smtp_magic.lab.authoritystore import AuthorityStore, TokenRecord

if TYPE_CHECKING:
    from smtp_magic.lab.authority import OAuthAuthority

__all__ = ["install_grants"]

# Public clients (msal, the CLI) send no secret; Google's installed apps send theirs in the body.
_ANY_CLIENT = ["none", "client_secret_post", "client_secret_basic"]
_SECRET_ONLY = ["client_secret_post", "client_secret_basic"]


def _authority(holder: Any) -> OAuthAuthority:
    """The lab authority of a grant or endpoint (authlib gives each its ``server``)."""
    authority: OAuthAuthority = holder.server.lab_authority
    return authority


def _store(holder: Any) -> AuthorityStore:
    return _authority(holder).store


class AuthorizationCode(grants.AuthorizationCodeGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = _ANY_CLIENT

    def save_authorization_code(self, code: str, request: Any) -> None:
        data = request.payload.data
        _store(self).put_code(
            code,
            {
                "client_id": request.client.get_client_id(),
                "redirect_uri": request.payload.redirect_uri,
                "scope": request.payload.scope or "",
                "user": request.user,
                "nonce": data.get("nonce"),
                "code_challenge": data.get("code_challenge"),
                "code_challenge_method": data.get("code_challenge_method"),
                "expires_at": time.time() + 300,
            },
        )

    def query_authorization_code(self, code: str, client: Any) -> Any:
        with _store(self).lock:
            found = _store(self).codes.get(code)
        if not found or found["client_id"] != client.get_client_id():
            return None
        if found["expires_at"] < time.time():
            return None
        return _Code(code, found)

    def delete_authorization_code(self, authorization_code: Any) -> None:
        with _store(self).lock:
            _store(self).codes.pop(authorization_code.code, None)

    def authenticate_user(self, authorization_code: Any) -> Any:
        _authority(self).local.nonce = authorization_code.data.get("nonce")
        return authorization_code.data["user"]


class Refresh(grants.RefreshTokenGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = _ANY_CLIENT
    INCLUDE_NEW_REFRESH_TOKEN = True  # rotation, as Microsoft does

    def authenticate_refresh_token(self, refresh_token: str) -> TokenRecord | None:
        with _store(self).lock:
            record = _store(self).refresh.get(refresh_token)
        if record is None or record.revoked:
            return None
        return record

    def authenticate_user(self, credential: TokenRecord) -> Any:
        return credential.user

    def revoke_old_credential(self, refresh_token: TokenRecord) -> None:
        with _store(self).lock:
            _store(self).refresh.pop(refresh_token.refresh_token or "", None)


class ClientCredentials(grants.ClientCredentialsGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = _SECRET_ONLY


class DeviceEndpoint(DeviceAuthorizationEndpoint):  # type: ignore[misc]
    CLIENT_AUTH_METHODS = _ANY_CLIENT

    def __init__(self, server: Any) -> None:
        super().__init__(server)
        self.EXPIRES_IN = _authority(self).device_expires_in
        self.INTERVAL = _authority(self).device_interval

    def get_verification_uri(self) -> str:
        return f"{_authority(self).url}/device"

    def save_device_credential(self, client_id: str, scope: str, data: dict[str, Any]) -> None:
        record = dict(data, client_id=client_id, scope=scope)
        record["expires_at"] = time.time() + data["expires_in"]
        _store(self).put_device(data["device_code"], record)

    def create_endpoint_response(self, request: Any) -> Any:
        status, body, headers = super().create_endpoint_response(request)
        # Microsoft adds a ready-made sentence; msal users print flow["message"].
        body["message"] = (
            f"To sign in, use a web browser to open the page {body['verification_uri']} "
            f"and enter the code {body['user_code']} to authenticate."
        )
        return status, body, headers


class Device(DeviceCodeGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = _ANY_CLIENT

    def validate_token_request(self) -> None:
        if _authority(self).block_device_code:
            # What Entra answers when Conditional Access blocks the device code flow.
            from authlib.oauth2.rfc6749.errors import InvalidGrantError

            raise InvalidGrantError(
                "AADSTS53003: Access has been blocked by Conditional Access policies. "
                "The access policy does not allow token issuance."
            )
        super().validate_token_request()

    def query_device_credential(self, device_code: str) -> Any:
        with _store(self).lock:
            found = _store(self).devices.get(device_code)
        return DeviceCredentialDict(found) if found else None

    def query_user_grant(self, user_code: str) -> tuple[str, bool] | None:
        return _authority(self).user_grant(user_code)

    def should_slow_down(self, credential: Any) -> bool:
        return _authority(self).should_slow_down(credential["device_code"])


class Revocation(RevocationEndpoint):  # type: ignore[misc]
    CLIENT_AUTH_METHODS = _ANY_CLIENT

    def query_token(self, token_string: str, token_type_hint: str | None) -> Any:
        with _store(self).lock:
            if token_type_hint != "refresh_token" and token_string in _store(self).access:
                return _store(self).access[token_string]
            return _store(self).refresh.get(token_string) or _store(self).access.get(token_string)

    def revoke_token(self, token: TokenRecord, request: Any) -> None:
        # RFC 7009 section 2.1: revoking a refresh token also invalidates its access tokens.
        token.revoked = True
        with _store(self).lock:
            _store(self).refresh.pop(token.refresh_token or "", None)


def install_grants(server: Any, authority: OAuthAuthority) -> None:
    """Register every grant and endpoint the lab supports on an authlib AuthorizationServer."""
    server.lab_authority = authority  # the grants below find the authority (and its store) here
    server.register_grant(AuthorizationCode, [CodeChallenge(required=False)])
    server.register_grant(Refresh)
    server.register_grant(ClientCredentials)
    server.register_grant(Device)
    server.register_endpoint(DeviceEndpoint)
    server.register_endpoint(Revocation)


class _Code:
    """An authorization code as authlib's AuthorizationCodeMixin wants it."""

    def __init__(self, code: str, data: dict[str, Any]) -> None:
        self.code = code
        self.data = data
        # CodeChallenge reads these two attributes through the grant's getters below.
        self.code_challenge = data.get("code_challenge")
        self.code_challenge_method = data.get("code_challenge_method")

    def get_redirect_uri(self) -> str:
        return str(self.data["redirect_uri"])

    def get_scope(self) -> str:
        return str(self.data["scope"])

    def get_nonce(self) -> str | None:
        return self.data.get("nonce")

    def get_auth_time(self) -> int | None:
        return None
