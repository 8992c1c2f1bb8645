"""Notification texts per type and locale, filled from the notification's data.

Pure: a type, a locale and data in, a title and body out. Each type has variants from
the most to the least personal; the first whose placeholders are all in the data wins.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from core.catalog import NotificationType

DEFAULT_LOCALE = "en"


@dataclass(frozen=True)
class Text:
    title: str
    body: str

    @property
    def placeholders(self) -> set[str]:
        names = set()
        for template in (self.title, self.body):
            names |= {field for _, field, _, _ in string.Formatter().parse(template) if field}
        return names


T = NotificationType
TEMPLATES: dict[str, dict[NotificationType, tuple[Text, ...]]] = {
    "en": {
        T.NEW_MATCH: (
            Text("It's a Match! 💕", "You and {match_name} both liked each other!"),
            Text("It's a Match! 💕", "Someone you liked likes you back!"),
        ),
        T.NEW_MESSAGE: (
            Text("New message from {sender_name}", "{message_preview}"),
            Text("New message from {sender_name}", "Open the app to read it."),
            Text("New message", "You have a new message."),
        ),
        T.SUPER_LIKE_RECEIVED: (
            Text("You received a Super Like! ⭐", "Someone really likes your profile!"),
        ),
        T.LIKE_RECEIVED: (Text("Someone likes you! ❤️", "Open the app to see who."),),
        T.MATCH_EXPIRING: (
            Text("Your match is expiring ⏳", "Your match with {match_name} expires soon. Say hi!"),
            Text("Your match is expiring ⏳", "One of your matches expires soon. Say hi!"),
        ),
        T.CONVERSATION_STARTED: (
            Text("{sender_name} started a conversation", "Say hello back!"),
            Text("New conversation", "Someone started a conversation with you."),
        ),
        T.BOOST_ACTIVATED: (
            Text(
                "Boost activated 🚀", "Your profile is shown to more people for {minutes} minutes."
            ),
            Text("Boost activated 🚀", "Your profile is shown to more people right now."),
        ),
        T.PROFILE_VIEW: (
            Text("Someone viewed your profile 👀", "Take a look at who's interested."),
        ),
    },
    "es": {
        T.NEW_MATCH: (
            Text("¡Es un Match! 💕", "¡A ti y a {match_name} os gustáis!"),
            Text("¡Es un Match! 💕", "¡Alguien que te gusta también te ha dado like!"),
        ),
        T.NEW_MESSAGE: (
            Text("Nuevo mensaje de {sender_name}", "{message_preview}"),
            Text("Nuevo mensaje de {sender_name}", "Abre la app para leerlo."),
            Text("Nuevo mensaje", "Tienes un mensaje nuevo."),
        ),
        T.SUPER_LIKE_RECEIVED: (
            Text("¡Has recibido un Super Like! ⭐", "¡A alguien le encanta tu perfil!"),
        ),
    },
}
# Summaries of a batch: `count` notifications merged into one push.
SUMMARIES: dict[str, dict[NotificationType, tuple[Text, ...]]] = {
    "en": {
        T.NEW_MESSAGE: (
            Text("{count} new messages from {sender_name}", "Open the app to read them."),
            Text("{count} new messages", "Open the app to read them."),
        ),
        T.LIKE_RECEIVED: (Text("You have {count} new likes ❤️", "Open the app to see who."),),
        T.SUPER_LIKE_RECEIVED: (
            Text("You received {count} Super Likes! ⭐", "Some people really like your profile!"),
        ),
        T.PROFILE_VIEW: (
            Text("{count} people viewed your profile 👀", "Take a look at who's interested."),
        ),
        T.MATCH_EXPIRING: (
            Text("Your match is expiring ⏳", "Your match with {match_name} expires soon. Say hi!"),
            Text("Your match is expiring ⏳", "One of your matches expires soon. Say hi!"),
        ),
    },
    "es": {
        T.NEW_MESSAGE: (
            Text("{count} mensajes nuevos de {sender_name}", "Abre la app para leerlos."),
            Text("{count} mensajes nuevos", "Abre la app para leerlos."),
        ),
        T.LIKE_RECEIVED: (Text("Tienes {count} likes nuevos ❤️", "Abre la app para ver quién."),),
    },
}
# Private previews (the user turned show_previews off): what a message or match push
# says instead of its text, whatever the sender gave: no name, no words of anyone's.
PRIVATE_TEXTS: dict[str, dict[NotificationType, Text]] = {
    "en": {
        T.NEW_MESSAGE: Text("New message", "You have a new message."),
        T.CONVERSATION_STARTED: Text("New message", "You have a new message."),
        T.NEW_MATCH: Text("New match", "You have a new match!"),
        T.MATCH_EXPIRING: Text("Match expiring", "One of your matches expires soon."),
    },
    "es": {
        T.NEW_MESSAGE: Text("Nuevo mensaje", "Tienes un mensaje nuevo."),
        T.CONVERSATION_STARTED: Text("Nuevo mensaje", "Tienes un mensaje nuevo."),
        T.NEW_MATCH: Text("Nuevo match", "¡Tienes un match nuevo!"),
        T.MATCH_EXPIRING: Text("Un match caduca pronto", "Uno de tus matches caduca pronto."),
    },
}
# The private text of a batch summary of `count` (a type without one says its single text).
PRIVATE_SUMMARIES: dict[str, dict[NotificationType, Text]] = {
    "en": {T.NEW_MESSAGE: Text("New messages", "You have {count} new messages.")},
    "es": {T.NEW_MESSAGE: Text("Mensajes nuevos", "Tienes {count} mensajes nuevos.")},
}
# Types whose text is always the sender's own: no template can say it for them.
TYPES_WITHOUT_TEMPLATE = frozenset({T.SYSTEM, T.MARKETING})


class MissingText(ValueError):
    """The type has no template and the sender gave no title or body."""


def render(
    notification_type: NotificationType,
    data: Mapping[str, Any],
    locale: str = DEFAULT_LOCALE,
    title: str | None = None,
    body: str | None = None,
) -> Text:
    """The title and body to send: what the sender gave, else the best template variant."""
    if title and body:
        return Text(title, body)
    if notification_type in TYPES_WITHOUT_TEMPLATE:
        raise MissingText(f"{notification_type.value} needs an explicit title and body")
    variants = _pick(TEMPLATES, notification_type, locale)
    values = {key: str(value) for key, value in data.items() if value not in (None, "")}
    for variant in variants:
        if variant.placeholders <= values.keys():
            return Text(
                title or variant.title.format(**values), body or variant.body.format(**values)
            )
    raise MissingText(f"no {notification_type.value} template fits the data")  # pragma: no cover


def _pick(
    catalogue: dict[str, dict[NotificationType, tuple[Text, ...]]],
    notification_type: NotificationType,
    locale: str,
) -> tuple[Text, ...]:
    language = locale.split("-")[0].lower()
    for candidate in (language, DEFAULT_LOCALE):
        variants = catalogue.get(candidate, {}).get(notification_type)
        if variants:
            return variants
    return ()


def render_summary(
    notification_type: NotificationType, data: Mapping[str, Any], count: int, locale: str
) -> Text | None:
    """The text of a batch of `count` (None when the type has no summary)."""
    values = {key: str(value) for key, value in data.items() if value not in (None, "")}
    values["count"] = str(count)
    for variant in _pick(SUMMARIES, notification_type, locale):
        if variant.placeholders <= values.keys():
            return Text(variant.title.format(**values), variant.body.format(**values))
    return None


def render_private(
    notification_type: NotificationType, locale: str = DEFAULT_LOCALE, count: int = 1
) -> Text | None:
    """The generic text of a private preview in the user's language (English when the
    language has none), the summary's when `count` > 1; None for a type without one."""
    language = locale.split("-")[0].lower()
    for candidate in (language, DEFAULT_LOCALE):
        if count > 1:
            summary = PRIVATE_SUMMARIES.get(candidate, {}).get(notification_type)
            if summary is not None:
                return Text(summary.title, summary.body.format(count=count))
        text = PRIVATE_TEXTS.get(candidate, {}).get(notification_type)
        if text is not None:
            return text
    return None
