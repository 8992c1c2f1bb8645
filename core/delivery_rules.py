"""The rules a claimed notification passes before it is pushed, in order, as one pure
function of the facts and `now`.

Order, and why:
1. expiry (in the claim): a stale notification is never sent, whatever else holds;
2. settings: a push the user turned off is final, so nothing later should defer it;
3. presence (when the gateway says the user is active in the app): delivered in-app;
4. quiet hours: per type (and per user's choice), deferred to the window's end before it
   can open a batch or use a cap, or sent now, quietly (no sound, no lit screen);
5. batching (stores/batch_windows.py, atomic in Redis): held notifications use no cap, the
   summary uses one;
6. caps (stores/caps.py, atomic in Redis): last, so that they count what is really sent;
   only the types the catalogue caps (likes, views, boosts, marketing) count.
Critical bypasses quiet hours, batching and caps; settings still apply.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from core.catalog import NotificationType, Priority, QuietBehavior
from core.preferences import QuietHours, TypePreference
from core.quiet_hours import quiet_hours_end, spread

SETTING_DISABLED = "setting_disabled"
QUIET_HOURS = "quiet_hours"
USER_ACTIVE = "user_active"

# Types the app shows in-app as they happen: no push while the user is active in the app.
IN_APP_COUNTERPART = frozenset(
    {
        NotificationType.NEW_MESSAGE,
        NotificationType.NEW_MATCH,
        NotificationType.LIKE_RECEIVED,
        NotificationType.SUPER_LIKE_RECEIVED,
        NotificationType.CONVERSATION_STARTED,
        NotificationType.PROFILE_VIEW,
    }
)


class Action(StrEnum):
    SEND = "send"
    SEND_QUIETLY = "send_quietly"  # now, without sound, vibration or lighting the screen
    SUPPRESS = "suppress"
    DEFER = "defer"


@dataclass(frozen=True)
class Verdict:
    action: Action
    reason: str | None = None
    until: datetime | None = None


SEND = Verdict(Action.SEND)
SEND_QUIETLY = Verdict(Action.SEND_QUIETLY, QUIET_HOURS)


def before_send(
    *,
    user_id: str,
    notification_type: NotificationType,
    priority: Priority,
    preference: TypePreference,
    quiet: QuietHours,
    user_active_in_app: bool,
    now: datetime,
    spread_seconds: int,
) -> Verdict:
    if not preference.allows_push:
        return Verdict(Action.SUPPRESS, SETTING_DISABLED)
    if user_active_in_app and notification_type in IN_APP_COUNTERPART:
        return Verdict(Action.SUPPRESS, USER_ACTIVE)
    if priority is not Priority.CRITICAL:
        end = quiet_hours_end(now, quiet)
        if end is not None:
            if preference.quiet_hours_behavior is QuietBehavior.QUIET:
                return SEND_QUIETLY
            return Verdict(Action.DEFER, QUIET_HOURS, end + spread(user_id, spread_seconds))
    return SEND


def at_least(moment: datetime, now: datetime) -> datetime:
    """Never schedule in the past (a window that just closed)."""
    return max(moment, now + timedelta(seconds=1))
