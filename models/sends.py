"""Accepting a send request: idempotency, the notification rows (the outbox), and the
all-users fan-out in pages. Rows are committed here; jobs are enqueued by the caller
after the commit, never before.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.catalog import NotificationStatus, NotificationType, Priority
from core.presentation import with_action
from core.requests import SendRequest
from core.sanitize import clean_body, clean_title
from core.templates import DEFAULT_LOCALE, render
from models.base import new_id
from models.notifications import Notification, NotificationSend
from models.users import Match, User

FANOUT_PAGE = 1_000


class IdempotencyConflict(Exception):
    """The idempotency key was used before for a different request."""


@dataclass(frozen=True)
class Accepted:
    send_id: uuid.UUID
    response: dict[str, Any]
    replayed: bool = False
    # What to enqueue after the commit: ids due now, by priority.
    due: dict[Priority, list[uuid.UUID]] = field(default_factory=dict)
    fan_out: bool = False


def accept_send(
    session: Session, request: SendRequest, requested_by: str, now: datetime
) -> Accepted:
    """Store the send and its notification rows in one transaction and commit.

    The same idempotency key with the same request returns the first answer and writes
    nothing; with a different request it raises IdempotencyConflict.
    """
    fingerprint = request.fingerprint()
    if request.idempotency_key:
        earlier = _earlier_send(session, requested_by, request.idempotency_key)
        if earlier is not None:
            return _replay(earlier, fingerprint)
    send = NotificationSend(
        id=new_id(),
        requested_by=requested_by,
        idempotency_key=request.idempotency_key,
        request_fingerprint=fingerprint,
        request=request.as_json(),
        response={},
    )
    session.add(send)
    try:
        session.flush()
    except IntegrityError:
        # Another request with the same key won the race: answer what it answered.
        session.rollback()
        earlier = _earlier_send(session, requested_by, request.idempotency_key or "")
        if earlier is None:
            raise
        return _replay(earlier, fingerprint)
    if request.all_users:
        recipients = session.scalar(select(func.count()).select_from(User)) or 0
        send.response = {"send_id": str(send.id), "count": recipients, "status": "fanning_out"}
        due: dict[Priority, list[uuid.UUID]] = {}
    else:
        ids = insert_notifications(session, send.id, request, request.user_ids, now)
        send.response = {
            "send_id": str(send.id),
            "count": len(ids),
            "notification_ids": [str(i) for i in ids],
            "status": "accepted",
        }
        due = {request.priority: ids} if _is_due(request, now) else {}
    session.commit()
    return Accepted(send.id, send.response, due=due, fan_out=request.all_users)


def _earlier_send(session: Session, requested_by: str, key: str) -> NotificationSend | None:
    return session.scalars(
        select(NotificationSend).where(
            NotificationSend.requested_by == requested_by, NotificationSend.idempotency_key == key
        )
    ).one_or_none()


def _replay(earlier: NotificationSend, fingerprint: str) -> Accepted:
    if earlier.request_fingerprint != fingerprint:
        raise IdempotencyConflict(earlier.idempotency_key)
    return Accepted(earlier.id, earlier.response, replayed=True)


def _is_due(request: SendRequest, now: datetime) -> bool:
    return request.scheduled_for is None or request.scheduled_for <= now


def insert_notifications(
    session: Session,
    send_id: uuid.UUID,
    request: SendRequest,
    user_ids: Sequence[str],
    now: datetime,
) -> list[uuid.UUID]:
    """Insert one row per user (users seen for the first time get a users row); skips users
    that already have a row for this send. Returns the new rows' ids. The caller commits."""
    if not user_ids:
        return []
    session.execute(
        insert(User).on_conflict_do_nothing(index_elements=["id"]), [{"id": u} for u in user_ids]
    )
    expires_at = request.expires_at or _match_expiry(session, request)
    locales = dict(
        session.execute(select(User.id, User.device_locale).where(User.id.in_(user_ids))).all()
    )
    texts = {}
    due = _is_due(request, now)
    # `action`, the screen a tap opens, is stored with the data: the push, the in-app copy
    # and GET /notifications/<id> all show it.
    data = with_action(request.notification_type, request.data)
    rows = []
    for user_id in user_ids:
        locale = locales.get(user_id) or DEFAULT_LOCALE
        if locale not in texts:
            texts[locale] = render(
                request.notification_type, request.data, locale, request.title, request.body
            )
        text = texts[locale]
        rows.append(
            {
                "id": new_id(),
                "user_id": user_id,
                "notification_type": request.notification_type.value,
                "title": clean_title(text.title),
                "body": clean_body(text.body),
                "data": data,
                "priority": request.priority.value,
                "status": (
                    NotificationStatus.PENDING if due else NotificationStatus.SCHEDULED
                ).value,
                "scheduled_for": request.scheduled_for or now,
                "send_id": send_id,
                "platforms": list(request.platforms) if request.platforms is not None else None,
                "expires_at": expires_at,
                "enqueued_at": now if due else None,
                "created_at": now,
                "updated_at": now,
            }
        )
    statement = (
        insert(Notification)
        .on_conflict_do_nothing(
            index_elements=["send_id", "user_id"], index_where=Notification.send_id.is_not(None)
        )
        .returning(Notification.id)
    )
    return list(session.scalars(statement, rows))


