"""The outbox's state changes: claiming due rows under a lease, expiring stale ones, taking
back rows whose worker died, and finding what the sweep must enqueue.

Claims use FOR UPDATE SKIP LOCKED, so any number of workers share the work without
sending a row twice; each function leaves the commit to its caller.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy import ARRAY, String, Uuid, and_, case, or_, select, text, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

from core.batching import HELD_REASON, SUMMARY_REASON
from core.catalog import DeliveryStatus, NotificationStatus, Priority
from core.retention import LAST_USED_RESOLUTION
from models.notifications import Notification

PRIORITY_RANK = case(
    {priority.value: priority.rank for priority in Priority}, value=Notification.priority
)


# The hot path (every delivery job) uses fixed SQL with array parameters: one statement
# text per query whatever the chunk size, so nothing is compiled or re-planned per call.
EXPIRE = text(
    """
    UPDATE notification_queue SET status = 'expired', reason = 'expired', updated_at = :now
    WHERE id = ANY(CAST(:ids AS uuid[])) AND status IN ('pending', 'scheduled')
      AND expires_at <= :now
    """
)
CLAIM = text(
    """
    UPDATE notification_queue AS n SET
        status = 'processing', attempts = n.attempts + 1,
        lease_expires_at = :lease_until, updated_at = :now
    FROM (
        SELECT id FROM notification_queue
        WHERE id = ANY(CAST(:ids AS uuid[])) AND status IN ('pending', 'scheduled')
          AND scheduled_for <= :now
        FOR UPDATE SKIP LOCKED
    ) AS c
    WHERE n.id = c.id
    RETURNING n.id, n.user_id, n.notification_type, n.title, n.body, n.data, n.priority,
              n.attempts, n.batch_key, n.platforms, n.expires_at, n.created_at, n.reason
    """
).columns(id=Uuid, data=JSONB, platforms=ARRAY(String))
ACTIVE_TOKENS = text(
    """
    SELECT id, user_id, token_ciphertext, platform, provider FROM push_tokens
    WHERE user_id = ANY(CAST(:user_ids AS text[])) AND is_active
    """
).columns(id=Uuid)
REACHED = text(
    """
    SELECT notification_id, token_id FROM notification_deliveries
    WHERE notification_id = ANY(CAST(:ids AS uuid[])) AND status IN ('sent', 'delivered')
    """
).columns(notification_id=Uuid, token_id=Uuid)


@dataclass(frozen=True)
class Claimed:
    """A notification row a delivery job holds under a lease."""

    id: uuid.UUID
    user_id: str
    notification_type: str
    title: str
    body: str
    data: dict[str, Any]
    priority: str
    attempts: int
    batch_key: str | None
    platforms: list[str] | None
    expires_at: datetime | None
    created_at: datetime
    reason: str | None


@dataclass(frozen=True)
class ActiveToken:
    id: uuid.UUID
    user_id: str
    token_ciphertext: str
    platform: str
    provider: str


def expire_overdue(session: Session, ids: Sequence[uuid.UUID], now: datetime) -> int:
    """Rows among `ids` whose expires_at has passed become expired and are never sent."""
    return session.execute(EXPIRE, {"ids": [str(i) for i in ids], "now": now}).rowcount


def claim(
    session: Session, ids: Sequence[uuid.UUID], now: datetime, lease_seconds: int
) -> list[Claimed]:
    """Take the due, waiting rows among `ids` that no other worker holds; most urgent first.

    A claimed row is `processing` until its lease runs out; then the sweep takes it back.
    """
    rows = session.execute(
        CLAIM,
        {
            "ids": [str(i) for i in ids],
            "now": now,
            "lease_until": now + timedelta(seconds=lease_seconds),
        },
    ).mappings()
    claimed = [Claimed(**row) for row in rows]
    return sorted(claimed, key=lambda row: (Priority(row.priority).rank, row.created_at))


def active_tokens(session: Session, user_ids: Sequence[str]) -> list[ActiveToken]:
    """Every active token of these users, in one query."""
    rows = session.execute(ACTIVE_TOKENS, {"user_ids": list(user_ids)}).mappings()
    return [ActiveToken(**row) for row in rows]


def devices_already_reached(
    session: Session, ids: Sequence[uuid.UUID]
) -> set[tuple[uuid.UUID, uuid.UUID]]:
    """(notification id, token id) pairs a provider accepted in an earlier attempt."""
    if not ids:
        return set()
    rows = session.execute(REACHED, {"ids": [str(i) for i in ids]})
    return {(notification_id, token_id) for notification_id, token_id in rows}


def take_back_expired_leases(session: Session, now: datetime) -> int:
    """Rows whose worker died mid-job (lease ran out) become pending again."""
    result = session.execute(
        update(Notification)
        .where(
            Notification.status == NotificationStatus.PROCESSING,
            Notification.lease_expires_at < now,
        )
        .values(
            status=NotificationStatus.PENDING,
            lease_expires_at=None,
            enqueued_at=None,
            updated_at=now,
        )
    )
    return result.rowcount


def take_due(
    session: Session, now: datetime, stale_before: datetime, limit: int
) -> dict[Priority, list[uuid.UUID]]:
    """Rows the sweep must enqueue, marked as enqueued now: scheduled rows whose time has
    come, and pending rows never enqueued or enqueued before `stale_before` (a lost job).
    The most urgent first, so that a backlog drains in priority order."""
    due = (
        select(Notification.id)
        .where(
            or_(
                and_(
                    Notification.status == NotificationStatus.PENDING,
                    or_(
                        Notification.enqueued_at.is_(None),
                        Notification.enqueued_at < stale_before,
                    ),
                ),
                and_(
                    Notification.status == NotificationStatus.SCHEDULED,
                    Notification.scheduled_for <= now,
                ),
            ),
            Notification.scheduled_for <= now,
        )
        .order_by(PRIORITY_RANK, Notification.scheduled_for)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    rows = session.execute(
        update(Notification)
        .where(Notification.id.in_(due.scalar_subquery()))
        .values(status=NotificationStatus.PENDING, enqueued_at=now, updated_at=now)
        .returning(Notification.id, Notification.priority)
    )
    result: dict[Priority, list[uuid.UUID]] = {}
    for notification_id, priority in rows:
        result.setdefault(Priority(priority), []).append(notification_id)
    return result


@dataclass(frozen=True)
class Settlement:
    """A claimed row's outcome: its next status and what goes with it."""

    id: uuid.UUID
    status: NotificationStatus
    reason: str | None
    last_error: str | None
    retry_at: datetime | None = None  # with status scheduled
    sent_at: datetime | None = None
    # A deferral (quiet hours, a cap) is no delivery attempt: it gives the attempt back.
    not_an_attempt: bool = False


