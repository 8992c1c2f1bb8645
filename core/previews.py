"""Private previews: what a message or match push may carry when its user turned previews
off (`users.show_previews` false). Pure: a type, the texts, the data and the user's facts
in, what to send out.

Such a push says only a generic title and body in the user's language ("New message" /
"You have a new message.", core/templates.py `PRIVATE_TEXTS`), whatever title and body
the sender gave, and its data keeps ids only: no name, no message text, no free text.
Other types are left as they are (their templates name no one, and a system notice must
say what it says).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from core.batching import COUNT_FIELD, is_summary
from core.catalog import NotificationType
from core.templates import DEFAULT_LOCALE, render_private

T = NotificationType
PRIVATE_TYPES = frozenset({T.NEW_MESSAGE, T.NEW_MATCH, T.CONVERSATION_STARTED, T.MATCH_EXPIRING})
# Data keys a private push keeps besides every `*_id`: what the app needs to open the
# right screen (and a summary's count), nothing anyone wrote.
KEPT_KEYS = frozenset({"type", "notification_id", "action", COUNT_FIELD})
ID_SUFFIX = "_id"


@dataclass(frozen=True)
class Content:
    """What a push shows and carries."""

    title: str
    body: str
    data: dict[str, Any]


def is_private(notification_type: NotificationType, show_previews: bool) -> bool:
    return not show_previews and notification_type in PRIVATE_TYPES


def ids_only(data: Mapping[str, Any]) -> dict[str, Any]:
    """The ids of the data (every `*_id` key), its type, notification id, action and batch
    count; only plain values (a nested object could hold anything)."""
    return {
        key: value
        for key, value in data.items()
        if (key in KEPT_KEYS or key.endswith(ID_SUFFIX))
        and isinstance(value, str | int | float | bool)
    }


def batch_count(data: Mapping[str, Any]) -> int:
    """How many notifications a summary stands for (1 for any other notification)."""
    if not is_summary(data):
        return 1
    try:
        return max(1, int(data[COUNT_FIELD]))
    except (TypeError, ValueError):
        return 1


def content(
    notification_type: NotificationType,
    title: str,
    body: str,
    data: Mapping[str, Any],
    *,
    show_previews: bool,
    locale: str | None,
) -> Content:
    """The push's title, body and data as the user's privacy allows: unchanged, or the
    generic text of the type (a summary's when it stands for several) and the ids only."""
    if not is_private(notification_type, show_previews):
        return Content(title, body, dict(data))
    text = render_private(notification_type, locale or DEFAULT_LOCALE, batch_count(data))
    if text is None:  # pragma: no cover - every private type has a text (unit-tested)
        raise LookupError(f"no private text for {notification_type.value}")
    return Content(text.title, text.body, ids_only(data))