def _match_expiry(session: Session, request: SendRequest) -> datetime | None:
    """A match_expiring notification goes stale with its match."""
    match_id = request.data.get("match_id")
    if request.notification_type is not NotificationType.MATCH_EXPIRING or not match_id:
        return None
    try:
        return session.scalar(select(Match.expires_at).where(Match.id == uuid.UUID(str(match_id))))
    except ValueError:  # not a UUID: not one of our matches
        return None


def fan_out_page(
    session: Session, send_id: uuid.UUID, after_user_id: str | None, now: datetime
) -> tuple[list[uuid.UUID], str | None, Priority]:
    """Create the rows of an all-users send for the next page of users (by id), commit,
    and return the new ids, the last user id of the page (None when done) and the priority."""
    send = session.get(NotificationSend, send_id)
    if send is None:
        return [], None, Priority.NORMAL
    request = SendRequest.from_json(send.request)
    query = select(User.id).order_by(User.id).limit(FANOUT_PAGE)
    if after_user_id is not None:
        query = query.where(User.id > after_user_id)
    page = list(session.scalars(query))
    ids = insert_notifications(session, send_id, request, page, now)
    if len(page) < FANOUT_PAGE:
        send.fanned_out_at = now
    session.commit()
    last = page[-1] if len(page) == FANOUT_PAGE else None
    return (ids if _is_due(request, now) else []), last, request.priority


def chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def stalled_fan_outs(
    session: Session, stale_before: datetime
) -> list[tuple[uuid.UUID, str | None]]:
    """All-users sends made before `stale_before` whose fan-out has not finished, with the
    last user id it reached (the next page starts after it)."""
    last_user = (
        select(func.max(Notification.user_id))
        .where(Notification.send_id == NotificationSend.id)
        .scalar_subquery()
    )
    rows = session.execute(
        select(NotificationSend.id, last_user).where(
            NotificationSend.fanned_out_at.is_(None),
            NotificationSend.request["all_users"].as_boolean(),
            NotificationSend.created_at < stale_before,
        )
    )
    return [(send_id, after) for send_id, after in rows]


DELETE_SENDS_WITHOUT_NOTIFICATIONS = text(
    """
    DELETE FROM notification_sends WHERE id = ANY(ARRAY(
        SELECT s.id FROM notification_sends AS s
        WHERE s.created_at < :cutoff
          -- Probed per send through uq_notification_queue_send_user, oldest send first;
          -- OFFSET 0 keeps the planner from turning it into a join over every old send.
          AND NOT EXISTS (
              SELECT 1 FROM notification_queue AS n WHERE n.send_id = s.id OFFSET 0
          )
          AND (s.fanned_out_at IS NOT NULL
               OR NOT coalesce((s.request ->> 'all_users')::boolean, false))
        ORDER BY s.created_at
        LIMIT :limit
        FOR UPDATE OF s SKIP LOCKED
    ))
    """
)


def delete_sends_without_notifications(session: Session, cutoff: datetime, limit: int) -> int:
    """Retention: delete up to `limit` sends made before `cutoff` that have no notification
    left (retention removes those first) and no fan-out still to finish, oldest first.
    Their idempotency keys go with them. Returns how many."""
    result = session.execute(DELETE_SENDS_WITHOUT_NOTIFICATIONS, {"cutoff": cutoff, "limit": limit})
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
