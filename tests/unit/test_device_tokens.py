"""Token formats per provider, and the cipher that keeps tokens encrypted at rest."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from core.catalog import Platform, Provider
from core.device_tokens import TokenCipher, TokenFormatError, infer_provider, validate_token

FCM = "dGhpcyBpcyBhbiBmY20:" + "APA91b" + "x" * 140


@pytest.mark.parametrize(
    ("token", "provider"),
    [
        ("ExponentPushToken[abcdefghijklmnopqrstuv]", Provider.EXPO),
        ("ExpoPushToken[abcdefghijklmnopqrstuv]", Provider.EXPO),
        ("0" * 64, Provider.APNS),
        ("AbCdEf" * 20, Provider.APNS),
        (FCM, Provider.FCM),
        ("  " + "f" * 64 + "\n", Provider.APNS),
    ],
)
def test_the_provider_is_inferred(token, provider):
    assert infer_provider(token) is provider


@pytest.mark.parametrize(
    "token",
    [
        "",
        "hello",
        "ExponentPushToken[short]",
        "ExponentPushToken[has space here x]",
        "0" * 63,
        "g" * 64,
        "a b" * 50,
    ],
)
def test_a_token_of_no_known_form_is_refused(token):
    with pytest.raises(TokenFormatError):
        infer_provider(token)


@pytest.mark.parametrize(
    ("provider", "platform", "token", "ok"),
    [
        (Provider.APNS, Platform.IOS, "AB" * 32, True),
        (Provider.APNS, Platform.ANDROID, "ab" * 32, False),
        (Provider.APNS, Platform.IOS, "ab" * 31, False),
        (Provider.FCM, Platform.ANDROID, FCM, True),
        (Provider.FCM, Platform.WEB, FCM, True),
        (Provider.FCM, Platform.IOS, FCM, False),
        (Provider.FCM, Platform.ANDROID, "short:token", False),
        (Provider.EXPO, Platform.ANDROID, "ExpoPushToken[abcdefghijklmnop]", True),
        (Provider.EXPO, Platform.WEB, "ExpoPushToken[abcdefghijklmnop]", False),
        (Provider.EXPO, Platform.IOS, "ab" * 32, False),
    ],
)
def test_validation_checks_form_and_platform(provider, platform, token, ok):
    if ok:
        assert validate_token(provider, platform, token)
    else:
        with pytest.raises(TokenFormatError):
            validate_token(provider, platform, token)


def test_apns_tokens_are_normalized_to_lower_case():
    assert validate_token(Provider.APNS, Platform.IOS, "AB" * 32) == "ab" * 32


def test_the_cipher_round_trips_and_never_repeats_ciphertext():
    cipher = TokenCipher([Fernet.generate_key().decode()], "k" * 16)
    first, second = cipher.encrypt("secret-token"), cipher.encrypt("secret-token")
    assert first != second
    assert "secret-token" not in first
    assert cipher.decrypt(first) == cipher.decrypt(second) == "secret-token"


def test_the_lookup_hash_is_keyed_and_stable():
    key = Fernet.generate_key().decode()
    one = TokenCipher([key], "k" * 16)
    same = TokenCipher([Fernet.generate_key().decode()], "k" * 16)
    other = TokenCipher([key], "z" * 16)
    assert one.lookup_hash("t") == same.lookup_hash("t")
    assert one.lookup_hash("t") != other.lookup_hash("t")
    assert one.lookup_hash("t") != one.lookup_hash("u")


def test_a_rotated_key_still_decrypts_old_tokens_and_rotate_moves_them():
    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    old = TokenCipher([old_key], "k" * 16)
    rotated = TokenCipher([new_key, old_key], "k" * 16)
    only_new = TokenCipher([new_key], "k" * 16)
    ciphertext = old.encrypt("device-token")

    assert rotated.decrypt(ciphertext) == "device-token"
    with pytest.raises(ValueError):
        only_new.decrypt(ciphertext)
    assert only_new.decrypt(rotated.rotate(ciphertext)) == "device-token"
