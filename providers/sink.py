"""A provider that accepts every push and delivers none: the development default, and the
stand-in for any provider whose credentials are not configured.

It logs one line per push with a token fingerprint and sizes only; it must never log or
record a device token or a message body.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from core.catalog import Provider
from core.timefmt import iso
from providers.base import (
    Outcome,
    PushMessage,
    PushResult,
    ReceiptResult,
    kv,
    token_fingerprint,
)

logger = logging.getLogger(__name__)

Recorder = Callable[[dict[str, Any]], None]


class SinkProvider:
    def __init__(self, name: Provider, record: Recorder | None = None) -> None:
        self.name = name
        self._record = record

    def send(self, messages: Sequence[PushMessage]) -> list[PushResult]:
        results = []
        for message in messages:
            message_id = f"sink-{uuid.uuid4()}"
            fingerprint = token_fingerprint(message.token)
            logger.info(
                "event=push_sink %s",
                kv(
                    provider=self.name.value,
                    ref=message.ref,
                    message_id=message_id,
                    token_fp=fingerprint,
                    priority=message.priority.value,
                    title_len=len(message.title),
                    body_len=len(message.body),
                    data_keys=",".join(sorted(map(str, message.data))),
                ),
            )
            if self._record is not None:
                self._record(
                    {
                        "ref": message.ref,
                        "provider": self.name.value,
                        "provider_message_id": message_id,
                        "token_fingerprint": fingerprint,
                        "title": message.title,
                        "data_keys": sorted(map(str, message.data)),
                        "priority": message.priority.value,
                        "collapse_key": message.collapse_key,
                        "thread_id": message.thread_id,
                        "badge": message.badge,
                        "at": iso(datetime.now(UTC)),
                    }
                )
            results.append(PushResult(message.ref, Outcome.SENT, provider_message_id=message_id))
        return results

    def check_receipts(self, ticket_ids: Sequence[str]) -> dict[str, ReceiptResult]:
        """Everything the sink accepted counts as delivered (Expo's receipt check in dev)."""
        return {ticket_id: ReceiptResult(ticket_id, Outcome.SENT) for ticket_id in ticket_ids}

    def close(self) -> None:
        pass