SETTLE = text(
    """
    UPDATE notification_queue AS n SET
        status = u.status,
        reason = u.reason,
        last_error = COALESCE(u.last_error, n.last_error),
        scheduled_for = COALESCE(u.retry_at, n.scheduled_for),
        enqueued_at = CASE WHEN u.retry_at IS NULL THEN n.enqueued_at END,
        sent_at = COALESCE(u.sent_at, n.sent_at),
        attempts = n.attempts - CASE WHEN u.not_an_attempt THEN 1 ELSE 0 END,
        lease_expires_at = NULL,
        updated_at = :now
    FROM unnest(
        CAST(:ids AS uuid[]), CAST(:statuses AS text[]), CAST(:reasons AS text[]),
        CAST(:errors AS text[]), CAST(:retry_at AS timestamptz[]), CAST(:sent_at AS timestamptz[]),
        CAST(:not_an_attempt AS boolean[])
    ) AS u(id, status, reason, last_error, retry_at, sent_at, not_an_attempt)
    WHERE n.id = u.id AND n.status = 'processing'
    """
)


def settle(session: Session, settlements: Sequence[Settlement], now: datetime) -> None:
    """Write every claimed row's outcome in one statement (a chunk is one round trip)."""
    if not settlements:
        return
    session.execute(
        SETTLE,
        {
            "ids": [str(s.id) for s in settlements],
            "statuses": [s.status.value for s in settlements],
            "reasons": [s.reason for s in settlements],
            "errors": [s.last_error for s in settlements],
            "retry_at": [s.retry_at for s in settlements],
            "sent_at": [s.sent_at for s in settlements],
            "not_an_attempt": [s.not_an_attempt for s in settlements],
            "now": now,
        },
    )


RECORD = text(
    """
    INSERT INTO notification_deliveries (
        notification_id, token_id, provider, status, provider_message_id, error_reason,
        latency_ms, attempt, created_at, updated_at
    )
    SELECT d.*, 1, :now, :now FROM unnest(
        CAST(:notification_ids AS uuid[]), CAST(:token_ids AS uuid[]),
        CAST(:providers AS text[]), CAST(:statuses AS text[]), CAST(:message_ids AS text[]),
        CAST(:errors AS text[]), CAST(:latencies AS integer[])
    ) AS d
    """
)


@dataclass(frozen=True)
class DeliveryRecord:
    """One provider attempt to write; its row id is the database's (gen_random_uuid)."""

    notification_id: uuid.UUID
    token_id: uuid.UUID
    provider: str
    status: DeliveryStatus
    provider_message_id: str | None
    error_reason: str | None
    latency_ms: int | None


def record_deliveries(session: Session, records: Sequence[DeliveryRecord], now: datetime) -> None:
    """Insert delivery rows in one statement whose text never changes (cheap to prepare)."""
    if not records:
        return
    session.execute(
        RECORD,
        {
            "notification_ids": [str(r.notification_id) for r in records],
            "token_ids": [str(r.token_id) for r in records],
            "providers": [r.provider for r in records],
            "statuses": [r.status.value for r in records],
            "message_ids": [r.provider_message_id for r in records],
            "errors": [r.error_reason for r in records],
            "latencies": [r.latency_ms for r in records],
            "now": now,
        },
    )


