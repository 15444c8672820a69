"""API keys -> tenant -> policy. `Authorization: Bearer <key>`, as OpenAI's SDKs send it.

Keys are stored as SHA-256 digests: API keys are long random tokens, so a fast hash is enough to
make a leaked config file useless, and the lookup is by digest (no timing leak on the key).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from service.errors import APIError
from service.settings import Settings

KEY_PREFIX = "fw-"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_key() -> tuple[str, str]:
    """A fresh random key and the digest to put in the config file."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    return key, hash_key(key)


@dataclass(frozen=True)
class Principal:
    """Who is calling: a tenant (None when the server runs without keys) and which key they used."""

    tenant: str | None
    key_id: str | None

    @property
    def policy_tenant(self) -> str:
        return self.tenant or ""

    def audit_context(self) -> dict[str, str]:
        return {k: v for k, v in (("tenant", self.tenant), ("key_id", self.key_id)) if v is not None}


ANONYMOUS = Principal(tenant=None, key_id=None)


class KeyRing:
    def __init__(self, settings: Settings) -> None:
        self._by_digest = {
            key.sha256: Principal(tenant=name, key_id=key.id)
            for name, tenant in settings.tenants.items()
            for key in tenant.keys
        }

    @property
    def enabled(self) -> bool:
        return bool(self._by_digest)

    def authenticate(self, authorization: str | None) -> Principal:
        """The caller for an Authorization header; 401 when keys are configured and this is not one."""
        if not self.enabled:
            return ANONYMOUS
        if not authorization:
            raise _unauthorized("missing API key: send 'Authorization: Bearer <key>'")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _unauthorized("malformed Authorization header: expected 'Bearer <key>'")
        principal = self._by_digest.get(hash_key(token.strip()))
        if principal is None:
            raise _unauthorized("incorrect API key provided")
        return principal


def _unauthorized(message: str) -> APIError:
    return APIError(401, message, code="invalid_api_key", headers={"WWW-Authenticate": "Bearer"})
