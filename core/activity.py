"""The rules of activity reports (POST /api/v1/activity and the socket's `activity`
event): how many in a batch, how late or early `occurred_at` may be, how big `metadata`
may be. Pure: `now` is passed in."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

MAX_ITEMS = 100
MAX_METADATA_BYTES = 2048  # of compact UTF-8 JSON
# A device's clock may run a little ahead of ours: up to this far in the future is accepted.
CLOCK_SKEW = timedelta(minutes=5)
# An app that was offline sends what it kept; anything older than this is refused.
MAX_AGE = timedelta(hours=24)


def metadata_size(metadata: dict[str, Any]) -> int:
    return len(json.dumps(metadata, ensure_ascii=False, separators=(",", ":")).encode())


def metadata_problem(metadata: dict[str, Any]) -> str | None:
    size = metadata_size(metadata)
    if size > MAX_METADATA_BYTES:
        return f"At most {MAX_METADATA_BYTES} bytes of JSON (this is {size})."
    return None


def occurred_at_problem(occurred_at: datetime, now: datetime) -> str | None:
    """Why `occurred_at` is refused at `now`, or None."""
    if occurred_at > now + CLOCK_SKEW:
        minutes = int(CLOCK_SKEW.total_seconds() // 60)
        return f"In the future (more than {minutes} minutes of clock skew)."
    if occurred_at < now - MAX_AGE:
        hours = int(MAX_AGE.total_seconds() // 3600)
        return f"Older than {hours} hours."
    return None
