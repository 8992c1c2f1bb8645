"""Presence rules: a user's devices and connections, and `now`, in; their presence out.

Pure functions only: no Redis, no database, no clock (callers pass `now`). What may be
seen by whom (visibility) is decided here too, and nowhere else.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from core.catalog import PresenceState, PresenceVisibility

# Statuses a user may choose; online means "no choice: follow my activity".
CHOOSABLE = (PresenceState.ONLINE, PresenceState.AWAY, PresenceState.BUSY)


@dataclass(frozen=True)
class PresenceFacts:
    """What is known about one user's devices at some moment."""

    live_activity: tuple[datetime, ...] = ()  # last activity of each live connection
    last_seen: datetime | None = None  # latest sign of life from a device with no live socket
    chosen: PresenceState | None = None  # busy or away, when the user set it


@dataclass(frozen=True)
class Presence:
    status: PresenceState
    last_seen: datetime | None
    changes_at: datetime | None = None  # when it changes by itself, if nothing happens


HIDDEN = Presence(PresenceState.OFFLINE, None)


def aggregate(
    facts: PresenceFacts, now: datetime, away_after: timedelta, offline_after: timedelta
) -> Presence:
    """Busy when the user chose it; online while any connection was active within
    `away_after`; away when every connection is idle, or after the last one closed (with
    last_seen); offline `offline_after` after the last sign of life."""
    if facts.live_activity:
        latest = max(facts.live_activity)
        if facts.chosen in (PresenceState.BUSY, PresenceState.AWAY):
            return Presence(facts.chosen, latest)
        idle_at = latest + away_after
        if now < idle_at:
            return Presence(PresenceState.ONLINE, latest, idle_at)
        return Presence(PresenceState.AWAY, latest)
    if facts.last_seen is None:
        return Presence(PresenceState.OFFLINE, None)
    offline_at = facts.last_seen + offline_after
    if now < offline_at:
        return Presence(PresenceState.AWAY, facts.last_seen, offline_at)
    return Presence(PresenceState.OFFLINE, facts.last_seen)


def latest(moments: Iterable[datetime | None]) -> datetime | None:
    present = [moment for moment in moments if moment is not None]
    return max(present) if present else None


def may_see(viewer_id: str, subject_id: str, visibility: str | None, matched: bool) -> bool:
    """Whether `viewer_id` may see `subject_id`'s presence and activity. `visibility` is the
    subject's, with the deployment's default already applied (None: matches, the private
    choice)."""
    if viewer_id == subject_id:
        return True
    setting = PresenceVisibility(visibility or PresenceVisibility.MATCHES)
    if setting is PresenceVisibility.EVERYONE:
        return True
    if setting is PresenceVisibility.MATCHES:
        return matched
    return False


def view(presence: Presence, visible: bool) -> Presence:
    """What a viewer is shown: the real presence, or offline with no last_seen."""
    return presence if visible else HIDDEN


def coalesced_flush_at(first_change: datetime, interval: timedelta) -> datetime:
    """A low-battery connection gets the changes collected from its first pending change
    on, in one presence_bulk_update `interval` later: at most one per interval."""
    return first_change + interval
