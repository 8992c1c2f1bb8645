"""The delivery rules on one claimed chunk against the real Redis: batch windows and caps
are pipelined per chunk, so the order inside a chunk must still decide who goes first; and
the number of Redis round trips must not grow with the chunk."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis

from core import keys
from core.caps import FREQUENCY_CAP
from core.catalog import NotificationStatus
from core.config import load_settings
from core.device_tokens import TokenCipher
from jobs.delivery.gate import GateOutcome, apply_rules, release_unsent_caps
from models.db import db as database
from models.outbox import Claimed
from realtime.live_users import send_in_app_copies
from runtime import Process, Runtime
from stores.client import run_script_in_order
from stores.connections import ConnectionRecord
from tests.factories import NO_QUIET_HOURS

ROUND_TRIPS: list[int] = [0]


class CountingConnection(redis.Connection):
    """A real connection that counts its writes: one per command, one per pipeline."""

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        ROUND_TRIPS[0] += 1
        super().send_packed_command(command, check_health)


@pytest.fixture
def make_runtime(env, redis_url) -> Iterator[Callable[..., Runtime]]:
    clients: list[redis.Redis] = []

    def make(**overrides: str) -> Runtime:
        settings = load_settings({**env, **NO_QUIET_HOURS, **overrides})
        client = redis.Redis.from_url(redis_url, connection_class=CountingConnection)
        clients.append(client)
        cipher = TokenCipher(settings.auth.token_encryption_keys, settings.auth.token_hash_key)
        return Runtime(settings, client, cipher, database, Process.WORKER)

    yield make
    for client in clients:
        client.flushdb()
        client.close()


def notification(
    user_id: str = "alice",
    kind: str = "boost_activated",  # capped, never batched
    priority: str = "normal",
    data: dict[str, Any] | None = None,
) -> Claimed:
    return Claimed(
        id=uuid.uuid4(),
        user_id=user_id,
        notification_type=kind,
        title="t",
        body="b",
        data=data or {},
        priority=priority,
        attempts=1,
        batch_key=None,
        platforms=None,
        expires_at=None,
        created_at=datetime.now(UTC),
        reason=None,
    )


def message(user_id: str = "alice", conversation: str = "c-1") -> Claimed:
    return notification(
        user_id, "new_message", data={"conversation_id": conversation, "sender_name": "Alex"}
    )


def rules(runtime: Runtime, chunk: list[Claimed], active: frozenset[str] = frozenset()):
    return apply_rules(runtime, chunk, {}, datetime.now(UTC), active.__contains__)


def settled(outcome: GateOutcome) -> dict[uuid.UUID, tuple[NotificationStatus, str | None]]:
    return {s.id: (s.status, s.reason) for s in outcome.settled}


def test_the_first_of_two_with_one_batch_key_opens_the_window_the_second_is_held(make_runtime):
    runtime = make_runtime(NOTIFICATION_BATCH_WINDOW_SECONDS="60")
    first, second, other = message(), message(), message(conversation="c-2")
    now = datetime.now(UTC)

    outcome = rules(runtime, [first, second, other])

    assert outcome.to_send == [first, other]
    [(held, key, until)] = outcome.held
    assert (held, key) == (second, "new_message:alice:c-1")
    assert now + timedelta(seconds=59) <= until <= now + timedelta(seconds=61)
    assert outcome.settled == [] and outcome.reserved == {}  # messages take no cap


def test_a_window_opened_by_an_earlier_chunk_holds_the_whole_next_chunk(make_runtime):
    runtime = make_runtime(NOTIFICATION_BATCH_WINDOW_SECONDS="60")
    opened = rules(runtime, [message()])

    later = rules(runtime, [message(), message()])

    assert len(opened.to_send) == 1
    assert later.to_send == [] and len(later.held) == 2
    assert len({until for _, _, until in later.held}) == 1  # both wait for the same close


def test_a_cap_of_n_lets_exactly_n_of_one_users_chunk_through_in_order(make_runtime):
    runtime = make_runtime(FREQUENCY_CAP_PER_TYPE_HOUR="3")
    high = [notification(priority="high") for _ in range(2)]
    normal = [notification() for _ in range(2)]
    low = notification(priority="low")
    bob = notification("bob")  # another user's push between them counts for bob only
    chunk = [*high, bob, *normal, low]

    outcome = rules(runtime, chunk)

    next_hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    assert outcome.to_send == [*high, bob, normal[0]]
    assert settled(outcome) == {
        normal[1].id: (NotificationStatus.SCHEDULED, FREQUENCY_CAP),
        low.id: (NotificationStatus.SUPPRESSED, FREQUENCY_CAP),
    }
    [deferred] = [s for s in outcome.settled if s.status is NotificationStatus.SCHEDULED]
    assert deferred.retry_at == next_hour
    assert set(outcome.reserved) == {n.id for n in outcome.to_send}


def test_the_daily_cap_counts_every_type_of_the_chunk_and_critical_takes_nothing(make_runtime):
    runtime = make_runtime(FREQUENCY_CAP_PER_DAY="2")
    critical = notification(kind="system", priority="critical")
    kinds = [notification(kind=k) for k in ("like_received", "super_like_received", "profile_view")]

    outcome = rules(runtime, [critical, *kinds])

    assert outcome.to_send == [critical, *kinds[:2]]
    assert settled(outcome) == {kinds[2].id: (NotificationStatus.SCHEDULED, FREQUENCY_CAP)}
    assert critical.id not in outcome.reserved


def test_held_notifications_take_nothing_from_the_caps(make_runtime):
    runtime = make_runtime(FREQUENCY_CAP_PER_DAY="3", NOTIFICATION_BATCH_WINDOW_SECONDS="60")
    likes = [notification(kind="like_received") for _ in range(4)]
    rules(runtime, likes)

    boosts = [notification() for _ in range(4)]
    outcome = rules(runtime, boosts)

    assert outcome.to_send == boosts[:2]  # the first like used one of the three, the held none


def test_messages_take_nothing_from_the_caps(make_runtime):
    runtime = make_runtime(FREQUENCY_CAP_PER_DAY="1")
    messages = [message(conversation=f"c-{i}") for i in range(3)]

    outcome = rules(runtime, [*messages, notification(), notification()])

    assert outcome.to_send == [*messages, outcome.to_send[-1]]
    assert len(outcome.to_send) == 4 and not outcome.reserved.keys() & {m.id for m in messages}


def test_releases_give_back_exactly_what_was_not_delivered(make_runtime):
    runtime = make_runtime(FREQUENCY_CAP_PER_TYPE_HOUR="3")
    chunk = [notification() for _ in range(3)]
    first = rules(runtime, chunk)

    release_unsent_caps(runtime, first, first.to_send, delivered={chunk[0].id})
    release_unsent_caps(runtime, GateOutcome(), chunk, delivered=set())  # reserved nothing
    second = rules(runtime, [notification() for _ in range(4)])

    assert first.to_send == chunk
    assert len(second.to_send) == 2
    hour_counters = runtime.redis.keys(f"{runtime.settings.storage.redis_key_prefix}cap:hour:*")
    assert [int(runtime.redis.get(k)) for k in hour_counters] == [3]


def test_live_users_matches_live_sids_one_by_one(make_runtime):
    runtime = make_runtime()
    context = runtime
    now = time.time()
    for sid, user_id in (("s1", "alice"), ("s2", "alice"), ("s3", "bob")):
        context.connections.add(
            ConnectionRecord(sid, user_id, None, None, None, False, now, now, now, "node-1")
        )
    prefix = runtime.settings.storage.redis_key_prefix
    runtime.redis.sadd(keys.rt_user_connections(prefix, "carol"), "gone")  # a stale sid
    runtime.redis.delete(keys.rt_connection(prefix, "s3"))  # bob's record expired
    users = ["alice", "bob", "carol", "dave", "alice"]

    live = context.connections.live_users(users)

    assert live == {u for u in users if context.connections.live_sids(u)} == {"alice"}
    assert context.connections.live_users([]) == set()


def test_a_script_the_server_does_not_know_is_loaded_and_the_calls_run_in_order(make_runtime):
    runtime = make_runtime()
    script = runtime.redis.register_script(f"-- {uuid.uuid4()}\nreturn ARGV[1]")
    calls = [([], [str(i)]) for i in range(5)]

    first = run_script_in_order(runtime.redis, script, calls)
    again = run_script_in_order(runtime.redis, script, calls)

    assert first == again == [str(i).encode() for i in range(5)]
    assert run_script_in_order(runtime.redis, script, []) == []


def test_a_script_error_is_raised(make_runtime):
    runtime = make_runtime()
    script = runtime.redis.register_script("return redis.error_reply('boom')")

    with pytest.raises(redis.ResponseError, match="boom"):
        run_script_in_order(runtime.redis, script, [([], [])])


def chunk_of(size: int) -> list[Claimed]:
    """A mix: batched messages, capped pushes, several notifications per user."""
    users = [f"user-{i}" for i in range(max(1, size // 5))]
    return [
        message(users[i % len(users)]) if i % 2 else notification(users[i % len(users)])
        for i in range(size)
    ]


def round_trips_of(runtime: Runtime, size: int) -> tuple[int, int, int]:
    runtime.redis.flushdb()
    chunk = chunk_of(size)
    context = runtime
    now = time.time()
    for index, user_id in enumerate(sorted({n.user_id for n in chunk})[::2]):
        context.connections.add(
            ConnectionRecord(f"sid-{index}", user_id, None, None, None, False, now, now, now, "n")
        )
    counts = []
    ROUND_TRIPS[0] = 0
    outcome = rules(runtime, chunk)
    counts.append(ROUND_TRIPS[0])
    ROUND_TRIPS[0] = 0
    assert send_in_app_copies(runtime, chunk) > 0
    counts.append(ROUND_TRIPS[0])
    ROUND_TRIPS[0] = 0
    release_unsent_caps(runtime, outcome, outcome.to_send, delivered=set())
    counts.append(ROUND_TRIPS[0])
    assert outcome.held and outcome.settled and outcome.reserved
    return counts[0], counts[1], counts[2]


def test_redis_round_trips_per_chunk_do_not_grow_with_the_chunk(make_runtime):
    runtime = make_runtime(FREQUENCY_CAP_PER_TYPE_HOUR="2", NOTIFICATION_BATCH_WINDOW_SECONDS="60")
    if runtime.redis.connection_pool.connection_class is not CountingConnection:
        pytest.skip("Redis is reached through a unix socket: round trips are not counted")
    round_trips_of(runtime, 5)  # loads the scripts

    small, large = round_trips_of(runtime, 10), round_trips_of(runtime, 300)

    # batch windows + caps; connections (members, then which records are alive); releases
    assert small == large == (2, 2, 1)