# A token a provider accepted a push for is in use. One statement per chunk, in the chunk's
# settle transaction; a token written less than LAST_USED_RESOLUTION ago is left alone (no
# row rewritten per push), and one another transaction holds (a registration, a
# deactivation) is skipped rather than waited for: this never blocks the settle.
TOUCH_TOKENS = text(
    """
    UPDATE push_tokens AS t SET last_used = :now
    FROM (
        SELECT id FROM push_tokens
        WHERE id = ANY(CAST(:token_ids AS uuid[])) AND is_active AND last_used < :written_before
        FOR UPDATE SKIP LOCKED
    ) AS due
    WHERE t.id = due.id
    """
)


def touch_accepted_tokens(
    session: Session, records: Sequence[DeliveryRecord], now: datetime
) -> None:
    """Move last_used to `now` for the tokens whose attempt among `records` was accepted
    (TOKEN_STALE_DAYS counts from it); call after `record_deliveries`, in its transaction."""
    accepted = sorted({str(r.token_id) for r in records if r.status is DeliveryStatus.SENT})
    if not accepted:
        return
    session.execute(
        TOUCH_TOKENS,
        {"token_ids": accepted, "now": now, "written_before": now - LAST_USED_RESOLUTION},
    )


@dataclass(frozen=True)
class UserFacts:
    """What the delivery rules need to know about a user, read once per chunk."""

    timezone: str | None  # the one the user chose, else the device's; None: never heard
    locale: str | None  # the device's; None: never heard
    quiet_hours_start: time | None
    quiet_hours_end: time | None
    stored_preferences: dict[str, dict[str, bool | str | None]]
    show_previews: bool = True


USER_FACTS = text(
    """
    SELECT u.id, coalesce(u.timezone, u.device_timezone) AS timezone,
           u.device_locale AS locale, u.quiet_hours_start, u.quiet_hours_end, u.show_previews,
           s.notification_type, s.is_enabled, s.push_enabled, s.email_enabled,
           s.quiet_hours_behavior
    FROM users AS u
    LEFT JOIN user_notification_settings AS s ON s.user_id = u.id
    WHERE u.id = ANY(CAST(:user_ids AS text[]))
    """
)


def user_facts(session: Session, user_ids: Sequence[str]) -> dict[str, UserFacts]:
    facts: dict[str, UserFacts] = {}
    for row in session.execute(USER_FACTS, {"user_ids": list(user_ids)}).mappings():
        if row["id"] not in facts:
            facts[row["id"]] = UserFacts(
                row["timezone"],
                row["locale"],
                row["quiet_hours_start"],
                row["quiet_hours_end"],
                {},
                row["show_previews"],
            )
        if row["notification_type"] is not None:
            facts[row["id"]].stored_preferences[row["notification_type"]] = {
                "is_enabled": row["is_enabled"],
                "push_enabled": row["push_enabled"],
                "email_enabled": row["email_enabled"],
                "quiet_hours_behavior": row["quiet_hours_behavior"],
            }
    return facts


def hold_for_batch(
    session: Session, notification_id: uuid.UUID, key: str, closes: datetime, now: datetime
) -> uuid.UUID:
    """Merge a held notification into its batch's summary row, or make it that row.

    A transaction-scoped advisory lock on the key serializes workers holding the same
    batch, so that a window gets exactly one summary. Returns the summary row's id."""
    session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": key})
    summary = session.execute(
        text(
            """
            SELECT id FROM notification_queue
            WHERE batch_key = :key AND status = 'scheduled' AND reason = :summary
            ORDER BY created_at LIMIT 1 FOR UPDATE
            """
        ),
        {"key": key, "summary": SUMMARY_REASON},
    ).scalar()
    if summary is None:
        session.execute(
            text(
                """
                UPDATE notification_queue SET status = 'scheduled', reason = :summary,
                    batch_key = :key, scheduled_for = :closes, enqueued_at = NULL,
                    lease_expires_at = NULL, attempts = attempts - 1, updated_at = :now,
                    data = jsonb_set(data, '{batch_count}', '1')
                WHERE id = :id
                """
            ),
            {
                "summary": SUMMARY_REASON,
                "key": key,
                "closes": closes,
                "now": now,
                "id": str(notification_id),
            },
        )
        return notification_id
    session.execute(
        text(
            """
            UPDATE notification_queue SET status = 'batched', reason = :held,
                batched_into_id = :summary, batch_key = :key, lease_expires_at = NULL,
                updated_at = :now
            WHERE id = :id
            """
        ),
        {
            "held": HELD_REASON,
            "summary": str(summary),
            "key": key,
            "now": now,
            "id": str(notification_id),
        },
    )
    session.execute(
        text(
            """
            UPDATE notification_queue SET updated_at = :now, data = jsonb_set(
                data, '{batch_count}', to_jsonb(COALESCE((data->>'batch_count')::int, 1) + 1))
            WHERE id = :summary
            """
        ),
        {"summary": str(summary), "now": now},
    )
    return summary
