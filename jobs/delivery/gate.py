"""The delivery rules applied to a claimed chunk, between the claim and the send: settings,
presence, quiet hours, batching, caps (core/delivery_rules.py says in which order and why).

It decides; the delivery job writes. Batch windows and caps are atomic in Redis, shared
by every worker; each is one pipelined round trip per chunk, not one per notification.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence, Set
from dataclasses import dataclass, field
from datetime import datetime

from core.batching import COUNT_FIELD, batch_key, is_summary
from core.caps import FREQUENCY_CAP, CapWindows, OverCap, cap_windows, counts_against_caps, over_cap
from core.catalog import NotificationStatus, NotificationType, Priority
from core.delivery_rules import Action, at_least, before_send
from core.preferences import TypePreference, effective_preference, effective_quiet_hours
from core.templates import DEFAULT_LOCALE, Text, render_summary
from models.outbox import Claimed, Settlement, UserFacts
from runtime import Runtime
from stores.batch_windows import BatchWindows
from stores.caps import Caps


@dataclass
class GateOutcome:
    to_send: list[Claimed] = field(default_factory=list)
    quietly: set[uuid.UUID] = field(default_factory=set)  # sent without sound: quiet hours
    texts: dict[uuid.UUID, Text] = field(default_factory=dict)  # summaries' text
    batch_keys: dict[uuid.UUID, str] = field(default_factory=dict)  # collapse ids
    settled: list[Settlement] = field(default_factory=list)  # suppressed or deferred
    held: list[tuple[Claimed, str, datetime]] = field(default_factory=list)
    reserved: dict[uuid.UUID, CapWindows] = field(default_factory=dict)


def preference_for(notification_type: NotificationType, user: UserFacts) -> TypePreference:
    return effective_preference(
        notification_type, user.stored_preferences.get(notification_type.value, {})
    )


def _unknown_user() -> UserFacts:
    return UserFacts(None, None, None, None, {})


@dataclass
class _Pending:
    """One notification of the chunk on its way through the rules; what it became is
    filled in step by step (a settlement, a hold, or the caps it reserved)."""

    notification: Claimed
    priority: Priority
    timezone: str
    window_key: str | None = None  # opens or joins this batch window
    settlement: Settlement | None = None
    held: tuple[str, datetime] | None = None  # batch key, until
    reserved: CapWindows | None = None

    @property
    def undecided(self) -> bool:
        return self.settlement is None and self.held is None


def apply_rules(
    runtime: Runtime,
    claimed: Sequence[Claimed],
    facts: dict[str, UserFacts],
    now: datetime,
    is_active_in_app: Callable[[str], bool],
    delivered_before: Set[uuid.UUID] = frozenset(),
) -> GateOutcome:
    """Sort a claimed chunk (most urgent first) into send now, hold, defer or suppress.

    A notification counts once, however often it is tried: a retry (attempts > 1) has
    already opened its batch window, so it never joins it; one that reached a device in an
    earlier attempt (`delivered_before`) keeps the caps it took then, so it takes none.

    Each Redis-backed step (batch windows, then caps) is one pipelined round trip for the
    whole chunk, its commands in the chunk's order: the first of two notifications with one
    batch key opens the window, and the more urgent of one user's pushes take the caps."""
    settings = runtime.settings
    outcome = GateOutcome()
    pending = [
        _check(runtime, notification, facts, now, is_active_in_app, outcome)
        for notification in claimed
    ]

    joining = [(p, p.window_key) for p in pending if p.undecided and p.window_key is not None]
    windows = BatchWindows(
        runtime.redis, settings.storage.redis_key_prefix, settings.rules.batch_window_seconds
    )
    closing = windows.open_or_join_many([key for _, key in joining], now)
    for (p, key), closes in zip(joining, closing, strict=True):
        if closes is not None:
            p.held = (key, at_least(closes, now))

    counted = [
        p
        for p in pending
        if p.undecided
        and counts_against_caps(NotificationType(p.notification.notification_type), p.priority)
        and p.notification.id not in delivered_before
    ]
    requests = [
        (p.notification.user_id, p.notification.notification_type, cap_windows(now, p.timezone))
        for p in counted
    ]
    frees = _caps(runtime).reserve_many(requests)
    for p, (_, _, cap_windows_now), frees_at in zip(counted, requests, frees, strict=True):
        if frees_at is None:
            p.reserved = cap_windows_now
        elif over_cap(p.priority) is OverCap.SUPPRESS:
            p.settlement = _suppressed(p.notification, FREQUENCY_CAP)
        else:
            p.settlement = _deferred(p.notification, FREQUENCY_CAP, frees_at, now)

    for p in pending:
        if p.settlement is not None:
            outcome.settled.append(p.settlement)
        elif p.held is not None:
            outcome.held.append((p.notification, *p.held))
        else:
            if p.reserved is not None:
                outcome.reserved[p.notification.id] = p.reserved
            outcome.to_send.append(p.notification)
    return outcome


