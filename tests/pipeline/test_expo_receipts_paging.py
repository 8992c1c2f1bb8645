"""Expo receipts at scale: every ticket of the last day waiting for its receipt is checked,
oldest first, in requests of at most 1,000 ids (Expo's limit), within the run's time budget.

The tickets are real ones from the Expo stand-in (asked for through its send endpoint); their
delivery rows are written through SQL with chosen creation times, in a shuffled order.
"""

from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta

import requests
from sqlalchemy import text
from sqlalchemy.orm import Session

from jobs.receipts import check_expo_receipts
from tests.pipeline.conftest import EXPO_DEVICE
from tests.standins.expo import MAX_MESSAGES, RECEIPTS_PATH, SEND_PATH

TICKETS = 2_500


def tickets(expo_standin, count: int) -> list[str]:
    """`count` ticket ids the stand-in will answer receipts for."""
    ids: list[str] = []
    while len(ids) < count:
        batch = min(MAX_MESSAGES, count - len(ids))
        response = requests.post(
            expo_standin.url + SEND_PATH, json=[{"to": EXPO_DEVICE}] * batch, timeout=10
        )
        ids.extend(ticket["id"] for ticket in response.json()["data"])
    return ids


def deliveries(session: Session, created: dict[str, datetime]) -> None:
    """An Expo delivery row, status sent, per ticket, written in a random order."""
    session.execute(text("INSERT INTO users (id) VALUES ('alice') ON CONFLICT DO NOTHING"))
    notification_id = uuid.uuid4()
    session.execute(
        text(
            """
            INSERT INTO notification_queue (id, user_id, notification_type, title, body,
                priority, status, attempts)
            VALUES (:id, 'alice', 'new_match', 't', 'b', 'normal', 'sent', 1)
            """
        ),
        {"id": notification_id},
    )
    order = list(created)
    random.Random(11).shuffle(order)
    session.execute(
        text(
            """
            INSERT INTO notification_deliveries (notification_id, provider, status,
                provider_message_id, created_at, updated_at)
            VALUES (:notification_id, 'expo', 'sent', :ticket, :created_at, :created_at)
            """
        ),
        [
            {"notification_id": notification_id, "ticket": ticket, "created_at": created[ticket]}
            for ticket in order
        ],
    )
    session.commit()


def receipt_requests(expo_standin) -> list[list[str]]:
    return [r.payload["ids"] for r in expo_standin.received if r.path == RECEIPTS_PATH]


def status_of(session: Session) -> dict[str, str]:
    session.rollback()
    rows = session.execute(text("SELECT provider_message_id, status FROM notification_deliveries"))
    return {ticket: status for ticket, status in rows}


def test_every_waiting_ticket_is_checked_oldest_first_in_requests_of_at_most_1000(
    make_pipeline, expo_standin, db_session
):
    make_pipeline()  # EXPO_RECEIPT_DELAY_SECONDS: 900
    now = db_session.scalar(text("SELECT now()"))
    ids = tickets(expo_standin, TICKETS + 4)
    waiting, too_old, too_young = ids[:TICKETS], ids[TICKETS : TICKETS + 2], ids[TICKETS + 2 :]
    # Seven tickets share each moment (a chunk's deliveries share one), so that a page ends
    # in the middle of a group.
    created = {
        ticket: now - timedelta(hours=20) + timedelta(milliseconds=index // 7)
        for index, ticket in enumerate(waiting)
    }
    created.update({ticket: now - timedelta(hours=25) for ticket in too_old})
    created.update({ticket: now - timedelta(minutes=1) for ticket in too_young})
    deliveries(db_session, created)

    counts = check_expo_receipts()

    asked = receipt_requests(expo_standin)
    assert [len(request) for request in asked] == [1000, 1000, 500]
    flat = [ticket for request in asked for ticket in request]
    assert sorted(flat) == sorted(waiting)  # each once, nothing too old or too young
    assert [created[t] for t in flat] == sorted(created[t] for t in waiting)  # oldest first
    assert counts["checked"] == TICKETS and counts["delivered"] == TICKETS
    statuses = status_of(db_session)
    assert {statuses[t] for t in waiting} == {"delivered"}
    assert {statuses[t] for t in too_old + too_young} == {"sent"}


def test_a_run_stops_at_its_time_budget_and_the_next_one_takes_the_rest(
    make_pipeline, expo_standin, db_session
):
    make_pipeline()
    now = db_session.scalar(text("SELECT now()"))
    ids = tickets(expo_standin, TICKETS)
    created = {
        ticket: now - timedelta(hours=2) + timedelta(milliseconds=index)
        for index, ticket in enumerate(ids)
    }
    deliveries(db_session, created)

    first = check_expo_receipts(time_budget_seconds=0)  # one page, always
    assert first["checked"] == 1000
    assert receipt_requests(expo_standin)[-1] == ids[:1000]
    assert {status_of(db_session)[t] for t in ids[1000:]} == {"sent"}

    second = check_expo_receipts()
    assert second["checked"] == TICKETS - 1000
    assert [len(r) for r in receipt_requests(expo_standin)] == [1000, 1000, 500]
    assert set(status_of(db_session).values()) == {"delivered"}


def test_tickets_whose_receipt_is_not_ready_are_asked_again_next_run(
    make_pipeline, expo_standin, db_session
):
    make_pipeline()
    now = db_session.scalar(text("SELECT now()"))
    ids = tickets(expo_standin, 1_200)
    created = {
        ticket: now - timedelta(hours=1) + timedelta(milliseconds=index)
        for index, ticket in enumerate(ids)
    }
    deliveries(db_session, created)
    expo_standin.hold_receipts(EXPO_DEVICE)  # no receipt is ready yet

    assert check_expo_receipts()["checked"] == 0
    assert check_expo_receipts()["checked"] == 0
    assert [len(r) for r in receipt_requests(expo_standin)] == [1000, 200, 1000, 200]
    assert set(status_of(db_session).values()) == {"sent"}
