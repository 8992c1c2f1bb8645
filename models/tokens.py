"""Device push tokens: encrypted at rest, unique and looked up by a keyed hash.

The token value itself is only ever held as Fernet ciphertext; never select it
into a response or a log line.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    Text,
    delete,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Mapped, Session, mapped_column

from core.catalog import Platform, Provider
from core.device_tokens import TokenCipher
from models.base import Base, created_at, new_id, one_of, updated_at, utcnow, uuid_pk


class PushToken(Base):
    __tablename__ = "push_tokens"
    __table_args__ = (
        one_of("platform", Platform),
        one_of("provider", Provider),
        Index("ix_push_tokens_user_id", "user_id"),
        Index("ix_push_tokens_platform", "platform"),
        Index("ix_push_tokens_is_active", "is_active"),
        Index("ix_push_tokens_last_used", "last_used"),
        # The send path reads "the active tokens of these users": keep that index small.
        Index(
            "ix_push_tokens_active_by_user",
            "user_id",
            postgresql_where=text("is_active"),
        ),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    token_ciphertext: Mapped[str] = mapped_column(Text)
    platform: Mapped[str] = mapped_column(String(16))
    provider: Mapped[str] = mapped_column(String(16))
    device_id: Mapped[str | None] = mapped_column(String(128))
    app_version: Mapped[str | None] = mapped_column(String(32))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    last_used: Mapped[datetime] = mapped_column(default=utcnow, server_default=text("now()"))
    deactivated_at: Mapped[datetime | None]
    deactivation_reason: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()


@dataclass(frozen=True)
class Registration:
    token_id: uuid.UUID
    created: bool  # new for this user (a new token, or one that moved from another user)


def register_token(
    session: Session,
    cipher: TokenCipher,
    *,
    user_id: str,
    token: str,
    platform: Platform,
    provider: Provider,
    device_id: str | None,
    app_version: str | None,
    now: datetime,
) -> Registration:
    """Upsert a device token by its keyed hash and commit.

    The same token again refreshes last_used and reactivates it; a token that another
    user registered moves to this one (the phone changed hands); a new token for the
    same device replaces the device's previous one.
    """
    token_hash = cipher.lookup_hash(token)
    previous_owner = (
        select(PushToken.user_id).where(PushToken.token_hash == token_hash).scalar_subquery()
    )
    values = {
        "user_id": user_id,
        "platform": platform.value,
        "provider": provider.value,
        "device_id": device_id,
        "app_version": app_version,
        "is_active": True,
        "last_used": now,
        "updated_at": now,
        "deactivated_at": None,
        "deactivation_reason": None,
    }
    statement = (
        insert(PushToken)
        .values(
            id=new_id(),
            token_hash=token_hash,
            token_ciphertext=cipher.encrypt(token),
            created_at=now,
            **values,
        )
        .on_conflict_do_update(index_elements=[PushToken.token_hash], set_=values)
        .returning(PushToken.id, previous_owner.label("previous_owner"))
    )
    token_id, previous = session.execute(statement).one()
    if device_id is not None:
        session.execute(
            update(PushToken)
            .where(
                PushToken.user_id == user_id,
                PushToken.device_id == device_id,
                PushToken.provider == provider.value,
                PushToken.id != token_id,
                PushToken.is_active,
            )
            .values(
                is_active=False, deactivated_at=now, deactivation_reason="replaced", updated_at=now
            )
        )
    session.commit()
    return Registration(token_id=token_id, created=previous != user_id)


def find_own_token(
    session: Session,
    cipher: TokenCipher,
    user_id: str,
    *,
    token: str | None,
    token_id: uuid.UUID | None,
) -> PushToken | None:
    """The caller's token by value or id; None when it is not theirs (or does not exist)."""
    query = select(PushToken).where(PushToken.user_id == user_id)
    if token_id is not None:
        query = query.where(PushToken.id == token_id)
    else:
        query = query.where(PushToken.token_hash == cipher.lookup_hash(token or ""))
    return session.scalars(query).one_or_none()


def deactivate_token(
    session: Session,
    token_id: uuid.UUID,
    reason: str,
    now: datetime,
    *,
    unless_used_after: datetime | None = None,
) -> bool:
    """The one way a token stops being used (an unregister, a provider's "dead token" at
    send time or in an Expo receipt): idempotent, in the caller's unit of work (no commit).
    `unless_used_after`: keep it if it was registered again after that moment (APNs' 410
    says when the token died). The row stays for delivery history until the cleanup job
    purges it. Returns whether this call deactivated it."""
    conditions = [PushToken.id == token_id, PushToken.is_active]
    if unless_used_after is not None:
        conditions.append(PushToken.last_used <= unless_used_after)
    result = session.execute(
        update(PushToken)
        .where(*conditions)
        .values(
            is_active=False, deactivated_at=now, deactivation_reason=reason[:64], updated_at=now
        )
    )
    return bool(result.rowcount)


def unregister_token(session: Session, token_id: uuid.UUID, now: datetime) -> None:
    """The app unregistered one of its user's tokens: deactivate it and commit."""
    deactivate_token(session, token_id, "unregistered", now)
    session.commit()


def list_tokens(session: Session, user_id: str) -> list[PushToken]:
    """A user's tokens, newest use first (the ciphertext is for the caller to leave alone)."""
    query = (
        select(PushToken)
        .where(PushToken.user_id == user_id)
        .order_by(PushToken.is_active.desc(), PushToken.last_used.desc())
    )
    return list(session.scalars(query))


def lock_stale_tokens(session: Session, used_before: datetime, limit: int) -> list[uuid.UUID]:
    """Up to `limit` active tokens not used (registered again, or accepted by a provider)
    since `used_before`, least recently used first (ix_push_tokens_last_used), locked in
    the caller's transaction; tokens another transaction holds are skipped. The caller
    deactivates them with `deactivate_token`."""
    return list(
        session.scalars(
            select(PushToken.id)
            .where(PushToken.is_active, PushToken.last_used < used_before)
            .order_by(PushToken.last_used)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )


def delete_inactive_before(session: Session, deactivated_before: datetime, limit: int) -> int:
    """Delete up to `limit` tokens deactivated before `deactivated_before`; their deliveries
    keep their rows (token_id -> NULL). Returns how many."""
    ids = (
        select(PushToken.id)
        .where(PushToken.is_active.is_(False), PushToken.deactivated_at < deactivated_before)
        .limit(limit)
    )
    result = session.execute(delete(PushToken).where(PushToken.id.in_(ids)))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
