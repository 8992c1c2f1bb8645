"""Retention (jobs.maintenance.apply_retention, and the real-time events sweep): old rows
go in bounded batches, young ones stay, and two runs at once both finish.

Old rows are made through SQL with an old created_at; the job runs against the real
database, and once on a real RQ worker.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

import runtime as worker_runtime
import scheduler as pulse_scheduler
from core.config import load_settings
from intake.queues import make_worker, queue
from jobs import maintenance
from jobs.events import sweep_realtime_events
from jobs.maintenance import apply_retention

NOW = datetime.now(UTC)
OLD = timedelta(days=100)  # past NOTIFICATION_RETENTION_DAYS (90)
YOUNG = timedelta(days=10)


@pytest.fixture
def make_runtime(app, env) -> Iterator[Callable[..., worker_runtime.Runtime]]:
    """The worker's runtime with the suite's settings and these overrides."""

    def make(**overrides: str) -> worker_runtime.Runtime:
        return worker_runtime.configure(load_settings({**env, **overrides}))

    yield make
    worker_runtime.shutdown()


@pytest.fixture
def worker_env(make_runtime) -> worker_runtime.Runtime:
    return make_runtime()


# --- rows, made with SQL ------------------------------------------------------------------


def user(session: Session, user_id: str = "alice") -> str:
    session.execute(
        text("INSERT INTO users (id) VALUES (:id) ON CONFLICT DO NOTHING"), {"id": user_id}
    )
    return user_id


def send(
    session: Session, age: timedelta, *, all_users: bool = False, fanned_out: bool = True
) -> uuid.UUID:
    send_id = uuid.uuid4()
    session.execute(
        text(
            """
            INSERT INTO notification_sends (id, requested_by, request_fingerprint, request,
                response, fanned_out_at, created_at)
            VALUES (:id, 'matching', 'f', CAST(:request AS jsonb), '{}', :fanned_out_at,
                :created_at)
            """
        ),
        {
            "id": send_id,
            "request": '{"all_users": true}' if all_users else '{"all_users": false}',
            "fanned_out_at": NOW - age if fanned_out else None,
            "created_at": NOW - age,
        },
    )
    return send_id


def notification(
    session: Session,
    age: timedelta,
    status: str = "sent",
    *,
    send_id: uuid.UUID | None = None,
    user_id: str = "alice",
    expires_in: timedelta | None = None,
    scheduled_in: timedelta = timedelta(0),
    deliveries: int = 0,
) -> uuid.UUID:
    user(session, user_id)
    notification_id = uuid.uuid4()
    session.execute(
        text(
            """
            INSERT INTO notification_queue (id, user_id, notification_type, title, body,
                priority, status, send_id, expires_at, scheduled_for, created_at, updated_at)
            VALUES (:id, :user_id, 'new_match', 't', 'b', 'normal', :status, :send_id,
                :expires_at, :scheduled_for, :created_at, :created_at)
            """
        ),
        {
            "id": notification_id,
            "user_id": user_id,
            "status": status,
            "send_id": send_id,
            "expires_at": NOW + expires_in if expires_in is not None else None,
            "scheduled_for": NOW + scheduled_in,
            "created_at": NOW - age,
        },
    )
    for _ in range(deliveries):
        session.execute(
            text(
                """
                INSERT INTO notification_deliveries (notification_id, provider, status,
                    created_at, updated_at)
                VALUES (:id, 'apns', 'sent', :created_at, :created_at)
                """
            ),
            {"id": notification_id, "created_at": NOW - age},
        )
    return notification_id


def ids(session: Session, table: str) -> set[Any]:
    return set(session.scalars(text(f"SELECT id FROM {table}")))


def statuses(session: Session) -> dict[uuid.UUID, str]:
    return dict(session.execute(text("SELECT id, status FROM notification_queue")).all())


def count(session: Session, table: str) -> int:
    return session.scalar(text(f"SELECT count(*) FROM {table}"))


# --- notifications, deliveries, sends -----------------------------------------------------


def test_finished_notifications_older_than_the_retention_go_with_their_deliveries(
    worker_env, db_session
):
    old_sent = notification(db_session, OLD, "sent", deliveries=2)
    old_failed = notification(db_session, OLD, "failed", deliveries=1)
    young = notification(db_session, YOUNG, "sent", deliveries=1)
    just_inside = notification(db_session, timedelta(days=89), "suppressed")
    # Old but still to be sent: never removed by retention, whatever their age.
    far_ahead = notification(db_session, OLD, "scheduled", scheduled_in=timedelta(days=30))
    stuck = notification(db_session, OLD, "pending")
    db_session.commit()

    counts = apply_retention()

    db_session.rollback()
    assert ids(db_session, "notification_queue") == {young, just_inside, far_ahead, stuck}
    assert old_sent not in ids(db_session, "notification_queue")
    assert old_failed not in ids(db_session, "notification_queue")
    # Only the young notification's delivery is left.
    assert set(db_session.scalars(text("SELECT notification_id FROM notification_deliveries"))) == {
        young
    }
    assert counts["notifications_deleted"] == 2 and counts["deliveries_deleted"] == 3


def test_a_send_goes_only_when_none_of_its_notifications_remain(worker_env, db_session):
    emptied = send(db_session, OLD)
    notification(db_session, OLD, "sent", send_id=emptied, user_id="alice")
    notification(db_session, OLD, "failed", send_id=emptied, user_id="bob")
    half = send(db_session, OLD)
    notification(db_session, OLD, "sent", send_id=half, user_id="alice")
    still_waiting = notification(
        db_session, OLD, "scheduled", send_id=half, user_id="bob", scheduled_in=timedelta(days=1)
    )
    young_send = send(db_session, YOUNG)
    fanning_out = send(db_session, OLD, all_users=True, fanned_out=False)
    fanned_out = send(db_session, OLD, all_users=True, fanned_out=True)
    db_session.commit()

    counts = apply_retention()

    db_session.rollback()
    assert ids(db_session, "notification_sends") == {half, young_send, fanning_out}
    assert emptied not in ids(db_session, "notification_sends")
    assert fanned_out not in ids(db_session, "notification_sends")
    assert ids(db_session, "notification_queue") == {still_waiting}
    assert counts["sends_deleted"] == 2


def test_waiting_rows_whose_expiry_passed_are_marked_expired_then_removed_when_old(
    worker_env, db_session
):
    far_ahead = notification(
        db_session,
        YOUNG,
        "scheduled",
        scheduled_in=timedelta(days=30),
        expires_in=-timedelta(hours=1),
    )
    stuck = notification(db_session, YOUNG, "pending", expires_in=-timedelta(minutes=1))
    not_yet = notification(
        db_session, YOUNG, "scheduled", scheduled_in=timedelta(days=3), expires_in=timedelta(days=1)
    )
    no_expiry = notification(db_session, YOUNG, "pending", scheduled_in=timedelta(days=3))
    settled = notification(db_session, YOUNG, "sent", expires_in=-timedelta(days=1))
    in_flight = notification(db_session, YOUNG, "processing", expires_in=-timedelta(days=1))
    # Waiting for 100 days and expired long ago: marked expired, then removed in the same run.
    ancient = notification(
        db_session, OLD, "scheduled", scheduled_in=timedelta(days=1), expires_in=-timedelta(days=95)
    )
    db_session.commit()

    counts = apply_retention()

    db_session.rollback()
    assert statuses(db_session) == {
        far_ahead: "expired",
        stuck: "expired",
        not_yet: "scheduled",
        no_expiry: "pending",
        settled: "sent",
        in_flight: "processing",  # its worker settles it; the claim never touches it
    }
    assert ancient not in statuses(db_session)
    reason = db_session.scalar(
        text("SELECT reason FROM notification_queue WHERE id = :id"), {"id": stuck}
    )
    assert reason == "expired"
    assert counts["expired"] == 3 and counts["notifications_deleted"] == 1


def test_batches_are_bounded_and_the_next_run_takes_the_rest_oldest_first(worker_env, db_session):
    rows = [notification(db_session, OLD + timedelta(days=i), "sent") for i in range(7)]
    oldest_first = list(reversed(rows))
    db_session.commit()

    first = apply_retention(batch_size=2, max_batches=2)
    db_session.rollback()
    left = ids(db_session, "notification_queue")
    assert first["notifications_deleted"] == 4
    assert left == set(oldest_first[4:])

    second = apply_retention(batch_size=2, max_batches=2)
    third = apply_retention(batch_size=2, max_batches=2)
    db_session.rollback()
    assert second["notifications_deleted"] == 3 and third["notifications_deleted"] == 0
    assert count(db_session, "notification_queue") == 0


# --- activity and real-time events --------------------------------------------------------


def activity(session: Session, age: timedelta) -> int:
    user(session)
    return session.scalar(
        text(
            """
            INSERT INTO user_activity (user_id, activity_type, created_at)
            VALUES ('alice', 'app_open', :created_at) RETURNING id
            """
        ),
        {"created_at": NOW - age},
    )


def event(session: Session, age: timedelta, processed: bool) -> uuid.UUID:
    user(session)
    return session.scalar(
        text(
            """
            INSERT INTO realtime_events (event_type, user_id, target_user_id, processed,
                processed_at, created_at)
            VALUES ('discovery_update', 'alice', 'alice', :processed, :processed_at,
                :created_at)
            RETURNING id
            """
        ),
        {
            "processed": processed,
            "processed_at": NOW - age if processed else None,
            "created_at": NOW - age,
        },
    )


def test_user_activity_has_its_own_retention(make_runtime, db_session):
    make_runtime(ACTIVITY_RETENTION_DAYS="30", NOTIFICATION_RETENTION_DAYS="365")
    old = [activity(db_session, timedelta(days=31)) for _ in range(3)]
    young = activity(db_session, timedelta(days=29))
    kept_notification = notification(db_session, OLD, "sent")  # 100 days < 365
    db_session.commit()

    counts = apply_retention()

    db_session.rollback()
    assert ids(db_session, "user_activity") == {young}
    assert not set(old) & ids(db_session, "user_activity")
    assert ids(db_session, "notification_queue") == {kept_notification}
    assert counts["activity_deleted"] == 3


def test_processed_realtime_events_go_through_the_sweep_after_their_own_retention(
    make_runtime, db_session
):
    make_runtime(REALTIME_EVENTS_RETENTION_DAYS="3")
    old = [event(db_session, timedelta(days=4), processed=True) for _ in range(5)]
    young = event(db_session, timedelta(days=2), processed=True)
    never_broadcast = event(db_session, timedelta(days=4), processed=False)
    db_session.commit()

    apply_retention()  # not its path: the events are left alone
    db_session.rollback()
    assert count(db_session, "realtime_events") == 7

    sweep_realtime_events(purge_batch=3)  # a bounded batch a sweep
    db_session.rollback()
    assert count(db_session, "realtime_events") == 4
    sweep_realtime_events(purge_batch=3)
    db_session.rollback()
    assert ids(db_session, "realtime_events") == {young, never_broadcast}
    assert not set(old) & ids(db_session, "realtime_events")


# --- concurrency and scheduling -----------------------------------------------------------


def test_two_runs_at_once_both_finish_and_remove_each_row_once(worker_env, db_session):
    for index in range(40):
        send_id = send(db_session, OLD)
        notification(
            db_session, OLD + timedelta(minutes=index), "sent", send_id=send_id, deliveries=2
        )
        activity(db_session, timedelta(days=40))
    young = notification(db_session, YOUNG, "sent", deliveries=1)
    db_session.commit()

    start = threading.Barrier(2)
    results: list[dict[str, int]] = []
    errors: list[BaseException] = []

    def run() -> None:
        start.wait()
        try:
            results.append(apply_retention(batch_size=3, max_batches=50))
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == [] and len(results) == 2
    # Each row was removed by exactly one of the two runs.
    assert sum(r["notifications_deleted"] for r in results) == 40
    assert sum(r["deliveries_deleted"] for r in results) == 80
    assert sum(r["activity_deleted"] for r in results) == 40
    # A step one run left to the other may leave sends for the next run; never a young row.
    apply_retention()
    db_session.rollback()
    assert ids(db_session, "notification_queue") == {young}
    assert count(db_session, "notification_deliveries") == 1
    assert count(db_session, "notification_sends") == 0
    assert count(db_session, "user_activity") == 0


def test_the_retention_job_is_scheduled_and_runs_on_a_worker(
    worker_env, db_session, redis_client, settings
):
    periodic = {job.id: job for job in pulse_scheduler.periodic_jobs(settings)}
    job = periodic["pulse-periodic-retention"]
    assert job.func is maintenance.apply_retention
    old = notification(db_session, OLD, "sent", deliveries=1)
    young = notification(db_session, YOUNG, "sent")
    db_session.commit()

    enqueued = queue(job.queue, redis_client).enqueue(job.func, kwargs=job.kwargs)
    make_worker(redis_client).work(burst=True)

    enqueued.refresh()
    assert enqueued.is_finished, enqueued.exc_info
    assert enqueued.return_value()["notifications_deleted"] == 1
    db_session.rollback()
    assert ids(db_session, "notification_queue") == {young} and old not in ids(
        db_session, "notification_queue"
    )
