"""The push provider clients (APNs over HTTP/2 with aioapns, FCM HTTP v1 with pyfcm's
messages, Expo's push API, and the development sink) behind one interface, `PushProvider`;
providers.registry says which one each provider name gets. Each client classifies its
provider's errors once (providers.base.Outcome); none touches the database or Redis.
"""

from __future__ import annotations

from providers.base import (
    Outcome,
    PushMessage,
    PushProvider,
    PushResult,
    ReceiptChecker,
    ReceiptResult,
)
from providers.sink import SinkProvider

__all__ = [
    "Outcome",
    "PushMessage",
    "PushProvider",
    "PushResult",
    "ReceiptChecker",
    "ReceiptResult",
    "SinkProvider",
]
