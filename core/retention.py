"""How long Pulse keeps what it stores: the retention cut-offs, as pure functions of the
settings and `now` (docs/pipeline.md, "Retention").

`cutoffs` is the one place a cut-off is computed; the retention job
(`jobs.maintenance.apply_retention`) and the real-time events sweep both take theirs from it.

The analytics gate (issue #12): retention must never remove what the engagement rollups have
not counted yet. The rollups do not exist yet; when they do, the rollup step passes the
moment up to which they are complete as `rolled_up_through`, and the cut-offs of what the
rollups read (notifications with their deliveries, user activity) never pass it. Until
then `rolled_up_through` is None and the retention periods alone decide.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from core.catalog import NotificationStatus
from core.config import RetentionSettings

# Rows in these statuses are done with: nothing will send them again, so retention may
# remove them. Rows still waiting or in flight (pending, scheduled, processing) are kept
# whatever their age: a send scheduled far ahead is sent, or expires, first. A status
# added later is kept until it is listed here.
FINISHED_STATUSES: tuple[NotificationStatus, ...] = (
    NotificationStatus.SENT,
    NotificationStatus.PARTIALLY_SENT,
    NotificationStatus.FAILED,
    NotificationStatus.SUPPRESSED,
    NotificationStatus.BATCHED,
    NotificationStatus.EXPIRED,
    NotificationStatus.CANCELLED,
)

# A token's last_used is moved by an accepted delivery at most this often: staleness is
# counted in months, and a token row rewritten on every push would cost the hot path.
LAST_USED_RESOLUTION = timedelta(hours=1)


@dataclass(frozen=True)
class Cutoffs:
    """Rows created before these moments go (tokens: active ones last used before)."""

    notifications: datetime  # notification_queue, notification_deliveries, notification_sends
    realtime_events: datetime  # processed realtime_events
    activity: datetime  # user_activity
    token_stale: datetime  # active push_tokens not used since: deactivated as stale


def cutoffs(
    settings: RetentionSettings, now: datetime, rolled_up_through: datetime | None = None
) -> Cutoffs:
    """The retention cut-offs at `now`. `rolled_up_through` (issue #12, the analytics gate):
    what the engagement rollups have counted up to; the rows they read are kept after it."""

    def gated(cutoff: datetime) -> datetime:
        return cutoff if rolled_up_through is None else min(cutoff, rolled_up_through)

    return Cutoffs(
        notifications=gated(now - timedelta(days=settings.notification_days)),
        realtime_events=now - timedelta(days=settings.realtime_events_days),
        activity=gated(now - timedelta(days=settings.activity_days)),
        token_stale=now - timedelta(days=settings.token_stale_days),
    )
