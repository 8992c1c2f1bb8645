"""The delivery rules applied to a claimed chunk, between the claim and the send: settings,
presence, quiet hours, batching, caps (core/delivery_rules.py says in which order and why).

It decides; the delivery job writes. Batch windows and caps are atomic in Redis, shared
by every worker.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from core.batching import COUNT_FIELD, batch_key, is_summary
from core.caps import FREQUENCY_CAP, CapWindows, OverCap, cap_windows, counts_against_caps, over_cap
from core.catalog import NotificationStatus, NotificationType, Priority
from core.delivery_rules import Action, at_least, before_send
from core.preferences import TypePreference, effective_preferences, effective_quiet_hours
from core.templates import DEFAULT_LOCALE, Text, render_summary
from jobs.batching import BatchWindows
from jobs.caps import Caps
from models.outbox import Claimed, Settlement, UserFacts
from workers.runtime import Runtime


@dataclass
class GateOutcome:
    to_send: list[Claimed] = field(default_factory=list)
    texts: dict[uuid.UUID, Text] = field(default_factory=dict)  # summaries' text
    batch_keys: dict[uuid.UUID, str] = field(default_factory=dict)  # collapse ids
    settled: list[Settlement] = field(default_factory=list)  # suppressed or deferred
    held: list[tuple[Claimed, str, datetime]] = field(default_factory=list)
    reserved: dict[uuid.UUID, CapWindows] = field(default_factory=dict)


def preference_for(notification_type: NotificationType, user: UserFacts) -> TypePreference:
    stored = {notification_type: user.stored_preferences.get(notification_type.value, {})}
    return next(
        p for p in effective_preferences(stored) if p.notification_type is notification_type
    )


def _unknown_user() -> UserFacts:
    return UserFacts("UTC", DEFAULT_LOCALE, None, None, {})


def apply_rules(
    runtime: Runtime,
    claimed: Sequence[Claimed],
    facts: dict[str, UserFacts],
    now: datetime,
    is_active_in_app: Callable[[str], bool],
) -> GateOutcome:
    """Sort a claimed chunk (most urgent first) into send now, hold, defer or suppress."""
    settings = runtime.settings
    outcome = GateOutcome()
    windows = BatchWindows(
        runtime.redis, settings.redis_key_prefix, settings.notification_batch_window_seconds
    )
    caps = _caps(runtime)
    for notification in claimed:
        user = facts.get(notification.user_id) or _unknown_user()
        notification_type = NotificationType(notification.notification_type)
        priority = Priority(notification.priority)
        preference = preference_for(notification_type, user)
        verdict = before_send(
            user_id=notification.user_id,
            notification_type=notification_type,
            priority=priority,
            preference=preference,
            quiet=effective_quiet_hours(
                user.quiet_hours_start,
                user.quiet_hours_end,
                user.timezone,
                settings.quiet_hours_default_start,
                settings.quiet_hours_default_end,
            ),
            user_active_in_app=is_active_in_app(notification.user_id),
            now=now,
            spread_seconds=settings.quiet_hours_spread_seconds,
        )
        if verdict.action is Action.SUPPRESS:
            outcome.settled.append(_suppressed(notification, verdict.reason))
            continue
        if verdict.action is Action.DEFER:
            outcome.settled.append(_deferred(notification, verdict.reason, verdict.until, now))
            continue
        key = batch_key(notification.user_id, notification_type, priority, notification.data)
        if key is not None:
            outcome.batch_keys[notification.id] = key
            if is_summary(notification.data):
                count = int(notification.data.get(COUNT_FIELD, 1))
                summary = render_summary(notification_type, notification.data, count, user.locale)
                if count > 1 and summary is not None:
                    outcome.texts[notification.id] = summary
            else:
                closes = windows.open_or_join(key, now)
                if closes is not None:
                    outcome.held.append((notification, key, at_least(closes, now)))
                    continue
        if counts_against_caps(priority):
            cap_windows_now = cap_windows(now, user.timezone)
            frees_at = caps.reserve(notification.user_id, notification_type.value, cap_windows_now)
            if frees_at is not None:
                if over_cap(priority) is OverCap.SUPPRESS:
                    outcome.settled.append(_suppressed(notification, FREQUENCY_CAP))
                else:
                    outcome.settled.append(_deferred(notification, FREQUENCY_CAP, frees_at, now))
                continue
            outcome.reserved[notification.id] = cap_windows_now
        outcome.to_send.append(notification)
    return outcome


def release_unsent_caps(
    runtime: Runtime, outcome: GateOutcome, claimed: Sequence[Claimed], delivered: set[uuid.UUID]
) -> None:
    """A push that reached no device does not count against the caps."""
    caps = _caps(runtime)
    for notification in claimed:
        windows = outcome.reserved.get(notification.id)
        if windows is not None and notification.id not in delivered:
            caps.release(notification.user_id, notification.notification_type, windows)


def _caps(runtime: Runtime) -> Caps:
    settings = runtime.settings
    return Caps(
        runtime.redis,
        settings.redis_key_prefix,
        settings.frequency_cap_per_day,
        settings.frequency_cap_per_type_hour,
    )


def _suppressed(notification: Claimed, reason: str | None) -> Settlement:
    return Settlement(notification.id, NotificationStatus.SUPPRESSED, reason, None)


def _deferred(
    notification: Claimed, reason: str | None, until: datetime | None, now: datetime
) -> Settlement:
    return Settlement(
        notification.id,
        NotificationStatus.SCHEDULED,
        reason,
        None,
        retry_at=at_least(until or now, now),
        not_an_attempt=True,
    )
