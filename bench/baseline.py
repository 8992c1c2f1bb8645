"""The baseline a first RQ implementation would be: one job per notification, and in it a
synchronous provider call per device. Used only by bench/pipeline.py, for the ratio."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import select, update

from core.catalog import DeliveryStatus, NotificationStatus, Priority, Provider
from models.db import db
from models.notifications import Notification, NotificationDelivery
from models.tokens import PushToken
from providers import Outcome, PushMessage
from runtime import current_runtime


def deliver_one(notification_id: str) -> None:
    runtime = current_runtime()
    with db.session_scope() as session:
        notification = session.scalars(
            update(Notification)
            .where(
                Notification.id == uuid.UUID(notification_id),
                Notification.status.in_(["pending", "scheduled"]),
            )
            .values(status=NotificationStatus.PROCESSING, attempts=Notification.attempts + 1)
            .returning(Notification)
        ).one_or_none()
        if notification is None:
            return
        tokens = session.scalars(
            select(PushToken).where(PushToken.user_id == notification.user_id, PushToken.is_active)
        ).all()
        sent = 0
        for token in tokens:
            message = PushMessage(
                ref=str(uuid.uuid4()),
                token=runtime.cipher.decrypt(token.token_ciphertext),
                title=notification.title,
                body=notification.body,
                data=notification.data,
                priority=Priority(notification.priority),
            )
            [result] = runtime.providers[Provider(token.provider)].send([message])
            ok = result.outcome is Outcome.SENT
            sent += ok
            session.add(
                NotificationDelivery(
                    notification_id=notification.id,
                    token_id=token.id,
                    provider=token.provider,
                    status=DeliveryStatus.SENT if ok else DeliveryStatus.FAILED,
                    provider_message_id=result.provider_message_id,
                    error_reason=result.error,
                )
            )
        notification.status = NotificationStatus.SENT if sent else NotificationStatus.FAILED
        notification.sent_at = datetime.now(UTC)
