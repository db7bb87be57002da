"""Encryption of secrets at rest (bot tokens, CAPI access tokens, gateway keys).

Fernet (AES-128-CBC + HMAC-SHA256) with a key derived from GRIM_SECRET_KEY by
HKDF, so any string an operator picks becomes a proper key.
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


class SecretDecryptionError(ValueError):
    """The stored secret was encrypted with another GRIM_SECRET_KEY or was altered."""


class SecretBox:
    def __init__(self, secret_key: str) -> None:
        if len(secret_key) < 16:
            raise ValueError("GRIM_SECRET_KEY must be at least 16 characters")
        derived = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=b"grim-secrets-v1", info=b"at-rest"
        ).derive(secret_key.encode())
        self._fernet = Fernet(base64.urlsafe_b64encode(derived))

    def encrypt(self, plaintext: str) -> bytes:
        return self._fernet.encrypt(plaintext.encode())

    def decrypt(self, token: bytes) -> str:
        try:
            return self._fernet.decrypt(bytes(token)).decode()
        except InvalidToken as exc:
            raise SecretDecryptionError(
                "cannot decrypt a stored secret: GRIM_SECRET_KEY differs from the one used "
                "to store it, or the value was altered"
            ) from exc
