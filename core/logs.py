"""Structured logging: one key=value line per event, one logger per module.

Never pass a device token, a JWT or a message body to a logger.
"""

from __future__ import annotations

import logging
import sys

FORMAT = "ts=%(asctime)s level=%(levelname)s logger=%(name)s %(message)s"


def configure_logging(level: str = "INFO") -> None:
    root = logging.getLogger()
    if getattr(root, "_pulse_configured", False):
        root.setLevel(level)
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(FORMAT, datefmt="%Y-%m-%dT%H:%M:%S%z"))
    root.addHandler(handler)
    root.setLevel(level)
    root._pulse_configured = True  # type: ignore[attr-defined]
