"""The one rule for a user id, wherever one arrives (a JWT's `sub`, a send's targets, an
event's people, a socket payload): 1 to 64 visible characters, no white space or control
character. Ids are the app's own; Pulse never makes one."""

from __future__ import annotations

import re

USER_ID_PATTERN = re.compile(r"^[^\s\x00-\x1f\x7f]{1,64}$")
USER_ID_RULE = "1-64 visible characters"


def is_user_id(value: object) -> bool:
    return isinstance(value, str) and USER_ID_PATTERN.match(value) is not None
