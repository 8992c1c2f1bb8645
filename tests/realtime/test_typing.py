"""Typing through a real Socket.IO client: only the other participant of a live match's
conversation sees it; progress is throttled; typing stops by itself and on disconnect."""

from __future__ import annotations

import time

from core.catalog import MatchStatus
from tests.waiting import wait_until


def in_conversation(conversation_id: str):
    return lambda d: d.get("conversation_id") == conversation_id


def test_typing_reaches_the_other_participant_only(gateway, clients, token, users, match):
    alice, bob, stranger = users(3)
    conversation = match(alice, bob)
    typist = clients(gateway, token(alice))
    bob_phone = clients(gateway, token(bob), device_id="phone")
    bob_tablet = clients(gateway, token(bob), device_id="tablet")
    outsider = clients(gateway, token(stranger))

    assert typist.call("typing_start", {"conversation_id": conversation}) == {"ok": True}
    for device in (bob_phone, bob_tablet):
        started = device.wait_for("typing_start", in_conversation(conversation))
        assert started == {"conversation_id": conversation, "user_id": alice}
    typist.call(
        "typing_progress", {"conversation_id": conversation, "char_count": 12, "duration_ms": 900}
    )
    progress = bob_phone.wait_for("typing_progress")
    assert progress == {
        "conversation_id": conversation,
        "user_id": alice,
        "char_count": 12,
        "duration_ms": 900,
    }
    typist.call("typing_stop", {"conversation_id": conversation})
    stopped = bob_phone.wait_for("typing_stop")
    assert stopped["reason"] == "stopped"
    # Every typing event was emitted before its call was answered: a round trip of each
    # client comes after anything that was (wrongly) sent to it.
    for bystander in (outsider, typist):
        seen = bystander.barrier()
        assert [name for name, _ in bystander.events[:seen] if name.startswith("typing")] == []


def test_someone_outside_the_match_is_refused_and_nobody_hears(
    gateway, clients, token, users, match
):
    alice, bob, stranger = users(3)
    conversation = match(alice, bob)
    alice_client = clients(gateway, token(alice))
    bob_client = clients(gateway, token(bob))
    intruder = clients(gateway, token(stranger))
    answer = intruder.call("typing_start", {"conversation_id": conversation})
    assert answer["ok"] is False
    assert answer["error"]["code"] == "forbidden"
    assert intruder.wait_for("error")["code"] == "forbidden"
    # Then the real participant types: bob must get that, and nothing before it.
    alice_client.call("typing_start", {"conversation_id": conversation})
    barrier = bob_client.index_of("typing_start", lambda d: d["user_id"] == alice)
    assert bob_client.received("typing_start", before=barrier) == []


def test_an_ended_match_carries_no_typing(gateway, clients, token, users, match):
    alice, bob = users(2)
    conversation = match(alice, bob, status=MatchStatus.UNMATCHED)
    typist = clients(gateway, token(alice))
    assert typist.call("typing_start", {"conversation_id": conversation})["error"]["code"] == (
        "forbidden"
    )


def test_progress_is_throttled_to_one_per_half_second(gateway, clients, token, users, match):
    alice, bob = users(2)
    conversation = match(alice, bob)
    typist = clients(gateway, token(alice))
    reader = clients(gateway, token(bob))

    def progress(n: int) -> dict:
        return typist.call(
            "typing_progress", {"conversation_id": conversation, "char_count": n, "duration_ms": n}
        )

    first_sent = time.monotonic()
    answers = [progress(n) for n in range(1, 6)]
    assert answers[0] == {"ok": True}
    assert all(a == {"ok": True, "throttled": True} for a in answers[1:])
    reader.wait_for("typing_progress")
    # Keep typing (a new count each time) until one is forwarded again.
    counts = iter(range(10, 100))

    def forwarded() -> int | None:
        n = next(counts)
        return n if "throttled" not in progress(n) else None

    accepted = wait_until(forwarded, timeout=3)
    assert time.monotonic() - first_sent >= 0.5  # TYPING_PROGRESS_INTERVAL_MS=500
    # The accepted one must arrive; none of the throttled ones may come before it.
    barrier = reader.index_of("typing_progress", lambda d: d["char_count"] == accepted)
    assert [d["char_count"] for d in reader.received("typing_progress", before=barrier + 1)] == [
        1,
        accepted,
    ]


def test_typing_stops_by_itself_without_progress(fast_gateway, clients, token, users, match):
    alice, bob = users(2)
    conversation = match(alice, bob)
    typist = clients(fast_gateway, token(alice))
    reader = clients(fast_gateway, token(bob))
    typist.call("typing_start", {"conversation_id": conversation})
    started = time.monotonic()
    stopped = reader.wait_for("typing_stop", timeout=4)  # TYPING_TIMEOUT_SECONDS=1
    assert stopped == {"conversation_id": conversation, "user_id": alice, "reason": "timeout"}
    assert time.monotonic() - started >= 0.8


def test_typing_stops_when_the_typist_disconnects(gateway, clients, token, users, match):
    alice, bob = users(2)
    conversation = match(alice, bob)
    typist = clients(gateway, token(alice))
    reader = clients(gateway, token(bob))
    typist.call("typing_start", {"conversation_id": conversation})
    reader.wait_for("typing_start")
    typist.disconnect()
    assert reader.wait_for("typing_stop")["reason"] == "disconnected"
