"""The one catalogue of Pulse's names: notification types, priorities, statuses,
platforms, providers, roles, event and activity types.

A name such as "new_match" is written here once; everything else imports it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Priority(StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"

    @property
    def rank(self) -> int:
        """0 for critical, 3 for low: sort ascending to serve the most urgent first."""
        return list(Priority).index(self)


class NotificationType(StrEnum):
    NEW_MATCH = "new_match"
    NEW_MESSAGE = "new_message"
    SUPER_LIKE_RECEIVED = "super_like_received"
    LIKE_RECEIVED = "like_received"
    MATCH_EXPIRING = "match_expiring"
    CONVERSATION_STARTED = "conversation_started"
    BOOST_ACTIVATED = "boost_activated"
    PROFILE_VIEW = "profile_view"
    SYSTEM = "system"
    MARKETING = "marketing"


class CapPolicy(StrEnum):
    """Whether a type counts against (and is held by) the frequency caps."""

    CAPPED = "capped"
    UNCAPPED = "uncapped"


class QuietBehavior(StrEnum):
    """What quiet hours do to a type: hold it until the window ends, or send it now
    without sound, vibration or lighting the screen."""

    DEFER = "defer"
    QUIET = "quiet"


class InterruptionLevel(StrEnum):
    """APNs `interruption-level` (iOS 15+)."""

    PASSIVE = "passive"
    ACTIVE = "active"
    TIME_SENSITIVE = "time-sensitive"


class AndroidChannel(StrEnum):
    """The Android notification channels the app creates (docs/app-developers.md); a push
    names one as FCM `android.notification.channel_id` / Expo `channelId`."""

    MATCHES = "matches"
    MESSAGES = "messages"
    LIKES = "likes"
    ACTIVITY = "activity"
    ACCOUNT = "account"
    PROMOTIONS = "promotions"
    # Low importance, no sound or vibration: every push delivered quietly in quiet hours.
    QUIET = "quiet"


class Action(StrEnum):
    """`data.action`: the screen the app opens when the push is tapped (the seed's names)."""

    OPEN_MATCH = "open_match"
    OPEN_CONVERSATION = "open_conversation"
    OPEN_SUPER_LIKES = "open_super_likes"
    OPEN_LIKES = "open_likes"
    OPEN_PROFILE_VIEWS = "open_profile_views"
    OPEN_BOOST = "open_boost"
    OPEN_APP = "open_app"


@dataclass(frozen=True)
class TypeDefaults:
    priority: Priority
    is_enabled: bool
    push_enabled: bool
    email_enabled: bool
    caps: CapPolicy
    quiet_hours: QuietBehavior
    channel: AndroidChannel
    interruption: InterruptionLevel
    action: Action


# Why these defaults (docs/notification-types.md says the same for users of the API):
# - what another person did to you (match, message, super like, expiring match) is
#   high: it is time-sensitive and the reason people keep the app;
# - plain likes, new conversations and boosts are normal; profile views are low
#   (frequent, and they must never crowd out a match);
# - system notices (account, safety) are high and on; marketing is opt-in: off until
#   the user turns it on, and low when they do.
# Email is off everywhere: Pulse does not send email, the flag is kept for the
# service that does.
# Caps (the seed's "10 per day per user, 3 per hour per type") hold the frequent,
# ignorable signals (likes, views, boosts, marketing), never a conversation or a match:
# those are the product, and batching already merges a burst of them into one push.
# Quiet hours hold what can wait until morning; a message or a match goes now, quietly.
TYPE_DEFAULTS: dict[NotificationType, TypeDefaults] = {
    NotificationType.NEW_MATCH: TypeDefaults(
        Priority.HIGH,
        True,
        True,
        False,
        CapPolicy.UNCAPPED,
        QuietBehavior.QUIET,
        AndroidChannel.MATCHES,
        InterruptionLevel.TIME_SENSITIVE,
        Action.OPEN_MATCH,
    ),
    NotificationType.NEW_MESSAGE: TypeDefaults(
        Priority.HIGH,
        True,
        True,
        False,
        CapPolicy.UNCAPPED,
        QuietBehavior.QUIET,
        AndroidChannel.MESSAGES,
        InterruptionLevel.ACTIVE,
        Action.OPEN_CONVERSATION,
    ),
    NotificationType.SUPER_LIKE_RECEIVED: TypeDefaults(
        Priority.HIGH,
        True,
        True,
        False,
        CapPolicy.CAPPED,
        QuietBehavior.DEFER,
        AndroidChannel.LIKES,
        InterruptionLevel.ACTIVE,
        Action.OPEN_SUPER_LIKES,
    ),
    NotificationType.LIKE_RECEIVED: TypeDefaults(
        Priority.NORMAL,
        True,
        True,
        False,
        CapPolicy.CAPPED,
        QuietBehavior.DEFER,
        AndroidChannel.LIKES,
        InterruptionLevel.ACTIVE,
        Action.OPEN_LIKES,
    ),
    NotificationType.MATCH_EXPIRING: TypeDefaults(
        Priority.HIGH,
        True,
        True,
        False,
        CapPolicy.UNCAPPED,
        QuietBehavior.QUIET,
        AndroidChannel.MATCHES,
        InterruptionLevel.ACTIVE,
        Action.OPEN_MATCH,
    ),
    NotificationType.CONVERSATION_STARTED: TypeDefaults(
        Priority.NORMAL,
        True,
        True,
        False,
        CapPolicy.UNCAPPED,
        QuietBehavior.QUIET,
        AndroidChannel.MESSAGES,
        InterruptionLevel.ACTIVE,
        Action.OPEN_CONVERSATION,
    ),
    NotificationType.BOOST_ACTIVATED: TypeDefaults(
        Priority.NORMAL,
        True,
        True,
        False,
        CapPolicy.CAPPED,
        QuietBehavior.QUIET,
        AndroidChannel.ACTIVITY,
        InterruptionLevel.ACTIVE,
        Action.OPEN_BOOST,
    ),
    NotificationType.PROFILE_VIEW: TypeDefaults(
        Priority.LOW,
        True,
        True,
        False,
        CapPolicy.CAPPED,
        QuietBehavior.DEFER,
        AndroidChannel.ACTIVITY,
        InterruptionLevel.ACTIVE,
        Action.OPEN_PROFILE_VIEWS,
    ),
    NotificationType.SYSTEM: TypeDefaults(
        Priority.HIGH,
        True,
        True,
        False,
        CapPolicy.UNCAPPED,
        QuietBehavior.QUIET,
        AndroidChannel.ACCOUNT,
        InterruptionLevel.ACTIVE,
        Action.OPEN_APP,
    ),
    NotificationType.MARKETING: TypeDefaults(
        Priority.LOW,
        False,
        False,
        False,
        CapPolicy.CAPPED,
        QuietBehavior.DEFER,
        AndroidChannel.PROMOTIONS,
        InterruptionLevel.ACTIVE,
        Action.OPEN_APP,
    ),
}


class NotificationStatus(StrEnum):
    PENDING = "pending"
    SCHEDULED = "scheduled"
    PROCESSING = "processing"
    SENT = "sent"
    PARTIALLY_SENT = "partially_sent"
    FAILED = "failed"
    SUPPRESSED = "suppressed"
    BATCHED = "batched"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


class DeliveryStatus(StrEnum):
    SENT = "sent"  # the provider accepted it (APNs 200, FCM name, Expo ok ticket)
    DELIVERED = "delivered"  # Expo receipt ok
    FAILED = "failed"
    RETRYING = "retrying"


class Platform(StrEnum):
    IOS = "ios"
    ANDROID = "android"
    WEB = "web"


class Provider(StrEnum):
    EXPO = "expo"
    APNS = "apns"
    FCM = "fcm"


class Role(StrEnum):
    USER = "user"
    ADMIN = "admin"
    SERVICE = "service"


class PresenceVisibility(StrEnum):
    EVERYONE = "everyone"
    MATCHES = "matches"
    NOBODY = "nobody"


class MatchStatus(StrEnum):
    MATCHED = "matched"
    UNMATCHED = "unmatched"
    EXPIRED = "expired"


class RealtimeEventType(StrEnum):
    DISCOVERY_UPDATE = "discovery_update"
    PROFILE_REMOVED = "profile_removed"
    BOOST_ACTIVATED = "boost_activated"
    MATCH_UPDATE = "match_update"
    MATCH_EXPIRATION_WARNING = "match_expiration_warning"
    CONVERSATION_STARTED = "conversation_started"
    NOTIFICATION = "notification"


class ActivityType(StrEnum):
    APP_OPEN = "app_open"
    APP_BACKGROUND = "app_background"
    PROFILE_VIEW = "profile_view"
    SWIPE = "swipe"
    MESSAGE_SENT = "message_sent"
    MATCH_OPENED = "match_opened"
    NOTIFICATION_OPENED = "notification_opened"
    PRESENCE_CHANGE = "presence_change"
    TYPING = "typing"


def values(enum: type[StrEnum]) -> list[str]:
    """The string values of an enum, in declaration order (for CHECK constraints and schemas)."""
    return [member.value for member in enum]


# --- Real-time gateway (Socket.IO) -------------------------------------------------------


class PresenceState(StrEnum):
    ONLINE = "online"
    AWAY = "away"
    BUSY = "busy"
    OFFLINE = "offline"


class ClientEvent(StrEnum):
    """Socket.IO events a client sends to the gateway."""

    PRESENCE_UPDATE = "presence_update"
    PRESENCE_SUBSCRIBE = "presence_subscribe"
    PRESENCE_UNSUBSCRIBE = "presence_unsubscribe"
    ACTIVITY = "activity"
    TYPING_START = "typing_start"
    TYPING_PROGRESS = "typing_progress"
    TYPING_STOP = "typing_stop"
    HEARTBEAT = "heartbeat"


class ServerEvent(StrEnum):
    """Socket.IO events the gateway sends; backend events go out under their
    RealtimeEventType name."""

    USER_PRESENCE_UPDATE = "user_presence_update"
    PRESENCE_BULK_UPDATE = "presence_bulk_update"
    USER_ACTIVITY_UPDATE = "user_activity_update"
    TYPING_START = ClientEvent.TYPING_START.value
    TYPING_PROGRESS = ClientEvent.TYPING_PROGRESS.value
    TYPING_STOP = ClientEvent.TYPING_STOP.value
    ERROR = "error"


# Client events that count as the user being active on that connection (a heartbeat or a
# subscription does not: an idle app sends those too).
ACTIVE_CLIENT_EVENTS = frozenset(
    {
        ClientEvent.PRESENCE_UPDATE,
        ClientEvent.ACTIVITY,
        ClientEvent.TYPING_START,
        ClientEvent.TYPING_PROGRESS,
        ClientEvent.TYPING_STOP,
    }
)


class SocketErrorCode(StrEnum):
    """The `code` of an `error` event sent back on the socket."""

    UNKNOWN_EVENT = "unknown_event"
    INVALID_PAYLOAD = "invalid_payload"
    RATE_LIMITED = "rate_limited"
    FORBIDDEN = "forbidden"
    SERVER_ERROR = "server_error"
    UNAVAILABLE = "unavailable"  # PostgreSQL or Redis is down (the HTTP API's 503 code)


class TypingStopReason(StrEnum):
    STOPPED = "stopped"
    TIMEOUT = "timeout"
    DISCONNECTED = "disconnected"


# The push a backend event becomes when its target has no live connection. match_update
# has one only when it announces a match; `notification` is itself the in-app copy of a
# push, so it never becomes one.
PUSH_COUNTERPARTS: dict[RealtimeEventType, NotificationType] = {
    RealtimeEventType.MATCH_UPDATE: NotificationType.NEW_MATCH,
    RealtimeEventType.MATCH_EXPIRATION_WARNING: NotificationType.MATCH_EXPIRING,
    RealtimeEventType.CONVERSATION_STARTED: NotificationType.CONVERSATION_STARTED,
    RealtimeEventType.BOOST_ACTIVATED: NotificationType.BOOST_ACTIVATED,
}


def user_room(user_id: str) -> str:
    """The Socket.IO room every connection of a user joins."""
    return f"user:{user_id}"
