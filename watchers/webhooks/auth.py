"""Authenticates webhook senders: HMAC-SHA256 signatures and bearer tokens.

Both checks compare in constant time (:func:`hmac.compare_digest`) so the answer time
says nothing about how much of a guess was right. Signatures are computed over the raw
body, before any parsing, because that is what the sender signed.
"""

from __future__ import annotations

import hashlib
import hmac

from pydantic import SecretStr

from watchers.webhooks.errors import FieldProblem, Rejection

SIGNATURE_PREFIX = "sha256="


def sign(secret: str | bytes, body: bytes) -> str:
    """The ``sha256=<hex>`` signature of ``body`` under ``secret``, as senders compute it."""
    key = secret.encode() if isinstance(secret, str) else secret
    return SIGNATURE_PREFIX + hmac.new(key, body, hashlib.sha256).hexdigest()


def _unauthorized(header: str, message: str, challenge: str) -> Rejection:
    return Rejection(
        401,
        "unauthorized",
        message,
        [FieldProblem(header, message)],
        headers={"WWW-Authenticate": challenge},
    )


def verify_signature(header: str, value: str | None, secret: SecretStr, body: bytes) -> None:
    """Check that ``value`` (the header named ``header``) signs ``body`` under ``secret``.

    Raises:
        Rejection: 401 if the header is missing, malformed or does not match.
    """
    challenge = f'HMAC-SHA256 header="{header}"'
    if not value:
        raise _unauthorized(header, f"missing {header} header", challenge)
    value = value.strip()
    if not value.lower().startswith(SIGNATURE_PREFIX):
        raise _unauthorized(header, f"{header} must be {SIGNATURE_PREFIX}<hex>", challenge)
    offered = value[len(SIGNATURE_PREFIX) :].lower().encode("utf-8", "replace")
    expected = sign(secret.get_secret_value(), body)[len(SIGNATURE_PREFIX) :].encode()
    if not hmac.compare_digest(expected, offered):
        raise _unauthorized(header, f"{header} does not match the body", challenge)


def verify_bearer(value: str | None, token: SecretStr) -> None:
    """Check an ``Authorization: Bearer <token>`` header against ``token``.

    Raises:
        Rejection: 401 if the header is missing, of another scheme, or the wrong token.
    """
    challenge = 'Bearer realm="autopilot"'
    scheme, _, offered = (value or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not offered.strip():
        raise _unauthorized("Authorization", "expected Authorization: Bearer <token>", challenge)
    offered_bytes = offered.strip().encode("utf-8", "replace")
    expected = token.get_secret_value().encode()
    if not hmac.compare_digest(expected, offered_bytes):
        raise _unauthorized("Authorization", "the bearer token is not valid", challenge)
