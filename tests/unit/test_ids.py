"""Row ids are UUID version 7: time-ordered, so rows made later sort later."""

from __future__ import annotations

import time
import uuid

from models.base import new_id


def test_a_new_id_is_a_version_7_uuid_with_the_rfc_variant():
    value = new_id()
    assert value.version == 7
    assert value.variant == uuid.RFC_4122


def test_its_first_48_bits_are_the_unix_milliseconds_of_its_making():
    before = time.time_ns() // 1_000_000
    value = new_id()
    after = time.time_ns() // 1_000_000
    assert before <= value.int >> 80 <= after


def test_ids_made_in_a_later_millisecond_sort_after_earlier_ones():
    first = new_id()
    deadline = (first.int >> 80) + 1
    while time.time_ns() // 1_000_000 <= deadline:
        pass  # spin into a later millisecond (no sleep: a condition)
    assert new_id() > first


def test_ids_are_unique():
    assert len({new_id() for _ in range(10_000)}) == 10_000
