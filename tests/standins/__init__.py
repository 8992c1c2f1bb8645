"""Local servers that speak the push providers' real wire protocols, for tests and benchmarks.

The real client libraries talk to them; they never reach the internet and hold only
throwaway keys generated at start.
"""

from tests.standins.apns import APNsRequest, APNsStandIn
from tests.standins.expo import ExpoRequest, ExpoStandIn
from tests.standins.fcm import FCMRequest, FCMStandIn

__all__ = [
    "APNsRequest",
    "APNsStandIn",
    "ExpoRequest",
    "ExpoStandIn",
    "FCMRequest",
    "FCMStandIn",
]
