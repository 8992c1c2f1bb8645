"""The delivery job: claim a chunk of notifications, push each to every active device of
its user through the right provider, record every attempt, and settle each row's status.

Guarantees: at least once per device (a device that accepted a notification is never
sent it again by a retry); safe to run twice (claims skip rows another job holds or
finished); never sleeps (a retry is a rescheduled row, not a wait).
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from core import keys
from core.batching import SUMMARY_REASON, is_summary
from core.catalog import DeliveryStatus, NotificationStatus, NotificationType, Priority, Provider
from core.delivery_outcome import AttemptCounts, Decision, decide
from core.presentation import presentation, with_action
from core.previews import Content, content
from core.retry import RetryPolicy, retry_policy
from core.templates import Text
from core.timefmt import iso
from jobs.delivery.gate import GateOutcome, apply_rules, release_unsent_caps
from models.db import db
from models.outbox import (
    ActiveToken,
    Claimed,
    DeliveryRecord,
    Settlement,
    UserFacts,
    active_tokens,
    claim,
    devices_already_reached,
    expire_overdue,
    hold_for_batch,
    record_deliveries,
    settle,
    touch_accepted_tokens,
    user_facts,
)
from models.tokens import deactivate_token
from providers import Outcome, PushMessage, PushResult
from realtime.live_users import active_in_app, send_in_app_copies
from runtime import Runtime, current_runtime
from stores.rate_limits import TokenBucket

log = logging.getLogger(__name__)

DELIVERY_STATUS = {
    Outcome.SENT: DeliveryStatus.SENT,
    Outcome.TRANSIENT: DeliveryStatus.RETRYING,
    Outcome.CREDENTIALS_ERROR: DeliveryStatus.RETRYING,
    Outcome.TOKEN_INVALID: DeliveryStatus.FAILED,
    Outcome.PAYLOAD_ERROR: DeliveryStatus.FAILED,
}
RETRYABLE = frozenset({Outcome.TRANSIENT, Outcome.CREDENTIALS_ERROR})
# A part costs a fixed number of statements, Redis round trips and provider requests
# whatever its size: below this many notifications, splitting costs more than it overlaps.
MIN_PART_SIZE = 50


@dataclass(frozen=True)
class Attempt:
    """One message to one device, with what it needs to be recorded afterwards."""

    notification_id: uuid.UUID
    token: ActiveToken
    message: PushMessage


def deliver_notifications(notification_ids: Sequence[str]) -> dict[str, int]:
    """Deliver these notifications (ids as strings); returns counts for the job's result.

    The chunk is split into up to DELIVERY_CONCURRENCY parts (of at least MIN_PART_SIZE)
    handled at once, each claiming its own rows, so that one part's database work overlaps
    another's wait on a provider.
    """
    runtime = current_runtime()
    ids = [uuid.UUID(str(i)) for i in notification_ids]
    parts = max(1, min(runtime.settings.delivery.concurrency, len(ids) // MIN_PART_SIZE))
    if parts == 1:
        return _deliver(runtime, ids)
    size = -(-len(ids) // parts)
    totals: dict[str, int] = defaultdict(int)
    with ThreadPoolExecutor(max_workers=parts, thread_name_prefix="deliver") as pool:
        for counts in pool.map(
            lambda part: _deliver(runtime, part),
            [ids[i : i + size] for i in range(0, len(ids), size)],
        ):
            for key, value in counts.items():
                totals[key] += value
    return dict(totals)


def _deliver(runtime: Runtime, ids: list[uuid.UUID]) -> dict[str, int]:
    started = time.monotonic()
    now = datetime.now(UTC)
    with db.session_scope() as session:
        expired = expire_overdue(session, ids, now)
        claimed = claim(session, ids, now, runtime.settings.delivery.processing_lease_seconds)
        if not claimed:
            return {"claimed": 0, "expired": expired}
        users = sorted({row.user_id for row in claimed})
        # Read whether or not the rules apply: a user's privacy (show_previews) always does.
        facts = user_facts(session, users)
        tokens = active_tokens(session, users)
        # Only a row claimed before can have reached a device: attempts counts claims, and
        # only a claim that sent nothing (a deferral, a hold) gives its attempt back.
        reached = devices_already_reached(session, [row.id for row in claimed if row.attempts > 1])
    if runtime.settings.rules.enabled:
        delivered_before = {notification_id for notification_id, _ in reached}
        gate = apply_rules(
            runtime, claimed, facts, now, active_in_app(runtime, users), delivered_before
        )
        send_in_app_copies(runtime, _shown_in_app_now(claimed, gate))
    else:
        gate = GateOutcome(to_send=list(claimed))
    attempts, already_sent = _plan(runtime, gate, tokens, reached, facts)
    planned = time.monotonic()
    results = _send(runtime, attempts)
    sent = time.monotonic()
    decisions = _settle(runtime, gate, attempts, results, already_sent)
    log.info(
        "event=delivery_job claimed=%d messages=%d claim_ms=%.0f send_ms=%.0f settle_ms=%.0f",
        len(claimed),
        len(attempts),
        (planned - started) * 1000,
        (sent - planned) * 1000,
        (time.monotonic() - sent) * 1000,
    )
    return {"claimed": len(claimed), "expired": expired, "messages": len(attempts), **decisions}


def _shown_in_app_now(claimed: Sequence[Claimed], gate: GateOutcome) -> list[Claimed]:
    """The app shows each notification in-app once, when it is handled, pushed or not: not
    while it is deferred (it will be, later), not again on a retry, never a summary."""
    deferred = {s.id for s in gate.settled if s.status is NotificationStatus.SCHEDULED}
    return [
        n for n in claimed if n.id not in deferred and n.attempts == 1 and not is_summary(n.data)
    ]


def _plan(
    runtime: Runtime,
    gate: GateOutcome,
    tokens: Sequence[ActiveToken],
    reached: set[tuple[uuid.UUID, uuid.UUID]],
    facts: dict[str, UserFacts],
) -> tuple[list[Attempt], dict[uuid.UUID, int]]:
    by_user: dict[str, list[ActiveToken]] = defaultdict(list)
    for token in tokens:
        by_user[token.user_id].append(token)
    attempts: list[Attempt] = []
    already_sent: dict[uuid.UUID, int] = defaultdict(int)
    for notification in gate.to_send:
        said: Content | None = None  # the same on each of the user's devices
        for token in by_user.get(notification.user_id, []):
            if notification.platforms is not None and token.platform not in notification.platforms:
                continue
            if (notification.id, token.id) in reached:
                already_sent[notification.id] += 1
                continue
            try:
                device_token = runtime.cipher.decrypt(token.token_ciphertext)
            except ValueError:
                log.error("event=token_undecryptable token_id=%s", token.id)
                continue
            if said is None:
                said = _content(
                    notification, gate.texts.get(notification.id), facts.get(notification.user_id)
                )
            message = _message(
                token.id,
                notification,
                device_token,
                said,
                gate.batch_keys.get(notification.id),
                quiet=notification.id in gate.quietly,
            )
            attempts.append(Attempt(notification.id, token, message))
    return attempts, already_sent


def _content(notification: Claimed, text: Text | None, user: UserFacts | None) -> Content:
    """What the push says and carries: a summary's text or the row's; the data with the
    notification's id, type and the screen a tap opens (`action`, for rows accepted before
    it was stored); all of it as the user's privacy allows (core/previews.py)."""
    notification_type = NotificationType(notification.notification_type)
    data: dict[str, Any] = {
        **with_action(notification_type, notification.data),
        "notification_id": str(notification.id),
        "type": notification.notification_type,
    }
    return content(
        notification_type,
        text.title if text else notification.title,
        text.body if text else notification.body,
        data,
        show_previews=user.show_previews if user is not None else True,
        locale=user.locale if user is not None else None,
    )


