"""The SQL side of the stores: SQLAlchemy 2.0 models, one module per aggregate, each with the
queries and writes that belong to it; importing this package registers every model."""

from models.activity import UserActivity
from models.base import Base
from models.events import RealtimeEvent
from models.notifications import Notification, NotificationDelivery, NotificationSend
from models.settings import UserNotificationSetting
from models.tokens import PushToken
from models.users import Match, User

__all__ = [
    "Base",
    "Match",
    "Notification",
    "NotificationDelivery",
    "NotificationSend",
    "PushToken",
    "RealtimeEvent",
    "User",
    "UserActivity",
    "UserNotificationSetting",
]
