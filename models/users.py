"""Users and matches: the minimal core that earlier phases own.

Pulse needs them for real authorization (whose presence and typing a user may
see) and for each user's time zone, locale and quiet hours.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    Time,
    UniqueConstraint,
    case,
    func,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Mapped, Session, mapped_column

from core.catalog import MatchStatus, PresenceVisibility
from models.base import Base, created_at, one_of, updated_at, uuid_pk

USER_ID_LENGTH = 64
ZONE_FORMAT = "^[A-Za-z0-9_+/-]{1,64}$"
LOCALE_FORMAT = "^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8}){0,3}$"


class User(Base):
    __tablename__ = "users"
    __table_args__ = (
        one_of("presence_visibility", PresenceVisibility),
        CheckConstraint(f"timezone ~ '{ZONE_FORMAT}'", name="timezone_format"),
        CheckConstraint(f"device_timezone ~ '{ZONE_FORMAT}'", name="device_timezone_format"),
        CheckConstraint(f"device_locale ~ '{LOCALE_FORMAT}'", name="device_locale_format"),
        CheckConstraint(
            "(quiet_hours_start IS NULL) = (quiet_hours_end IS NULL)", name="quiet_hours_pair"
        ),
    )

    id: Mapped[str] = mapped_column(String(USER_ID_LENGTH), primary_key=True)
    # The zone the user chose in the settings (wins over the device's); NULL: none chosen.
    timezone: Mapped[str | None] = mapped_column(String(64))
    # The latest device report (register-token, socket handshake, HTTP heartbeat).
    device_timezone: Mapped[str | None] = mapped_column(String(64))
    device_locale: Mapped[str | None] = mapped_column(String(35))
    device_reported_at: Mapped[datetime | None]
    # NULL: the deployment's default (PRESENCE_VISIBILITY_DEFAULT).
    presence_visibility: Mapped[str | None] = mapped_column(String(16))
    show_previews: Mapped[bool] = mapped_column(
        Boolean, default=True, server_default=text("true")
    )
    # NULL means "the deployment's default window" (QUIET_HOURS_DEFAULT_START/_END);
    # start == end means the user turned quiet hours off.
    quiet_hours_start: Mapped[time | None] = mapped_column(Time)
    quiet_hours_end: Mapped[time | None] = mapped_column(Time)
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()


class Match(Base):
    """Who matched whom; the pair is stored with user_a_id < user_b_id."""

    __tablename__ = "matches"
    __table_args__ = (
        UniqueConstraint("user_a_id", "user_b_id", name="uq_matches_pair"),
        CheckConstraint("user_a_id < user_b_id", name="ordered_pair"),
        one_of("status", MatchStatus),
        Index("ix_matches_user_b_id", "user_b_id"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    user_a_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    user_b_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(
        String(16), default=MatchStatus.MATCHED, server_default=MatchStatus.MATCHED
    )
    conversation_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()


def ensure_user(session: Session, user_id: str) -> None:
    """Create the users row the first time a user is seen; a no-op afterwards."""
    session.execute(insert(User).values(id=user_id).on_conflict_do_nothing(index_elements=["id"]))


def ensure_users(session: Session, user_ids: Sequence[str]) -> None:
    """ensure_user for many, in one statement."""
    if user_ids:
        session.execute(
            insert(User)
            .values([{"id": user_id} for user_id in user_ids])
            .on_conflict_do_nothing(index_elements=["id"])
        )


# --- What the real-time gateway asks of users and matches -----------------------------


def presence_visibilities(session: Session, user_ids: Sequence[str]) -> dict[str, str]:
    """user id -> presence visibility, for the users that exist."""
    if not user_ids:
        return {}
    rows = session.execute(
        select(User.id, User.presence_visibility).where(User.id.in_(list(user_ids)))
    )
    return {user_id: visibility for user_id, visibility in rows}


def active_partners(session: Session, user_id: str, now: datetime) -> set[str]:
    """The people `user_id` has a live match with (matched and not expired)."""
    other = case((Match.user_a_id == user_id, Match.user_b_id), else_=Match.user_a_id)
    rows = session.execute(
        select(other).where(
            or_(Match.user_a_id == user_id, Match.user_b_id == user_id),
            Match.status == MatchStatus.MATCHED,
            or_(Match.expires_at.is_(None), Match.expires_at > now),
        )
    )
    return set(rows.scalars().all())


def match_by_conversation(session: Session, conversation_id: str) -> Match | None:
    return session.scalars(select(Match).where(Match.conversation_id == conversation_id)).first()


def set_presence_visibility(session: Session, user_id: str, visibility: PresenceVisibility) -> None:
    session.execute(
        update(User).where(User.id == user_id).values(presence_visibility=visibility.value)
    )


def upsert_match(
    session: Session,
    user_a_id: str,
    user_b_id: str,
    changes: dict[str, object],
) -> Match:
    """Insert or update the match of an ordered pair (both users are created if new);
    `changes` holds status, expires_at, conversation_id (only those given)."""
    ensure_user(session, user_a_id)
    ensure_user(session, user_b_id)
    values = {"user_a_id": user_a_id, "user_b_id": user_b_id, **changes}
    statement = insert(Match).values(**values)
    statement = statement.on_conflict_do_update(
        constraint="uq_matches_pair", set_={**changes, "updated_at": func.now()}
    ).returning(Match)
    return session.execute(statement).scalar_one()


# --- The device's time zone and locale -------------------------------------------------

# A report that changes nothing is not written, except to move device_reported_at on at
# most this often (it then says when the device was last heard from, to within this).
DEVICE_REPORT_REFRESH = timedelta(hours=1)


def record_device_report(
    session: Session,
    user_id: str,
    *,
    timezone: str | None,
    locale: str | None,
    reported_at: datetime,
) -> bool:
    """What a device said at `reported_at` (register-token, the socket handshake, the HTTP
    heartbeat): its IANA zone and BCP 47 locale, each written only when given. In the
    caller's unit of work (no commit); True when the row was written. The user's row must
    exist (ensure_user).

    The most recent report wins: one older than the stored report (a request that arrives
    late) is ignored, and the same report twice writes once. users.timezone, the zone the
    user chose in the settings, is never touched: it wins over the device's when read. The
    heartbeat repeats the report: a report that changes nothing is a conditional UPDATE
    that matches no row (no write), except once per DEVICE_REPORT_REFRESH.
    """
    changes: dict[str, str] = {}
    if timezone is not None:
        changes["device_timezone"] = timezone
    if locale is not None:
        changes["device_locale"] = locale
    if not changes:
        return False
    last = User.device_reported_at
    changed = or_(*(getattr(User, name).is_distinct_from(value) for name, value in changes.items()))
    statement = (
        update(User)
        .where(
            User.id == user_id,
            or_(last.is_(None), last < reported_at),
            or_(changed, last.is_(None), last < reported_at - DEVICE_REPORT_REFRESH),
        )
        .values(**changes, device_reported_at=reported_at)
        .execution_options(synchronize_session=False)
    )
    return session.execute(statement).rowcount > 0  # type: ignore[attr-defined]


@dataclass(frozen=True)
class TimezoneSources:
    """How many users have each source of the zone their rules run in."""

    users: int
    explicit: int  # chose one in the settings
    device: int  # no choice; a device reported one
    default: int  # never heard from: DEFAULT_TIMEZONE applies


def timezone_sources(session: Session) -> TimezoneSources:
    """One aggregate over users (for operators: how many run on DEFAULT_TIMEZONE)."""
    no_choice = User.timezone.is_(None)
    row = session.execute(
        select(
            func.count(),
            func.count(User.timezone),
            func.count().filter(no_choice, User.device_timezone.is_not(None)),
            func.count().filter(no_choice, User.device_timezone.is_(None)),
        ).select_from(User)
    ).one()
    return TimezoneSources(*row)
