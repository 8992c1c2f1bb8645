"""Every provider answer Pulse knows of maps to one outcome: the tables are the contract."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from providers.apns import apns_result, classify_apns, collapse_id
from providers.base import Outcome, parse_retry_after
from providers.expo import (
    classify_expo_error,
    classify_expo_request,
    receipt_result,
    ticket_result,
)
from providers.fcm import classify_fcm, fcm_result, parse_fcm_error

SENT = Outcome.SENT
TOKEN = Outcome.TOKEN_INVALID
TRANSIENT = Outcome.TRANSIENT
PAYLOAD = Outcome.PAYLOAD_ERROR
CREDENTIALS = Outcome.CREDENTIALS_ERROR


@pytest.mark.parametrize(
    ("status", "reason", "outcome"),
    [
        (200, None, SENT),
        (400, "BadDeviceToken", TOKEN),
        (400, "DeviceTokenNotForTopic", TOKEN),
        (410, "Unregistered", TOKEN),
        (410, "ExpiredToken", TOKEN),
        (400, "ExpiredToken", TOKEN),
        (410, None, TOKEN),
        (413, "PayloadTooLarge", PAYLOAD),
        (400, "BadCollapseId", PAYLOAD),
        (400, "BadExpirationDate", PAYLOAD),
        (400, "BadPriority", PAYLOAD),
        (400, "BadMessageId", PAYLOAD),
        (400, "PayloadEmpty", PAYLOAD),
        (400, "InvalidPushType", PAYLOAD),
        (400, "DuplicateHeaders", PAYLOAD),
        (404, "BadPath", PAYLOAD),
        (405, "MethodNotAllowed", PAYLOAD),
        (400, "SomeReasonAppleAddsLater", PAYLOAD),
        (400, "BadTopic", CREDENTIALS),
        (400, "MissingTopic", CREDENTIALS),
        (400, "TopicDisallowed", CREDENTIALS),
        (403, "InvalidProviderToken", CREDENTIALS),
        (403, "ExpiredProviderToken", CREDENTIALS),
        (403, "MissingProviderToken", CREDENTIALS),
        (403, "BadCertificate", CREDENTIALS),
        (403, "BadCertificateEnvironment", CREDENTIALS),
        (403, "Forbidden", CREDENTIALS),
        (403, "SomeReasonAppleAddsLater", CREDENTIALS),
        (429, "TooManyRequests", TRANSIENT),
        (429, "TooManyProviderTokenUpdates", TRANSIENT),
        (500, "InternalServerError", TRANSIENT),
        (503, "ServiceUnavailable", TRANSIENT),
        (503, "Shutdown", TRANSIENT),
        (400, "IdleTimeout", TRANSIENT),
        (502, None, TRANSIENT),
        (0, "StreamReset", TRANSIENT),
    ],
)
def test_apns_answer_maps_to_outcome(status: int, reason: str | None, outcome: Outcome) -> None:
    assert classify_apns(status, reason) is outcome


def test_apns_410_timestamp_becomes_aware_utc_token_invalid_since() -> None:
    result = apns_result("d-1", 410, "Unregistered", 1_700_000_000_123, "apns-id-1")
    assert result.outcome is TOKEN
    assert result.token_invalid_since == datetime(2023, 11, 14, 22, 13, 20, 123000, tzinfo=UTC)
    assert result.error == "Unregistered"
    assert result.environment_mismatch is False


def test_apns_bad_device_token_is_flagged_as_possible_environment_mismatch() -> None:
    result = apns_result("d-1", 400, "BadDeviceToken")
    assert (result.outcome, result.environment_mismatch) == (TOKEN, True)
    assert result.token_invalid_since is None


def test_apns_success_has_the_apns_id_and_no_error() -> None:
    result = apns_result("d-1", 200, None, None, "5e1b...", 12.5)
    assert (result.outcome, result.provider_message_id, result.error) == (SENT, "5e1b...", None)


def test_apns_collapse_id_over_64_bytes_is_hashed_deterministically() -> None:
    assert collapse_id("conv:123") == "conv:123"
    long_key = "conversation:" + "é" * 40  # 93 bytes in UTF-8
    hashed = collapse_id(long_key)
    assert len(hashed.encode()) == 64
    assert hashed == collapse_id(long_key)
    assert hashed != collapse_id(long_key + "x")


def _fcm_error(
    code: int, status: str, message: str, error_code: str | None = None, **extra: object
) -> dict[str, object]:
    details: list[dict[str, object]] = []
    if error_code:
        details.append(
            {
                "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
                "errorCode": error_code,
            }
        )
    if "field" in extra:
        details.append(
            {
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [{"field": extra["field"], "description": message}],
            }
        )
    if "reason" in extra:
        details.append(
            {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": extra["reason"]}
        )
    return {"error": {"code": code, "message": message, "status": status, "details": details}}


@pytest.mark.parametrize(
    ("http_status", "body", "outcome", "error"),
    [
        (404, _fcm_error(404, "NOT_FOUND", "Requested entity was not found.", "UNREGISTERED"),
         TOKEN, "UNREGISTERED"),
        (400, _fcm_error(400, "INVALID_ARGUMENT",
                         "The registration token is not a valid FCM registration token",
                         "INVALID_ARGUMENT"), TOKEN, "INVALID_ARGUMENT"),
        (400, _fcm_error(400, "INVALID_ARGUMENT", "Invalid value", field="message.token"),
         TOKEN, "INVALID_ARGUMENT"),
        (400, _fcm_error(400, "INVALID_ARGUMENT", "Android message is too big",
                         "INVALID_ARGUMENT"), PAYLOAD, "INVALID_ARGUMENT"),
        (400, _fcm_error(400, "INVALID_ARGUMENT", "Invalid value at 'message.data[0].value'",
                         field="message.data[0].value"), PAYLOAD, "INVALID_ARGUMENT"),
        (403, _fcm_error(403, "PERMISSION_DENIED", "SenderId mismatch", "SENDER_ID_MISMATCH"),
         CREDENTIALS, "SENDER_ID_MISMATCH"),
        (401, _fcm_error(401, "UNAUTHENTICATED", "Auth error", "THIRD_PARTY_AUTH_ERROR"),
         CREDENTIALS, "THIRD_PARTY_AUTH_ERROR"),
        (401, _fcm_error(401, "UNAUTHENTICATED", "APNs auth", "APNS_AUTH_ERROR"),
         CREDENTIALS, "APNS_AUTH_ERROR"),
        (401, _fcm_error(401, "UNAUTHENTICATED", "Request had invalid credentials"),
         CREDENTIALS, "UNAUTHENTICATED"),
        (403, _fcm_error(403, "PERMISSION_DENIED", "Permission denied"),
         CREDENTIALS, "PERMISSION_DENIED"),
        (404, _fcm_error(404, "NOT_FOUND", "Requested entity was not found."),
         CREDENTIALS, "NOT_FOUND"),
        (401, _fcm_error(401, "UNAUTHENTICATED", "expired", reason="ACCESS_TOKEN_EXPIRED"),
         TRANSIENT, "UNAUTHENTICATED"),
        (503, _fcm_error(503, "UNAVAILABLE", "The service is currently unavailable.",
                         "UNAVAILABLE"), TRANSIENT, "UNAVAILABLE"),
        (500, _fcm_error(500, "INTERNAL", "Internal error encountered.", "INTERNAL"),
         TRANSIENT, "INTERNAL"),
        (429, _fcm_error(429, "RESOURCE_EXHAUSTED", "Quota exceeded", "QUOTA_EXCEEDED"),
         TRANSIENT, "QUOTA_EXCEEDED"),
        (502, None, TRANSIENT, "HTTP_502"),
        (418, {"unexpected": True}, PAYLOAD, "HTTP_418"),
    ],
)  # fmt: skip
def test_fcm_answer_maps_to_outcome(
    http_status: int, body: object, outcome: Outcome, error: str
) -> None:
    assert classify_fcm(http_status, parse_fcm_error(body)) is outcome
    result = fcm_result("d-1", http_status, body)
    assert (result.outcome, result.error) == (outcome, error)


def test_fcm_success_keeps_the_message_name() -> None:
    result = fcm_result("d-1", 200, {"name": "projects/p/messages/0:1%abc"})
    assert (result.outcome, result.provider_message_id) == (SENT, "projects/p/messages/0:1%abc")


def test_fcm_retry_after_is_surfaced_only_for_transient_answers() -> None:
    unavailable = _fcm_error(503, "UNAVAILABLE", "unavailable", "UNAVAILABLE")
    assert fcm_result("d-1", 503, unavailable, "30").retry_after == 30.0
    unregistered = _fcm_error(404, "NOT_FOUND", "gone", "UNREGISTERED")
    assert fcm_result("d-1", 404, unregistered, "30").retry_after is None


@pytest.mark.parametrize(
    ("code", "outcome"),
    [
        ("DeviceNotRegistered", TOKEN),
        ("MessageTooBig", PAYLOAD),
        ("MessageRateExceeded", TRANSIENT),
        ("InvalidCredentials", CREDENTIALS),
        ("MismatchSenderId", CREDENTIALS),
        ("InvalidProviderToken", CREDENTIALS),
        ("SomethingExpoAddsLater", TRANSIENT),
        (None, TRANSIENT),
    ],
)
def test_expo_ticket_and_receipt_errors_map_to_outcome(code: str | None, outcome: Outcome) -> None:
    assert classify_expo_error(code) is outcome
    item = {"status": "error", "message": "quoted token here", "details": {"error": code}}
    ticket = ticket_result("d-1", item)
    assert ticket.outcome is outcome
    assert ticket.error == (code or "UnknownTicketError")  # the code, never Expo's message
    assert receipt_result("t-1", item).outcome is outcome


def test_expo_ok_ticket_is_sent_with_its_ticket_id_and_ok_receipt_is_delivered() -> None:
    ticket = ticket_result("d-1", {"status": "ok", "id": "XXXX-1"})
    assert (ticket.outcome, ticket.provider_message_id) == (SENT, "XXXX-1")
    assert receipt_result("XXXX-1", {"status": "ok"}).outcome is SENT


@pytest.mark.parametrize(
    ("status", "codes", "outcome"),
    [
        (401, ["UNAUTHORIZED"], CREDENTIALS),
        (403, [], CREDENTIALS),
        (429, ["TOO_MANY_REQUESTS"], TRANSIENT),
        (500, ["INTERNAL_SERVER_ERROR"], TRANSIENT),
        (503, [], TRANSIENT),
        (400, ["PUSH_TOO_MANY_NOTIFICATIONS"], PAYLOAD),
        (400, ["VALIDATION_ERROR"], PAYLOAD),
        (200, ["PUSH_TOO_MANY_EXPERIENCE_IDS"], PAYLOAD),
        (200, [], TRANSIENT),
    ],
)
def test_expo_whole_request_failures_map_to_outcome(
    status: int, codes: list[str], outcome: Outcome
) -> None:
    assert classify_expo_request(status, codes) is outcome


def test_retry_after_reads_seconds_and_http_dates() -> None:
    now = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after("Wed, 01 Jan 2025 12:01:30 GMT", now) == 90.0
    assert (
        parse_retry_after((now - timedelta(hours=1)).strftime("%a, %d %b %Y %H:%M:%S GMT"), now)
        == 0.0
    )
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
