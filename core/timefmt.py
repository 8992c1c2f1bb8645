"""The one way Pulse writes a moment on the wire: ISO 8601 in UTC with a "Z"
("2026-11-25T23:18:11.123456Z"), as the seed's examples do."""

from __future__ import annotations

from datetime import UTC, datetime


def iso(moment: datetime | None) -> str | None:
    """A timezone-aware datetime as ISO 8601 UTC ending in "Z"; None stays None."""
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def iso_from_timestamp(seconds: float) -> str:
    """A Unix time (seconds) as `iso` writes it."""
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")
