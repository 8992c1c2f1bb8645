"""Notification text made safe to show and small enough to send: control characters and
markup removed, whitespace folded, lengths capped in bytes so that title, body and data
fit the providers' 4 KB payload limit. Pure."""

from __future__ import annotations

import html
import re
import unicodedata

TITLE_MAX_BYTES = 200
BODY_MAX_BYTES = 800
_MARKUP = re.compile(r"<[^>]{0,500}>")
_SPACES = re.compile(r"\s+")
ELLIPSIS = "…"


def _visible(text: str) -> str:
    return "".join(
        " " if unicodedata.category(ch) in ("Cc", "Zl", "Zp") else ch
        for ch in text
        if unicodedata.category(ch) not in ("Cf", "Cs", "Co", "Cn") or ch == "\u200d"
    )


def cap_bytes(text: str, limit: int) -> str:
    """Cut `text` to at most `limit` UTF-8 bytes on a character boundary, marking the cut."""
    encoded = text.encode()
    if len(encoded) <= limit:
        return text
    room = limit - len(ELLIPSIS.encode())
    return encoded[:room].decode(errors="ignore").rstrip() + ELLIPSIS


def clean(text: str, limit: int) -> str:
    """Markup stripped (and entities decoded), control characters removed, whitespace
    folded, then capped at `limit` bytes."""
    text = html.unescape(_MARKUP.sub("", text))
    text = _SPACES.sub(" ", _visible(text)).strip()
    return cap_bytes(text, limit)


def clean_title(text: str) -> str:
    return clean(text, TITLE_MAX_BYTES)


def clean_body(text: str) -> str:
    return clean(text, BODY_MAX_BYTES)