def _message(
    token_id: uuid.UUID,
    notification: Claimed,
    device_token: str,
    said: Content,
    collapse_key: str | None,
    *,
    quiet: bool,
) -> PushMessage:
    shown = presentation(NotificationType(notification.notification_type), quiet=quiet)
    return PushMessage(
        # One attempt per notification and device in a job; the row's id comes from the
        # database when the attempt is recorded.
        ref=f"{notification.id}:{token_id}",
        token=device_token,
        title=said.title,
        body=said.body,
        data=said.data,
        priority=Priority(notification.priority),
        collapse_key=collapse_key or notification.batch_key,
        thread_id=notification.data.get("conversation_id"),
        expires_at=notification.expires_at,
        sound=shown.sound,
        channel=shown.channel.value,
        interruption_level=shown.interruption_level.value,
        quiet=shown.quiet,
    )


def _send(runtime: Runtime, attempts: Sequence[Attempt]) -> dict[str, PushResult]:
    """Each provider's batch in its own thread, so that APNs, FCM and Expo go in parallel."""
    by_provider: dict[Provider, list[PushMessage]] = defaultdict(list)
    for attempt in attempts:
        by_provider[Provider(attempt.token.provider)].append(attempt.message)
    results: dict[str, PushResult] = {}
    if not by_provider:
        return results
    with ThreadPoolExecutor(max_workers=len(by_provider)) as pool:
        batches = pool.map(lambda item: _send_one_provider(runtime, *item), by_provider.items())
        for batch in batches:
            results.update((result.ref, result) for result in batch)
    return results


