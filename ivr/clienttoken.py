"""Browser-safe handles: a ``client_token`` reads one verification's public status and
nothing else, until that verification's expiry.

A token is ``ct1.<expiry>.<mac>``: the MAC (HMAC-SHA256, truncated to 128 bits) covers the
verification id and the expiry, so it cannot be moved to another verification or made to
live longer, and any gateway holding the same key checks it without a store read. The key
is ``api.client_token_secret``; when that is empty each process draws its own at start,
which is right for one gateway and wrong for several behind one address.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import secrets
from enum import StrEnum

PREFIX = "ct1"


class TokenProblem(StrEnum):
    INVALID = "invalid"
    EXPIRED = "expired"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class ClientTokens:
    def __init__(self, secret: str = "") -> None:
        key = secret.encode() if secret else secrets.token_bytes(32)
        # A key of its own, derived: the configured secret is never used directly.
        derived = hmac.new(key, b"ivr client token v1", hashlib.sha256).digest()
        # Keyed once, copied per token (cheaper than a one-shot, and no GIL hand-off).
        self._keyed = hmac.new(derived, digestmod=hashlib.sha256)
        self.ephemeral = not secret

    def _mac(self, verification_id: str, expiry: int) -> str:
        msg = f"{verification_id}.{expiry}".encode()
        mac = self._keyed.copy()
        mac.update(msg)
        return _b64(mac.digest()[:16])

    def issue(self, verification_id: str, expires_at: float) -> str:
        expiry = math.ceil(expires_at)
        return f"{PREFIX}.{expiry}.{self._mac(verification_id, expiry)}"

    def check(self, token: str, verification_id: str, now: float) -> TokenProblem | None:
        """None when ``token`` was issued for ``verification_id`` and has not expired."""
        prefix, _, rest = token.partition(".")
        expiry_text, _, mac = rest.partition(".")
        if prefix != PREFIX or not expiry_text.isdigit() or len(expiry_text) > 12:
            return TokenProblem.INVALID
        expected = self._mac(verification_id, int(expiry_text))
        if not hmac.compare_digest(mac.encode(), expected.encode()):
            return TokenProblem.INVALID
        if now >= int(expiry_text):
            return TokenProblem.EXPIRED
        return None
