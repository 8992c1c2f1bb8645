"""The real-time gateway process: the whole app (API included) with Socket.IO at
/socket.io, on gevent. `python gateway.py --host 127.0.0.1 --port 5001`.

Run as many as needed: they share the Redis message queue and keep no state of their own
that another process needs. It must be started this way (monkey-patching comes first).
"""

from __future__ import annotations

import sys

ASYNC_MODE = "threading" if "--threading" in sys.argv else "gevent"
if ASYNC_MODE == "gevent":
    from gevent import monkey

    monkey.patch_all()
    from psycogreen.gevent import patch_psycopg

    patch_psycopg()

import argparse  # noqa: E402
import gc  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402

from dotenv import load_dotenv  # noqa: E402

log = logging.getLogger("gateway")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("GATEWAY_PORT", "5001")))
    parser.add_argument(
        "--threading", action="store_true", help="threads instead of gevent (for comparison)"
    )
    arguments = parser.parse_args()
    load_dotenv()

    from api import create_app
    from api.extensions import socketio
    from api.sockets.shutdown import close_own_connections

    app = create_app(realtime=True, async_mode=ASYNC_MODE)
    # Thousands of long-lived connection objects: keep the start-up heap out of the
    # collector and collect less often, so that a full collection does not stall every
    # connection at once (measured in bench/realtime.py).
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)

    def stop(signum: int = signal.SIGTERM, _frame: object = None) -> None:
        log.info("event=gateway_stopping signal=%d", signum)
        close_own_connections(app)
        os._exit(0)

    if ASYNC_MODE == "gevent":
        import gevent

        # A gevent signal handler runs in a greenlet, where Redis calls may block.
        gevent.signal_handler(signal.SIGTERM, stop, signal.SIGTERM)
        gevent.signal_handler(signal.SIGINT, stop, signal.SIGINT)
    else:
        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
    log.info("event=gateway_listening host=%s port=%d", arguments.host, arguments.port)
    socketio.run(
        app,
        host=arguments.host,
        port=arguments.port,
        log_output=False,
        allow_unsafe_werkzeug=ASYNC_MODE == "threading",
    )


if __name__ == "__main__":
    main()
