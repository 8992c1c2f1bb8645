"""What users did, for presence and engagement analysis."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Identity, Index, String, func, insert, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, Session, mapped_column

from core.catalog import ActivityType
from core.requests import ActivityReport
from models.base import Base, created_at, one_of
from models.users import ensure_users


class UserActivity(Base):
    __tablename__ = "user_activity"
    __table_args__ = (
        one_of("activity_type", ActivityType),
        Index("ix_user_activity_user_id", "user_id"),
        Index("ix_user_activity_activity_type", "activity_type"),
        Index("ix_user_activity_created_at", "created_at"),
        Index("ix_user_activity_user_created", "user_id", "created_at"),
        Index("ix_user_activity_user_occurred", "user_id", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    activity_type: Mapped[str] = mapped_column(String(32))
    # "metadata" is reserved on declarative classes; the column keeps the seed's name.
    details: Mapped[dict[str, Any]] = mapped_column(
        "metadata", JSONB, default=dict, server_default=text("'{}'")
    )
    device_id: Mapped[str | None] = mapped_column(String(128))
    # When it happened, as the device reported it; created_at is when Pulse stored it
    # (retention goes by created_at).
    occurred_at: Mapped[datetime] = mapped_column(server_default=func.now())
    created_at: Mapped[datetime] = created_at()


def record_activity(
    session: Session, reports: Sequence[ActivityReport], device_id: str | None = None
) -> int:
    """The one write of activity (POST /api/v1/activity and the socket's `activity`
    event): every report of a batch in one multi-row INSERT, their users made if new,
    committed once. Returns how many rows were written."""
    if not reports:
        return 0
    ensure_users(session, sorted({report.user_id for report in reports}))
    session.execute(
        insert(UserActivity).values(
            [
                {
                    "user_id": report.user_id,
                    "activity_type": report.activity_type,
                    "details": report.metadata,
                    "device_id": device_id,
                    "occurred_at": report.occurred_at,
                }
                for report in reports
            ]
        )
    )
    session.commit()
    return len(reports)


DELETE_ACTIVITY_BEFORE = text(
    """
    DELETE FROM user_activity WHERE id = ANY(ARRAY(
        SELECT id FROM user_activity WHERE created_at < :cutoff
        ORDER BY created_at
        LIMIT :limit
        FOR UPDATE SKIP LOCKED
    ))
    """
)


def delete_activity_before(session: Session, cutoff: datetime, limit: int) -> int:
    """Retention: delete up to `limit` activity rows made before `cutoff`, oldest first
    (ix_user_activity_created_at). Returns how many."""
    result = session.execute(DELETE_ACTIVITY_BEFORE, {"cutoff": cutoff, "limit": limit})
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
