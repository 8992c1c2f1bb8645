"""The outbox's state changes: claiming due rows under a lease, expiring stale ones, taking
back rows whose worker died, and finding what the sweep must enqueue.

Claims use FOR UPDATE SKIP LOCKED, so any number of workers share the work without
sending a row twice; each function leaves the commit to its caller.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import and_, case, or_, select, update
from sqlalchemy.orm import Session

from core.catalog import DeliveryStatus, NotificationStatus, Priority
from models.notifications import Notification, NotificationDelivery
from models.tokens import PushToken

WAITING = (NotificationStatus.PENDING.value, NotificationStatus.SCHEDULED.value)
PRIORITY_RANK = case(
    {priority.value: priority.rank for priority in Priority}, value=Notification.priority
)


def expire_overdue(session: Session, ids: Sequence[uuid.UUID], now: datetime) -> int:
    """Rows among `ids` whose expires_at has passed become expired and are never sent."""
    result = session.execute(
        update(Notification)
        .where(
            Notification.id.in_(ids),
            Notification.status.in_(WAITING),
            Notification.expires_at <= now,
        )
        .values(status=NotificationStatus.EXPIRED, reason="expired", updated_at=now)
    )
    return result.rowcount


def claim(
    session: Session, ids: Sequence[uuid.UUID], now: datetime, lease_seconds: int
) -> list[Notification]:
    """Take the due, waiting rows among `ids` that no other worker holds; most urgent first.

    A claimed row is `processing` until its lease runs out; then the sweep takes it back.
    """
    claimable = (
        select(Notification.id)
        .where(
            Notification.id.in_(ids),
            Notification.status.in_(WAITING),
            Notification.scheduled_for <= now,
        )
        .with_for_update(skip_locked=True)
    )
    statement = (
        update(Notification)
        .where(Notification.id.in_(claimable.scalar_subquery()))
        .values(
            status=NotificationStatus.PROCESSING,
            attempts=Notification.attempts + 1,
            lease_expires_at=now + timedelta(seconds=lease_seconds),
            updated_at=now,
        )
        .returning(Notification)
    )
    rows = list(session.scalars(statement))
    return sorted(rows, key=lambda row: (Priority(row.priority).rank, row.created_at))


def active_tokens(session: Session, user_ids: Sequence[str]) -> list[PushToken]:
    """Every active token of these users, in one query."""
    return list(
        session.scalars(
            select(PushToken).where(PushToken.user_id.in_(user_ids), PushToken.is_active)
        )
    )


def devices_already_reached(
    session: Session, ids: Sequence[uuid.UUID]
) -> set[tuple[uuid.UUID, uuid.UUID]]:
    """(notification id, token id) pairs a provider accepted in an earlier attempt."""
    rows = session.execute(
        select(NotificationDelivery.notification_id, NotificationDelivery.token_id).where(
            NotificationDelivery.notification_id.in_(ids),
            NotificationDelivery.status.in_([DeliveryStatus.SENT, DeliveryStatus.DELIVERED]),
        )
    )
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