def _send_one_provider(
    runtime: Runtime, provider: Provider, messages: list[PushMessage]
) -> list[PushResult]:
    deferred: list[PushResult] = []
    if provider is Provider.EXPO:
        bucket = TokenBucket(
            runtime.redis,
            keys.provider_bucket(runtime.settings.storage.redis_key_prefix, provider.value),
            runtime.settings.providers.expo_rate_per_second,
        )
        granted = bucket.take(len(messages))
        wait = bucket.seconds_until(len(messages) - granted)
        deferred = [
            PushResult(m.ref, Outcome.TRANSIENT, error="LocalRateLimit", retry_after=wait)
            for m in messages[granted:]
        ]
        messages = messages[:granted]
    started = time.monotonic()
    sent = runtime.providers[provider].send(messages) if messages else []
    log.info(
        "event=provider_batch provider=%s messages=%d deferred=%d elapsed_ms=%.1f",
        provider.value,
        len(messages),
        len(deferred),
        (time.monotonic() - started) * 1000,
    )
    return sent + deferred


def _settle(
    runtime: Runtime,
    gate: GateOutcome,
    attempts: Sequence[Attempt],
    results: dict[str, PushResult],
    already_sent: dict[uuid.UUID, int],
) -> dict[str, int]:
    """Write the deliveries, deactivate dead tokens, hold batched rows and set every claimed
    row's status in one transaction."""
    now = datetime.now(UTC)
    policy = retry_policy(runtime.settings.delivery)
    per_notification: dict[uuid.UUID, list[PushResult]] = defaultdict(list)
    deliveries = []
    dead_tokens: list[tuple[ActiveToken, PushResult]] = []
    for attempt in attempts:
        result = results.get(attempt.message.ref) or PushResult(
            attempt.message.ref, Outcome.TRANSIENT, error="NoResult"
        )
        per_notification[attempt.notification_id].append(result)
        deliveries.append(_delivery_record(attempt, result))
        if result.outcome is Outcome.TOKEN_INVALID:
            dead_tokens.append((attempt.token, result))
        if result.outcome is Outcome.CREDENTIALS_ERROR:
            _raise_alarm(runtime, attempt.token.provider, result)
    statuses: dict[str, int] = defaultdict(int)
    settlements = list(gate.settled)
    delivered: set[uuid.UUID] = set()
    for notification in gate.to_send:
        results_of = per_notification[notification.id]
        decision = _decide(notification, results_of, already_sent, policy, now)
        settlements.append(_settlement(notification, decision, results_of, now))
        if any(r.outcome is Outcome.SENT for r in results_of):
            delivered.add(notification.id)
    for settlement in settlements:
        statuses[settlement.status.value] += 1
    release_unsent_caps(runtime, gate, gate.to_send, delivered)
    with db.session_scope() as session:
        record_deliveries(session, deliveries, now)
        for token, result in dead_tokens:
            _deactivate(session, token, result, now)
        touch_accepted_tokens(session, deliveries, now)
        settle(session, settlements, now)
        for notification, key, closes in gate.held:
            hold_for_batch(session, notification.id, key, closes, now)
    statuses["held"] = len(gate.held)
    return dict(statuses)


