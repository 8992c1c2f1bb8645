"""Token hygiene: last_used follows what the app and the providers say (a registration, an
accepted delivery), and a token unused for TOKEN_STALE_DAYS is deactivated as stale and
sent nothing more."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import text
from sqlalchemy.orm import Session

from jobs.maintenance import apply_retention
from tests.pipeline.conftest import APNS_DEVICE, EXPO_DEVICE, FCM_DEVICE

OTHER_EXPO_DEVICE = "ExponentPushToken[expo-device-0000000002]"


def set_last_used(session: Session, token_id: str, ago: timedelta) -> datetime:
    value = session.scalar(
        text("UPDATE push_tokens SET last_used = now() - :ago WHERE id = :id RETURNING last_used"),
        {"ago": ago, "id": token_id},
    )
    session.commit()
    return value


def token(session: Session, token_id: str) -> dict:
    session.rollback()
    row = session.execute(
        text(
            "SELECT is_active, last_used, deactivated_at, deactivation_reason FROM push_tokens"
            " WHERE id = :id"
        ),
        {"id": token_id},
    ).one()
    return dict(row._mapping)


def database_now(session: Session) -> datetime:
    session.rollback()
    return session.scalar(text("SELECT clock_timestamp()"))


def test_an_accepted_delivery_moves_last_used_and_a_failed_one_does_not(
    make_pipeline, expo_standin, db_session
):
    pipeline = make_pipeline()
    accepted = {
        "alice": pipeline.register("alice", EXPO_DEVICE, "ios"),
        "bob": pipeline.register("bob", APNS_DEVICE, "ios"),
        "carol": pipeline.register("carol", FCM_DEVICE, "android"),
    }
    refused = pipeline.register("dave", OTHER_EXPO_DEVICE, "android")
    expo_standin.ticket_error(OTHER_EXPO_DEVICE, "MessageTooBig")  # fails; the token stays
    before = {
        token_id: set_last_used(db_session, token_id, timedelta(days=10))
        for token_id in [*accepted.values(), refused]
    }
    sent_after = database_now(db_session)

    pipeline.send(target={"user_ids": ["alice", "bob", "carol", "dave"]})
    pipeline.work()

    for token_id in accepted.values():
        assert token(db_session, token_id)["last_used"] >= sent_after
    unchanged = token(db_session, refused)
    assert unchanged["last_used"] == before[refused] and unchanged["is_active"] is True
    statuses = db_session.execute(
        text("SELECT token_id, status FROM notification_deliveries")
    ).all()
    assert sorted(status for _, status in statuses) == ["failed", "sent", "sent", "sent"]


def test_a_token_written_within_the_hour_is_not_rewritten_per_push(make_pipeline, db_session):
    pipeline = make_pipeline()
    token_id = pipeline.register("alice", EXPO_DEVICE, "ios")
    recent = set_last_used(db_session, token_id, timedelta(minutes=10))

    pipeline.send(target={"user_ids": ["alice"]})
    pipeline.work()

    assert token(db_session, token_id)["last_used"] == recent
    assert db_session.scalar(text("SELECT status FROM notification_deliveries")) == "sent"


def test_a_stale_token_is_deactivated_and_receives_nothing_afterwards(
    make_pipeline, expo_standin, apns_standin, db_session
):
    pipeline = make_pipeline()
    stale = pipeline.register("alice", EXPO_DEVICE, "ios")
    fresh = pipeline.register("alice", APNS_DEVICE, "ios")
    nearly = pipeline.register("bob", OTHER_EXPO_DEVICE, "android")
    set_last_used(db_session, stale, timedelta(days=271))  # TOKEN_STALE_DAYS = 270
    set_last_used(db_session, nearly, timedelta(days=269))

    counts = apply_retention()

    assert counts["tokens_deactivated"] == 1
    dropped = token(db_session, stale)
    assert (dropped["is_active"], dropped["deactivation_reason"]) == (False, "stale")
    assert dropped["deactivated_at"] is not None
    assert token(db_session, fresh)["is_active"] is True
    assert token(db_session, nearly)["is_active"] is True

    pipeline.send(target={"user_ids": ["alice"]})
    pipeline.work()

    assert expo_standin.messages == []
    assert len(apns_standin.received) == 1
    delivered_to = db_session.execute(text("SELECT token_id FROM notification_deliveries")).all()
    assert [str(row.token_id) for row in delivered_to] == [fresh]


def test_stale_tokens_go_in_bounded_batches_least_recently_used_first(make_pipeline, db_session):
    pipeline = make_pipeline()
    tokens = [
        pipeline.register(f"user-{i}", f"ExponentPushToken[stale-device-{i:03d}]", "ios")
        for i in range(3)
    ]
    for index, token_id in enumerate(tokens):
        set_last_used(db_session, token_id, timedelta(days=300 + index))

    first = apply_retention(batch_size=2, max_batches=1)
    assert first["tokens_deactivated"] == 2
    assert [token(db_session, t)["is_active"] for t in tokens] == [True, False, False]

    second = apply_retention(batch_size=2, max_batches=1)
    assert second["tokens_deactivated"] == 1
    assert not any(token(db_session, t)["is_active"] for t in tokens)


def test_registering_again_refreshes_last_used_and_brings_a_stale_token_back(
    make_pipeline, expo_standin, db_session
):
    pipeline = make_pipeline()
    token_id = pipeline.register("alice", EXPO_DEVICE, "ios")
    set_last_used(db_session, token_id, timedelta(days=280))
    apply_retention()
    assert token(db_session, token_id)["deactivation_reason"] == "stale"
    registered_after = database_now(db_session)

    assert pipeline.register("alice", EXPO_DEVICE, "ios") == token_id

    back = token(db_session, token_id)
    assert back["is_active"] is True and back["deactivation_reason"] is None
    assert back["last_used"] >= registered_after
    pipeline.send(target={"user_ids": ["alice"]})
    pipeline.work()
    assert [m["to"] for m in expo_standin.messages] == [EXPO_DEVICE]