def _check(
    runtime: Runtime,
    notification: Claimed,
    facts: dict[str, UserFacts],
    now: datetime,
    is_active_in_app: Callable[[str], bool],
    outcome: GateOutcome,
) -> _Pending:
    """The rules that need no Redis: settings, presence, quiet hours; the batch key (and a
    summary's text) for the ones that go on."""
    settings = runtime.settings
    user = facts.get(notification.user_id) or _unknown_user()
    notification_type = NotificationType(notification.notification_type)
    priority = Priority(notification.priority)
    timezone = user.timezone or settings.rules.default_timezone
    pending = _Pending(notification, priority, timezone)
    verdict = before_send(
        user_id=notification.user_id,
        notification_type=notification_type,
        priority=priority,
        preference=preference_for(notification_type, user),
        quiet=effective_quiet_hours(
            user.quiet_hours_start,
            user.quiet_hours_end,
            timezone,
            settings.rules.quiet_hours_default_start,
            settings.rules.quiet_hours_default_end,
        ),
        user_active_in_app=is_active_in_app(notification.user_id),
        now=now,
        spread_seconds=settings.rules.quiet_hours_spread_seconds,
    )
    if verdict.action is Action.SUPPRESS:
        pending.settlement = _suppressed(notification, verdict.reason)
        return pending
    if verdict.action is Action.DEFER:
        pending.settlement = _deferred(notification, verdict.reason, verdict.until, now)
        return pending
    if verdict.action is Action.SEND_QUIETLY:
        outcome.quietly.add(notification.id)
    key = batch_key(notification.user_id, notification_type, priority, notification.data)
    if key is not None:
        outcome.batch_keys[notification.id] = key
        if is_summary(notification.data):
            count = int(notification.data.get(COUNT_FIELD, 1))
            locale = user.locale or DEFAULT_LOCALE
            summary = render_summary(notification_type, notification.data, count, locale)
            if count > 1 and summary is not None:
                outcome.texts[notification.id] = summary
        elif notification.attempts == 1:
            pending.window_key = key
    return pending


def release_unsent_caps(
    runtime: Runtime, outcome: GateOutcome, claimed: Sequence[Claimed], delivered: set[uuid.UUID]
) -> None:
    """A push that reached no device does not count against the caps (one round trip)."""
    unsent = [
        (notification.user_id, notification.notification_type, windows)
        for notification in claimed
        if (windows := outcome.reserved.get(notification.id)) is not None
        and notification.id not in delivered
    ]
    _caps(runtime).release_many(unsent)


def _caps(runtime: Runtime) -> Caps:
    settings = runtime.settings
    return Caps(
        runtime.redis,
        settings.storage.redis_key_prefix,
        settings.rules.cap_per_day,
        settings.rules.cap_per_type_hour,
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