def _delivery_record(attempt: Attempt, result: PushResult) -> DeliveryRecord:
    return DeliveryRecord(
        notification_id=attempt.notification_id,
        token_id=attempt.token.id,
        provider=attempt.token.provider,
        status=DELIVERY_STATUS[result.outcome],
        provider_message_id=result.provider_message_id,
        error_reason=result.error,
        latency_ms=int(result.latency_ms) if result.latency_ms is not None else None,
    )


def _decide(
    notification: Claimed,
    results: Sequence[PushResult],
    already_sent: dict[uuid.UUID, int],
    policy: RetryPolicy,
    now: datetime,
) -> Decision:
    counts = AttemptCounts(
        already_sent=already_sent.get(notification.id, 0),
        sent=sum(r.outcome is Outcome.SENT for r in results),
        retryable=sum(r.outcome in RETRYABLE for r in results),
        failed=sum(r.outcome in (Outcome.TOKEN_INVALID, Outcome.PAYLOAD_ERROR) for r in results),
    )
    retry_after = max(
        (r.retry_after or 0.0 for r in results if r.outcome in RETRYABLE), default=0.0
    )
    return decide(counts, notification.attempts, policy, now, random.random(), retry_after or None)


def _settlement(
    notification: Claimed, decision: Decision, results: Sequence[PushResult], now: datetime
) -> Settlement:
    errors = [r.error for r in results if r.outcome is not Outcome.SENT and r.error]
    delivered = decision.status in (NotificationStatus.SENT, NotificationStatus.PARTIALLY_SENT)
    return Settlement(
        id=notification.id,
        status=decision.status,
        reason=decision.reason or (SUMMARY_REASON if is_summary(notification.data) else None),
        last_error=errors[-1] if errors else None,
        retry_at=decision.retry_at,
        sent_at=now if delivered else None,
    )


def _deactivate(session: Any, token: ActiveToken, result: PushResult, now: datetime) -> None:
    """A token the provider says is dead stops being used, unless it was registered again
    after the moment the provider says it died (APNs 410 carries that moment)."""
    reason = f"{token.provider}:{result.error or 'invalid'}"
    if result.environment_mismatch:
        reason += ":environment_mismatch"
    applied = deactivate_token(
        session, token.id, reason, now, unless_used_after=result.token_invalid_since
    )
    log.warning(
        "event=token_deactivated token_id=%s provider=%s error=%s "
        "environment_mismatch=%s applied=%s",
        token.id,
        token.provider,
        result.error,
        result.environment_mismatch,
        applied,
    )


def _raise_alarm(runtime: Runtime, provider: str, result: PushResult) -> None:
    """Our credentials or configuration are wrong: tell operators loudly, keep the token."""
    log.error("event=provider_alarm provider=%s error=%s", provider, result.error)
    try:
        runtime.redis.hset(
            keys.provider_alarms(runtime.settings.storage.redis_key_prefix),
            provider,
            f"{iso(datetime.now(UTC))} {result.error}",
        )
    except Exception:  # the alarm must never break the delivery bookkeeping
        log.exception("event=provider_alarm_not_recorded provider=%s", provider)
