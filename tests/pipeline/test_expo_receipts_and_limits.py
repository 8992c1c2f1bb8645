"""Expo tickets checked against receipts later; Expo's send rate shared by all workers."""

from __future__ import annotations

from sqlalchemy import select, text

from jobs.receipts import check_expo_receipts
from models import NotificationDelivery, PushToken
from tests.pipeline.conftest import EXPO_DEVICE

OTHER_DEVICE = "ExponentPushToken[expo-device-0000000002]"


def test_receipts_mark_deliveries_delivered_or_failed_and_drop_dead_tokens(
    make_pipeline, expo_standin, db_session
):
    pipeline = make_pipeline(EXPO_RECEIPT_DELAY_SECONDS="0")
    pipeline.register("alice", EXPO_DEVICE, "ios")
    pipeline.register("bob", OTHER_DEVICE, "android")
    expo_standin.receipt_error(OTHER_DEVICE, "DeviceNotRegistered")

    pipeline.send(target={"user_ids": ["alice", "bob"]})
    pipeline.work()
    counts = check_expo_receipts()

    db_session.expire_all()
    deliveries = {
        d.token_id: (d.status, d.error_reason)
        for d in db_session.scalars(select(NotificationDelivery))
    }
    tokens = {t.user_id: t for t in db_session.scalars(select(PushToken))}
    assert counts == {"checked": 2, "delivered": 1, "failed": 1, "retrying": 0}
    assert deliveries[tokens["alice"].id] == ("delivered", None)
    assert deliveries[tokens["bob"].id] == ("failed", "DeviceNotRegistered")
    assert tokens["bob"].is_active is False and tokens["alice"].is_active is True
    receipt_requests = [r for r in expo_standin.received if r.path.endswith("getReceipts")]
    assert len(receipt_requests) == 1 and len(receipt_requests[0].payload["ids"]) == 2


def test_a_rate_exceeded_receipt_sends_again_to_that_device_only(
    make_pipeline, expo_standin, db_session
):
    pipeline = make_pipeline(EXPO_RECEIPT_DELAY_SECONDS="0")
    pipeline.register("alice", EXPO_DEVICE, "ios")
    pipeline.register("alice", OTHER_DEVICE, "android")
    expo_standin.receipt_error(OTHER_DEVICE, "MessageRateExceeded")

    response = pipeline.send(target={"user_ids": ["alice"]})
    pipeline.work()
    counts = check_expo_receipts()
    expo_standin.reset()
    db_session.execute(
        text("UPDATE notification_queue SET scheduled_for = now() WHERE status = 'scheduled'")
    )
    db_session.commit()
    pipeline.sweep()
    pipeline.work()

    assert counts["retrying"] == 1 and counts["delivered"] == 1
    assert [m["to"] for m in expo_standin.messages] == [OTHER_DEVICE]
    detail = pipeline.notification(response.json["data"]["notification_ids"][0])
    assert detail["status"] == "sent" and detail["attempts"] == 2


def test_receipts_are_not_asked_for_before_the_delay(pipeline, expo_standin):
    pipeline.register("alice", EXPO_DEVICE, "ios")
    pipeline.send(target={"user_ids": ["alice"]})
    pipeline.work()

    assert check_expo_receipts() == {"checked": 0, "delivered": 0, "failed": 0, "retrying": 0}
    assert not [r for r in expo_standin.received if r.path.endswith("getReceipts")]


def test_the_expo_rate_is_a_shared_bucket_and_the_rest_is_deferred_not_slept(
    make_pipeline, expo_standin, db_session
):
    pipeline = make_pipeline(EXPO_RATE_PER_SECOND="3")
    users = [f"user-{i}" for i in range(5)]
    for index, user_id in enumerate(users):
        pipeline.register(user_id, f"ExponentPushToken[rate-limited-device-{index}]", "ios")

    pipeline.send(target={"user_ids": users})
    pipeline.work()

    db_session.expire_all()
    statuses = sorted(d.status for d in db_session.scalars(select(NotificationDelivery)))
    assert len(expo_standin.messages) == 3
    assert statuses == ["retrying", "retrying", "sent", "sent", "sent"]


def test_a_receipt_retry_is_timed_by_the_retry_policy_and_bounded_by_its_attempts(
    make_pipeline, expo_standin, db_session
):
    # RETRY_BASE_SECONDS=1: after one attempt the policy waits 1 s (never Expo's old fixed 60 s).
    pipeline = make_pipeline(EXPO_RECEIPT_DELAY_SECONDS="0", DELIVERY_MAX_ATTEMPTS="2")
    pipeline.register("alice", EXPO_DEVICE, "ios")
    expo_standin.receipt_error(EXPO_DEVICE, "MessageRateExceeded")
    notification_id = pipeline.send(target={"user_ids": ["alice"]}).json["data"][
        "notification_ids"
    ][0]
    pipeline.work()

    before = db_session.scalar(text("SELECT now()"))
    assert check_expo_receipts()["retrying"] == 1
    status, wait = db_session.execute(
        text(
            "SELECT status, extract(epoch FROM scheduled_for - :before) FROM notification_queue"
            " WHERE id = :id"
        ),
        {"before": before, "id": notification_id},
    ).one()
    assert status == "scheduled" and 0 < wait <= 2

    db_session.execute(text("UPDATE notification_queue SET scheduled_for = now()"))
    db_session.commit()
    pipeline.sweep()
    pipeline.work()  # the second and last attempt: Expo again cannot pass it on
    assert check_expo_receipts()["retrying"] == 1
    db_session.rollback()
    detail = pipeline.notification(notification_id)
    assert (detail["status"], detail["attempts"]) == ("sent", 2)  # not rescheduled a third time
