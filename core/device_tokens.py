"""Device push tokens: format rules per provider, and encryption at rest.

Pure functions and a cipher object; nothing here touches the database or logs a token.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from core.catalog import Platform, Provider

_EXPO = re.compile(r"^Expo(nent)?PushToken\[[A-Za-z0-9_-]{8,128}\]$")
_APNS = re.compile(r"^[0-9a-fA-F]{64,200}$")
_FCM = re.compile(r"^[A-Za-z0-9_:-]{100,4096}$")

_PATTERNS = {Provider.EXPO: _EXPO, Provider.APNS: _APNS, Provider.FCM: _FCM}
_FORMATS = {
    Provider.EXPO: "ExponentPushToken[...] or ExpoPushToken[...]",
    Provider.APNS: "an APNs device token: 64 to 200 hexadecimal characters",
    Provider.FCM: "an FCM registration token: 100 or more characters of A-Z a-z 0-9 _ : -",
}
# Which providers can reach which platform: APNs is Apple only; FCM reaches Android and web.
PLATFORM_PROVIDERS = {
    Platform.IOS: {Provider.APNS, Provider.EXPO},
    Platform.ANDROID: {Provider.FCM, Provider.EXPO},
    Platform.WEB: {Provider.FCM},
}


class TokenFormatError(ValueError):
    """The token does not have the form its provider uses; the message says which form."""


def normalize_token(provider: Provider, token: str) -> str:
    token = token.strip()
    return token.lower() if provider is Provider.APNS else token


def infer_provider(token: str) -> Provider:
    """Expo tokens are bracketed, APNs tokens are hex, anything else FCM-shaped is FCM."""
    token = token.strip()
    for provider in (Provider.EXPO, Provider.APNS, Provider.FCM):
        if _PATTERNS[provider].match(token):
            return provider
    raise TokenFormatError(
        "the token matches no provider's format ("
        + "; ".join(f"{p.value}: {f}" for p, f in _FORMATS.items())
        + ")"
    )


def validate_token(provider: Provider, platform: Platform, token: str) -> str:
    """Return the normalized token, or raise TokenFormatError saying what is wrong."""
    token = token.strip()
    if not _PATTERNS[provider].match(token):
        raise TokenFormatError(f"a {provider.value} token must be {_FORMATS[provider]}")
    if provider not in PLATFORM_PROVIDERS[platform]:
        raise TokenFormatError(
            f"{provider.value} does not deliver to the {platform.value} platform"
        )
    return normalize_token(provider, token)


class TokenCipher:
    """Fernet encryption with key rotation (first key encrypts, all keys decrypt) and a
    keyed hash for uniqueness and look-up, independent of the encryption keys."""

    def __init__(
        self,
        encryption_keys: tuple[str, ...] | list[str],
        hash_key: str,
        decrypted_cache_size: int = 0,
    ):
        if not encryption_keys:
            raise ValueError("at least one encryption key is required")
        self._fernet = MultiFernet([Fernet(key) for key in encryption_keys])
        self._hash_key = hash_key.encode()
        # Workers decrypt the same active users' tokens over and over; a bounded cache of
        # ciphertext -> token saves the AES+HMAC each time (the API keeps it at 0).
        if decrypted_cache_size:
            self.decrypt = lru_cache(maxsize=decrypted_cache_size)(self.decrypt)  # type: ignore[method-assign]

    def encrypt(self, token: str) -> str:
        return self._fernet.encrypt(token.encode()).decode()

    def decrypt(self, ciphertext: str) -> str:
        try:
            return self._fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken:
            raise ValueError("the token cannot be decrypted with any configured key") from None

    def rotate(self, ciphertext: str) -> str:
        """Re-encrypt under the current primary key (for a key-rotation sweep)."""
        return self._fernet.rotate(ciphertext.encode()).decode()

    def lookup_hash(self, token: str) -> bytes:
        return hmac.new(self._hash_key, token.encode(), hashlib.sha256).digest()

    @staticmethod
    def fingerprint(token: str) -> str:
        """A short non-reversible id for logs: never log the token itself."""
        return hashlib.sha256(token.encode()).hexdigest()[:12]
