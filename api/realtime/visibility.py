"""Changing who may see a user's presence: the column is written and committed, then every
watcher of the user is told what they may now see (the real presence, or offline)."""

from __future__ import annotations

import logging

import redis
from sqlalchemy.orm import Session

from core.catalog import PresenceVisibility
from models.users import set_presence_visibility
from realtime.presence import publish_presence
from runtime import current_runtime

log = logging.getLogger(__name__)


def change_presence_visibility(
    session: Session, user_id: str, visibility: PresenceVisibility
) -> None:
    set_presence_visibility(session, user_id, visibility)
    session.commit()
    try:
        context = current_runtime()
        context.presence.cache_visibilities({user_id: visibility.value})
        publish_presence(context, user_id, force=True)
    except redis.RedisError as exc:
        # Announcements check visibility each time: the next one is right anyway.
        log.warning("event=visibility_announce_failed error_type=%s", type(exc).__name__)
