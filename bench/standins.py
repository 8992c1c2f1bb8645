"""Runs the three provider stand-ins in their own process for a benchmark, each answering
after a realistic delay; prints the client environment as one JSON line, then serves until
stdin closes or SIGTERM."""

from __future__ import annotations

import json
import signal
import sys
import tempfile
import threading
from pathlib import Path

from tests.standins.apns import APNsStandIn
from tests.standins.expo import ExpoStandIn
from tests.standins.fcm import FCMStandIn


def main() -> None:
    delay = float(sys.argv[1]) if len(sys.argv) > 1 else 0.030
    directory = Path(tempfile.mkdtemp(prefix="pulse-bench-standins-"))
    apns = APNsStandIn(directory=directory / "apns", validate_headers=False).start()
    fcm = FCMStandIn(directory=directory / "fcm").start()
    expo = ExpoStandIn().start()
    for server in (apns, fcm, expo):
        server.delay = delay
        server.record = False  # a long run must not keep every request in memory
    print(json.dumps({**apns.client_env(), **fcm.client_env(), **expo.client_env()}), flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    stop.wait()
    for server in (apns, fcm, expo):
        server.stop()


if __name__ == "__main__":
    main()
